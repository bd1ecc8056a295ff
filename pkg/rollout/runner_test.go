package rollout

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func migrations() [][]store.Migration {
	return [][]store.Migration{jobs.Migrations, targetlock.Migrations, Migrations}
}

const canaryDef = `
name: api-canary
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages:
    - {weight: 10, duration: 5m}
    - {weight: 50, duration: 10m}
    - {weight: 100}
  set_weight:
    http: {endpoint: proxy, method: PUT, path: '/weight', body: '{"canary": {{ .Vars.weight }}, "version": "{{ .Vars.version }}"}'}
`

const blueGreenDef = `
name: api-bluegreen
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
blue_green:
  deploy: {http: {endpoint: proxy, method: POST, path: '/deploy/{{ .Vars.version }}'}}
  health: {http: {endpoint: proxy, method: GET, path: '/health/{{ .Vars.version }}'}}
  switch: {http: {endpoint: proxy, method: POST, path: '/switch/{{ .Vars.version }}'}}
  watch: 5m
  retire: {http: {endpoint: proxy, method: POST, path: '/retire/{{ .Vars.stable }}'}}
  rollback: {http: {endpoint: proxy, method: POST, path: '/switch/{{ .Vars.stable }}'}}
`

// proxyAPI records the calls of the actions.
type proxyAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
	fail  map[string]bool
	// during, if set, runs while a call is served (outside the lock).
	during func(call string)
}

