// Package rollout runs progressive deliveries without Kubernetes
// controllers: a rollout definition (YAML) lists canary stages (weights
// held for durations) or the five steps of a blue-green deployment, and the
// runner drives them through the runbook engine's actuators (exec argv,
// http, kubernetes), asking the deploy gate first, holding the target lock
// shared with chaos experiments and scaling, and judging each stage with an
// analysis (pass, fail: roll back, inconclusive: pause for a human).
//
// Progress is durable: each transition is a job of the `rollouts` queue
// (pkg/jobs) and the rollout's row on the store, so a restarted sred, or
// another replica, takes a half-done rollout over where it stood.
package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Queue is the work queue of rollout transitions.
const Queue = "rollouts"

// KindStep is the one job kind: do the rollout's next transition.
const KindStep jobs.Kind = "step"

// LockKind names rollouts in the target lock table.
const LockKind = "rollout"

// Gate is the deploy gate (pkg/budget). Ask is the gate step's request
// for the deployment the runner records next: a deployment allowed under
// the yellow quota takes its slot of the quota (GateAnswer.QuotaSlot).
type Gate interface {
	Ask(ctx context.Context, service, change, actor string) (GateAnswer, error)
}

// GateAnswer is the deploy gate's answer.
type GateAnswer struct {
	Allowed bool   `json:"allowed"`
	State   string `json:"state,omitempty"`
	Reason  string `json:"reason"`
	// QuotaSlot is the slot of the yellow quota (changes.
	// yellow_max_changes_per_day) the allowed deployment took (0: none):
	// recording the deployment consumes it (Deployment.QuotaSlot), and a
	// gate step that records none gives it back (Recorder.ReleaseSlot).
	QuotaSlot int64 `json:"-"`
}

// Verdicts of an analysis.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive"
)

// AnalysisRequest asks for the judgement of one stage.
type AnalysisRequest struct {
	// Spec names the analysis spec of the definition.
	Spec      string
	Service   string
	Rollout   string
	RolloutID int64
	Stage     string
	// Weight is the canary's share of traffic during the stage.
	Weight int
	// Version is the new version, Stable the one it replaces.
	Version, Stable string
	// Canary and Baseline are the label sets selecting their series.
	Canary, Baseline map[string]string
	// Start and End bound the stage.
	Start, End time.Time
}

// Verdict is an analysis' judgement.
type Verdict struct {
	// Result is pass, fail or inconclusive.
	Result string `json:"result"`
	Reason string `json:"reason"`
	// Detail is what the analysis measured (kept in the rollout's history).
	Detail map[string]any `json:"detail,omitempty"`
	// NoData, with Result fail, says that no check failed on measured
	// data: every failing check failed by its no-data policy (a canary
	// Prometheus has not scraped yet). That is no evidence against the
	// canary, and no reason to promote it either: the stage waits for the
	// data (Config.NoDataWait).
	NoData bool `json:"no_data,omitempty"`
}

// Analyzer judges a stage (pkg/analysis). A canary with no traffic must
// be inconclusive, never a pass.
type Analyzer interface {
	Analyze(ctx context.Context, r AnalysisRequest) (Verdict, error)
}

// Deployment is what the runner records as a change.
type Deployment struct {
	Service   string
	Version   string
	Rollout   string
	RolloutID int64
	Actor     string
	Gate      GateAnswer
	// Refused: the gate denied it (recorded finished, as refused).
	Refused bool
	Started time.Time
	// QuotaSlot is the gate's slot of the yellow quota
	// (GateAnswer.QuotaSlot), consumed by the record.
	QuotaSlot int64
}

// Recorder records deployments as changes (pkg/change).
type Recorder interface {
	// Started records a deployment; it returns the change's id.
	Started(ctx context.Context, d Deployment) (int64, error)
	// Finished sets its outcome: succeeded, rolled_back or failed.
	Finished(ctx context.Context, id int64, outcome string) error
	// ReleaseSlot gives back the gate's slot of the yellow quota
	// (GateAnswer.QuotaSlot, 0: none) when the gate step records no
	// deployment with it: the target lock was refused, or the step is
	// tried again (and asks the gate again).
	ReleaseSlot(ctx context.Context, slot int64) error
}

