package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/procexec"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

// Driver injects and reverts one kind of fault. Revert must work from the
// journal alone (id, fault and the state Inject returned, possibly in
// another process after a crash) and succeed when the fault is already gone.
type Driver interface {
	Inject(ctx context.Context, id string, f Fault) (json.RawMessage, error)
	Revert(ctx context.Context, id string, f Fault, state json.RawMessage) error
}

type lifetimeKey struct{}

// WithLifetime returns ctx carrying the longest a fault injected with it
// may last when no revert ever comes (its runner died and no sred rolls it
// back): drivers that can bound a fault themselves (stress-ng's --timeout)
// use it.
func WithLifetime(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, d)
}

// Lifetime returns the bound WithLifetime set, if any.
func Lifetime(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(lifetimeKey{}).(time.Duration)
	return d, ok && d > 0
}

type instancesKey struct{}

// WithInstances returns ctx carrying how many instances of the target a
// fault may touch (the experiment's target.instances, which the blast
// radius check allowed): drivers that choose the instances themselves
// (Chaos Mesh's pod selector) act on that many.
func WithInstances(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, instancesKey{}, n)
}

// Instances returns the count WithInstances set, if any.
func Instances(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(instancesKey{}).(int)
	return n, ok && n > 0
}

// ProxyBinder is a driver whose proxies are bound lazily: Bind makes a
// proxy listen (a no-op when it does) or says why it cannot; a run using an
// unbound proxy is refused with that reason.
type ProxyBinder interface {
	Bind(proxy string) error
}

// Querier runs instant PromQL queries (pkg/budget's Prom does).
type Querier interface {
	Instant(ctx context.Context, q string, at time.Time) (model.Vector, error)
}

// SLOInfo is what the runner needs of one SLO of the target service.
type SLOInfo struct {
	BudgetState
	// FastBurn is the fastest page tier: both windows above Factor page.
	FastLong, FastShort time.Duration
	FastFactor          float64
}

// Budgets reads the target's SLOs and their budget state (pkg/budget) at
// time at, the runner's clock.
type Budgets interface {
	SLOs(ctx context.Context, service string, at time.Time) ([]SLOInfo, error)
}

// Incidents reads and tags incidents (pkg/incident).
type Incidents interface {
	// OpenCritical returns the ids of open critical incidents of service.
	OpenCritical(ctx context.Context, service string) ([]string, error)
	// OpenedSince returns the ids of incidents of service opened at or after t.
	OpenedSince(ctx context.Context, service string, t time.Time) ([]string, error)
	// Tag adds a timeline note on the incident naming the experiment run.
	Tag(ctx context.Context, id, note string) error
}

// ExpectedAlerts keeps the alerts a run causes on its target from paging
// (pkg/escalation's maintenance windows).
type ExpectedAlerts interface {
	// Expect stops paging incidents matching matchers in [start, end).
	Expect(ctx context.Context, name string, matchers []string, start, end time.Time, by string) (int64, error)
	// Unexpect ends what Expect started.
	Unexpect(ctx context.Context, id int64) error
}

// Options are the dependencies of the service.
type Options struct {
	DB         *store.DB
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Bus        *events.Bus
	Budgets    Budgets   // nil: no budget checks (documented as unsafe)
	Incidents  Incidents // nil: no incident checks
	// Alerts suppresses the pages of experiments with expectAlerts (nil:
	// their incidents are only noted as expected).
	Alerts  ExpectedAlerts
	Prom    Querier // nil: PromQL probes and conditions fail (abort)
	Clock   clock.Timer
	Drivers map[string]Driver
	// NoAuth accepts requests without a principal as admin (the app's
	// explicit no-auth trial mode only).
	NoAuth bool
	// Owner names this replica in the journal (random when empty).
	Owner string
}

// Service plans, runs, stops and reports chaos experiments.
type Service struct {
	o      Options
	j      journal
	locks  *targetlock.Locks
	m      *metrics
	logger *slog.Logger
	http   *http.Client

	mu          sync.Mutex
	cfg         Config
	experiments map[string]*Experiment
	running     map[string]context.CancelCauseFunc
	wake        map[string]chan struct{} // wakes a run waiting for approval
	wg          sync.WaitGroup
}

// New returns the service; the DB must be migrated with Migrations and targetlock.Migrations.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Owner == "" {
		o.Owner = "sred-" + randomID()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return &Service{
		o: o, j: journal{o.DB}, locks: targetlock.New(o.DB), m: newMetrics(o.Registerer, o.DB), logger: o.Logger,
		http: &http.Client{}, cfg: DefaultConfig, experiments: map[string]*Experiment{}, running: map[string]context.CancelCauseFunc{},
		wake: map[string]chan struct{}{},
	}
}