func newProxyAPI(t *testing.T) *proxyAPI {
	p := &proxyAPI{fail: map[string]bool{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		call := r.Method + " " + r.URL.Path
		if len(b) > 0 {
			var v struct{ Canary int }
			_ = json.Unmarshal(b, &v)
			call = fmt.Sprintf("weight %d", v.Canary)
		}
		if p.during != nil {
			p.during(call)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.calls = append(p.calls, call)
		if p.fail[call] {
			http.Error(w, "refused", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxyAPI) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

type gateFunc func(service string) (GateAnswer, error)

func (f gateFunc) Ask(_ context.Context, service, _, _ string) (GateAnswer, error) { return f(service) }

// verdicts answers each analysis with the next verdict of its list (the
// last one repeats) and records the requests.
type verdicts struct {
	mu   sync.Mutex
	list []string
	reqs []AnalysisRequest
}

func (v *verdicts) Analyze(_ context.Context, r AnalysisRequest) (Verdict, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reqs = append(v.reqs, r)
	res := v.list[0]
	if len(v.list) > 1 {
		v.list = v.list[1:]
	}
	if res == verdictFailNoData {
		// A fail by no-data policies only (Verdict.NoData).
		return Verdict{Result: VerdictFail, Reason: "the test says fail, no data", NoData: true}, nil
	}
	return Verdict{Result: res, Reason: "the test says " + res}, nil
}

const verdictFailNoData = "fail-no-data"

type recorded struct {
	mu       sync.Mutex
	started  []Deployment
	finished map[int64]string
}

func (r *recorded) Started(_ context.Context, d Deployment) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, d)
	return int64(len(r.started)), nil
}

func (r *recorded) Finished(_ context.Context, id int64, outcome string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished == nil {
		r.finished = map[int64]string{}
	}
	r.finished[id] = outcome
	return nil
}

func (r *recorded) ReleaseSlot(context.Context, int64) error { return nil }

type harness struct {
	t     *testing.T
	db    *store.DB
	clock *clock.Manual
	proxy *proxyAPI
	act   *runbook.Actuator
	svc   *Service
	an    *verdicts
	rec   *recorded
	gate  gateFunc
	bus   *events.Bus
	reg   *prometheus.Registry
	cfg   Config
	defs  []*Definition
}

func newHarness(t *testing.T, db *store.DB, defs ...string) *harness {
	h := &harness{t: t, db: db, clock: clock.NewManual(t0), proxy: newProxyAPI(t), an: &verdicts{list: []string{VerdictPass}},
		rec: &recorded{}, bus: events.NewBus(256, nil), cfg: DefaultConfig}
	h.gate = func(string) (GateAnswer, error) {
		return GateAnswer{Allowed: true, State: "green", Reason: "budget green"}, nil
	}
	rcfg := runbook.DefaultConfig
	rcfg.HTTPEndpoints = map[string]runbook.HTTPEndpoint{"proxy": {URL: h.proxy.URL}}
	var err error
	h.act, err = runbook.NewActuator(rcfg, nil, h.clock)
	require.NoError(t, err)
	for i, d := range defs {
		def, err := Parse([]byte(d), fmt.Sprintf("def%d.yml", i))
		require.NoError(t, err)
		h.defs = append(h.defs, def)
	}
	h.restart()
	return h
}

// restart builds a new service on the same store, as a restarted sred does.
func (h *harness) restart() {
	h.reg = prometheus.NewRegistry()
	h.svc = New(Options{DB: h.db, Registerer: h.reg, Bus: h.bus, Clock: h.clock, Actuator: h.act,
		Gate: gateFunc(func(s string) (GateAnswer, error) { return h.gate(s) }), Analyzer: h.an, Recorder: h.rec})
	require.NoError(h.t, h.svc.ApplyConfig(h.cfg, h.defs))
}

func (h *harness) start(name, version string) *Rollout {
	h.t.Helper()
	ro, err := h.svc.Start(context.Background(), StartRequest{Name: name, Version: version, Stable: "v1", Actor: "alice"})
	require.NoError(h.t, err)
	return ro
}

// run runs what is due now.
func (h *harness) run() {
	h.t.Helper()
	_, err := h.svc.RunDue(context.Background())
	require.NoError(h.t, err)
}

func (h *harness) get(id int64) *Rollout {
	h.t.Helper()
	ro, err := h.svc.Get(context.Background(), id)
	require.NoError(h.t, err)
	return ro
}

func (h *harness) lock(target string) *targetlock.Lock {
	l, err := targetlock.New(h.db).Get(context.Background(), target)
	require.NoError(h.t, err)
	return l
}

func kinds(ro *Rollout) []string {
	var out []string
	for _, e := range ro.Events {
		out = append(out, e.Kind+":"+e.Status)
	}
	return out
}

func TestCanaryPromotedStageByStage(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		ro := h.start("api-canary", "v2")
		require.Equal(t, StateRunning, ro.State)
		require.Equal(t, "weight-10", ro.Stages[ro.Stage].Name)
		require.Equal(t, LockKind, h.lock("staging/api").Kind)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, []string{"weight 10"}, h.proxy.got())
		require.Equal(t, phaseHold, ro.Phase)
		require.Equal(t, t0.Add(5*time.Minute), *ro.Due)

		h.clock.Advance(5*time.Minute - time.Second)
		h.run()
		require.Equal(t, []string{"weight 10"}, h.proxy.got(), "the stage is held for its duration")
		h.clock.Advance(time.Second)
		h.run()
		require.Equal(t, []string{"weight 10", "weight 50"}, h.proxy.got())
		h.clock.Advance(10 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, []string{"weight 10", "weight 50", "weight 100"}, h.proxy.got())
		require.Equal(t, StateSucceeded, ro.State, ro.Reason)
		require.Equal(t, 100, ro.Weight)
		require.Nil(t, h.lock("staging/api"), "the lock is released")

		require.Len(t, h.an.reqs, 2)
		require.Equal(t, AnalysisRequest{Spec: "api", Service: "api", Rollout: "api-canary", RolloutID: ro.ID, Stage: "weight-10",
			Weight: 10, Version: "v2", Stable: "v1", Canary: map[string]string{"track": "canary"}, Baseline: map[string]string{"track": "stable"},
			Start: t0, End: t0.Add(5 * time.Minute)}, h.an.reqs[0])
		require.Equal(t, []string{"started:running", "gate:allow", "stage:entered", "action:ok", "stage:holding", "analysis:pass",
			"stage:entered", "action:ok", "stage:holding", "analysis:pass", "stage:entered", "action:ok", "succeeded:succeeded"}, kinds(ro))
		require.Equal(t, "succeeded", h.rec.finished[ro.ChangeID])
		require.Equal(t, "v2", h.rec.started[0].Version)
		require.Equal(t, 1.0, testutil.ToFloat64(h.svc.m.finished.WithLabelValues(StrategyCanary, StateSucceeded)))
		require.Equal(t, 2.0, testutil.ToFloat64(h.svc.m.analyses.WithLabelValues(VerdictPass)))

		// The next rollout's stable version defaults to this one.
		next, err := h.svc.Start(context.Background(), StartRequest{Name: "api-canary", Version: "v3", Actor: "alice"})
		require.NoError(t, err)
		require.Equal(t, "v2", next.Stable)
	})
}

