package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/scaling"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestScalingWired: sred loads the scaling section and the example
// policies, serves them with their state, evaluates the one it scales (on
// a real Prometheus that has no data for it: decision none, counted on
// /metrics) and backtests through the API; the one Kubernetes scales is
// not evaluated. Both backends.
func TestScalingWired(t *testing.T) {
	prom := tu.StartPrometheus(t, tu.PrometheusOptions{Config: "global: {scrape_interval: 1m}\n"})
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			pol := filepath.Join(dir, "scaling")
			require.NoError(t, os.MkdirAll(pol, 0o755))
			for _, f := range []string{"api.yml", "ml-pipeline.yml"} {
				b, err := os.ReadFile(filepath.Join(tu.RepoRoot(t), "examples", "scaling", f))
				require.NoError(t, err)
				b = []byte(strings.Replace(string(b), "interval: 30s", "interval: 1s", 1))
				require.NoError(t, os.WriteFile(filepath.Join(pol, f), b, 0o644))
			}
			cfg := fmt.Sprintf("prometheus: {url: %q}\nscaling:\n  policies: [%q]\n", prom.URL, pol)
			_, srv := runApp(t, backend, cfg, nil)

			var ps []struct {
				Name    string
				Service string
				State   scaling.State
				Target  struct{ Controller string }
			}
			code, env := getJSON(t, srv.URL+"/api/v1/scaling/policies", nil, &ps)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Len(t, ps, 2)
			require.Equal(t, "api", ps[0].Name)
			require.Equal(t, scaling.ControllerKubernetes, ps[0].Target.Controller)
			require.Equal(t, 2, ps[0].State.Instances)
			require.Equal(t, "ml-pipeline", ps[1].Name)
			require.Equal(t, scaling.ControllerSred, ps[1].Target.Controller)
			require.Equal(t, 1, ps[1].State.Instances)

			waitFor(t, func() bool {
				mfs, _ := scrape(t, srv.URL)
				mf := mfs["sre_scaling_decisions_total"]
				if mf == nil {
					return false
				}
				for _, m := range mf.Metric {
					for _, l := range m.Label {
						require.False(t, l.GetName() == "service" && l.GetValue() == "api", "sred evaluated a policy the HPA scales")
					}
				}
				return true
			}, "the controller never evaluated ml-pipeline")

			var bt scaling.BacktestResult
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy=ml-pipeline&from=2m&to=1m", nil, &bt)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, "ml-pipeline", bt.Policy)
			require.Len(t, bt.Points, 61)
			require.True(t, bt.Points[0].NoData)
			require.Zero(t, bt.Actions)

			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy=nope", nil, nil)
			require.Equal(t, http.StatusNotFound, code)
			require.Contains(t, env.Error, `no scaling policy "nope"`)
			// A long policy name or time comes back cut at 64 bytes.
			long := strings.Repeat("n", 5000)
			cut := `"` + strings.Repeat("n", 61) + `…"`
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy="+long, nil, nil)
			require.Equal(t, http.StatusNotFound, code)
			require.Equal(t, "no scaling policy "+cut, env.Error)
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy=ml-pipeline&from="+long, nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, "time "+cut+": want RFC 3339 (2026-12-03T09:00:00Z), a duration before now (6h, 2d) or now", env.Error)
			// No policy is a request to fix, not an unknown policy "".
			for _, q := range []string{"", "?policy=", "?from=2m"} {
				code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest"+q, nil, nil)
				require.Equal(t, http.StatusBadRequest, code, q)
				require.Equal(t, "policy is required: the name of a scaling policy (GET /api/v1/scaling/policies lists them)", env.Error, q)
			}
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy=ml-pipeline&from=yesterday", nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, env.Error, `time "yesterday": want RFC 3339`)
			// A typo or a repeated parameter is a 400, not an answer about
			// every policy or the first one.
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/decisions?polcy=ml-pipeline", nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, env.Error, `unknown parameter "polcy" (want policy, limit)`)
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/backtest?policy=ml-pipeline&policy=api", nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, env.Error, `parameter "policy" given 2 times`)
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/policies?service=api", nil, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, env.Error, `unknown parameter "service" (want none)`)
			// Several bad parameters: the error names the first in sorted
			// order, the same every time (not Go's map order).
			for range 20 {
				code, env = getJSON(t, srv.URL+"/api/v1/scaling/decisions?zeta=1&policy=a&policy=b&alpha=1&mid=1", nil, nil)
				require.Equal(t, http.StatusBadRequest, code)
				require.Contains(t, env.Error, `unknown parameter "alpha" (want policy, limit)`)
			}

			// The console page graphs the backtest.
			resp, err := http.Get(srv.URL + "/scaling?policy=ml-pipeline&from=2m&to=1m")
			require.NoError(t, err)
			page, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
			for _, want := range []string{"ml-pipeline", "(dry run)", `<svg class="chart"`, "Instances of ml-pipeline", "0 actions (0 up, 0 down)", `href="/scaling"`} {
				require.Contains(t, string(page), want)
			}

			var recs []scaling.Record
			code, env = getJSON(t, srv.URL+"/api/v1/scaling/decisions", nil, &recs)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Empty(t, recs)
		})
	}
}

// A policy's http action must call an endpoint of runbooks.http_endpoints.
func TestScalingUndeclaredEndpoint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yml"), []byte(`service: web
target: {action: {http: {endpoint: scaler, path: /scale, method: POST, body: "{{ .Vars.replicas }}"}}}
min_instances: 1
max_instances: 3
metric: {type: cpu}
scale_up: {threshold: 80}
scale_down: {threshold: 20}
`), 0o644))
	cfg := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("prometheus: {url: http://127.0.0.1:9090}\nscaling: {policies: [p.yml]}\n"), 0o644))
	_, err := LoadConfig(cfg)
	require.ErrorContains(t, err, `p.yml:2:36: policy "web": http endpoint "scaler" is not in runbooks.http_endpoints`, "at the endpoint in the policy file")
	require.NoError(t, os.WriteFile(cfg, []byte("scaling: {policies: [p.yml], max_action_per_hour: 3}\n"), 0o644))
	_, err = LoadConfig(cfg)
	require.ErrorContains(t, err, `scaling: unknown field "max_action_per_hour"`)
}
