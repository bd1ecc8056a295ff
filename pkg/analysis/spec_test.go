package analysis

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

func TestExamplesLoad(t *testing.T) {
	specs, err := LoadDir(filepath.Join(testutil.RepoRoot(t), "examples", "rollouts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) == 0 {
		t.Fatal("no analysis spec in examples/rollouts")
	}
	for _, s := range specs {
		names := map[string]bool{}
		for _, c := range s.AllChecks() {
			names[c.Name] = true
			if !c.NoData.valid() {
				t.Errorf("%s: check %s has no no-data policy", s.File, c.Name)
			}
		}
		for _, b := range []string{CheckErrorRate, CheckLatency, CheckHealth, CheckBurnRate} {
			if !names[b] {
				t.Errorf("%s: built-in check %s missing", s.File, b)
			}
		}
	}
}

const head = "apiVersion: sre.rootuip.io/v1\nkind: RolloutAnalysis\nname: x\nservice: api\n"

func TestDefaults(t *testing.T) {
	s, err := Parse([]byte(head), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	if s.MinRequests != DefaultMinRequests || s.Interval.String() != "5m" {
		t.Errorf("minRequests %v interval %v, want 100 and 5m", s.MinRequests, s.Interval)
	}
	cs := s.AllChecks()
	want := []struct {
		name   string
		noData NoData
		bound  string
	}{
		{CheckErrorRate, NoDataInconclusive, "<= 0.05"},
		{CheckLatency, NoDataInconclusive, "canary/baseline <= 2"},
		{CheckHealth, NoDataFail, ">= 1"},
		{CheckBurnRate, NoDataInconclusive, "<= 14.4"},
	}
	if len(cs) != len(want) {
		t.Fatalf("%d checks, want %d", len(cs), len(want))
	}
	for i, w := range want {
		if cs[i].Name != w.name || cs[i].NoData != w.noData || threshold(cs[i]) != w.bound {
			t.Errorf("check %d = %s noData %s %q, want %s %s %q", i, cs[i].Name, cs[i].NoData, threshold(cs[i]), w.name, w.noData, w.bound)
		}
	}
	if *cs[2].MinRequests != 0 {
		t.Errorf("health check needs traffic %v, want 0", *cs[2].MinRequests)
	}
}

func TestBadSpecs(t *testing.T) {
	tests := []struct{ name, yaml, err string }{
		{"unknown field", head + "foo: 1\n", `x.yml:5:1: unknown field "foo"`},
		{"wrong kind", strings.Replace(head, "RolloutAnalysis", "Rollout", 1), `kind must be "RolloutAnalysis", got "Rollout"`},
		{"no service", strings.Replace(head, "service: api\n", "", 1), "service is required"},
		{"service not a name", strings.Replace(head, "service: api\n", "service: 'api\"} or vector(1) or up{x=\"'\n", 1), `service "api\"} or vector(1) or up{x=\"" must be a service name`},
		{"zero traffic allowed", head + "minRequests: 0.5\n", "minRequests 0.5 must be at least 1: a canary that served no requests is never promoted"},
		{"no noData", head + "checks:\n- name: c\n  type: threshold\n  query: up\n  max: 1\n", `check "c": noData is required: fail, pass or inconclusive`},
		{"bad noData", head + "checks:\n- name: c\n  type: threshold\n  query: up\n  max: 1\n  noData: skip\n", `noData "skip" must be fail, pass or inconclusive`},
		{"threshold without bound", head + "checks:\n- name: c\n  type: threshold\n  query: up\n  noData: fail\n", "a threshold check needs min or max"},
		{"compare with max", head + "checks:\n- name: c\n  type: compare\n  query: up\n  max: 2\n  noData: fail\n", "a compare check needs maxRatio or minRatio"},
		{"bad promql", head + "checks:\n- name: c\n  type: threshold\n  query: 'rate(x{ {{.Selector}} }'\n  max: 1\n  noData: fail\n", "is not valid PromQL once rendered"},
		{"braces", head + "checks:\n- name: c\n  type: threshold\n  query: 'x{{{.Selector}}}'\n  max: 1\n  noData: fail\n", `check "c": query: template: c:1:`},
		{"unknown template field", head + "checks:\n- name: c\n  type: threshold\n  query: 'x{ {{.Version}} }'\n  max: 1\n  noData: fail\n", "the template data has no field Version"},
		{"range", head + "checks:\n- name: c\n  type: threshold\n  query: '{{range 1000000000}}{{end}}up'\n  max: 1\n  noData: fail\n", "range is not allowed"},
		{"huge query", head + "checks:\n- name: c\n  type: threshold\n  query: 'up{{if true}}{{printf \"%099999d\" 0}}{{end}}'\n  max: 1\n  noData: fail\n", "rendered query longer than 65536 bytes"},
		{"p band", head + "checks:\n- name: c\n  type: mannWhitney\n  query: x\n  failPValue: 0.1\n  inconclusivePValue: 0.05\n  noData: fail\n", "must satisfy 0 < failPValue <= inconclusivePValue < 1"},
		{"duplicate builtin", head + "checks:\n- name: latency\n  type: threshold\n  query: x\n  max: 1\n  noData: fail\n", `name "latency" is used twice`},
		{"health max", head + "rollbackTriggers:\n  healthChecks: {max: 2}\n", "rollbackTriggers.healthChecks takes no max"},
		{"all disabled", head + "rollbackTriggers:\n  errorRate: {enabled: false}\n  latencyIncrease: {enabled: false}\n  healthChecks: {enabled: false}\n  burnRate: {enabled: false}\n", "every check is disabled"},
		{"null document", "~\n", `x.yml: not an analysis spec: want a mapping with apiVersion "sre.rootuip.io/v1" and kind "RolloutAnalysis"`},
		{"two documents", head + "---\n" + head, "one analysis spec per file"},
		// A syntax error is positioned file:line:col, as in sred.yml.
		{"bracket left open", head + "checks: [{name: c}\nfoo: 1\n", `x.yml:5:9: invalid YAML: "[" opened here is not closed before line 6`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yml")
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "analysis.") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}
