package chaos

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestBadExperimentPositions: the checks an experiment's decoder makes
// read "file:line:col: msg" at the node the message names (the value out
// of range, the unknown type, the invalid name), as sred.yml's do; a
// message naming no node of the file keeps the file's name alone (golden
// files testdata/bad/*.golden; -update rewrites them).
func TestBadExperimentPositions(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadFile(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			testutil.ErrorGolden(t, strings.TrimSuffix(f, ".yml")+".golden", *update, err)
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `(:\d+:\d+)?: `).MatchString(err.Error()) {
				t.Fatalf("error %q does not start with the file", err)
			}
		})
	}
}

// TestDuplicateExperimentPosition: an experiment name used twice is
// positioned at the name in the second file (golden file
// testdata/dup.golden).
func TestDuplicateExperimentPosition(t *testing.T) {
	_, err := LoadDir("testdata/dup")
	if err == nil {
		t.Fatal("loaded without error")
	}
	want, rerr := os.ReadFile("testdata/dup.golden")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if got := err.Error(); got != strings.TrimSuffix(string(want), "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
