package rollout

import (
	"errors"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestBadDefinitionPositions: the checks of a rollout definition read
// "file:line:col: msg" at the node the message names (the stage whose
// weight is out of range, the bad template, the bad name or label), as
// sred.yml's do (golden files testdata/bad/*.golden; -update rewrites
// them).
func TestBadDefinitionPositions(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load([]string{f}, nil)
			if err == nil {
				t.Fatal("loaded without error")
			}
			checkGolden(t, strings.TrimSuffix(f, ".yml")+".golden", err)
			if !regexp.MustCompile(`^rollouts: ` + regexp.QuoteMeta(f) + `:\d+:\d+: `).MatchString(err.Error()) {
				t.Fatalf("error %q is not positioned in %s", err, f)
			}
		})
	}
}

// TestDuplicateDefinitionPosition: a name used twice is positioned at the
// name of the second file.
func TestDuplicateDefinitionPosition(t *testing.T) {
	_, err := Load([]string{"testdata/dup"}, nil)
	if err == nil {
		t.Fatal("loaded without error")
	}
	checkGolden(t, "testdata/dup.golden", err)
}

// TestDefinitionLocate: a check made after loading (an analysis spec, an
// endpoint that does not exist) is placed at the value it names; a
// message naming nothing of the file keeps the file alone.
func TestDefinitionLocate(t *testing.T) {
	d, err := Parse([]byte("name: api-canary\nservice: api\nenvironment: staging\nanalysis:\n  spec: api\n  canary: {track: canary}\ncanary:\n  stages:\n    - {weight: 100}\n  set_weight:\n    http: {endpoint: canary-proxy, method: PUT, path: /w}\n"), "r.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ err, want string }{
		{`rollout "api-canary": analysis.spec: spec "api" is not loaded (analysis.spec_files)`, `r.yml:5:9: rollout "api-canary": analysis.spec: spec "api" is not loaded (analysis.spec_files)`},
		{`rollout "api-canary": http endpoint "canary-proxy" is not in runbooks.http_endpoints`, `r.yml:11:22: rollout "api-canary": http endpoint "canary-proxy" is not in runbooks.http_endpoints`},
		{"the stage runner is off", "r.yml: the stage runner is off"},
	} {
		got := d.Locate(errors.New(tc.err))
		if got.Error() != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if d.Locate(nil) != nil {
		t.Error("Locate(nil) is not nil")
	}
}

func checkGolden(t *testing.T, golden string, err error) {
	t.Helper()
	testutil.ErrorGolden(t, golden, *update, err)
}
