package collector

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

type runsAutomation struct {
	coverage, run, toil float64
	ok                  bool
}

func (f runsAutomation) AutomationRatios(context.Context) (float64, float64, bool, error) {
	panic("an AutomationRuns source is read through AutomationRunRatios only")
}

func (f runsAutomation) AutomationRunRatios(context.Context) (float64, float64, float64, bool, error) {
	return f.coverage, f.run, f.toil, f.ok, nil
}

// A source that also knows the runs adds sre_automation_run_ratio, from
// the same read; with nothing to report, none of the three is exported.
func TestAutomationRunsSource(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		c := newCollector(t, db, Options{Automation: runsAutomation{0.5, 0.75, 0.25, true}})
		want := `
# HELP sre_automation_coverage_ratio Share of incidents mitigated by automation.
# TYPE sre_automation_coverage_ratio gauge
sre_automation_coverage_ratio 0.5
# HELP sre_automation_run_ratio Share of incidents where a runbook ran (dry-runs excluded), whether or not it mitigated them.
# TYPE sre_automation_run_ratio gauge
sre_automation_run_ratio 0.75
# HELP sre_toil_ratio Share of resolved incidents resolved by hand (no automation mitigated them).
# TYPE sre_toil_ratio gauge
sre_toil_ratio 0.25
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricAutomationCoverage, MetricAutomationRun, MetricToil); err != nil {
			t.Fatal(err)
		}
		empty := newCollector(t, db, Options{Automation: runsAutomation{}})
		if n := testutil.CollectAndCount(empty, MetricAutomationCoverage, MetricAutomationRun, MetricToil); n != 0 {
			t.Fatalf("%d automation samples with nothing to report", n)
		}
	})
}
