package scaling_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/cli"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/scaling"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// target is the controllable service: a scale endpoint that records the
// instance counts it is called with (through the runbook engine's http
// actuator).
type target struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []int
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /scale", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tg.mu.Lock()
		tg.calls = append(tg.calls, n)
		tg.mu.Unlock()
	})
	tg.srv = httptest.NewServer(mux)
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) Calls() []int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return slices.Clone(tg.calls)
}

const proofPolicy = `
name: demo
service: demo
environment: test
target:
  action:
    timeout: 10s
    http:
      endpoint: demo
      path: /scale
      method: POST
      body: "{{ .Vars.replicas }}"
min_instances: 1
max_instances: 4
initial_instances: 2
metric:
  type: promql
  query: max(demo_load_percent)
interval: 1s
scale_up: {threshold: 80, step: 1, cooldown: 3s, stabilization: 2s}
scale_down: {threshold: 30, step: 1, cooldown: 3s, stabilization: 2s}
`

// proofStart is the first second of the load history.
var proofStart = time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)

// startPrometheusWith starts a real Prometheus holding demo_load_percent
// with vals[i] at proofStart + i seconds and a sample every 100ms in
// between (as a 100ms scrape of a gauge held for each second would give),
// imported with `promtool tsdb create-blocks-from openmetrics`: each
// second holds exactly its value, whatever the machine's load. It returns
// Prometheus and the time of each value.
func startPrometheusWith(t *testing.T, vals []float64) (*testutil.Process, []time.Time) {
	t.Helper()
	dir := t.TempDir()
	var om strings.Builder
	om.WriteString("# HELP demo_load_percent Load the test drives.\n# TYPE demo_load_percent gauge\n")
	points := make([]time.Time, len(vals))
	for i, v := range vals {
		points[i] = proofStart.Add(time.Duration(i) * time.Second)
		for ms := 0; ms < 1000; ms += 100 {
			at := points[i].Add(time.Duration(ms) * time.Millisecond)
			fmt.Fprintf(&om, "demo_load_percent{job=\"demo\",instance=\"demo:80\"} %g %d.%03d\n", v, at.Unix(), ms)
		}
	}
	om.WriteString("# EOF\n")
	omFile, data := filepath.Join(dir, "load.om"), filepath.Join(dir, "data")
	if err := os.WriteFile(omFile, []byte(om.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testutil.Tool(t, "promtool"), "tsdb", "create-blocks-from", "openmetrics", omFile, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global: {}\n", DataDir: data,
		Args: []string{"--storage.tsdb.retention.time=1000d"}})
	return prom, points
}