func TestAnalysisFailRollsBack(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.an.list = []string{VerdictFail}
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateRolledBack, ro.State)
		require.Equal(t, "stage weight-10 analysis failed: the test says fail", ro.Reason)
		require.Equal(t, []string{"weight 10", "weight 0"}, h.proxy.got())
		require.Equal(t, 0, ro.Weight)
		require.Equal(t, "rolled_back", h.rec.finished[ro.ChangeID])
		require.Nil(t, h.lock("staging/api"))
	})
}

// A fail that comes only from no-data policies holds the stage and runs
// its analysis again every retry_interval: the data comes, and the canary
// goes on as the analysis says.
func TestNoDataFailWaitsForData(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.an.list = []string{verdictFailNoData, verdictFailNoData, VerdictPass}
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateRunning, ro.State, ro.Reason)
		require.Equal(t, phaseHold, ro.Phase)
		require.Equal(t, []string{"weight 10"}, h.proxy.got(), "neither rolled back nor promoted")
		last := ro.Events[len(ro.Events)-1]
		require.Equal(t, "stage:no_data", last.Kind+":"+last.Status)
		require.Equal(t, "stage weight-10: no data yet, no check failed on measured data: analysed again every 10s, rolled back if there is still no data at 2026-12-03T10:10:00Z", last.Message)

		h.clock.Advance(10*time.Second - time.Millisecond)
		h.run()
		require.Len(t, h.an.reqs, 1, "analysed again after retry_interval")
		h.clock.Advance(time.Millisecond)
		h.run()
		require.Len(t, h.an.reqs, 2)
		h.clock.Advance(10 * time.Second)
		h.run()
		ro = h.get(ro.ID)
		require.Len(t, h.an.reqs, 3)
		require.Equal(t, AnalysisRequest{Spec: "api", Service: "api", Rollout: "api-canary", RolloutID: ro.ID, Stage: "weight-10",
			Weight: 10, Version: "v2", Stable: "v1", Canary: map[string]string{"track": "canary"}, Baseline: map[string]string{"track": "stable"},
			Start: t0, End: t0.Add(5*time.Minute + 20*time.Second)}, h.an.reqs[2])
		require.Equal(t, StateRunning, ro.State, ro.Reason)
		require.Equal(t, "weight-50", ro.Stages[ro.Stage].Name)
		require.Equal(t, []string{"weight 10", "weight 50"}, h.proxy.got())
		// The wait is recorded when it begins and when it ends, not at
		// every analysis of it.
		require.Equal(t, []string{"started:running", "gate:allow", "stage:entered", "action:ok", "stage:holding",
			"analysis:fail", "stage:no_data", "analysis:pass", "stage:data",
			"stage:entered", "action:ok", "stage:holding"}, kinds(ro))
		data := ro.Events[8]
		require.Equal(t, "stage weight-10: the analysis has data after 20s of waiting (since 2026-12-03T10:05:00Z): pass", data.Message)
		require.Nil(t, ro.NoDataSince)
	})
}

