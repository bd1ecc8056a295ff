package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// queries answers PromQL by exact query text; unknown queries return no data.
type queries struct {
	mu sync.Mutex
	v  map[string]float64
	// hold, when set, blocks every query until it is closed; each blocked
	// query is announced on entered.
	hold, entered chan struct{}
}

func (q *queries) set(query string, v float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.v[query] = v
}

func (q *queries) del(query string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.v, query)
}

func (q *queries) Instant(_ context.Context, query string, _ time.Time) (model.Vector, error) {
	q.mu.Lock()
	hold, entered := q.hold, q.entered
	q.mu.Unlock()
	if hold != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-hold
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if v, ok := q.v[query]; ok {
		return model.Vector{{Value: model.SampleValue(v)}}, nil
	}
	return nil, nil
}

// recDriver records injections; it checks that the fault is journaled
// before it takes effect.
type recDriver struct {
	db        *store.DB
	mu        sync.Mutex
	active    map[string]bool
	log       []string
	lifetimes map[string]time.Duration // chaos.Lifetime at each injection
	instances map[string]int           // chaos.Instances at each injection
	// fail, when set, is the error of every injection.
	fail error
}

func (d *recDriver) Inject(ctx context.Context, id string, f Fault) (json.RawMessage, error) {
	var status string
	if err := d.db.QueryRowContext(ctx, `SELECT status FROM chaos_faults WHERE id = $1`, id).Scan(&status); err != nil || status != FaultPending {
		return nil, fmt.Errorf("fault %s not journaled as pending before injection (%q, %v)", id, status, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	d.active[id] = true
	d.log = append(d.log, "inject "+f.Name)
	if l, ok := Lifetime(ctx); ok {
		if d.lifetimes == nil {
			d.lifetimes = map[string]time.Duration{}
		}
		d.lifetimes[f.Name] = l
	}
	if n, ok := Instances(ctx); ok {
		if d.instances == nil {
			d.instances = map[string]int{}
		}
		d.instances[f.Name] = n
	}
	return json.RawMessage(`{"token":"` + id + `"}`), nil
}

func (d *recDriver) Revert(_ context.Context, id string, f Fault, state json.RawMessage) error {
	if !strings.Contains(string(state), id) {
		return fmt.Errorf("revert of %s without its state: %s", id, state)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.active, id)
	d.log = append(d.log, "revert "+f.Name)
	return nil
}

func (d *recDriver) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active)
}

type budgets struct{ slos []SLOInfo }

func (b *budgets) SLOs(context.Context, string, time.Time) ([]SLOInfo, error) { return b.slos, nil }

const testExp = `apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: api-latency
hypothesis:
  description: the API stays fast
  steadyState:
    - name: ok
      promql: 'steady'
target: {service: api, environment: staging, instances: 1, totalInstances: 4}
faults:
  - {name: a, type: latency, proxy: p, latency: 300ms}
  - {name: b, type: cpu-stress, cpuPercent: 50}
duration: 1m
abort:
  interval: 5s
  promql:
    - {name: custom, expr: 'custom_abort'}
`

type harness struct {
	s     *Service
	clock *clock.Manual
	q     *queries
	d     *recDriver
	b     *budgets
	reg   *prometheus.Registry
	db    *store.DB
	bus   *events.Bus
}

func newHarness(t *testing.T, db *store.DB, owner string) *harness {
	h := &harness{clock: clock.NewManual(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)),
		q: &queries{v: map[string]float64{"steady": 1, `avg(up{job="api"})`: 1,
			`max(slo:sli_error:ratio_rate5m{service="api"})`: 0.001}},
		b:   &budgets{slos: []SLOInfo{{BudgetState: BudgetState{SLO: "availability", State: "green"}, FastLong: time.Hour, FastShort: 5 * time.Minute, FastFactor: 14.4}}},
		reg: prometheus.NewRegistry(), db: db, bus: events.NewBus(16, nil)}
	h.d = &recDriver{db: db, active: map[string]bool{}}
	h.s = New(Options{DB: db, Registerer: h.reg, Bus: h.bus, Budgets: h.b, Prom: h.q, Clock: h.clock, Owner: owner,
		Drivers: map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d}})
	if err := h.s.ApplyConfig(testConfig(), nil); err != nil {
		t.Fatal(err)
	}
	return h
}

func testConfig() Config {
	c := DefaultConfig
	c.Proxies = []ProxyConfig{{Name: "p", Kind: "tcp", Listen: "127.0.0.1:0", Upstream: "127.0.0.1:1"}}
	return c
}

