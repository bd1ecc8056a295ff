package rollout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/testutil"
)

// SpecAnalyzer tells a fail that comes only from no-data policies (a
// canary Prometheus has no series of: the health check's noData: fail)
// from one on measured data (a canary that is down, up 0), as the runner
// holds the first and rolls back at the second.
func TestSpecAnalyzerNoData(t *testing.T) {
	// A target nothing listens on: scraped, up 0.
	down := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	promProc := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global: {scrape_interval: 1s}\nscrape_configs:\n" +
		"  - job_name: demo\n    static_configs:\n      - {targets: ['" + down + "'], labels: {scenario: down, track: canary}}\n"})
	prom, err := budget.NewProm(promProc.URL, commoncfg.HTTPClientConfig{}, 10*time.Second)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := prom.Instant(context.Background(), `up{scenario="down"}`, time.Time{})
		return err == nil && len(v) == 1
	}, 2*time.Minute, 100*time.Millisecond, "Prometheus scrapes the down target")

	spec, err := analysis.Parse([]byte(proofAnalysis), "demo-analysis.yml")
	require.NoError(t, err)
	a := rollout.SpecAnalyzer{Evaluator: analysis.NewEvaluator(prom, nil),
		Spec: func(name string) (*analysis.Spec, bool) { return spec, name == spec.Name }}
	for _, tc := range []struct {
		scenario string
		noData   bool
	}{
		{"unscraped", true},
		{"down", false},
	} {
		v, err := a.Analyze(context.Background(), rollout.AnalysisRequest{Spec: "demo", Service: "demo",
			Canary: map[string]string{"scenario": tc.scenario, "track": "canary"}, Baseline: map[string]string{"scenario": tc.scenario, "track": "stable"}})
		require.NoError(t, err)
		require.Equal(t, rollout.VerdictFail, v.Result, "%s: %s", tc.scenario, v.Reason)
		require.Equal(t, tc.noData, v.NoData, "%s: %s", tc.scenario, v.Reason)
	}
}