// A canary that still has no data no_data_wait after its stage's hold is
// rolled back, saying so; a fail on measured data rolls back at once
// (TestAnalysisFailRollsBack).
func TestNoDataFailRollsBackAfterWait(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.an.list = []string{verdictFailNoData}
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		deadline := t0.Add(10 * time.Minute)
		for h.clock.Now().Before(deadline) {
			ro = h.get(ro.ID)
			require.Equal(t, StateRunning, ro.State, "%s: %s", h.clock.Now(), ro.Reason)
			require.Equal(t, []string{"weight 10"}, h.proxy.got())
			h.clock.Advance(10 * time.Second)
			h.run()
		}
		ro = h.get(ro.ID)
		require.Equal(t, StateRolledBack, ro.State)
		require.Equal(t, "stage weight-10 analysis failed on no data: still none 5m0s after the stage's hold (rollouts.no_data_wait): the test says fail, no data", ro.Reason)
		require.Equal(t, []string{"weight 10", "weight 0"}, h.proxy.got())
		require.Len(t, h.an.reqs, 31, "every 10s from the end of the hold to no_data_wait after it")
		// 31 analyses, and the history says the wait began and ended.
		require.Equal(t, []string{"started:running", "gate:allow", "stage:entered", "action:ok", "stage:holding",
			"analysis:fail", "stage:no_data", "stage:no_data_timeout", "rollback:started", "action:ok", "rolled_back:rolled_back"}, kinds(ro))
		require.Equal(t, "stage weight-10: still no data at 2026-12-03T10:10:00Z, 5m0s after the hold (since 2026-12-03T10:05:00Z): the test says fail, no data",
			ro.Events[7].Message)
		require.Equal(t, "rolled_back", h.rec.finished[ro.ChangeID])
		require.Nil(t, h.lock("staging/api"))

		// With no_data_wait 0, it rolls back at the end of the hold.
		h.cfg.NoDataWait = 0
		h.restart()
		h.an.reqs = nil
		ro = h.start("api-canary", "v3")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateRolledBack, ro.State)
		require.Len(t, h.an.reqs, 1)
	})
}