// Options are the dependencies of the service.
type Options struct {
	DB         *store.DB
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Bus        *events.Bus
	Clock      clock.Timer
	// Actuator runs the definitions' actions (the runbook engine's).
	Actuator *runbook.Actuator
	// Gate is asked before anything changes (nil: every rollout is denied).
	Gate Gate
	// Analyzer judges stages of definitions that name an analysis (nil:
	// those stages are inconclusive, and the rollout pauses).
	Analyzer Analyzer
	// Recorder records deployments (nil: not recorded).
	Recorder Recorder
	// Owner names this replica in job leases (default jobs.Owner()).
	Owner string
}

// Service starts, drives and reports rollouts.
type Service struct {
	o      Options
	db     *store.DB
	locks  *targetlock.Locks
	m      *metrics
	logger *slog.Logger

	mu       sync.RWMutex
	cfg      Config
	defs     map[string]*Definition
	analyzer Analyzer
	recorder Recorder

	wake chan struct{}
	// cycles counts finished polls, for tests.
	cycles chan struct{}
}

// New returns the service; the DB must be migrated with Migrations,
// jobs.Migrations and targetlock.Migrations.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Owner == "" {
		o.Owner = jobs.Owner()
	}
	s := &Service{o: o, db: o.DB, locks: targetlock.New(o.DB), logger: o.Logger, cfg: DefaultConfig,
		defs: map[string]*Definition{}, analyzer: o.Analyzer, recorder: o.Recorder, wake: make(chan struct{}, 1)}
	s.m = newMetrics(o.Registerer, o.DB)
	jobs.NewMetrics(o.DB, Queue, []jobs.Kind{KindStep}, o.Clock, o.Registerer)
	return s
}

// ApplyConfig installs a configuration and the definitions loaded with it.
// Rollouts in progress keep the definition they started with.
func (s *Service) ApplyConfig(cfg Config, defs []*Definition) error {
	m := map[string]*Definition{}
	for _, d := range defs {
		if _, ok := m[d.Name]; ok {
			return fmt.Errorf("rollouts: definition %q defined twice", d.Name)
		}
		m[d.Name] = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.defs = cfg, m
	return nil
}

// SetAnalyzer installs the analysis engine.
func (s *Service) SetAnalyzer(a Analyzer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.analyzer = a
}

// SetRecorder installs the change recorder.
func (s *Service) SetRecorder(r Recorder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorder = r
}

func (s *Service) config() Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// Definitions returns the loaded definitions by name.
func (s *Service) Definitions() []*Definition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Definition, 0, len(s.defs))
	for _, d := range s.defs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Definition returns a loaded definition.
func (s *Service) Definition(name string) (*Definition, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.defs[name]
	return d, ok
}

func (s *Service) now() time.Time { return s.o.Clock.Now().UTC().Truncate(time.Millisecond) }

// Errors of requests (the API answers them 400, 404 and 409).
var (
	ErrBadRequest = errors.New("bad request")
	ErrConflict   = errors.New("conflict")
)

// StartRequest starts a rollout.
type StartRequest struct {
	// Name is the definition's.
	Name string `json:"name"`
	// Version is the new version.
	Version string `json:"version"`
	// Stable is the version serving now (default: the version of the
	// definition's last successful rollout).
	Stable string `json:"stable,omitempty"`
	Actor  string `json:"-"`
}

