package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/analysis"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// The analysis of the proof: the built-in error-rate trigger (5%), the
// health check and a minimum of canary traffic, over the last 2 minutes.
const proofAnalysis = `apiVersion: sre.rootuip.io/v1
kind: RolloutAnalysis
name: demo
service: demo
interval: 2m
minRequests: 100
queries:
  requests: sum(increase(http_requests_total{ {{.Selector}},handler="/api/work" }[{{.Interval}}]))
  errors: sum(increase(http_requests_total{ {{.Selector}},handler="/api/work",code=~"5.." }[{{.Interval}}]))
  health: min(up{ {{.Selector}} })
rollbackTriggers:
  errorRate: {max: 0.05, noData: inconclusive}
  healthChecks: {noData: fail}
  latencyIncrease: {enabled: false}
  burnRate: {enabled: false}
`

const proofSLO = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: demo
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: http_requests_total{job="demo",code=~"5.."}
        totalSelector: http_requests_total{job="demo"}
`

const proofDefinition = `name: demo-%[1]s
service: demo
environment: proof-%[1]s
analysis:
  spec: demo
  canary: {scenario: %[1]s, track: canary}
  baseline: {scenario: %[1]s, track: stable}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 50, duration: 5m}
    - {weight: 100}
  set_weight:
    timeout: 10s
    http: {endpoint: proxy-%[1]s, method: PUT, path: /admin/weight, body: '{"canary": {{ .Vars.weight }}}'}