// During a no-data wait, the rollout's due (API and srectl rollout status)
// is its next analysis, and no_data_since when the wait began.
func TestNoDataWaitDueIsNextAnalysis(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.an.list = []string{verdictFailNoData, verdictFailNoData, VerdictPass}
		ro := h.start("api-canary", "v2")
		h.run()
		mux := http.NewServeMux()
		h.svc.Routes(mux, true)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		get := func() (due, since string) {
			t.Helper()
			resp, err := http.Get(fmt.Sprintf("%s/api/v1/rollouts/%d", srv.URL, ro.ID))
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var a struct {
				Data struct {
					Due         string `json:"due"`
					NoDataSince string `json:"no_data_since"`
				} `json:"data"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
			return a.Data.Due, a.Data.NoDataSince
		}
		for _, step := range []struct {
			advance    time.Duration
			due, since string
			analyses   int
		}{
			{0, "2026-12-03T10:05:00Z", "", 0},                                    // held
			{5 * time.Minute, "2026-12-03T10:05:10Z", "2026-12-03T10:05:00Z", 1},  // no data: next analysis
			{10 * time.Second, "2026-12-03T10:05:20Z", "2026-12-03T10:05:00Z", 2}, // still none
			{10 * time.Second, "2026-12-03T10:15:20Z", "", 3},                     // data: next stage held 10m
		} {
			h.clock.Advance(step.advance)
			h.run()
			require.Len(t, h.an.reqs, step.analyses)
			due, since := get()
			require.Equal(t, step.due, due, "at %s", h.clock.Now())
			require.Equal(t, step.since, since, "at %s", h.clock.Now())
		}
	})
}

func TestInconclusivePausesForAHuman(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.an.list = []string{VerdictInconclusive, VerdictPass}
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StatePaused, ro.State)
		require.Contains(t, ro.Reason, "analysis inconclusive: the test says inconclusive; promote to go on")
		h.clock.Advance(time.Hour)
		h.run()
		require.Equal(t, []string{"weight 10"}, h.proxy.got(), "a paused rollout waits")
		require.Equal(t, "staging/api", h.lock("staging/api").Target, "and keeps its lock")

		_, err := h.svc.Pause(context.Background(), ro.ID, "bob", "")
		require.ErrorIs(t, err, ErrConflict)
		ro, err = h.svc.Promote(context.Background(), ro.ID, "bob", "looked at the dashboards")
		require.NoError(t, err)
		require.Equal(t, StateRunning, ro.State)
		require.Equal(t, "weight-50", ro.Stages[ro.Stage].Name)
		h.run()
		require.Equal(t, []string{"weight 10", "weight 50"}, h.proxy.got())

		ro, err = h.svc.Abort(context.Background(), ro.ID, "carol", "enough")
		require.NoError(t, err)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateAborted, ro.State)
		require.Equal(t, "aborted by carol: enough", ro.Reason)
		require.Equal(t, []string{"weight 10", "weight 50", "weight 0"}, h.proxy.got())
		var actors []string
		for _, e := range ro.Events {
			if e.Kind == "promoted" || e.Kind == "aborted" {
				actors = append(actors, e.Kind+" by "+e.Actor)
			}
		}
		require.Equal(t, []string{"promoted by bob", "aborted by carol"}, actors)
	})
}

func TestManualPause(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		sub, cancel := h.bus.Subscribe()
		defer cancel()
		ro := h.start("api-canary", "v2")
		h.run()
		ro, err := h.svc.Pause(context.Background(), ro.ID, "bob", "wait for the launch")
		require.NoError(t, err)
		require.Equal(t, StatePaused, ro.State)
		h.clock.Advance(time.Hour)
		h.run()
		require.Equal(t, []string{"weight 10"}, h.proxy.got())
		require.Empty(t, h.an.reqs, "a paused stage is not analysed")
		var types []string
	drain:
		for {
			select {
			case e := <-sub:
				types = append(types, e.Type)
			default:
				break drain
			}
		}
		require.Equal(t, []string{"rollout.started", "rollout.gate", "rollout.stage", "rollout.action", "rollout.stage", "rollout.paused"}, types)
	})
}

func TestGateDeniedStops(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.gate = func(string) (GateAnswer, error) {
			return GateAnswer{State: "red", Reason: "normal change denied: error budget of SLO availability is red"}, nil
		}
		ro := h.start("api-canary", "v2")
		require.Equal(t, StateDenied, ro.State)
		require.Equal(t, "deploy gate denied: normal change denied: error budget of SLO availability is red", ro.Reason)
		h.clock.Advance(time.Hour)
		h.run()
		require.Empty(t, h.proxy.got(), "nothing changed")
		require.Nil(t, h.lock("staging/api"))
		require.Len(t, h.rec.started, 1)
		require.True(t, h.rec.started[0].Refused)
		require.Equal(t, 1.0, testutil.ToFloat64(h.svc.m.finished.WithLabelValues(StrategyCanary, StateDenied)))
	})
}

func TestTargetLockShared(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		locks := targetlock.New(db)
		require.NoError(t, locks.Acquire(context.Background(), "staging/api", "chaos", "run-1", t0, time.Hour))
		ro := h.start("api-canary", "v2")
		require.Equal(t, StateRefused, ro.State)
		require.Contains(t, ro.Reason, "target staging/api is locked by chaos run-1")
		require.NoError(t, locks.Release(context.Background(), "staging/api", "run-1"))

		ro = h.start("api-canary", "v2")
		require.Equal(t, StateRunning, ro.State)
		err := locks.Acquire(context.Background(), "staging/api", "scaling", "scaler", t0, time.Hour)
		require.ErrorContains(t, err, "locked by rollout rollout/")
	})
}

func TestActionFailureRetriesThenRollsBack(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.proxy.fail["weight 10"] = true
		ro := h.start("api-canary", "v2")
		h.run()
		h.clock.Advance(10 * time.Second)
		h.run()
		h.clock.Advance(10 * time.Second)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateRolledBack, ro.State)
		require.Contains(t, ro.Reason, "stage weight-10: action failed 3 times: PUT "+h.proxy.URL+"/weight: unexpected status 500")
		require.Equal(t, []string{"weight 10", "weight 10", "weight 10", "weight 0"}, h.proxy.got())

		// A rollback that keeps failing ends failed, for a human.
		h.proxy.fail["weight 0"] = true
		h.proxy.fail["weight 10"] = false
		h.an.list = []string{VerdictFail}
		ro = h.start("api-canary", "v3")
		for range 4 {
			h.run()
			h.clock.Advance(5 * time.Minute)
		}
		ro = h.get(ro.ID)
		require.Equal(t, StateFailed, ro.State)
		require.Contains(t, ro.Reason, "rollback failed after 3 attempts")
		require.Equal(t, "failed", h.rec.finished[ro.ChangeID])
	})
}

func TestBlueGreen(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, blueGreenDef)
		ro := h.start("api-bluegreen", "v2")
		h.run()
		require.Equal(t, []string{"POST /deploy/v2", "GET /health/v2", "POST /switch/v2"}, h.proxy.got())
		ro = h.get(ro.ID)
		require.Equal(t, "watch", ro.Stages[ro.Stage].Name)
		require.Equal(t, 100, ro.Weight)
		h.clock.Advance(5 * time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateSucceeded, ro.State)
		require.Equal(t, []string{"POST /deploy/v2", "GET /health/v2", "POST /switch/v2", "POST /retire/v1"}, h.proxy.got())

		// Green failing its health check sends nothing to it.
		h.proxy.calls = nil
		h.proxy.fail["GET /health/v3"] = true
		ro, err := h.svc.Start(context.Background(), StartRequest{Name: "api-bluegreen", Version: "v3", Actor: "alice"})
		require.NoError(t, err)
		for range 3 {
			h.run()
			h.clock.Advance(10 * time.Second)
		}
		ro = h.get(ro.ID)
		require.Equal(t, StateRolledBack, ro.State)
		require.Equal(t, []string{"POST /deploy/v3", "GET /health/v3", "GET /health/v3", "GET /health/v3", "POST /switch/v2"}, h.proxy.got())
	})
}

// TestRestartResumes restarts the service on the same store in the middle
// of a rollout: the new one takes it over where it stood.
func TestRestartResumes(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		ro := h.start("api-canary", "v2")
		h.run()
		h.restart()
		h.clock.Advance(5 * time.Minute)
		h.run()
		require.Equal(t, []string{"weight 10", "weight 50"}, h.proxy.got())
		h.restart()
		// The lock is renewed by whoever runs the rollout now.
		h.clock.Advance(9 * time.Minute)
		h.run()
		require.Equal(t, t0.Add(14*time.Minute+time.Duration(DefaultConfig.LockTTL)), h.lock("staging/api").Expires)
		h.clock.Advance(time.Minute)
		h.run()
		ro = h.get(ro.ID)
		require.Equal(t, StateSucceeded, ro.State)
		require.Equal(t, []string{"weight 10", "weight 50", "weight 100"}, h.proxy.got())
	})
}

// TestInterruptedTransition: a sred died in the middle of a transition
// (its job is still leased to it). After the lease, the next one resumes
// it or rolls it back, as configured.
func TestInterruptedTransition(t *testing.T) {
	for _, policy := range []string{InterruptedResume, InterruptedRollback} {
		t.Run(policy, func(t *testing.T) {
			sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, canaryDef)
				h.cfg.Interrupted = policy
				h.restart()
				ro := h.start("api-canary", "v2")
				h.run()
				h.clock.Advance(2 * time.Minute)
				h.run() // the gate's fallback job, moot since Start asked the gate
				h.clock.Advance(3 * time.Minute)
				// The dead sred claimed the stage's end and died.
				got, err := jobs.Claim(context.Background(), db, jobs.ClaimOptions{Queue: Queue, Owner: "dead", Now: h.clock.Now(), Lease: time.Minute})
				require.NoError(t, err)
				require.Len(t, got, 1)
				h.restart()
				h.run()
				require.Equal(t, []string{"weight 10"}, h.proxy.got(), "the lease is still the dead sred's")
				h.clock.Advance(time.Minute)
				h.run()
				ro = h.get(ro.ID)
				if policy == InterruptedResume {
					require.Equal(t, []string{"weight 10", "weight 50"}, h.proxy.got())
					require.Equal(t, StateRunning, ro.State)
					require.Contains(t, kinds(ro), "interrupted:resume")
				} else {
					require.Equal(t, []string{"weight 10", "weight 0"}, h.proxy.got())
					require.Equal(t, StateRolledBack, ro.State)
					require.Contains(t, ro.Reason, "stopped in the middle of it")
				}
			})
		})
	}
}

// TestGateAnsweredByJob: a sred that died before the gate answered leaves
// the job, which the next one runs.
func TestGateAnsweredByJob(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		// What Start writes before it asks the gate.
		def := h.defs[0]
		text := `name: api-canary
service: api
environment: staging
analysis: {spec: api, canary: {track: canary}, baseline: {track: stable}}
canary:
  stages: [{weight: 100}]
  set_weight: {http: {endpoint: proxy, method: PUT, path: /weight, body: '{"canary": {{ .Vars.weight }}}'}}
`
		_ = def
		require.NoError(t, db.InTx(context.Background(), func(tx *sql.Tx) error {
			var id int64
			if err := tx.QueryRowContext(context.Background(), `INSERT INTO rollouts (name, service, environment, strategy, version, stable, state, stage, phase,
seq, actor, definition, created_ms, updated_ms) VALUES ('api-canary', 'api', 'staging', 'canary', 'v2', 'v1', 'running', -1, 'gate', 1, 'alice', $1, $2, $2) RETURNING id`,
				text, jobs.Millis(t0)).Scan(&id); err != nil {
				return err
			}
			return h.svc.enqueue(context.Background(), tx, id, 1, t0.Add(2*time.Minute))
		}))
		h.restart()
		h.run()
		require.Empty(t, h.proxy.got())
		h.clock.Advance(2 * time.Minute)
		h.run()
		require.Equal(t, []string{"weight 100"}, h.proxy.got())
		list, err := h.svc.List(context.Background(), ListFilter{})
		require.NoError(t, err)
		require.Equal(t, StateSucceeded, list[0].State)
		require.True(t, strings.HasPrefix(kinds(h.get(list[0].ID))[0], "gate:allow"))
	})
}

// TestManualCommandDuringAction: a pause that lands while a stage's action
// is in flight wins; the weight the action set is still recorded.
func TestManualCommandDuringAction(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		var id int64
		h.proxy.during = func(call string) {
			if call == "weight 10" {
				_, err := h.svc.Pause(context.Background(), id, "bob", "not now")
				require.NoError(t, err)
			}
		}
		ro := h.start("api-canary", "v2")
		id = ro.ID
		h.run()
		ro = h.get(id)
		require.Equal(t, StatePaused, ro.State)
		require.Equal(t, 10, ro.Weight, "the weight the action set")
		require.Contains(t, kinds(ro), "action:ok")
		require.Contains(t, ro.Events[len(ro.Events)-1].Message, "moved by hand meanwhile")
		h.proxy.during = nil
		ro, err := h.svc.Promote(context.Background(), id, "bob", "")
		require.NoError(t, err)
		require.Equal(t, "weight-50", ro.Stages[ro.Stage].Name)
	})
}

// The rollout API reads its bodies as strictly as the rest of the API: a
// reason with a NUL byte (which PostgreSQL cannot store), a second JSON
// value or a reason over MaxReason is a 400 naming the problem, and nothing
// changes.
func TestAPIBodiesStrict(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		ro := h.start("api-canary", "v2")
		h.run()
		mux := http.NewServeMux()
		h.svc.Routes(mux, true)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		for _, tc := range []struct{ body, err string }{
			{`{"reason": "a\u0000b"}`, "body: reason: NUL byte at offset 1"},
			{`{"reason": "a"} {"reason": "b"}`, "body: trailing data after the JSON value"},
			// Bounded as the gate's override reason: a 1 MiB one was
			// stored twice and shown on every read of the rollout.
			{`{"reason": "` + strings.Repeat("é", 1001) + `"}`, "bad request: reason is 1001 characters, longer than 1000"},
		} {
			resp, err := http.Post(fmt.Sprintf("%s/api/v1/rollouts/%d/pause", srv.URL, ro.ID), "application/json", strings.NewReader(tc.body))
			require.NoError(t, err)
			var a struct{ Error string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.body)
			require.Equal(t, tc.err, a.Error, tc.body)
		}
		require.Equal(t, StateRunning, h.get(ro.ID).State)
	})
}

// A rollout aborted while the deploy gate answers ends aborted; the change
// its gate transition recorded before losing to the abort is finished
// (rolled back), not left in progress for ever.
func TestAbortDuringGateFinishesItsChange(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		h.gate = func(string) (GateAnswer, error) {
			ros, err := h.svc.List(context.Background(), ListFilter{Active: true})
			require.NoError(t, err)
			require.Len(t, ros, 1)
			_, err = h.svc.Abort(context.Background(), ros[0].ID, "bob", "wrong build")
			require.NoError(t, err)
			return GateAnswer{Allowed: true, State: "green", Reason: "budget green"}, nil
		}
		ro := h.start("api-canary", "v2")
		h.run()
		require.Equal(t, StateAborted, h.get(ro.ID).State)
		require.Empty(t, h.proxy.got(), "no traffic moved")
		require.Len(t, h.rec.started, 1)
		require.Equal(t, map[int64]string{1: "rolled_back"}, h.rec.finished)
	})
}

// GET /api/v1/rollouts?active= takes true or false (as strconv.ParseBool
// reads them): ?active=yes is a 400 naming it. Before, any other value
// read as false and listed every rollout, finished ones included.
func TestListActiveParam(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, canaryDef)
		ro := h.start("api-canary", "v2")
		h.run()
		_, err := h.svc.Abort(context.Background(), ro.ID, "bob", "wrong build")
		require.NoError(t, err)
		h.run()
		require.True(t, Final(h.get(ro.ID).State))
		mux := http.NewServeMux()
		h.svc.Routes(mux, true)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		for _, tc := range []struct {
			query string
			code  int
			n     int
			err   string
		}{
			{"active=yes", http.StatusBadRequest, 0, `active: want true or false, got "yes"`},
			{"active=true", http.StatusOK, 0, ""},
			{"active=1", http.StatusOK, 0, ""},
			{"active=false", http.StatusOK, 1, ""},
			{"", http.StatusOK, 1, ""},
		} {
			resp, err := http.Get(srv.URL + "/api/v1/rollouts?" + tc.query)
			require.NoError(t, err)
			var a struct {
				Data  []json.RawMessage
				Error string
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode, tc.query)
			require.Equal(t, tc.err, a.Error, tc.query)
			require.Len(t, a.Data, tc.n, tc.query)
		}
	})
}