// Start asks the deploy gate and, if it allows, takes the target lock and
// begins the first stage. A denied gate or a held lock ends the rollout at
// once (state denied or refused, with the reason); it is recorded either way.
func (s *Service) Start(ctx context.Context, req StartRequest) (*Rollout, error) {
	def, ok := s.Definition(req.Name)
	if !ok {
		return nil, fmt.Errorf("no rollout definition %s is loaded (see rollouts.files): %w", limits.Quote(req.Name), ErrNotFound)
	}
	re := regexp.MustCompile("^(?:" + def.VersionPattern + ")$")
	if !re.MatchString(req.Version) {
		return nil, fmt.Errorf("%w: version %s does not match the definition's version_pattern %q", ErrBadRequest, limits.Quote(req.Version), def.VersionPattern)
	}
	if req.Stable == "" {
		prev, err := listRollouts(ctx, s.db, ListFilter{Name: def.Name, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, p := range prev {
			if p.State == StateSucceeded {
				req.Stable = p.Version
				break
			}
		}
		if req.Stable == "" {
			return nil, fmt.Errorf("%w: no earlier rollout of %q succeeded: say which version is stable now (stable)", ErrBadRequest, def.Name)
		}
	}
	if !re.MatchString(req.Stable) {
		return nil, fmt.Errorf("%w: stable version %s does not match the definition's version_pattern %q", ErrBadRequest, limits.Quote(req.Stable), def.VersionPattern)
	}
	if req.Stable == req.Version {
		return nil, fmt.Errorf("%w: version %s is already the stable version", ErrBadRequest, limits.Quote(req.Version))
	}
	if req.Actor == "" {
		req.Actor = "unknown"
	}
	text, err := yaml.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: encode definition: %w", def.Name, err)
	}
	now := s.now()
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO rollouts (name, service, environment, strategy, version, stable, state, stage, phase,
seq, actor, definition, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 'running', -1, 'gate', 1, $7, $8, $9, $9) RETURNING id`,
			def.Name, def.Service, def.Environment, def.Strategy(), req.Version, req.Stable, req.Actor, string(text), jobs.Millis(now)).Scan(&id); err != nil {
			return fmt.Errorf("insert rollout: %w", err)
		}
		if err := insertEvent(ctx, tx, id, now, Event{Kind: "started", Status: StateRunning, Actor: req.Actor,
			Message: fmt.Sprintf("rollout of %s %s (stable %s) started by %s", def.Service, req.Version, req.Stable, req.Actor)}); err != nil {
			return err
		}
		// The gate is asked below, in this request; the job takes over if
		// this sred dies before it answered.
		return s.enqueue(ctx, tx, id, 1, now.Add(time.Duration(s.config().Lease)))
	})
	if err != nil {
		return nil, err
	}
	ro, err := getRollout(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	s.publish(ro, Event{Kind: "started", Status: StateRunning, Actor: req.Actor})
	s.step(ctx, ro, 0)
	s.Wake()
	return s.Get(ctx, id)
}

func jobKey(id, seq int64) string {
	return "r" + strconv.FormatInt(id, 10) + "/s" + strconv.FormatInt(seq, 10)
}

func (s *Service) enqueue(ctx context.Context, tx *sql.Tx, id, seq int64, at time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, s.now(), jobs.New{Queue: Queue, Kind: KindStep, Key: jobKey(id, seq),
		Group: "rollout/" + strconv.FormatInt(id, 10), RunAt: at, Payload: stepPayload{ID: id, Seq: seq}})
	return err
}

type stepPayload struct {
	ID  int64 `json:"id"`
	Seq int64 `json:"seq"`
}

// Get returns a rollout with its history.
func (s *Service) Get(ctx context.Context, id int64) (*Rollout, error) {
	ro, err := getRollout(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	if ro.Events, err = listEvents(ctx, s.db, id); err != nil {
		return nil, err
	}
	return ro, nil
}

// List returns rollouts, newest first.
func (s *Service) List(ctx context.Context, f ListFilter) ([]*Rollout, error) {
	return listRollouts(ctx, s.db, f)
}

// Wake makes the runner look for due work now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run drives rollouts until ctx ends: every poll interval (or when woken)
// it renews the target locks of active rollouts and runs the due
// transitions.
func (s *Service) Run(ctx context.Context) error {
	for {
		if _, err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("run due rollout stages", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.o.Clock.After(time.Duration(s.config().PollInterval)):
		}
	}
}

// RunDue renews the locks of active rollouts, makes sure each running one
// has its next transition queued, and runs the transitions due now. It
// returns how many it ran.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	if err := s.keepActive(ctx); err != nil {
		return 0, err
	}
	cfg := s.config()
	n := 0
	for {
		got, err := jobs.Claim(ctx, s.db, jobs.ClaimOptions{Queue: Queue, Owner: s.o.Owner, Now: s.now(), Lease: time.Duration(cfg.Lease)})
		if err != nil {
			return n, err
		}
		if len(got) == 0 {
			return n, nil
		}
		j := got[0]
		n++
		var p stepPayload
		if err := j.Decode(&p); err != nil {
			_ = jobs.Fail(ctx, s.db, j.ID, s.o.Owner, s.now(), err.Error())
			continue
		}
		ro, err := getRollout(ctx, s.db, p.ID)
		if err != nil || ro.seq != p.Seq || ro.State != StateRunning {
			// Moved on (paused, promoted, aborted) or gone: nothing to do.
			if cerr := jobs.Complete(ctx, s.db, j.ID, s.o.Owner, s.now()); cerr != nil {
				return n, cerr
			}
			continue
		}
		if j.Attempts > 1 {
			s.interrupted(ctx, ro, j.ID)
			continue
		}
		s.step(ctx, ro, j.ID)
	}
}

// keepActive renews the target lock of every active rollout and queues
// the next transition of running ones that have none (it never forgets).
func (s *Service) keepActive(ctx context.Context) error {
	active, err := listRollouts(ctx, s.db, ListFilter{Active: true, Limit: 1000})
	if err != nil {
		return err
	}
	cfg := s.config()
	now := s.now()
	for _, ro := range active {
		if ro.Phase == "gate" {
			continue
		}
		holder := holderOf(ro.ID)
		err := s.locks.Renew(ctx, ro.def.Target(), holder, now, time.Duration(cfg.LockTTL))
		if errors.Is(err, targetlock.ErrNotHeld) {
			err = s.locks.Acquire(ctx, ro.def.Target(), LockKind, holder, now, time.Duration(cfg.LockTTL))
		}
		var held *targetlock.HeldError
		if errors.As(err, &held) && ro.State == StateRunning {
			_, _ = s.manual(ctx, ro.ID, "system", "pause", fmt.Sprintf("target lock lost: %v", err))
			continue
		}
		if err != nil && !errors.As(err, &held) {
			s.logger.Warn("renew rollout target lock", "rollout", ro.ID, "err", err)
		}
		if ro.State == StateRunning {
			at := now
			if ro.Phase == phaseHold && ro.Due != nil {
				at = *ro.Due
			}
			if err := s.db.InTx(ctx, func(tx *sql.Tx) error { return s.enqueue(ctx, tx, ro.ID, ro.seq, at) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func holderOf(id int64) string { return "rollout/" + strconv.FormatInt(id, 10) }

// interrupted handles a transition whose sred died in the middle of it.
func (s *Service) interrupted(ctx context.Context, ro *Rollout, jobID int64) {
	cfg := s.config()
	msg := fmt.Sprintf("the sred running stage %s (%s) stopped in the middle of it", s.stageName(ro), ro.Phase)
	if cfg.Interrupted == InterruptedRollback && ro.Phase != phaseRollback && ro.Phase != "gate" {
		t := s.begin(ro)
		t.event(Event{Kind: "interrupted", Status: "rollback", Actor: "system", Message: msg + "; rolling back (rollouts.interrupted: rollback)"})
		t.rollback(StateRolledBack, msg)
		s.commit(ctx, t, jobID)
		return
	}
	t := s.begin(ro)
	t.event(Event{Kind: "interrupted", Status: "resume", Actor: "system", Message: msg + "; doing it again (rollouts.interrupted: resume)"})
	t.next = &t.now
	s.commit(ctx, t, jobID)
}

func (s *Service) stageName(ro *Rollout) string {
	if ro.Stage >= 0 && ro.Stage < len(ro.Stages) {
		return ro.Stages[ro.Stage].Name
	}
	return "-"
}

// transition is one move of a rollout, written in one transaction.
type transition struct {
	ro         *Rollout
	prev       int64
	prevWeight int
	now        time.Time
	events     []Event
	// next is when the next transition is due (nil: none queued).
	next *time.Time
	// actions records the outcome of actions for the metrics: what
	// (stage or rollback) and status.
	actions [][2]string
}

func (s *Service) begin(ro *Rollout) *transition {
	cp := *ro
	t := &transition{ro: &cp, prev: ro.seq, prevWeight: ro.Weight, now: s.now()}
	cp.seq++
	cp.Updated = t.now
	return t
}

func (t *transition) event(e Event) {
	if e.Stage == "" && t.ro.Stage >= 0 && t.ro.Stage < len(t.ro.Stages) {
		e.Stage = t.ro.Stages[t.ro.Stage].Name
	}
	t.events = append(t.events, e)
}

// rollback moves the rollout to its rollback phase, ending in state ending.
func (t *transition) rollback(ending, reason string) {
	t.ro.Phase, t.ro.ending, t.ro.Reason, t.ro.attempts = phaseRollback, ending, reason, 0
	t.ro.State, t.ro.NoDataSince = StateRunning, nil
	t.next = &t.now
}

// finish ends the rollout in state.
func (t *transition) finish(state, reason string) {
	t.ro.State, t.ro.Phase, t.ro.Reason = state, phaseDone, reason
	now := t.now
	t.ro.Finished, t.ro.Due, t.ro.NoDataSince, t.next = &now, nil, nil, nil
}

// enter begins stage i (or finishes the rollout past the last one).
func (t *transition) enter(i int) {
	t.ro.Stage, t.ro.attempts, t.ro.Due, t.ro.NoDataSince = i, 0, nil, nil
	if i >= len(t.ro.Stages) {
		t.finish(StateSucceeded, "")
		t.event(Event{Kind: "succeeded", Status: StateSucceeded, Actor: "system", Stage: "-",
			Message: fmt.Sprintf("%s %s has all the traffic", t.ro.Service, t.ro.Version)})
		return
	}
	now := t.now
	t.ro.Phase, t.ro.StageStarted, t.ro.State = phaseAct, &now, StateRunning
	t.next = &t.now
}

// commit writes t: the rollout (if no one moved it meanwhile), its
// events and its next job, and completes jobID; then it publishes the
// events and, for a finished rollout, releases the lock and records the
// outcome.
func (s *Service) commit(ctx context.Context, t *transition, jobID int64) bool {
	ctx = context.WithoutCancel(ctx)
	if Final(t.ro.State) {
		// Before the rollout's row: a sred dying in between does the
		// transition again, and finishing a change twice alike is a no-op.
		s.recordOutcome(ctx, t.ro)
	}
	saved := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := save(ctx, tx, t.ro, t.prev)
		if err != nil {
			return err
		}
		saved = ok
		if !ok {
			// A manual command moved the rollout meanwhile and wins; what
			// this transition's action did to the traffic is still a fact.
			return s.keepFacts(ctx, tx, t)
		}
		if ok {
			for _, e := range t.events {
				if err := insertEvent(ctx, tx, t.ro.ID, t.now, e); err != nil {
					return err
				}
			}
			if t.next != nil {
				if err := s.enqueue(ctx, tx, t.ro.ID, t.ro.seq, *t.next); err != nil {
					return err
				}
			}
		}
		if jobID > 0 {
			return jobs.Complete(ctx, tx, jobID, s.o.Owner, s.now())
		}
		return nil
	})
	if err != nil {
		s.logger.Error("save rollout transition", "rollout", t.ro.ID, "err", err)
		if jobID > 0 {
			_ = jobs.Retry(ctx, s.db, jobID, s.o.Owner, s.now().Add(time.Duration(s.config().RetryInterval)), err.Error())
		}
		return false
	}
	if !saved {
		s.logger.Info("rollout moved on while a transition ran; its result is dropped", "rollout", t.ro.ID)
		return false
	}
	for _, a := range t.actions {
		s.m.actions.WithLabelValues(a[0], a[1]).Inc()
	}
	for _, e := range t.events {
		s.publish(t.ro, e)
	}
	if Final(t.ro.State) {
		s.finished(ctx, t.ro)
	}
	if t.next != nil && !t.next.After(s.now()) {
		s.Wake()
	}
	return true
}

// keepFacts records the actions of a transition that lost to a manual
// command, and the weight they set.
func (s *Service) keepFacts(ctx context.Context, tx *sql.Tx, t *transition) error {
	for _, e := range t.events {
		if e.Kind != "action" {
			continue
		}
		e.Message += " (the rollout was moved by hand meanwhile)"
		if err := insertEvent(ctx, tx, t.ro.ID, t.now, e); err != nil {
			return err
		}
	}
	if t.ro.Weight == t.prevWeight {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rollouts SET weight = $1 WHERE id = $2`, t.ro.Weight, t.ro.ID); err != nil {
		return fmt.Errorf("save rollout %d weight: %w", t.ro.ID, err)
	}
	return nil
}

