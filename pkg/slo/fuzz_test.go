package slo_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rootuip/sre/pkg/slo"
	_ "github.com/rootuip/sre/pkg/slo/openslo" // the importers read their formats
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
)

// FuzzParse feeds arbitrary text to the SLO spec loader and its importers
// (Sloth, OpenSLO, Pyrra): it must answer specs or errors, never panic, and the
// specs it accepts must be valid and load the same way again. Seeds: the
// example specs and the importers' test files.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pat := range []string{"../../examples/slos/*.yml", "openslo/testdata/*.yml", "pyrra/testdata/*.yml", "sloth/testdata/*.yml", "testdata/*/*.yml"} {
		m, _ := filepath.Glob(pat)
		seeds = append(seeds, m...)
	}
	if len(seeds) < 5 {
		f.Fatalf("too few seed files: %v", seeds)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := slo.Parse(data, "fuzz.yml")
		if err != nil {
			return
		}
		again, err := slo.Parse(data, "fuzz.yml")
		if err != nil || len(again) != len(specs) {
			t.Fatalf("accepted once, then %d specs and %v", len(again), err)
		}
		for i, s := range specs {
			if s.Service != again[i].Service || len(s.SLOs) != len(again[i].SLOs) {
				t.Fatalf("the same text loaded differently: %q", s.Service)
			}
		}
	})
}
