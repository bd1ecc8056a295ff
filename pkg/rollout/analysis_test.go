package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
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

// windowQuerier answers 1000 to every instant query and keeps the queries.
type windowQuerier struct {
	mu      sync.Mutex
	queries []string
}

func (q *windowQuerier) Instant(_ context.Context, query string, at time.Time) (model.Vector, error) {
	q.mu.Lock()
	q.queries = append(q.queries, query)
	q.mu.Unlock()
	return model.Vector{{Metric: model.Metric{}, Value: 1000, Timestamp: model.TimeFromUnixNano(at.UnixNano())}}, nil
}

func (q *windowQuerier) Range(context.Context, string, v1.Range) (model.Matrix, error) {
	return nil, nil
}

// A stage is judged over the whole stage, from its start (at least the
// spec's interval): a 10-minute stage is not judged on its last 5 minutes.
func TestSpecAnalyzerJudgesTheStage(t *testing.T) {
	spec, err := analysis.Parse([]byte(`apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: demo
service: demo
interval: 5m
minRequests: 1
`), "demo.yml")
	require.NoError(t, err)
	end := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       string
	}{
		{"10m stage", end.Add(-10 * time.Minute), end, "[10m]"},
		{"stage with a no-data wait", end.Add(-12*time.Minute - 30*time.Second - 400*time.Millisecond), end, "[12m30s]"},
		{"stage shorter than the interval", end.Add(-2 * time.Minute), end, "[5m]"},
		{"no stage bounds", time.Time{}, time.Time{}, "[5m]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &windowQuerier{}
			a := rollout.SpecAnalyzer{Evaluator: analysis.NewEvaluator(q, nil),
				Spec: func(name string) (*analysis.Spec, bool) { return spec, name == spec.Name }}
			v, err := a.Analyze(context.Background(), rollout.AnalysisRequest{Spec: "demo", Service: "demo",
				Canary: map[string]string{"track": "canary"}, Baseline: map[string]string{"track": "stable"}, Start: tc.start, End: tc.end})
			require.NoError(t, err)
			require.NotEmpty(t, v.Result)
			q.mu.Lock()
			defer q.mu.Unlock()
			ranged := 0
			for _, query := range q.queries {
				if strings.Contains(query, "http_request") {
					ranged++
					require.Contains(t, query, tc.want, "query %s", query)
				}
			}
			require.Equal(t, 4, ranged, "queries %q", q.queries)
		})
	}
}