// recordOutcome finishes the change record of a final rollout.
func (s *Service) recordOutcome(ctx context.Context, ro *Rollout) {
	s.mu.RLock()
	rec := s.recorder
	s.mu.RUnlock()
	outcome := map[string]string{StateSucceeded: "succeeded", StateRolledBack: "rolled_back", StateAborted: "rolled_back", StateFailed: "failed"}[ro.State]
	if rec == nil || ro.ChangeID == 0 || outcome == "" {
		return
	}
	if err := rec.Finished(ctx, ro.ChangeID, outcome); err != nil {
		s.logger.Warn("record rollout outcome as a change", "rollout", ro.ID, "change", ro.ChangeID, "err", err)
	}
}

// finished releases the lock and records the outcome of a final rollout.
func (s *Service) finished(ctx context.Context, ro *Rollout) {
	if err := s.locks.Release(ctx, ro.def.Target(), holderOf(ro.ID)); err != nil {
		s.logger.Warn("release rollout target lock", "rollout", ro.ID, "err", err)
	}
	s.m.finished.WithLabelValues(ro.Strategy, ro.State).Inc()
	s.logger.Info("Rollout finished", "rollout", ro.ID, "name", ro.Name, "version", ro.Version, "state", ro.State, "reason", ro.Reason)
}

func (s *Service) publish(ro *Rollout, e Event) {
	if s.o.Bus == nil {
		return
	}
	data := map[string]any{"id": ro.ID, "name": ro.Name, "version": ro.Version, "state": ro.State, "weight": ro.Weight,
		"stage": e.Stage, "status": e.Status, "actor": e.Actor, "message": e.Message}
	s.o.Bus.Publish(events.Event{Type: "rollout." + e.Kind, Time: s.now(), Service: ro.Service, Data: data})
}

// vars are the variables of ro's actions.
func vars(ro *Rollout, weight int) map[string]string {
	st := "-"
	if ro.Stage >= 0 && ro.Stage < len(ro.Stages) {
		st = ro.Stages[ro.Stage].Name
	}
	if st == "-" {
		st = "rollback"
	}
	return map[string]string{"weight": strconv.Itoa(weight), "version": ro.Version, "stable": ro.Stable,
		"rollout": strconv.FormatInt(ro.ID, 10), "stage": st}
}
