package testutil

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ErrorGoldens loads every dir/*.yml with load, which must fail, and
// compares the error's text with the file's .golden beside it (rewritten
// first when update is set). Every line of the error must read
// "<prefix>file:line:col: msg" (prefix optional) and the whole text must
// not match forbidden (the decoder's Go type names, a bare "line N:").
func ErrorGoldens(t *testing.T, dir string, update bool, load func(file string) error, prefix string, forbidden *regexp.Regexp) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.yml in %s", dir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			err := load(f)
			if err == nil {
				t.Fatalf("%s loaded without an error", f)
			}
			got := err.Error()
			ErrorGolden(t, strings.TrimSuffix(f, ".yml")+".golden", update, err)
			line := regexp.MustCompile(`^(` + regexp.QuoteMeta(prefix) + `)?` + regexp.QuoteMeta(f) + `:\d+:\d+: `)
			for _, l := range strings.Split(got, "\n") {
				if !line.MatchString(l) {
					t.Errorf("line %q is not %sfile:line:col: msg", l, prefix)
				}
			}
			if m := forbidden.FindString(got); m != "" {
				t.Errorf("error of %s holds %q: %s", f, m, got)
			}
		})
	}
}

// ErrorGolden compares err's text with the file golden (rewritten first,
// with a final newline, when update is set).
func ErrorGolden(t testing.TB, golden string, update bool, err error) {
	t.Helper()
	got := err.Error()
	if update {
		if werr := os.WriteFile(golden, []byte(got+"\n"), 0o644); werr != nil {
			t.Fatal(werr)
		}
	}
	want, rerr := os.ReadFile(golden)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if w := strings.TrimSuffix(string(want), "\n"); w != got {
		t.Fatalf("error (golden %s):\n got: %s\nwant: %s", golden, got, w)
	}
}
