package jobs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/dashboards"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestSelfMonitoringRules: the shipped self-monitoring alerts of sred
// (examples/sred.rules.yml) pass `promtool check rules` and their unit tests
// (`promtool test rules`), and every sre_ metric they read is one sred
// exports (catalogued in docs/metrics.md, which TestMetricsCatalogueCurrent
// keeps honest).
func TestSelfMonitoringRules(t *testing.T) {
	root := testutil.RepoRoot(t)
	promtool := testutil.Tool(t, "promtool")
	rules := filepath.Join(root, "examples", "sred.rules.yml")
	tests := filepath.Join(root, "examples", "tests", "sred.rules.test.yml")
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", tests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}

	f, err := os.Open(filepath.Join(root, "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	cat, err := dashboards.ParseCatalogue(f)
	require.NoError(t, err)
	series := cat.Series() // a histogram's _bucket, _sum and _count too
	promql := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(rules, false, model.UTF8Validation, promql, promslog.NewNopLogger())
	require.Empty(t, errs)
	seen := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := promql.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			for _, vs := range parser.ExtractSelectors(expr) {
				for _, m := range vs {
					if m.Name != "__name__" || m.Value == "up" {
						continue
					}
					ok := series[m.Value]
					require.True(t, ok, "%s reads %s, which sred does not export", r.Alert, m.Value)
					seen++
				}
			}
		}
	}
	require.GreaterOrEqual(t, seen, 6)
}
