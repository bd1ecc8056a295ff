package analysis

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if werr := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); werr != nil {
					t.Fatal(werr)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error(); got != strings.TrimSuffix(string(want), "\n") {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `:\d+:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error %q is not positioned", err)
			}
		})
	}
}
