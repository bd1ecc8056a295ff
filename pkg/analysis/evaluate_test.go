package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/slo"
)

// A canary track of the api service: its requests per minute, errors per
// minute, requests per minute slower than 100ms (all are under 500ms) and
// whether it is up.
type track struct {
	name                 string
	reqs, errs, slowReqs float64
	up                   float64
}

var tracks = []track{
	{"stable", 600, 6, 0, 1}, // the baseline: 1% errors
	{"good", 60, 0.6, 0, 1},  // same error ratio and latency as stable
	{"bad", 60, 6, 0, 1},     // 10% errors
	{"slow", 60, 0, 30, 1},   // half the requests between 100ms and 500ms
	{"idle", 0, 0, 0, 1},     // no traffic at all
	{"down", 60, 0, 0, 0},    // serves, but its health check fails
}

// p90 gauges for the Mann-Whitney checks, in milliseconds (whole numbers,
// so that the backfilled values are exact): the baseline cycles through
// 100..160 with the minute; the canaries are shifted.
func p90(shift float64) func(minute int64) float64 {
	return func(m int64) float64 { return 100 + 10*float64(m%7) + shift }
}

var p90Tracks = map[string]func(int64) float64{
	"stable": p90(0), "good": p90(0), "slightly": p90(10), "slow": p90(20),
}

const sloSpec = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]s
slos:
  - name: availability
    objective: %[2]s
    period: 7d
    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

func startProm(t *testing.T) (*budget.Prom, time.Time) {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	start := end.Add(-3 * time.Hour)
	var specs []*slo.Spec
	for _, s := range [][2]string{{"api", "99"}, {"fragile", "99.9"}, {"calm", "99"}} {
		sp, err := slo.Parse([]byte(fmt.Sprintf(sloSpec, s[0], s[1])), s[0]+".yml")
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp...)
	}
	constant := func(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }
	var series []budgettest.Series
	add := func(metric string, l map[string]string, initial float64, inc func(time.Time) float64) {
		series = append(series, budgettest.Series{Metric: metric, Labels: l, Start: start, Initial: initial, Inc: inc})
	}
	for _, tr := range tracks {
		l := func(kv ...string) map[string]string {
			m := map[string]string{"job": "api", "track": tr.name}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		add("http_requests_total", l("code", "200"), 1e6, constant(tr.reqs-tr.errs))
		add("http_requests_total", l("code", "500"), 1e6, constant(tr.errs))
		add("http_request_duration_seconds_bucket", l("le", "0.1"), 1e6, constant(tr.reqs-tr.slowReqs))
		add("http_request_duration_seconds_bucket", l("le", "0.5"), 1e6, constant(tr.reqs))
		add("http_request_duration_seconds_bucket", l("le", "+Inf"), 1e6, constant(tr.reqs))
		add("up", l(), tr.up, constant(0))
	}
	// fragile: 5% errors against a 0.1% budget, a burn rate of 50.
	add("http_requests_total", map[string]string{"job": "fragile", "code": "200"}, 1e6, constant(95))
	add("http_requests_total", map[string]string{"job": "fragile", "code": "500"}, 1e6, constant(5))
	// calm: no errors, its budget is whole (the gate allows it).
	add("http_requests_total", map[string]string{"job": "calm", "code": "200"}, 1e6, constant(100))
	add("http_requests_total", map[string]string{"job": "calm", "code": "500"}, 1e6, constant(0))
	for name, f := range p90Tracks {
		f := f
		add("latency_p90_ms", map[string]string{"job": "api", "track": name}, f(start.Unix()/60),
			func(ts time.Time) float64 { m := ts.Unix() / 60; return f(m) - f(m-1) })
	}
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end})
	prom, err := budget.NewProm(srv.URL, commoncfg.HTTPClientConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return prom, end
}

const analysisSpec = `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: api
service: api
`