// ApplyConfig installs a new configuration and the experiments loaded from it.
func (s *Service) ApplyConfig(cfg Config, exps []*Experiment) error {
	m := map[string]*Experiment{}
	for _, e := range exps {
		if _, ok := m[e.Name]; ok {
			return fmt.Errorf("experiment %q defined twice", e.Name)
		}
		m[e.Name] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.experiments = cfg, m
	return nil
}

// Experiment returns a loaded experiment by name.
func (s *Service) Experiment(name string) (*Experiment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.experiments[name]
	return e, ok
}

// Experiments returns the loaded experiments.
func (s *Service) Experiments() []*Experiment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Experiment, 0, len(s.experiments))
	for _, e := range s.experiments {
		out = append(out, e)
	}
	return out
}

func (s *Service) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run recovers the faults of dead runners (now and every half lease) until
// ctx ends; then it stops every run of this process (as a manual stop:
// SIGTERM) and waits for their rollback.
func (s *Service) Run(ctx context.Context) error {
	for {
		if err := s.Recover(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("recover chaos faults", "err", err)
		}
		select {
		case <-ctx.Done():
			s.stopLocal(errors.New("sred is shutting down"))
			s.wg.Wait()
			return nil
		case <-s.o.Clock.After(time.Duration(s.config().Lease) / 2):
		}
	}
}

// Wait blocks until every run started by this process has finished.
func (s *Service) Wait() { s.wg.Wait() }