func load(t *testing.T, text string) *Experiment {
	t.Helper()
	e, err := Parse([]byte(text), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// tick advances the clock by d once the runner waits on it.
func (h *harness) tick(t *testing.T, d time.Duration) {
	t.Helper()
	h.blocked(t)
	h.clock.Advance(d)
}

// drain advances the clock whenever the runner waits until every run ended.
func (h *harness) drain(t *testing.T, step time.Duration) {
	t.Helper()
	h.drainQueries(t, step, nil, 0, "runs did not finish")
}

// drainQueries is drain that also advances the clock by timeout whenever
// a query is announced on entered (nil: never); held is the failure
// should the runs not end.
func (h *harness) drainQueries(t *testing.T, step time.Duration, entered <-chan struct{}, timeout time.Duration, held string) {
	t.Helper()
	done := make(chan struct{})
	go func() { h.s.Wait(); close(done) }()
	deadline := time.After(2 * time.Minute) // a safety net, not a timing
	for {
		n, ch := h.clock.Waiters()
		if n > 0 {
			h.clock.Advance(step)
			continue
		}
		select {
		case <-entered:
			h.clock.Advance(timeout)
		case <-done:
			return
		case <-ch:
		case <-deadline:
			t.Fatal(held)
		}
	}
}

// blocked waits until the runner waits on the clock.
func (h *harness) blocked(t *testing.T) {
	t.Helper()
	deadline := time.After(2 * time.Minute) // a safety net, not a timing
	for {
		n, ch := h.clock.Waiters()
		if n > 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("runner never waited on the clock\n%s", buf[:runtime.Stack(buf, true)])
		}
	}
}

func migrations() [][]store.Migration { return [][]store.Migration{Migrations, targetlock.Migrations} }

func TestRunSucceeds(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		ctx := context.Background()
		evs, done := h.bus.Subscribe()
		defer done()
		info, err := h.s.Start(ctx, load(t, testExp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for range 12 { // 12 x 5s = the 1m duration
			h.tick(t, 5*time.Second)
		}
		h.drain(t, 5*time.Second) // the rollback's lease renewals, the "after" measurement
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusSucceeded {
			t.Fatalf("status %s (%s)", r.Status, r.Reason)
		}
		var names []string
		for _, s := range r.Steps {
			names = append(names, s.Name+":"+s.Status)
			if s.Finished == nil {
				t.Errorf("step %s has no end time", s.Name)
			}
		}
		if got := strings.Join(names, " "); got != "plan:ok validate:ok execute:ok monitor:ok analyze:ok rollback:ok report:ok" {
			t.Fatalf("steps %s", got)
		}
		if r.Steps[3].Finished.Sub(r.Steps[3].Started) != time.Minute {
			t.Errorf("monitor lasted %v, want 1m", r.Steps[3].Finished.Sub(r.Steps[3].Started))
		}
		if d := r.Steps[2].Detail; !strings.HasPrefix(d, "2 faults active") {
			t.Errorf("execute step %q, want it to count 2 faults active", d)
		}
		if d := r.Steps[5].Detail; d != "2 faults reverted, 0 rollback actions run" {
			t.Errorf("rollback step %q", d)
		}
		if strings.Join(h.d.log, ",") != "inject a,inject b,revert b,revert a" || h.d.count() != 0 {
			t.Fatalf("driver log %v", h.d.log)
		}
		for _, f := range r.Faults {
			if f.Status != FaultReverted || f.Reverted == nil {
				t.Errorf("fault %s: %s", f.Name, f.Status)
			}
		}
		if r.Score == nil || *r.Score != 100 {
			t.Errorf("score %v, want 100 (no degradation, recovered, clamped)", r.Score)
		}
		md, js, err := h.s.Report(ctx, info.ID)
		if err != nil || !strings.Contains(md, "The hypothesis **held**") || !strings.Contains(js, `"hypothesis_held": true`) {
			t.Fatalf("report: %v\n%s\n%s", err, md, js)
		}
		if v := testutil.ToFloat64(h.s.m.experiments.WithLabelValues(StatusSucceeded)); v != 1 {
			t.Errorf("experiments_total{succeeded} = %v", v)
		}
		if ev := <-evs; ev.Type != "chaos.finished" || ev.Service != "api" || ev.Data["annotation"] != true {
			t.Errorf("event %+v", ev)
		}
		if k, _ := targetlock.New(db).Get(ctx, "staging/api"); k != nil {
			t.Errorf("target lock not released: %+v", k)
		}
	})
}

func TestAbortRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
	}{
		{"custom promql", "custom_abort", "abort condition custom is true"},
		{"burn rate", `(slo:burn_rate:ratio_rate1h{service="api",slo="availability"} > 14.4) and (slo:burn_rate:ratio_rate5m{service="api",slo="availability"} > 14.4)`,
			"SLO availability burns its error budget at 20.0x over 1h0m0s (page threshold 14.4x)"},
		{"error rate", `max(slo:sli_error:ratio_rate5m{service="api"})`, "error rate 20.00% above 10.00%"},
		{"steady state", "steady", "steady state deviated: ok: condition is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, "r1")
				ctx := context.Background()
				exp := testExp
				if tc.name == "steady state" {
					exp += "  steadyState: true\n"
				}
				info, err := h.s.Start(ctx, load(t, exp), "alice")
				if err != nil {
					t.Fatal(err)
				}
				h.tick(t, 5*time.Second)
				h.tick(t, 5*time.Second)
				if h.d.count() != 2 {
					t.Fatalf("%d faults active mid-run", h.d.count())
				}
				v := 20.0
				if tc.name == "error rate" {
					v = 0.2
				}
				h.blocked(t) // the checks of the second interval are done
				// Half the instances go down as the abort condition turns
				// true: the check that aborts must count in the score.
				h.q.set(`avg(up{job="api"})`, 0.5)
				if tc.name == "steady state" {
					h.q.del(tc.query) // the probe's condition turns false
				} else {
					h.q.set(tc.query, v)
				}
				h.tick(t, 5*time.Second)
				h.drain(t, 5*time.Second) // the rollback's lease renewals, the "after" measurement
				r, _ := h.s.Get(ctx, info.ID)
				if r.Status != StatusAborted || r.Reason != tc.want {
					t.Fatalf("status %s reason %q, want aborted %q", r.Status, r.Reason, tc.want)
				}
				if h.d.count() != 0 {
					t.Fatal("faults still active after abort")
				}
				if r.Score == nil {
					t.Fatal("no score")
				}
				// 50 points of instances lost at the aborting check: -500,
				// clamped to 0.
				if *r.Score != 0 {
					t.Errorf("score %v of a run aborted while half the instances were down, want 0", *r.Score)
				}
			})
		})
	}
}