`

// scenario is one pair of demo services (stable v1, canary v2) behind a
// weighted proxy (examples/weighted-proxy).
type scenario struct {
	name           string
	stable, canary *testutil.Process
	proxy          *testutil.Process
}

type proof struct {
	t         *testing.T
	scenarios map[string]*scenario
	prom      *budget.Prom
	clock     *clock.Manual
	svc       *rollout.Service
}

func build(t *testing.T, root, pkg string) string {
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, pkg)).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func startDemo(t *testing.T, bin string, args ...string) *testutil.Process {
	port := strconv.Itoa(testutil.FreePort(t))
	return testutil.StartProcess(t, "demo-service", bin, append([]string{"--web.listen-address=127.0.0.1:" + port, "--traffic.rps=0"}, args...),
		t.TempDir(), "http://127.0.0.1:"+port, "/-/ready")
}

func newProof(t *testing.T) *proof {
	root := testutil.RepoRoot(t)
	demoBin := build(t, root, "examples/demo-service")
	proxyBin := build(t, root, "examples/weighted-proxy")
	p := &proof{t: t, scenarios: map[string]*scenario{}}
	scrape := "global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: demo\n    static_configs:\n"
	rcfg := runbook.DefaultConfig
	rcfg.HTTPEndpoints = map[string]runbook.HTTPEndpoint{}
	var defs []*rollout.Definition
	for _, name := range []string{"good", "bad", "idle"} {
		s := &scenario{name: name, stable: startDemo(t, demoBin)}
		if name == "bad" {
			s.canary = startDemo(t, demoBin, "--errors.rate=0.1") // 10% of its requests fail
		} else {
			s.canary = startDemo(t, demoBin)
		}
		port := strconv.Itoa(testutil.FreePort(t))
		s.proxy = testutil.StartProcess(t, "weighted-proxy", proxyBin, []string{"--web.listen-address=127.0.0.1:" + port,
			"--stable.url=" + s.stable.URL, "--canary.url=" + s.canary.URL}, t.TempDir(), "http://127.0.0.1:"+port, "/-/ready")
		p.scenarios[name] = s
		for track, proc := range map[string]*testutil.Process{"stable": s.stable, "canary": s.canary} {
			scrape += fmt.Sprintf("      - {targets: ['%s'], labels: {scenario: %s, track: %s}}\n", strings.TrimPrefix(proc.URL, "http://"), name, track)
		}
		rcfg.HTTPEndpoints["proxy-"+name] = runbook.HTTPEndpoint{URL: s.proxy.URL, HTTPConfig: commoncfg.DefaultHTTPClientConfig}
		d, err := rollout.Parse(fmt.Appendf(nil, proofDefinition, name), name+".yml")
		require.NoError(t, err)
		defs = append(defs, d)
	}
	promProc := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: scrape})
	var err error
	p.prom, err = budget.NewProm(promProc.URL, commoncfg.HTTPClientConfig{}, 10*time.Second)
	require.NoError(t, err)

	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, jobs.Migrations, targetlock.Migrations, budget.Migrations, rollout.Migrations))

	// The real deploy gate, on the demo's SLO (no recording rules here: no
	// data, which the gate's default policy allows, and says so).
	specs, err := slo.Parse([]byte(proofSLO), "demo.yml")
	require.NoError(t, err)
	budgets := budget.New(budget.Options{DB: db})
	require.NoError(t, budgets.Update(budget.DefaultConfig, specs, p.prom, nil))

	spec, err := analysis.Parse([]byte(proofAnalysis), "demo-analysis.yml")
	require.NoError(t, err)
	act, err := runbook.NewActuator(rcfg, nil, nil)
	require.NoError(t, err)
	// The runner's timers run on a manual clock; Prometheus is queried at
	// its own (wall) time, once the test has waited for what it must see.
	p.clock = clock.NewManual(time.Now())
	p.svc = rollout.New(rollout.Options{DB: db, Clock: p.clock, Actuator: act, Gate: rollout.BudgetGate{Budgets: budgets},
		Analyzer: rollout.SpecAnalyzer{Evaluator: analysis.NewEvaluator(p.prom, nil),
			Spec: func(name string) (*analysis.Spec, bool) { return spec, name == spec.Name }}})
	require.NoError(t, p.svc.ApplyConfig(rollout.DefaultConfig, defs))
	return p
}

// load sends requests through the scenario's proxy until the test ends or
// stop is called; it returns the number of answers so far.
func (p *proof) load(s *scenario) (stop func(), answered *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	answered = &atomic.Int64{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.proxy.URL+"/api/work", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered.Add(1)
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	p.t.Cleanup(stop)
	return stop, answered
}

// value is the single sample of an instant query (0 without one).
func (p *proof) value(q string) (float64, bool) {
	v, err := p.prom.Instant(context.Background(), q, time.Time{})
	if err != nil || len(v) == 0 {
		return 0, false
	}
	return float64(v[0].Value), true
}

// waitProm waits until Prometheus answers q with a sample that ok accepts
// (scrapes are every second; the deadline is a safety net).
func (p *proof) waitProm(what, q string, ok func(float64) bool) float64 {
	p.t.Helper()
	var last float64
	require.Eventually(p.t, func() bool {
		v, found := p.value(q)
		last = v
		return found && ok(v)
	}, 2*time.Minute, 100*time.Millisecond, "Prometheus: %s (%s, last %v)", what, q, last)
	return last
}

func (p *proof) weight(s *scenario) int {
	resp, err := http.Get(s.proxy.URL + "/admin/weight")
	require.NoError(p.t, err)
	defer resp.Body.Close()
	var st struct{ Canary int }
	require.NoError(p.t, json.NewDecoder(resp.Body).Decode(&st))
	return st.Canary
}

func (p *proof) run() {
	p.t.Helper()
	_, err := p.svc.RunDue(context.Background())
	require.NoError(p.t, err)
}

func (p *proof) get(id int64) *rollout.Rollout {
	ro, err := p.svc.Get(context.Background(), id)
	require.NoError(p.t, err)
	return ro
}

func (p *proof) start(name string) *rollout.Rollout {
	ro, err := p.svc.Start(context.Background(), rollout.StartRequest{Name: "demo-" + name, Version: "v2", Stable: "v1", Actor: "proof"})
	require.NoError(p.t, err)
	require.Equal(p.t, rollout.StateRunning, ro.State, ro.Reason)
	require.Contains(p.t, ro.Events[1].Message, `deploy gate allowed: no SLO of service "demo" has data yet`)
	return ro
}

func canaryQ(name, what string) string {
	sel := fmt.Sprintf(`scenario=%q,track="canary",handler="/api/work"`, name)
	if what == "total" {
		return "sum(http_requests_total{" + sel + "})"
	}
	return "sum(increase(http_requests_total{" + sel + "}[2m]))"
}

func analyses(ro *rollout.Rollout) []string {
	var out []string
	for _, e := range ro.Events {
		if e.Kind == "analysis" {
			out = append(out, e.Stage+":"+e.Status)
		}
	}
	return out
}

// TestCanaryProof is the proof of the stage runner: two versions of the
// demo service on 127.0.0.1 behind the weighted proxy the runner drives,
// with a real Prometheus scraping both and the real analysis engine
// judging each stage. A good version is promoted stage by stage; a
// version with 10% errors is rolled back at the first analysis; a canary
// that receives no traffic is paused, not promoted.
func TestCanaryProof(t *testing.T) {
	p := newProof(t)
	for name := range p.scenarios {
		p.waitProm("both versions of "+name+" scraped", fmt.Sprintf(`count(up{scenario=%q} == 1)`, name), func(v float64) bool { return v == 2 })
	}

	t.Run("good version promoted stage by stage", func(t *testing.T) {
		p.t = t
		s := p.scenarios["good"]
		stop, _ := p.load(s)
		defer stop()
		ro := p.start("good")
		p.run()
		require.Equal(t, 10, p.weight(s))
		// Enough canary traffic in the analysis window (the analysis
		// needs 100 requests).
		p.waitProm("canary traffic at 10%", canaryQ("good", "window"), func(v float64) bool { return v >= 150 })
		p.clock.Advance(5 * time.Minute)
		p.run()
		ro = p.get(ro.ID)
		require.Equal(t, "weight-50", ro.Stages[ro.Stage].Name, ro.Reason)
		require.Equal(t, 50, p.weight(s))
		// The canary serves half the traffic now: wait for 150 more of its
		// requests in Prometheus before the stage ends.
		at := p.waitProm("canary counter", canaryQ("good", "total"), func(float64) bool { return true })
		p.waitProm("canary traffic at 50%", canaryQ("good", "total"), func(v float64) bool { return v >= at+150 })
		p.clock.Advance(5 * time.Minute)
		p.run()
		ro = p.get(ro.ID)
		require.Equal(t, rollout.StateSucceeded, ro.State, ro.Reason)
		require.Equal(t, 100, p.weight(s))
		require.Equal(t, []string{"weight-10:pass", "weight-50:pass"}, analyses(ro))
	})

	t.Run("version with 10% errors rolled back at the first analysis", func(t *testing.T) {
		p.t = t
		s := p.scenarios["bad"]
		stop, _ := p.load(s)
		defer stop()
		ro := p.start("bad")
		p.run()
		require.Equal(t, 10, p.weight(s))
		// 400 canary requests: at a 10% error rate, fewer than 5% failing
		// would happen about 4 times in 10,000 runs.
		p.waitProm("canary traffic at 10%", canaryQ("bad", "window"), func(v float64) bool { return v >= 400 })
		p.clock.Advance(5 * time.Minute)
		p.run()
		ro = p.get(ro.ID)
		require.Equal(t, rollout.StateRolledBack, ro.State, ro.Reason)
		require.Equal(t, []string{"weight-10:fail"}, analyses(ro))
		require.Contains(t, ro.Reason, "stage weight-10 analysis failed: error-rate fail: canary value")
		require.Equal(t, 0, p.weight(s), "all traffic back on the stable version")
	})

	t.Run("canary with no traffic paused, not promoted", func(t *testing.T) {
		p.t = t
		s := p.scenarios["idle"]
		ro := p.start("idle")
		p.run()
		require.Equal(t, 10, p.weight(s))
		// Prometheus has scraped the idle canary over the window: its
		// request count is a measured 0, not a missing series.
		p.waitProm("idle canary scraped", `count_over_time(up{scenario="idle",track="canary"}[2m])`, func(v float64) bool { return v >= 5 })
		p.waitProm("idle canary's requests", canaryQ("idle", "window"), func(v float64) bool { return v == 0 })
		p.clock.Advance(5 * time.Minute)
		p.run()
		ro = p.get(ro.ID)
		require.Equal(t, rollout.StatePaused, ro.State)
		require.Equal(t, []string{"weight-10:inconclusive"}, analyses(ro))
		// Judged over the whole 5m stage, longer than the spec's 2m.
		require.Contains(t, ro.Reason, "canary served 0 requests over 5m, fewer than the 100 required: not promoted")
		p.clock.Advance(time.Hour)
		p.run()
		require.Equal(t, 10, p.weight(s), "a paused rollout is not promoted")
		require.Equal(t, rollout.StatePaused, p.get(ro.ID).State)
	})
}
