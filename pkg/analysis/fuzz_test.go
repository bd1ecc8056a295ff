package analysis

import (
	"os"
	"testing"
)

// FuzzParse: no input makes the loader panic, and what it accepts has at
// least one check, each with a no-data policy, and a traffic minimum of 1
// or more (go test -fuzz FuzzParse ./pkg/analysis).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../examples/rollouts/api.yml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(head))
	f.Add([]byte(head + "checks:\n- name: c\n  type: mannWhitney\n  query: x{ {{.Selector}} }\n  noData: pass\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yml")
		if err != nil {
			return
		}
		if len(s.AllChecks()) == 0 || s.MinRequests < 1 {
			t.Fatalf("accepted a spec with %d checks and minRequests %v", len(s.AllChecks()), s.MinRequests)
		}
		for _, c := range s.AllChecks() {
			if !c.NoData.valid() {
				t.Fatalf("check %s without a no-data policy", c.Name)
			}
		}
	})
}

func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{"job=api,track=canary", `pod="a,b",x=1`, `a="`, "=", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParseLabels(s)
		if err == nil && ls == nil {
			t.Fatal("nil map without error")
		}
	})
}