// TestSteadyStateDeviationWithoutAbort: by default a steady-state probe
// failing during the run does not stop it; the run goes to its end and its
// report says the hypothesis did not hold.
func TestSteadyStateDeviationWithoutAbort(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		ctx := context.Background()
		info, err := h.s.Start(ctx, load(t, testExp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.tick(t, 5*time.Second)
		h.blocked(t)
		h.q.del("steady")
		h.drain(t, 5*time.Second)
		r, _ := h.s.Get(ctx, info.ID)
		if r.Status != StatusFailed || r.Steps[3].Finished.Sub(r.Steps[3].Started) != time.Minute {
			t.Fatalf("status %s reason %q, want failed after the whole minute", r.Status, r.Reason)
		}
		md, js, err := h.s.Report(ctx, info.ID)
		if err != nil || !strings.Contains(md, "The hypothesis **did not hold**") || !strings.Contains(js, `"hypothesis_held": false`) {
			t.Fatalf("report: %v\n%s\n%s", err, md, js)
		}
	})
}

func TestHaltIsIdempotent(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		ctx := context.Background()
		info, err := h.s.Start(ctx, load(t, testExp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.blocked(t)
		type res struct {
			n   int
			err error
		}
		ch := make(chan res, 1)
		go func() { n, err := h.s.Halt(ctx, "bob"); ch <- res{n, err} }()
		// Drive the clock only once the halt is recorded.
		deadline := time.Now().Add(20 * time.Second)
		for {
			var by string
			if err := db.QueryRowContext(ctx, `SELECT stop_requested FROM chaos_runs WHERE id = $1`, info.ID).Scan(&by); err != nil {
				t.Fatal(err)
			}
			if by != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("halt never recorded")
			}
			time.Sleep(5 * time.Millisecond)
		}
		h.drain(t, 5*time.Second) // the report step waits one interval after rollback
		hr := <-ch
		n, err := hr.n, hr.err
		if err != nil || n != 1 {
			t.Fatalf("halt: %d, %v", n, err)
		}
		if h.d.count() != 0 {
			t.Fatal("faults active after halt")
		}
		r, _ := h.s.Get(ctx, info.ID)
		if r.Status != StatusAborted || !strings.Contains(r.Reason, "halted by bob") {
			t.Fatalf("status %s reason %q", r.Status, r.Reason)
		}
		n, err = h.s.Halt(ctx, "bob")
		if err != nil || n != 0 {
			t.Fatalf("second halt: %d, %v", n, err)
		}
	})
}

func TestRefusals(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		ctx := context.Background()
		// Red budget.
		h.b.slos[0].State = "red"
		info, err := h.s.Start(ctx, load(t, testExp), "alice")
		var ref *Refusal
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), `error budget of SLO "availability" is red`) {
			t.Fatalf("red budget: %v", err)
		}
		r, _ := h.s.Get(ctx, info.ID)
		if r.Status != StatusRefused || len(r.Steps) != 2 || r.Steps[1].Status != "failed" || len(r.Faults) != 0 {
			t.Fatalf("refused run: %+v", r)
		}
		h.b.slos[0].State = "green"
		// Excluded service.
		_, err = h.s.Start(ctx, load(t, strings.Replace(testExp, "service: api", "service: payment", 1)), "alice")
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), `service "payment" is excluded`) {
			t.Fatalf("excluded: %v", err)
		}
		// Target locked by a rollout.
		if err := targetlock.New(db).Acquire(ctx, "staging/api", "rollout", "r-7", h.clock.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		_, err = h.s.Start(ctx, load(t, testExp), "alice")
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "locked by rollout r-7") {
			t.Fatalf("locked: %v", err)
		}
		// The same target written in another case is the same lock.
		_, err = h.s.Start(ctx, load(t, strings.Replace(testExp, "environment: staging", "environment: Staging", 1)), "alice")
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "target staging/api is locked by rollout r-7") {
			t.Fatalf("locked, other case: %v", err)
		}
		// Steady state not holding before.
		_ = targetlock.New(db).Release(ctx, "staging/api", "r-7")
		h.q.del("steady")
		_, err = h.s.Start(ctx, load(t, testExp), "alice")
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "steady state does not hold before the experiment: ok: condition is false") {
			t.Fatalf("steady: %v", err)
		}
		if h.d.count() != 0 || len(h.d.log) != 0 {
			t.Fatal("a refused experiment injected a fault")
		}
		if v := testutil.ToFloat64(h.s.m.experiments.WithLabelValues(StatusRefused)); v != 5 {
			t.Errorf("refused = %v, want 5", v)
		}
	})
}