// Recover rolls back every journaled fault whose lease expired and closes
// the runs whose runner died.
func (s *Service) Recover(ctx context.Context) error {
	now := s.o.Clock.Now()
	lease := time.Duration(s.config().Lease)
	fs, err := s.j.claimExpired(ctx, s.o.Owner, now, now.Add(lease))
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range fs {
		s.logger.Warn("rolling back a fault whose runner stopped renewing its lease", "fault", f.ID, "run", f.RunID, "name", f.Name)
		if err := s.revert(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	ids, err := s.j.expiredRuns(ctx, now)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range ids {
		s.mu.Lock()
		_, mine := s.running[id]
		s.mu.Unlock()
		if mine {
			continue
		}
		r, _, err := s.j.run(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		closed, err := s.j.abandonRun(ctx, id, s.o.Owner, "runner stopped renewing its lease; faults rolled back by "+s.o.Owner, now)
		if err != nil {
			errs = append(errs, err)
		}
		if !closed {
			continue // another replica closed it
		}
		e, specErr := s.j.spec(ctx, id)
		if specErr != nil {
			errs = append(errs, specErr)
		} else if err := s.recoverRollback(ctx, r, e); err != nil {
			errs = append(errs, err)
		}
		// Every lock of the run, not the keys its faults would name now: a
		// stopped process that has gone away no longer names its
		// process:<pid>@<start> lock.
		if err := s.locks.ReleaseHolder(ctx, id); err != nil {
			errs = append(errs, err)
		}
		s.m.experiments.WithLabelValues(StatusAborted).Inc()
	}
	return errors.Join(errs...)
}

// recoverRollback runs the rollback actions of a run whose runner died, as
// its step rollback would have: when a fault of the run was journaled (the
// run reached execute) and its rollback step had not finished. The step is
// recorded in the run's journal.
func (s *Service) recoverRollback(ctx context.Context, r *RunInfo, e *Experiment) error {
	if len(e.Rollback) == 0 || len(r.Faults) == 0 {
		return nil
	}
	for _, st := range r.Steps {
		if st.Name == "rollback" && st.Finished != nil {
			return nil
		}
	}
	bg := context.WithoutCancel(ctx)
	seq, err := s.j.nextSeq(bg, r.ID)
	if err != nil {
		return err
	}
	if err := s.j.startStep(bg, r.ID, seq, "rollback", s.o.Clock.Now()); err != nil {
		return err
	}
	s.logger.Warn("running the rollback actions of a chaos run whose runner stopped renewing its lease", "run", r.ID, "actions", len(e.Rollback))
	var errs []error
	for _, a := range e.Rollback {
		if err := runRollback(bg, a); err != nil {
			errs = append(errs, err)
		}
	}
	status, detail := "ok", fmt.Sprintf("runner stopped renewing its lease; %s run by %s", english.Count(len(e.Rollback), "rollback action", "rollback actions"), s.o.Owner)
	runErr := errors.Join(errs...)
	if runErr != nil {
		status, detail = "failed", runErr.Error()
	}
	if err := s.j.finishStep(bg, r.ID, seq, status, detail, s.o.Clock.Now()); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return fmt.Errorf("run %s: %w", r.ID, runErr)
	}
	return nil
}

func (s *Service) revert(ctx context.Context, f FaultRecord) error {
	d, ok := s.o.Drivers[f.Driver]
	var err error
	if !ok {
		err = fmt.Errorf("no driver %q in this sred", f.Driver)
	} else {
		err = d.Revert(ctx, f.ID, f.Fault, f.State)
	}
	now := s.o.Clock.Now()
	if err != nil {
		_ = s.j.setFault(context.WithoutCancel(ctx), f.ID, FaultFailed, f.State, err.Error(), nil)
		return fmt.Errorf("revert fault %s (%s): %w", f.Name, f.ID, err)
	}
	s.m.faultReverted(f.ID)
	return s.j.setFault(context.WithoutCancel(ctx), f.ID, FaultReverted, f.State, "", &now)
}

// Stop asks a run to stop (it aborts and rolls back at its next check, at
// once when it runs in this process).
func (s *Service) Stop(ctx context.Context, id, actor string) error {
	r, _, err := s.j.run(ctx, id)
	if err != nil {
		return err
	}
	if r.Status != StatusRunning && r.Status != StatusWaiting {
		return nil // idempotent: already over
	}
	cause := &stopCause{actor: actor}
	if _, err := s.j.requestStop(ctx, id, cause.Error()); err != nil {
		return err
	}
	s.mu.Lock()
	cancel, ok := s.running[id]
	s.mu.Unlock()
	if ok {
		cancel(cause)
	}
	return nil
}

// Halt stops every running experiment at once (idempotent) and reverts every
// fault still recorded active by this replica. It returns how many runs it
// asked to stop.
func (s *Service) Halt(ctx context.Context, actor string) (int, error) {
	cause := &stopCause{actor: actor, halt: true}
	n, err := s.j.requestStop(ctx, "", cause.Error())
	if err != nil {
		return 0, err
	}
	s.stopLocal(cause)
	s.wg.Wait()
	// Faults left active by this replica (e.g. a failed revert) are retried.
	fs, err := s.j.faults(ctx, `WHERE status IN ('pending', 'active', 'revert_failed') AND owner = $1`, s.o.Owner)
	if err != nil {
		return int(n), err
	}
	var errs []error
	for _, f := range fs {
		if err := s.revert(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	return int(n), errors.Join(errs...)
}

func (s *Service) stopLocal(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.running {
		c(cause)
	}
}

type stopCause struct {
	actor string
	halt  bool
	text  string // as recorded in the journal (a stop by another replica)
}

func (c *stopCause) Error() string {
	if c.text != "" {
		return c.text
	}
	if c.halt {
		return "halted by " + c.actor
	}
	return "stopped by " + c.actor
}

// Get returns a run with its steps and faults.
func (s *Service) Get(ctx context.Context, id string) (*RunInfo, error) {
	r, _, err := s.j.run(ctx, id)
	return r, err
}

// List returns the latest runs.
func (s *Service) List(ctx context.Context, limit int) ([]RunInfo, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.j.list(ctx, limit)
}

// Report returns the stored Markdown and JSON reports of a finished run.
func (s *Service) Report(ctx context.Context, id string) (md, js string, err error) {
	return s.j.report(ctx, id)
}

// maxRollbackOutput bounds the output of a rollback action kept for its
// error (the rest is counted and dropped).
const maxRollbackOutput = 4096

// runRollback runs a rollback action like a runbook exec step
// (pkg/procexec): no shell, only PATH in its environment, its own process
// group, killed as a whole at its timeout or when ctx ends, children left
// behind killed when it exits, and at most maxRollbackOutput bytes of
// output kept.
func runRollback(ctx context.Context, a RollbackAction) error {
	ctx, cancel := context.WithTimeoutCause(ctx, time.Duration(a.Timeout),
		fmt.Errorf("rollback action %s timed out after %v", a.Name, a.Timeout))
	defer cancel()
	r := procexec.Run(ctx, a.Command, []string{"PATH=" + os.Getenv("PATH")}, "", maxRollbackOutput)
	if r.Err != nil {
		out := strings.ReplaceAll(strings.ToValidUTF8(r.OutputString(), "\uFFFD"), "\x00", "\uFFFD")
		return fmt.Errorf("rollback action %s: %w: %s", a.Name, r.Err, out)
	}
	return nil
}