func parse(t *testing.T, y string) *Spec {
	t.Helper()
	s, err := Parse([]byte(y), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func canary(name string) Target {
	return Target{Canary: map[string]string{"job": "api", "track": name}, Baseline: map[string]string{"job": "api", "track": "stable"}}
}

// TestEvaluateWithPrometheus runs analyses against a real Prometheus
// holding canaries of known behaviour and the SLO recording rules.
func TestEvaluateWithPrometheus(t *testing.T) {
	prom, end := startProm(t)
	reg := prometheus.NewRegistry()
	ev := NewEvaluator(prom, NewMetrics(reg))
	ctx := context.Background()
	def := parse(t, analysisSpec)

	type want struct {
		verdict Verdict
		checks  map[string]Verdict
		values  map[string]float64 // check -> value
	}
	// Latency: the stable p99 is in the first bucket, 0.1 x 0.99 = 0.099;
	// the slow canary's is 0.1 + 0.4 x (0.99-0.5)/0.5 = 0.492, 4.97 times it.
	// Burn rate of api: 12.6 errors in 840 requests a minute over all
	// tracks, 0.015 / 0.01 = 1.5.
	tests := []struct {
		name string
		t    Target
		want want
	}{
		{"good canary promoted", canary("good"), want{Pass,
			map[string]Verdict{CheckErrorRate: Pass, CheckLatency: Pass, CheckHealth: Pass, CheckBurnRate: Pass},
			map[string]float64{CheckErrorRate: 0.01, CheckLatency: 1, CheckHealth: 1, CheckBurnRate: 1.5}}},
		{"10% errors rolled back", canary("bad"), want{Fail,
			map[string]Verdict{CheckErrorRate: Fail, CheckLatency: Pass, CheckHealth: Pass, CheckBurnRate: Pass},
			map[string]float64{CheckErrorRate: 0.1}}},
		{"latency doubled rolled back", canary("slow"), want{Fail,
			map[string]Verdict{CheckErrorRate: Pass, CheckLatency: Fail, CheckHealth: Pass},
			map[string]float64{CheckErrorRate: 0, CheckLatency: 0.492 / 0.099}}},
		{"no traffic never promoted", canary("idle"), want{Inconclusive,
			map[string]Verdict{CheckErrorRate: Inconclusive, CheckLatency: Inconclusive, CheckHealth: Pass, CheckBurnRate: Inconclusive},
			map[string]float64{CheckHealth: 1}}},
		{"health check failing", canary("down"), want{Fail,
			map[string]Verdict{CheckHealth: Fail, CheckErrorRate: Pass},
			map[string]float64{CheckHealth: 0}}},
		{"burning service", Target{Service: "fragile", Canary: canary("good").Canary, Baseline: canary("good").Baseline}, want{Fail,
			map[string]Verdict{CheckBurnRate: Fail, CheckErrorRate: Pass},
			map[string]float64{CheckBurnRate: 50}}},
		{"service without SLO", Target{Service: "ghost", Canary: canary("good").Canary, Baseline: canary("good").Baseline}, want{Inconclusive,
			map[string]Verdict{CheckBurnRate: Inconclusive, CheckErrorRate: Pass}, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ev.Evaluate(ctx, def, tc.t, end)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want.verdict || res.Pass != (tc.want.verdict == Pass) {
				t.Errorf("verdict %s (pass %v), want %s: %s", res.Verdict, res.Pass, tc.want.verdict, res.Reason)
			}
			got := map[string]CheckResult{}
			for _, c := range res.Checks {
				got[c.Name] = c
			}
			for name, v := range tc.want.checks {
				if got[name].Verdict != v {
					t.Errorf("check %s: %s (%s), want %s", name, got[name].Verdict, got[name].Reason, v)
				}
			}
			for name, v := range tc.want.values {
				c := got[name]
				if c.Value == nil || math.Abs(*c.Value-v) > 1e-6*math.Max(1, math.Abs(v)) {
					t.Errorf("check %s: value %v, want %v (%s)", name, c.Value, v, c.Reason)
				}
			}
		})
	}

	t.Run("traffic", func(t *testing.T) {
		res, err := ev.Evaluate(ctx, def, canary("good"), end)
		if err != nil {
			t.Fatal(err)
		}
		// 60 requests a minute, increase() over 5m extrapolated to the window.
		if math.Abs(res.Requests-300) > 1e-6 {
			t.Errorf("requests %v, want 300", res.Requests)
		}
		res, err = ev.Evaluate(ctx, def, canary("idle"), end)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 0 || !strings.Contains(res.Reason, "canary served 0 requests over 5m, fewer than the 100 required: not promoted") {
			t.Errorf("idle canary: requests %v reason %q", res.Requests, res.Reason)
		}
	})

	t.Run("no-data policies", func(t *testing.T) {
		for _, p := range []NoData{NoDataPass, NoDataFail, NoDataInconclusive} {
			s := parse(t, analysisSpec+`minRequests: 1
rollbackTriggers:
  errorRate: {enabled: false}
  latencyIncrease: {enabled: false}
  healthChecks: {enabled: false}
  burnRate: {enabled: false}
checks:
  - name: missing
    type: threshold
    query: sum(no_such_metric{ {{.Selector}} })
    max: 1
    noData: `+string(p)+"\n")
			res, err := ev.Evaluate(ctx, s, canary("good"), end)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Checks[0]
			if res.Verdict != p.Verdict() || c.Verdict != p.Verdict() || !c.NoData {
				t.Errorf("noData %s: verdict %s, check %s (noData %v)", p, res.Verdict, c.Verdict, c.NoData)
			}
			if c.Query != `sum(no_such_metric{ job="api",track="good" })` {
				t.Errorf("query %q", c.Query)
			}
		}
	})

	t.Run("compare tolerance", func(t *testing.T) {
		// The slow canary has no errors, the stable 1%: a lower error ratio
		// passes maxRatio; against a baseline of 0 any ratio is infinite,
		// and only the tolerance lets a tiny difference pass.
		for _, tc := range []struct {
			canary, baseline string
			tolerance        float64
			want             Verdict
		}{
			{"slow", "stable", 0, Pass},
			{"good", "slow", 0, Fail},
			{"good", "slow", 0.02, Pass},
		} {
			s := parse(t, analysisSpec+fmt.Sprintf(`rollbackTriggers:
  errorRate: {enabled: false}
  latencyIncrease: {enabled: false}
  healthChecks: {enabled: false}
  burnRate: {enabled: false}
checks:
  - name: errors
    type: compare
    query: sum(rate(http_requests_total{ {{.Selector}},code="500" }[{{.Interval}}])) / sum(rate(http_requests_total{ {{.Selector}} }[{{.Interval}}]))
    maxRatio: 1.5
    tolerance: %v
    noData: fail
`, tc.tolerance))
			tg := Target{Canary: canary(tc.canary).Canary, Baseline: canary(tc.baseline).Canary}
			res, err := ev.Evaluate(ctx, s, tg, end)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.want {
				t.Errorf("%s vs %s tolerance %v: %s, want %s: %s", tc.canary, tc.baseline, tc.tolerance, res.Verdict, tc.want, res.Reason)
			}
		}
	})

	t.Run("mann-whitney", func(t *testing.T) {
		s := parse(t, analysisSpec+`rollbackTriggers:
  errorRate: {enabled: false}
  latencyIncrease: {enabled: false}
  healthChecks: {enabled: false}
  burnRate: {enabled: false}
checks:
  - name: p90
    type: mannWhitney
    query: max(latency_p90_ms{ {{.Selector}} })
    lookback: 30m
    step: 1m
    noData: inconclusive
`)
		// Each side has the 31 values of the minutes end-30m .. end.
		sample := func(f func(int64) float64) []float64 {
			var out []float64
			for m := end.Add(-30*time.Minute).Unix() / 60; m <= end.Unix()/60; m++ {
				out = append(out, f(m))
			}
			return out
		}
		for _, tc := range []struct {
			canary string
			want   Verdict
		}{
			{"good", Pass},             // same distribution
			{"slightly", Inconclusive}, // +10ms: p between 0.01 and 0.05
			{"slow", Fail},             // +20ms: p below 0.01
			{"idle", Inconclusive},     // no samples: noData inconclusive
		} {
			res, err := ev.Evaluate(ctx, s, canary(tc.canary), end)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Checks[0]
			if c.Verdict != tc.want {
				t.Errorf("%s: %s, want %s: %s", tc.canary, c.Verdict, tc.want, c.Reason)
			}
			f, ok := p90Tracks[tc.canary]
			if !ok {
				continue
			}
			u := MannWhitneyU(sample(f), sample(p90Tracks["stable"]), Greater)
			if c.Value == nil || *c.Value != u.P {
				t.Errorf("%s: p-value %v, want %v", tc.canary, c.Value, u.P)
			}
		}
	})

	t.Run("target errors", func(t *testing.T) {
		for _, tc := range []struct {
			t   Target
			err string
		}{
			{Target{}, "target: canary labels are required (the label set selecting the canary's series)"},
			{Target{Canary: map[string]string{"track": "good"}}, `target: check "latency" compares with the baseline: baseline labels are required`},
			{Target{Canary: map[string]string{"bad-name": "x"}, Baseline: map[string]string{"a": "b"}}, `target: canary label name "bad-name" is not a valid Prometheus label name`},
		} {
			_, err := ev.Evaluate(ctx, def, tc.t, end)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		}
	})

	t.Run("argo rollouts web provider", func(t *testing.T) { testArgoWebProvider(t, ev, end) })
	t.Run("flagger webhooks", func(t *testing.T) { testFlaggerWebhooks(t, prom, ev, end) })

	t.Run("generated templates", func(t *testing.T) {
		// The queries `srectl generate --argo-rollouts/--flagger` writes read
		// the generated recordings: api burns at 1.5 (passes 14.4), fragile
		// at 50 (fails), calm at 0.
		var specs []*slo.Spec
		for _, s := range [][2]string{{"api", "99"}, {"fragile", "99.9"}, {"calm", "99"}} {
			sp, err := slo.Parse([]byte(fmt.Sprintf(sloSpec, s[0], s[1])), s[0]+".yml")
			if err != nil {
				t.Fatal(err)
			}
			specs = append(specs, sp...)
		}
		want := map[string]float64{"api": 1.5, "fragile": 50, "calm": 0}
		checks := SLOChecks(specs)
		if len(checks) != 3 {
			t.Fatalf("%d checks", len(checks))
		}
		for _, c := range checks {
			vec, err := prom.Instant(ctx, c.Query, end)
			if err != nil {
				t.Fatal(err)
			}
			if len(vec) != 1 || math.Abs(float64(vec[0].Value)-want[c.Service]) > 1e-6 {
				t.Errorf("%s: %s = %v, want %v", c.Service, c.Query, vec, want[c.Service])
				continue
			}
			if pass := float64(vec[0].Value) <= c.Max; pass != (c.Service != "fragile") {
				t.Errorf("%s: burn rate %v against max %v: pass %v", c.Service, vec[0].Value, c.Max, pass)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		if n := testutil.ToFloat64(ev.metrics.runs.WithLabelValues("api", "fail")); n < 3 {
			t.Errorf("sre_analysis_runs_total{service=api,verdict=fail} = %v, want at least 3", n)
		}
	})
}