// A runner that dies leaves its faults journaled; once their lease expires
// another replica (or the restarted process) rolls them back.
func TestRecoverExpiredLeases(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dead := newHarness(t, db, "dead")
		info, err := dead.s.Start(ctx, load(t, testExp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		dead.tick(t, 5*time.Second)
		// "Kill" the runner: its goroutine stays blocked on a clock nobody advances.
		other := newHarness(t, db, "other")
		other.d = dead.d // same host: the driver sees the same faults
		other.s.o.Drivers = map[string]Driver{DriverToxiproxy: dead.d, DriverStress: dead.d}
		other.clock.Set(dead.clock.Now().Add(10 * time.Second))
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if dead.d.count() != 2 {
			t.Fatal("faults rolled back while their lease was valid")
		}
		other.clock.Set(dead.clock.Now().Add(31 * time.Second))
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if dead.d.count() != 0 {
			t.Fatal("expired faults not rolled back")
		}
		r, _ := other.s.Get(ctx, info.ID)
		if r.Status != StatusAborted || !strings.Contains(r.Reason, "runner stopped renewing its lease") {
			t.Fatalf("abandoned run: %s %q", r.Status, r.Reason)
		}
		for _, f := range r.Faults {
			if f.Status != FaultReverted || f.Owner != "other" {
				t.Errorf("fault %s: %s by %s", f.Name, f.Status, f.Owner)
			}
		}
		// Recovering again is a no-op.
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLongAbortIntervalKeepsLeases: with an abort interval longer than the
// lease, the runner still renews the leases of its run and faults at least
// every half lease, while it monitors, waits for an approval and waits for
// the "after" measurement of its report: another sred recovering expired
// leases meanwhile rolls nothing back and closes no run.
func TestLongAbortIntervalKeepsLeases(t *testing.T) {
	long := strings.Replace(testExp, "interval: 5s", "interval: 1m", 1)
	for _, tc := range []struct {
		name, exp string
		// reach brings the run to the wait under test.
		reach   func(t *testing.T, h *harness, id string)
		status  string
		faults  int
		waiters int // timers the runner waits on
	}{
		{name: "monitor", exp: strings.Replace(long, "duration: 1m", "duration: 2m", 1),
			reach: func(*testing.T, *harness, string) {}, status: StatusRunning, faults: 2, waiters: 1},
		{name: "approval", exp: long + "approval: {role: admin, timeout: 1m}\n",
			reach: func(*testing.T, *harness, string) {}, status: StatusWaiting, waiters: 1},
		{name: "report", exp: strings.Replace(long, "duration: 1m", "duration: 5s", 1),
			reach: func(t *testing.T, h *harness, id string) {
				h.tick(t, 5*time.Second)                // the end of the duration
				deadline := time.Now().Add(time.Minute) // a safety net, not a timing
				for {
					var n int
					if err := h.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM chaos_steps WHERE run_id = $1 AND step = 'report'`, id).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n == 1 {
						return
					}
					if time.Now().After(deadline) {
						t.Fatal("the run never reached its report")
					}
					time.Sleep(5 * time.Millisecond)
				}
			}, status: StatusRunning, waiters: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				h := newHarness(t, db, "r1")
				cfg := testConfig()
				cfg.Lease = model.Duration(10 * time.Second)
				if err := h.s.ApplyConfig(cfg, nil); err != nil {
					t.Fatal(err)
				}
				info, err := h.s.Start(ctx, load(t, tc.exp), "alice")
				if err != nil {
					t.Fatal(err)
				}
				tc.reach(t, h, info.ID)
				// settle waits until the runner waits on the clock again: in
				// the report also for its next renewal (a renewal is done
				// before its next wait starts).
				settle := func() {
					t.Helper()
					wctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a safety net, not a timing
					defer cancel()
					if err := h.clock.WaitWaiters(wctx, tc.waiters); err != nil {
						t.Fatalf("the runner does not renew its leases while it waits: %v", err)
					}
				}
				for range 4 { // 20s, twice the lease
					settle()
					h.clock.Advance(5 * time.Second)
				}
				settle()
				var lease int64
				if err := db.QueryRowContext(ctx, `SELECT lease_ms FROM chaos_runs WHERE id = $1`, info.ID).Scan(&lease); err != nil {
					t.Fatal(err)
				}
				if now := h.clock.Now(); !time.UnixMilli(lease).After(now) {
					t.Errorf("run lease until %v, not after now %v", time.UnixMilli(lease).UTC(), now)
				}
				other := newHarness(t, db, "other")
				other.s.o.Drivers = map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d}
				other.clock.Set(h.clock.Now())
				if err := other.s.ApplyConfig(cfg, nil); err != nil {
					t.Fatal(err)
				}
				if err := other.s.Recover(ctx); err != nil {
					t.Fatal(err)
				}
				r, err := h.s.Get(ctx, info.ID)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != tc.status {
					t.Errorf("run %s after %v with a %v lease and a 1m abort interval: %s (%s), want %s",
						tc.name, 20*time.Second, cfg.Lease, r.Status, r.Reason, tc.status)
				}
				if n := h.d.count(); n != tc.faults {
					t.Errorf("%d fault(s) injected, want %d", n, tc.faults)
				}
				for _, f := range r.Faults {
					if f.Owner != "r1" {
						t.Errorf("fault %s %s by %s, want owned by r1", f.Name, f.Status, f.Owner)
					}
				}
				h.drain(t, 5*time.Second)
			})
		})
	}
}

// startHeldInQuery applies the test configuration with a 10s lease and
// starts testExp; once its first check passed, its second check blocks in
// a query until release is called. It returns the run and the
// configuration applied.
func (h *harness) startHeldInQuery(t *testing.T) (info *RunInfo, cfg Config, release func()) {
	t.Helper()
	cfg = testConfig()
	cfg.Lease = model.Duration(10 * time.Second)
	if err := h.s.ApplyConfig(cfg, nil); err != nil {
		t.Fatal(err)
	}
	info, err := h.s.Start(context.Background(), load(t, testExp), "alice")
	if err != nil {
		t.Fatal(err)
	}
	h.tick(t, 5*time.Second) // the first check passes
	h.blocked(t)
	hold := make(chan struct{})
	h.q.mu.Lock()
	h.q.hold, h.q.entered = hold, make(chan struct{}, 1)
	h.q.mu.Unlock()
	h.clock.Advance(5 * time.Second) // the second check blocks in a query
	<-h.q.entered
	return info, cfg, func() {
		h.q.mu.Lock()
		h.q.hold = nil
		h.q.mu.Unlock()
		close(hold)
	}
}

// TestFaultsRolledBackBehindTheRunner: a runner blocked longer than the
// lease in an abort check (a Prometheus that does not answer) has its faults
// rolled back by the recovery of expired leases, which leaves its own run
// alone; when the check returns, the run must end aborted, naming the faults,
// not go on to "succeeded" with nothing injected.
func TestFaultsRolledBackBehindTheRunner(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHarness(t, db, "r1")
		info, _, release := h.startHeldInQuery(t)
		h.clock.Advance(11 * time.Second) // past the lease renewed before it
		if err := h.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if n := h.d.count(); n != 0 {
			t.Fatalf("%d fault(s) still injected after their lease expired", n)
		}
		release()
		h.drain(t, 5*time.Second)
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusAborted || !strings.Contains(r.Reason, "faults rolled back while the run went on, their lease expired: a (reverted by r1), b (reverted by r1)") {
			t.Fatalf("run %s (%s), want aborted naming the faults rolled back", r.Status, r.Reason)
		}
	})
}

func TestScore(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name                  string
		before, during, after Measurement
		steady                bool
		want                  float64
	}{
		{"no impact", Measurement{f(1), f(0.001), f(0.1)}, Measurement{f(1), f(0.001), f(0.1)}, Measurement{f(1), f(0.001), f(0.1)}, true, 100},
		// 300ms more latency: -30; 4pp errors: -2; recovered +10 -> 78.
		{"latency and errors", Measurement{f(1), f(0.0), f(0.1)}, Measurement{f(1), f(0.04), f(0.4)}, Measurement{f(1), f(0), f(0.1)}, true, 78},
		// One of four instances down: -250 -> 0.
		{"instance lost", Measurement{f(1), f(0), nil}, Measurement{f(0.75), f(0), nil}, Measurement{f(1), f(0), nil}, true, 0},
		// Not recovered: 100 - 5 (10pp errors) = 95.
		{"no recovery", Measurement{f(1), f(0), nil}, Measurement{f(1), f(0.1), nil}, Measurement{f(1), f(0.1), nil}, true, 95},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ComputeScore(tc.before, tc.during, tc.after, tc.steady); got.Value != tc.want {
				t.Fatalf("score %+v, want %v", got, tc.want)
			}
		})
	}
}

// unboundDriver is a proxy driver whose proxy cannot listen.
type unboundDriver struct{ *recDriver }

func (unboundDriver) Bind(proxy string) error {
	return errors.New("tcp proxy " + proxy + " cannot listen on 127.0.0.1:15432: address already in use")
}

// TestRefusedOnUnboundProxy: a run whose fault needs a proxy that cannot
// listen is refused with the reason, and nothing is injected.
func TestRefusedOnUnboundProxy(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		h.s.o.Drivers[DriverToxiproxy] = unboundDriver{h.d}
		_, err := h.s.Start(context.Background(), load(t, testExp), "alice")
		var ref *Refusal
		if !errors.As(err, &ref) || !strings.Contains(strings.Join(ref.Reasons, ";"),
			"fault a: tcp proxy p cannot listen on 127.0.0.1:15432: address already in use") {
			t.Fatalf("got %v", err)
		}
		if len(h.d.log) != 0 {
			t.Fatalf("injected: %v", h.d.log)
		}
	})
}

// TestFaultLifetime: each fault is injected with the bound a driver that
// can end it by itself (stress-ng's --timeout) uses when no revert comes:
// the run's duration, 2 minutes per fault injected after it, one abort
// interval and one lease; not the safety's max_duration.
func TestFaultLifetime(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		if _, err := h.s.Start(context.Background(), load(t, testExp), "alice"); err != nil {
			t.Fatal(err)
		}
		h.drain(t, 5*time.Second)
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		want := map[string]time.Duration{"a": time.Minute + 2*time.Minute + 5*time.Second + 30*time.Second, "b": time.Minute + 5*time.Second + 30*time.Second}
		for name, w := range want {
			if got := h.d.lifetimes[name]; got != w {
				t.Errorf("fault %s injected with lifetime %v, want %v", name, got, w)
			}
		}
	})
}

// Every fault is injected with the target's instances, the count the
// blast radius check allowed: a driver that picks the instances itself
// (Chaos Mesh's pod selector) acts on that many.
func TestFaultInstances(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		exp := strings.Replace(testExp, "instances: 1, totalInstances: 4", "instances: 2, totalInstances: 4", 1)
		if _, err := h.s.Start(context.Background(), load(t, exp), "alice"); err != nil {
			t.Fatal(err)
		}
		h.drain(t, 5*time.Second)
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		for _, name := range []string{"a", "b"} {
			if got := h.d.instances[name]; got != 2 {
				t.Errorf("fault %s injected with instances %d, want the target's 2", name, got)
			}
		}
	})
}

// hungPrometheus is a Prometheus that accepts every query and never
// answers; each query is announced on entered.
func hungPrometheus(t *testing.T, entered chan<- struct{}) Querier {
	t.Helper()
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case entered <- struct{}{}:
		case <-gone:
			return
		}
		select {
		case <-r.Context().Done():
		case <-gone:
		}
	}))
	t.Cleanup(func() { close(gone); srv.Close() })
	p, err := budget.NewProm(srv.URL, commoncfg.HTTPClientConfig{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// switchQuerier sends the queries to the Querier last set.
type switchQuerier struct {
	mu sync.Mutex
	q  Querier
}

func (s *switchQuerier) set(q Querier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.q = q
}

func (s *switchQuerier) Instant(ctx context.Context, query string, at time.Time) (model.Vector, error) {
	s.mu.Lock()
	q := s.q
	s.mu.Unlock()
	return q.Instant(ctx, query, at)
}

// runIntoHungPrometheus applies the test configuration with
// chaos.query_timeout 20s and starts the experiment text; once its first
// check passed, sq sends the queries to a Prometheus that never answers
// (hungPrometheus), and the clock advances until every run ended: by the
// timeout whenever a query waits on Prometheus, by an interval whenever
// the runner waits. It returns the run; query names what would hold it,
// should it not finish.
func (h *harness) runIntoHungPrometheus(t *testing.T, sq *switchQuerier, text, query string) *RunInfo {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig()
	cfg.QueryTimeout = model.Duration(20 * time.Second)
	if err := h.s.ApplyConfig(cfg, nil); err != nil {
		t.Fatal(err)
	}
	info, err := h.s.Start(ctx, load(t, text), "alice")
	if err != nil {
		t.Fatal(err)
	}
	h.tick(t, 5*time.Second) // the first check passes
	h.blocked(t)
	entered := make(chan struct{})
	sq.set(hungPrometheus(t, entered))
	h.drainQueries(t, 5*time.Second, entered, 20*time.Second, "the run did not finish: "+query+" that gets no answer holds it")
	r, err := h.s.Get(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestQueryTimeout: a Prometheus that accepts the queries of a run and
// never answers fails each of them at chaos.query_timeout on the runner's
// clock; the abort check that timed out aborts the run and rolls it back.
func TestQueryTimeout(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		sq := &switchQuerier{q: h.q}
		h.s = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Budgets: h.b, Prom: sq, Clock: h.clock, Owner: "r1",
			Drivers: map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d}})
		r := h.runIntoHungPrometheus(t, sq, testExp, "a query")
		if r.Status != StatusAborted || !strings.Contains(r.Reason, "no answer from Prometheus within chaos.query_timeout (20s)") {
			t.Fatalf("run %s (%s), want aborted naming the query timeout", r.Status, r.Reason)
		}
		if n := h.d.count(); n != 0 {
			t.Fatalf("%d fault(s) still injected", n)
		}
	})
}

// refusingDriver refuses every injection, as a driver does whose tool fails.
type refusingDriver struct{ *recDriver }

func (refusingDriver) Inject(context.Context, string, Fault) (json.RawMessage, error) {
	return nil, errors.New("proxy p refused the toxic")
}

// TestNoScoreWithoutInjection: a run whose faults could not be injected
// measured nothing under them; it has no resilience score (not 100), and
// its report says why.
func TestNoScoreWithoutInjection(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHarness(t, db, "r1")
		h.s = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Budgets: h.b, Prom: h.q, Clock: h.clock, Owner: "r1",
			Drivers: map[string]Driver{DriverToxiproxy: refusingDriver{h.d}, DriverStress: h.d}})
		if err := h.s.ApplyConfig(testConfig(), nil); err != nil {
			t.Fatal(err)
		}
		info, err := h.s.Start(ctx, load(t, testExp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.drain(t, 5*time.Second)
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusAborted || r.Score != nil {
			t.Fatalf("run %s with score %v, want aborted without a score", r.Status, r.Score)
		}
		md, js, err := h.s.Report(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(js), &rep); err != nil {
			t.Fatal(err)
		}
		if sc, ok := rep["score"]; !ok || sc != nil {
			t.Errorf("report score %v (present %v), want null", sc, ok)
		}
		why := "the faults were not all injected, nothing was measured under them: inject a: proxy p refused the toxic"
		if rep["no_score"] != why {
			t.Errorf("report no_score %q, want %q", rep["no_score"], why)
		}
		if !strings.Contains(md, "## Resilience score: n/a\n\n"+why) {
			t.Errorf("Markdown report does not say why there is no score:\n%s", md)
		}
	})
}

// promBudgets reads the budgets through a Querier, as pkg/budget does
// through Prometheus; its own bound (slos.query_timeout) is none.
type promBudgets struct {
	sq   *switchQuerier
	slos []SLOInfo
}

func (b *promBudgets) SLOs(ctx context.Context, _ string, _ time.Time) ([]SLOInfo, error) {
	if _, err := b.sq.Instant(ctx, "slo:error_budget:remaining", time.Time{}); err != nil {
		return nil, err
	}
	return b.slos, nil
}

// TestBudgetQueryTimeout: the error-budget-share check of a run reads the
// budgets from a Prometheus that accepts the query and never answers; it
// fails at chaos.query_timeout on the runner's clock like every query of
// the run, the run aborts naming it and rolls back.
func TestBudgetQueryTimeout(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		remaining := 0.8
		slos := []SLOInfo{{BudgetState: BudgetState{SLO: "availability", State: "green", Remaining: &remaining}}}
		sq := &switchQuerier{q: h.q}
		h.s = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Budgets: &promBudgets{sq: sq, slos: slos}, Prom: h.q,
			Clock: h.clock, Owner: "r1", Drivers: map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d}})
		r := h.runIntoHungPrometheus(t, sq, testExp+"maxBudgetShare: 0.05\n", "a budget query")
		want := "cannot read the error budgets: no answer from the error budgets (Prometheus) within chaos.query_timeout (20s)"
		if r.Status != StatusAborted || !strings.Contains(r.Reason, want) {
			t.Fatalf("run %s (%s), want aborted: %s", r.Status, r.Reason, want)
		}
		if n := h.d.count(); n != 0 {
			t.Fatalf("%d fault(s) still injected", n)
		}
	})
}

// TestBudgetReaderReadsAtRunnerClock: the error budgets a run checks are
// those of the runner's clock, as every other query of the run, not of the
// wall clock: the budget service asks Prometheus at that time.
func TestBudgetReaderReadsAtRunnerClock(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		var mu sync.Mutex
		var times []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			times = append(times, r.FormValue("time"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}))
		defer srv.Close()
		prom, err := budget.NewProm(srv.URL, commoncfg.HTTPClientConfig{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := slo.Parse([]byte(`apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
`), "api.yml")
		if err != nil {
			t.Fatal(err)
		}
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		if err := budgets.Update(budget.DefaultConfig, specs, prom, nil); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, db, "r1")
		h.s = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Budgets: BudgetReader{Service: budgets}, Prom: h.q,
			Clock: h.clock, Owner: "r1", Drivers: map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d}})
		if err := h.s.ApplyConfig(testConfig(), nil); err != nil {
			t.Fatal(err)
		}
		slos, err := h.s.budgetSLOs(context.Background(), "api")
		if err != nil {
			t.Fatal(err)
		}
		if len(slos) != 1 || slos[0].SLO != "availability" {
			t.Fatalf("SLOs of api: %+v, want availability", slos)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(times) == 0 {
			t.Fatal("the budget service asked Prometheus nothing")
		}
		want := strconv.FormatFloat(float64(h.clock.Now().UnixNano())/1e9, 'f', -1, 64)
		for _, got := range times {
			if got != want {
				t.Errorf("budget queried at time=%s, want the runner's clock %s (%s)", got, want, h.clock.Now())
			}
		}
	})
}

// TestRenewOnlyWhatThisReplicaHolds: once another replica took a run over
// (its lease expired and that replica closed it and claimed its faults),
// the replica that lost it renews neither the run nor its faults and
// cannot finish it: ErrRunLost, naming the replica holding it.
func TestRenewOnlyWhatThisReplicaHolds(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		j := journal{db}
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		info := &RunInfo{ID: "chx-1", Experiment: "e", Service: "api", Environment: "staging", Actor: "alice", Status: StatusRunning, Started: t0}
		if err := j.insertRun(ctx, info, []byte(`{}`), "r1", t0.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := j.insertFault(ctx, &FaultRecord{ID: "chx-1-a", RunID: "chx-1", Name: "a", Driver: DriverStress, Owner: "r1",
			Lease: t0.Add(10 * time.Second), Created: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := j.renewRun(ctx, "chx-1", "r1", t0.Add(20*time.Second)); err != nil {
			t.Fatalf("the owner's renewal: %v", err)
		}
		// r1 stops renewing; r2 finds the leases expired.
		clk.Advance(25 * time.Second)
		now := clk.Now()
		fs, err := j.claimExpired(ctx, "r2", now, now.Add(10*time.Second))
		if err != nil || len(fs) != 1 {
			t.Fatalf("claimed %v, %v", fs, err)
		}
		if closed, err := j.abandonRun(ctx, "chx-1", "r2", "runner stopped renewing its lease", now); err != nil || !closed {
			t.Fatalf("abandon: %v %v", closed, err)
		}
		// r1 comes back.
		late := now.Add(time.Hour)
		_, err = j.renewRun(ctx, "chx-1", "r1", late)
		if !errors.Is(err, ErrRunLost) || !strings.Contains(err.Error(), "run chx-1 is aborted, held by r2, not by r1") {
			t.Fatalf("renewal by the replica that lost the run: %v, want ErrRunLost naming r2", err)
		}
		var runLease, faultLease int64
		var owner string
		if err := db.QueryRowContext(ctx, `SELECT lease_ms FROM chaos_runs WHERE id = 'chx-1'`).Scan(&runLease); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT lease_ms, owner FROM chaos_faults WHERE id = 'chx-1-a'`).Scan(&faultLease, &owner); err != nil {
			t.Fatal(err)
		}
		if runLease == late.UnixMilli() || faultLease == late.UnixMilli() || owner != "r2" {
			t.Fatalf("run lease %v, fault lease %v by %s: renewed by the replica that lost them", time.UnixMilli(runLease).UTC(), time.UnixMilli(faultLease).UTC(), owner)
		}
		if err := j.finishRun(ctx, "chx-1", "r1", StatusSucceeded, "", nil, "", "", late); !errors.Is(err, ErrRunLost) {
			t.Fatalf("finish by the replica that lost the run: %v, want ErrRunLost", err)
		}
		r, _, err := j.run(ctx, "chx-1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusAborted || r.Reason != "runner stopped renewing its lease" {
			t.Fatalf("run %s (%s), want as r2 closed it", r.Status, r.Reason)
		}
		if err := j.setFault(ctx, "chx-1-a", FaultReverted, nil, "", &now); err != nil { // r2 rolled it back
			t.Fatal(err)
		}
		// A run whose faults were claimed but not yet closed is lost too.
		info2 := &RunInfo{ID: "chx-2", Experiment: "e", Service: "api", Environment: "staging", Actor: "alice", Status: StatusRunning, Started: now}
		if err := j.insertRun(ctx, info2, []byte(`{}`), "r1", now.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := j.insertFault(ctx, &FaultRecord{ID: "chx-2-a", RunID: "chx-2", Name: "a", Driver: DriverStress, Owner: "r1",
			Lease: now.Add(10 * time.Second), Created: now}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(25 * time.Second)
		if fs, err := j.claimExpired(ctx, "r2", clk.Now(), clk.Now().Add(10*time.Second)); err != nil || len(fs) != 1 {
			t.Fatalf("claimed %v, %v", fs, err)
		}
		if _, err := j.renewRun(ctx, "chx-2", "r1", late); !errors.Is(err, ErrRunLost) || !strings.Contains(err.Error(), "a (by r2)") {
			t.Fatalf("renewal of a run whose fault r2 claimed: %v, want ErrRunLost naming the fault", err)
		}
	})
}

// TestTakenOverRunnerLeavesTheFaults: a runner blocked in a query longer
// than the lease finds, when it comes back, that another replica took its
// run over (rolled back its faults, ran its rollback and closed it): it
// aborts, reverts none of those faults again and leaves the run as that
// replica recorded it.
func TestTakenOverRunnerLeavesTheFaults(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHarness(t, db, "r1")
		info, cfg, release := h.startHeldInQuery(t)
		other := newHarness(t, db, "r2")
		other.s.o.Drivers = map[string]Driver{DriverToxiproxy: h.d, DriverStress: h.d} // same host
		if err := other.s.ApplyConfig(cfg, nil); err != nil {
			t.Fatal(err)
		}
		other.clock.Set(h.clock.Now().Add(11 * time.Second)) // past the lease renewed before the check
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if n := h.d.count(); n != 0 {
			t.Fatalf("%d fault(s) still injected after the takeover", n)
		}
		taken, err := other.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		release()
		h.drain(t, 5*time.Second)
		h.d.mu.Lock()
		log := slices.Clone(h.d.log)
		h.d.mu.Unlock()
		want := []string{"inject a", "inject b", "revert a", "revert b"}
		if !slices.Equal(log, want) {
			t.Errorf("driver saw %v, want %v: the runner that lost the run touched its faults", log, want)
		}
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusAborted || r.Reason != taken.Reason || !r.Finished.Equal(*taken.Finished) {
			t.Errorf("run %s (%s) finished %v, want as r2 closed it: %s (%s) %v", r.Status, r.Reason, r.Finished, taken.Status, taken.Reason, taken.Finished)
		}
		for _, f := range r.Faults {
			if f.Status != FaultReverted || f.Owner != "r2" {
				t.Errorf("fault %s %s by %s, want reverted by r2", f.Name, f.Status, f.Owner)
			}
		}
		var detail string
		for _, st := range r.Steps {
			if st.Name == "monitor" {
				detail = st.Detail
			}
		}
		if !strings.Contains(detail, "held by r2, not by r1") {
			t.Errorf("monitor step %q, want it to name the replica that took the run over", detail)
		}
		if n, err := testutil.GatherAndCount(h.reg, "sre_chaos_fault_active"); err != nil || n != 0 {
			t.Errorf("r1 still exports %d sre_chaos_fault_active series (%v) for faults r2 reverted", n, err)
		}
	})
}

// TestTakenOverWhileWaitingForApproval: a run waiting for its approval whose
// runner stopped renewing is closed by another replica; when the runner
// comes back it leaves the run as that replica recorded it and does not
// count it a second time.
func TestTakenOverWhileWaitingForApproval(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := newHarness(t, db, "r1")
		info, err := h.s.Start(ctx, load(t, testExp+"approval: {role: admin, timeout: 1h}\n"), "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.blocked(t) // waiting for the approval
		other := newHarness(t, db, "r2")
		other.clock.Set(h.clock.Now().Add(31 * time.Second))
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		taken, err := other.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if taken.Status != StatusAborted {
			t.Fatalf("run %s after the takeover, want aborted", taken.Status)
		}
		h.drain(t, 5*time.Second)
		r, err := h.s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != taken.Status || r.Reason != taken.Reason || !r.Finished.Equal(*taken.Finished) {
			t.Errorf("run %s (%s) finished %v, want as r2 closed it: %s (%s) %v", r.Status, r.Reason, r.Finished, taken.Status, taken.Reason, taken.Finished)
		}
		for _, st := range []string{StatusAborted, StatusFailed, StatusRefused} {
			if v := testutil.ToFloat64(h.s.m.experiments.WithLabelValues(st)); v != 0 {
				t.Errorf("r1 counted the run r2 took over as %s (%v)", st, v)
			}
		}
		if v := testutil.ToFloat64(other.s.m.experiments.WithLabelValues(StatusAborted)); v != 1 {
			t.Errorf("r2 counted %v aborted runs, want 1", v)
		}
	})
}
