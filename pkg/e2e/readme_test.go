package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var (
	// readmeGo is the Go the README's requirements name.
	readmeGo = regexp.MustCompile(`Requirements: Go ([0-9][0-9.]*[0-9])`)
	// modGo is the go line of go.mod.
	modGo = regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`)
)

// TestReadmeGoVersion checks that the README requires the Go of go.mod's
// go line: a reader with an older Go than go.mod wants gets a toolchain
// download or `go.mod requires go >= ...` at the first `make build`.
func TestReadmeGoVersion(t *testing.T) {
	root := testutil.RepoRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := modGo.FindSubmatch(mod)
	if want == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := readmeGo.FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md names no Go version (%q)", readmeGo)
	}
	if got := string(m[1]); got != string(want[1]) {
		t.Errorf("README.md requires Go %s, go.mod's go line %s", got, string(want[1]))
	}
}
