package analysis

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestBadSpecPositions: the checks of an analysis spec read
// "file:line:col: msg" at the node the message names (the value out of
// range, the check name used twice, the query whose template fails), as
// sred.yml's do (golden files testdata/bad/*.golden; -update rewrites
// them).
func TestBadSpecPositions(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			testutil.ErrorGolden(t, strings.TrimSuffix(f, ".yml")+".golden", *update, err)
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `:\d+:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error %q is not positioned", err)
			}
		})
	}
}