// The proof: a real Prometheus holds a load history above and below the
// thresholds; sred's controller, on a manual clock, evaluates every second
// of that history, scales up, respects its cooldown, does not flap on a
// noisy signal, stays within its bounds and calls the actuator with the
// counts it decided; the backtest over the same history takes the same
// decisions. Then the same history with the target locked by a rollout,
// and with a rate limit, acts on nothing.
func TestScalingProof(t *testing.T) {
	tg := newTarget(t)
	steady := []float64{50, 50, 50, 50}
	high := []float64{95, 95, 95, 95, 95, 95, 95, 95, 95, 95}
	noisy := []float64{85, 20, 85, 20, 85, 20, 85, 20}
	low := []float64{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}
	prom, pts := startPrometheusWith(t, slices.Concat(steady, high, noisy, low))
	c, err := api.NewClient(api.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	papi := v1.NewAPI(c)
	p, err := scaling.Parse([]byte(proofPolicy), "demo.yml")
	if err != nil {
		t.Fatal(err)
	}

	phase := func(from, n int) (time.Time, time.Time) { return pts[from], pts[from+n-1] }
	highFrom, highTo := phase(len(steady), len(high))
	noisyFrom, noisyTo := phase(len(steady)+len(high), len(noisy))
	lowFrom, lowTo := phase(len(steady)+len(high)+len(noisy), len(low))
	start, end := pts[len(steady)-1], pts[len(pts)-1]
	// Prometheus gives the policy's query one imported value per second.
	hist, err := scaling.Fetch(context.Background(), papi, p, noisyFrom, noisyTo)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, s := range hist {
		if !s.Time.Before(noisyFrom) {
			got = append(got, s.Value)
		}
	}
	if !slices.Equal(got, noisy) {
		t.Fatalf("Prometheus returns %v over the noisy phase, imported %v", got, noisy)
	}

	rcfg := runbook.DefaultConfig
	rcfg.HTTPEndpoints = map[string]runbook.HTTPEndpoint{"demo": {URL: tg.srv.URL}}
	act, err := runbook.NewActuator(rcfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	migrations := [][]store.Migration{scaling.Migrations, targetlock.Migrations, audit.Migrations}

	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		before := len(tg.Calls())
		clk := clock.NewManual(start)
		bus := events.NewBus(1024, nil)
		evs, stop := bus.Subscribe()
		defer stop()
		// Two replicas of sred share the store: each second is evaluated
		// (and acted on) once.
		reg, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
		ctl := scaling.New(scaling.Options{DB: db, Prometheus: papi, Actuator: act, Bus: bus, Audit: audit.New(db, nil),
			Clock: clk, Registerer: reg, Owner: "sred-a"})
		ctl.SetConfig(scaling.DefaultConfig, []*scaling.Policy{p})
		replica := scaling.New(scaling.Options{DB: db, Prometheus: papi, Actuator: act, Bus: bus, Audit: audit.New(db, nil),
			Clock: clk, Registerer: reg2, Owner: "sred-b"})
		replica.SetConfig(scaling.DefaultConfig, []*scaling.Policy{p})

		// Live: the manual clock walks the history second by second.
		var live []scaling.Record
		for now := start; !now.After(end); now = now.Add(time.Second) {
			clk.Set(now)
			var wg sync.WaitGroup
			var rs [2][]scaling.Record
			for i, c := range []*scaling.Controller{ctl, replica} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs[i] = c.EvaluateDue(context.Background())
				}()
			}
			wg.Wait()
			if n := len(rs[0]) + len(rs[1]); n != 1 {
				t.Fatalf("%s: %d evaluations by the two replicas, want 1", now, n)
			}
			live = append(live, rs[0]...)
			live = append(live, rs[1]...)
		}
		var acted []scaling.Record
		for _, r := range live {
			if r.Acts() {
				if r.Result != scaling.ResultOK {
					t.Fatalf("action at %s: %s %s", r.Time, r.Result, r.Detail)
				}
				acted = append(acted, r)
			}
		}
		in := func(r scaling.Record, from, to time.Time) bool { return !r.Time.Before(from) && !r.Time.After(to) }

		// Scale-up while the load is high, one step at a time, up to max.
		var ups []scaling.Record
		for _, r := range acted {
			if r.Direction == scaling.Up {
				if !in(r, highFrom, highTo) {
					t.Errorf("scaled up outside the high phase: %s %s", r.Time, r.Reason)
				}
				if r.To != r.From+1 {
					t.Errorf("up step %d -> %d, want one instance", r.From, r.To)
				}
				ups = append(ups, r)
			}
		}
		if len(ups) != 2 || ups[len(ups)-1].To != p.MaxInstances {
			t.Fatalf("ups %v, want 2 -> 3 -> 4 (max_instances)", summary(ups))
		}
		// Cooldown: every action at least 3s after the previous one, and
		// the controller said it held back in between.
		for i := 1; i < len(acted); i++ {
			if gap := acted[i].Time.Sub(acted[i-1].Time); gap < 3*time.Second {
				t.Errorf("actions %s and %s only %s apart (cooldown 3s)", acted[i-1].Time, acted[i].Time, gap)
			}
		}
		held, atMax, atMin := 0, 0, 0
		for _, r := range live {
			if r.Held != "" {
				held++
			}
			if strings.Contains(r.Reason, "at max_instances 4") {
				atMax++
			}
			if strings.Contains(r.Reason, "at the floor of 1") {
				atMin++
			}
			if r.To < p.MinInstances || r.To > p.MaxInstances {
				t.Errorf("decision outside [1, 4]: %+v", r.Decision)
			}
		}
		if held == 0 || atMax == 0 || atMin == 0 {
			t.Fatalf("held by cooldown %d, at max %d, at min %d: want each at least once", held, atMax, atMin)
		}
		// No flapping on the noisy signal.
		for _, r := range acted {
			if in(r, noisyFrom, noisyTo) {
				t.Errorf("acted on the noisy signal: %s %s", r.Time, r.Reason)
			}
		}
		noisyEvals := 0
		for _, r := range live {
			if in(r, noisyFrom.Add(2*time.Second), noisyTo) {
				noisyEvals++
				if !strings.Contains(r.Reason, "not for the whole 2s stabilization window") {
					t.Errorf("noisy evaluation at %s: %s", r.Time, r.Reason)
				}
			}
		}
		if noisyEvals < 4 {
			t.Fatalf("%d evaluations over the noisy signal", noisyEvals)
		}
		// Scale-down to the floor while the load is low.
		var downs []scaling.Record
		for _, r := range acted {
			if r.Direction == scaling.Down {
				if !in(r, lowFrom, lowTo) {
					t.Errorf("scaled down outside the low phase: %s %s", r.Time, r.Reason)
				}
				downs = append(downs, r)
			}
		}
		if len(downs) != 3 || downs[2].To != p.MinInstances {
			t.Fatalf("downs %v, want 4 -> 3 -> 2 -> 1", summary(downs))
		}
		// The actuator was called with exactly the decided counts.
		var want []int
		for _, r := range acted {
			want = append(want, r.To)
		}
		if got := tg.Calls()[before:]; !slices.Equal(got, want) {
			t.Fatalf("actuator called with %v, decisions %v", got, want)
		}

		// The history is exact, so are the decisions' times: up 2s into
		// the high phase (its stabilization), again after the cooldown;
		// down 2s after the load went under 30 (the noisy phase's last
		// second), then every cooldown down to the floor.
		if got, want := summary(acted), "2->3@14:30:06 3->4@14:30:09 4->3@14:30:23 3->2@14:30:26 2->1@14:30:29"; got != want {
			t.Fatalf("actions %s, want %s", got, want)
		}
		// The backtest over the same history takes the same decisions.
		bt, err := scaling.RunBacktest(context.Background(), papi, p, start, end, p.InitialInstances)
		if err != nil {
			t.Fatal(err)
		}
		var liveAll []scaling.Decision
		for _, r := range live {
			if r.Acts() || r.Held != "" {
				r.Decision.Window = nil
				liveAll = append(liveAll, r.Decision)
			}
		}
		if got, want := decisionsText(bt.Decisions), decisionsText(liveAll); got != want {
			t.Fatalf("backtest decisions differ from the live run:\nbacktest:\n%s\nlive:\n%s", got, want)
		}
		if bt.Actions != len(acted) || bt.MaxSeen != 4 || bt.MinSeen != 1 || bt.AboveUp == 0 {
			t.Fatalf("backtest summary: %d actions (live %d), instances %d-%d, above %s", bt.Actions, len(acted), bt.MinSeen, bt.MaxSeen, bt.AboveUp)
		}
		var report strings.Builder
		if err := scaling.WriteBacktest(&report, bt); err != nil {
			t.Fatal(err)
		}
		t.Logf("backtest:\n%s", report.String())
		// srectl scaling backtest prints the same.
		pf := filepath.Join(t.TempDir(), "demo.yml")
		if err := os.WriteFile(pf, []byte(proofPolicy), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := cli.Main([]string{"scaling", "backtest", "--policy", pf, "--from", start.Format(time.RFC3339),
			"--to", end.Format(time.RFC3339), "--prometheus.url", prom.URL}, &out, &errb); code != 0 {
			t.Fatalf("srectl scaling backtest: exit %d: %s", code, errb.String())
		}
		if out.String() != report.String() {
			t.Fatalf("srectl scaling backtest printed:\n%s\nwant:\n%s", out.String(), report.String())
		}
		if bt.SavedByLongerCooldown <= 0 {
			t.Fatalf("a %s cooldown saves %d of %d actions", bt.LongerCooldown, bt.SavedByLongerCooldown, bt.Actions)
		}

		// Reported: events with the metric values, metrics, audit log, stored decisions.
		got := 0
		for len(evs) > 0 {
			ev := <-evs
			if ev.Type == "scaling.decision" && ev.Service == "demo" {
				if _, ok := ev.Data["value"].(float64); !ok || len(ev.Data["window"].([]map[string]any)) == 0 {
					t.Fatalf("event without the metric values: %+v", ev)
				}
				got++
			}
		}
		if got != len(acted) {
			t.Fatalf("%d decision events, %d actions", got, len(acted))
		}
		if v := counter(t, reg, "sre_scaling_decisions_total", "up") + counter(t, reg2, "sre_scaling_decisions_total", "up"); v != 2 {
			t.Fatalf("sre_scaling_decisions_total{direction=up} = %g", v)
		}
		if v := counter(t, reg, "sre_scaling_decisions_total", "") + counter(t, reg2, "sre_scaling_decisions_total", ""); int(v) != len(live) {
			t.Fatalf("sre_scaling_decisions_total = %g, %d evaluations", v, len(live))
		}
		entries, err := audit.New(db, nil).List(context.Background(), audit.Query{Actor: "scaling", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(acted) || !strings.Contains(entries[0].Path, "demo down 2 -> 1 (ok)") {
			t.Fatalf("audit entries %+v", entries)
		}
		stored, err := ctl.Decisions(context.Background(), "demo", time.Time{}, 100)
		if err != nil || len(stored) != len(acted) {
			t.Fatalf("stored decisions %d (%v), want %d", len(stored), err, len(acted))
		}

		// Shared per-target lock: while a rollout holds test/demo, nothing
		// acts; a rate limit of one action an hour allows one.
		if _, err := db.ExecContext(context.Background(), `DELETE FROM scaling_state`); err != nil {
			t.Fatal(err)
		}
		locks := targetlock.New(db)
		if err := locks.Acquire(context.Background(), "test/demo", "rollout", "rollout-1", highFrom, time.Hour); err != nil {
			t.Fatal(err)
		}
		calls := len(tg.Calls())
		ctl2 := scaling.New(scaling.Options{DB: db, Prometheus: papi, Actuator: act, Bus: bus, Clock: clk, Owner: "sred-test"})
		cfg := scaling.DefaultConfig
		cfg.MaxActionsPerHour = 1000
		ctl2.SetConfig(cfg, []*scaling.Policy{p})
		clk.Set(highFrom.Add(2 * time.Second))
		r, err := ctl2.Evaluate(context.Background(), p, highFrom.Add(2*time.Second))
		if err != nil || r.Result != scaling.ResultLocked || !strings.Contains(r.Detail, "locked by rollout rollout-1") {
			t.Fatalf("with the target locked: %+v, %v", r, err)
		}
		if len(tg.Calls()) != calls {
			t.Fatal("the actuator ran while a rollout held the target")
		}
		if err := locks.Release(context.Background(), "test/demo", "rollout-1"); err != nil {
			t.Fatal(err)
		}
		cfg.MaxActionsPerHour = len(acted) + 1
		ctl2.SetConfig(cfg, []*scaling.Policy{p})
		if _, err := ctl2.Evaluate(context.Background(), p, highFrom.Add(2*time.Second)); !errors.Is(err, scaling.ErrEvaluated) {
			t.Fatalf("a second evaluation at the same time: %v", err)
		}
		if r, err := ctl2.Evaluate(context.Background(), p, highFrom.Add(3*time.Second)); err != nil || r.Result != scaling.ResultOK {
			t.Fatalf("after the release: %+v, %v", r, err)
		}
		if r, err := ctl2.Evaluate(context.Background(), p, highFrom.Add(7*time.Second)); err != nil || r.Result != scaling.ResultRateLimited {
			t.Fatalf("past the rate limit: %+v, %v", r, err)
		}
		if got := tg.Calls()[calls:]; !slices.Equal(got, []int{3}) {
			t.Fatalf("actuator calls %v, want [3]", got)
		}
	})
}

func summary(rs []scaling.Record) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d->%d@%s", r.From, r.To, r.Time.Format("15:04:05")))
	}
	return strings.Join(parts, " ")
}

func decisionsText(ds []scaling.Decision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s %s held=%s %d->%d value=%g: %s\n", d.Time.Format(time.RFC3339), d.Direction, d.Held, d.From, d.To, d.Value, d.Reason)
	}
	return b.String()
}

func counter(t *testing.T, reg *prometheus.Registry, name, direction string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			match := direction == ""
			for _, l := range m.Label {
				if l.GetName() == "direction" && l.GetValue() == direction {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.Counter != nil {
				sum += m.Counter.GetValue()
			} else if m.Gauge != nil {
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}
