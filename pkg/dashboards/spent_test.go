package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/promql/promqltest"

	"github.com/rootuip/sre/pkg/testutil"
)

// The committed "Error budget spent (time equivalent)" panel is the time at
// full outage the errors amount to: a young 30d SLO whose data covers 1296 s
// (coverage 0.0005) with half of its events failing spent 648 s, not half
// of 30 days x its budget extrapolated from those minutes (1,296,000 s, two
// weeks, after a twenty-minute outage of the demo); an SLO as old as its
// 7d period with a quarter of its 0.1% budget spent, 151.2 s.
func TestBudgetSpentPanel(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "dashboards", "executive.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []jsonPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var expr string
	var walk func([]jsonPanel)
	walk = func(ps []jsonPanel) {
		for _, p := range ps {
			if p.Title == "Error budget spent (time equivalent)" && len(p.Targets) == 1 {
				expr = p.Targets[0].Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if expr == "" {
		t.Fatal(`executive.json has no panel "Error budget spent (time equivalent)" with one query`)
	}
	script := `
load 1m
  slo:error_budget_remaining:ratio{service="api", slo="availability", team="platform"} -4999x5
  slo:error_budget:ratio{service="api", slo="availability", team="platform"} 0.0001x5
  slo:period:seconds{service="api", slo="availability", team="platform"} 2592000x5
  sre_slo_data_coverage_ratio{instance="a", service="api", slo="availability"} 0.0005x5
  sre_slo_data_coverage_ratio{instance="b", service="api", slo="availability"} 0.0005x5
  slo:error_budget_remaining:ratio{service="checkout", slo="orders"} 0.75x5
  slo:error_budget:ratio{service="checkout", slo="orders"} 0.001x5
  slo:period:seconds{service="checkout", slo="orders"} 604800x5
  sre_slo_data_coverage_ratio{instance="a", service="checkout", slo="orders"} 1x5

eval instant at 4m ` + expr + `
  {service="api", slo="availability"} 648
  {service="checkout", slo="orders"} 151.2
`
	promqltest.RunTest(t, script, promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery))
}
