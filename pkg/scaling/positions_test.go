package scaling

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestBadPolicyPositions: the checks of a scaling policy read
// "file:line:col: msg" at the node the message names (the bound out of
// range, the schedule name used twice, the unknown time zone, the bad
// name), not at the policy's first line (golden files
// testdata/bad/*.golden; -update rewrites them).
func TestBadPolicyPositions(t *testing.T) {
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
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `:\d+:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error %q is not positioned", err)
			}
		})
	}
}
