package runbook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// Escalator escalates an incident at once (a failed remediation needs a human).
type Escalator interface {
	EscalateNow(ctx context.Context, incidentID, reason string) error
}

// Incidents is what the engine needs from the incident service besides the timeline.
type Incidents interface {
	incident.TimelineWriter
	// MarkMitigated records that by (here "automation") mitigated the incident.
	MarkMitigated(ctx context.Context, incidentID, by string) error
	// Resolve resolves the incident.
	Resolve(ctx context.Context, incidentID, actor, reason string) error
}

// Notification is the message of a notify step.
type Notification struct {
	IncidentID string
	Runbook    string
	RunID      int64
	Step       string
	Message    string
	// Channels named by the step (empty: the escalation policy's).
	Channels []string
}

// Notifier sends a notify step's message to the incident's responders and
// says who got it (for the audit log). It must be idempotent per (RunID, Step).
type Notifier interface {
	NotifyResponders(ctx context.Context, n Notification) (string, error)
}

// Querier runs instant PromQL queries (client_golang's v1.API satisfies it).
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// Writer runs fn in a write transaction shared with other writes:
// incident.Service.Write, which on SQLite applies it in the single writer's
// next batch (group commit), so that the engine's claims, lease renewals,
// journal and audit rows do not take SQLite's write lock on their own. fn
// must not ask for another Write.
type Writer interface {
	Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
}

// Options are the engine's collaborators. DB and Incidents are required.
type Options struct {
	DB        *store.DB
	Incidents Incidents
	// Writer runs the engine's writes (default: Incidents when it is a
	// Writer, as the incident service is, else a transaction of DB's own).
	Writer     Writer
	Escalator  Escalator // nil: escalation requests are recorded only
	Notifier   Notifier  // nil: notify steps write the timeline and the event stream only
	Prometheus Querier   // nil: promql steps fail
	// Kubernetes builds the client of kubernetes steps from the `kubernetes`
	// settings in force (nil: kubernetes steps fail). The engine keeps the
	// client until a reload changes those settings.
	Kubernetes func(KubernetesConfig) (Kubernetes, error)
	Bus        *events.Bus
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Owner names this replica in leases and locks (default: host-pid-random).
	Owner string
	// Clock tells the time of leases, due times and records (default the
	// wall clock; tests move a clock.Manual).
	Clock clock.Clock
}

// Engine triggers, executes and records runbook runs.
type Engine struct {
	opts    Options
	db      *store.DB
	logger  *slog.Logger
	metrics *metrics
	queue   *jobs.Metrics // the runbook queue's sre_jobs_* metrics
	owner   string
	// write runs the engine's writes (Options.Writer).
	write func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
	// cycles counts the rounds of Run, for tests to wait on.
	cycles atomic.Int64

	mu  sync.RWMutex
	cfg Config
	set *Set
	// act runs exec, http and kubernetes steps, and other subsystems'
	// actions (Actuator).
	act *Actuator

	activeMu sync.Mutex
	active   map[int64]*activeRun
	wg       sync.WaitGroup

	wake chan struct{}
}

type activeRun struct {
	run    *Run
	job    int64 // the run's job, leased to this replica
	cancel context.CancelCauseFunc
	// ending is set when the run's goroutine starts to record its end
	// (finish) or hand its job back (handBack), before that write: from
	// then on a renewal that finds the job no longer leased (completed or
	// handed back by that write) or the target lock released does not
	// take it for a lost lease. The run stays active until its goroutine
	// returns, so a cycle's renewal may still see it.
	ending atomic.Bool
}

// Causes of a run's cancellation.
var (
	errKilled      = errors.New("kill switch engaged")
	errMaxRunTime  = errors.New("run exceeded its maximum run time")
	errShutdown    = errors.New("sred stopped")
	errRunCanceled = errors.New("cancelled")
)

type cancelRequest struct{ reason string }

// leaseLost cancels a run whose job lease (job) or target lock this
// replica lost.
type leaseLost struct {
	reason string
	job    bool
}

func (l *leaseLost) Error() string { return "lease lost: " + l.reason }

func (c *cancelRequest) Error() string { return c.reason }

// New returns an engine for the runbooks in set.
func New(opts Options, cfg Config, set *Set) (*Engine, error) {
	if opts.DB == nil || opts.Incidents == nil {
		return nil, errors.New("runbook engine: DB and Incidents are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	opts.Clock = clock.OrReal(opts.Clock)
	if opts.Owner == "" {
		opts.Owner = jobs.Owner()
	}
	e := &Engine{
		opts:   opts,
		db:     opts.DB,
		logger: opts.Logger,
		owner:  opts.Owner,
		active: map[int64]*activeRun{},
		wake:   make(chan struct{}, 1),
	}
	act, err := NewActuator(cfg, opts.Kubernetes, opts.Clock)
	if err != nil {
		return nil, err
	}
	e.act = act
	e.write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
		return opts.DB.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	if opts.Writer == nil {
		opts.Writer, _ = opts.Incidents.(Writer)
	}
	if opts.Writer != nil {
		e.write = opts.Writer.Write
	}
	e.metrics = newMetrics(opts.Registerer, e)
	e.queue = jobs.NewMetrics(opts.DB, Queue, []jobs.Kind{KindRun}, opts.Clock, opts.Registerer)
	if err := e.Update(cfg, set); err != nil {
		return nil, err
	}
	return e, nil
}

// Update swaps in a new configuration and runbook set (on reload). Runs in
// progress keep the runbook they started with.
func (e *Engine) Update(cfg Config, set *Set) error {
	if set == nil {
		set = &Set{byName: map[string]*Runbook{}}
	}
	if err := e.act.Update(cfg); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg, e.set = cfg, set
	// Every loaded runbook's results are exported at zero from the start
	// (docs/metrics.md), so panels and alerts see them before a first run.
	for _, rb := range set.List() {
		for _, result := range executionResults {
			e.metrics.executions.WithLabelValues(rb.Name, result)
		}
	}
	return nil
}

// Actuator is the engine's actuator, which follows its configuration on
// reload: other subsystems run their exec, http and kubernetes actions
// through it, under the rules of runbook steps.
func (e *Engine) Actuator() *Actuator { return e.act }

func (e *Engine) config() (Config, *Set) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.cfg, e.set
}

// Runbooks returns the runbooks in force.
func (e *Engine) Runbooks() []*Runbook {
	_, set := e.config()
	return set.List()
}

// DryRun reports whether the runbooks section in force (runbooks.dry_run
// in sred.yml) makes every runbook a dry run, whatever its own dry_run.
func (e *Engine) DryRun() bool {
	cfg, _ := e.config()
	return cfg.DryRun
}

// Owner is this replica's name in leases and locks.
func (e *Engine) Owner() string { return e.owner }

func (e *Engine) now() time.Time { return e.opts.Clock.Now().UTC() }

// Wake makes the worker look for work now instead of at the next poll.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// IncidentChanged implements incident.Hook. Inside the incident's
// transaction it records a pending run for each runbook that matches one of
// the alert groups the change concerns (incident.Change.Groups: the group
// that opened the incident, one that joined it, or every group on it when
// its status or severity changed), at most one per incident, runbook and
// target whatever the number of deliveries and groups; and it cancels the
// incident's runs when it resolves. A run's labels are those of the group
// it matched. It wakes the worker only when it recorded a pending run: a
// change that schedules nothing (most of them, and every one of a storm's
// deliveries after the first) costs the worker no cycle (a kill-switch
// read and a claim each).
func (e *Engine) IncidentChanged(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
	inc := ch.Incident
	if inc == nil {
		return nil
	}
	now := e.now()
	if ch.Kind == incident.ChangeResolved || inc.Status == incident.StatusResolved || inc.Status == incident.StatusPostmortemDone {
		return e.cancelForIncident(ctx, tx, inc.ID, "incident resolved", now)
	}
	if !inc.Status.Open() || len(ch.Groups) == 0 {
		return nil
	}
	cfg, set := e.config()
	scheduled := false
	for _, rb := range set.List() {
		if !rb.triggers(inc) {
			continue
		}
		for _, g := range ch.Groups {
			if !rb.selects(g.Labels) {
				continue
			}
			ok, err := e.schedule(ctx, tx, cfg, rb, inc, g, now)
			if err != nil {
				return err
			}
			scheduled = scheduled || ok
		}
	}
	if scheduled {
		e.Wake()
	}
	return nil
}

// schedule records the run of rb for alert group g of inc, unless inc
// already has a run of rb on the same target; it reports whether the run
// is pending (not rejected).
func (e *Engine) schedule(ctx context.Context, tx *sql.Tx, cfg Config, rb *Runbook, inc *incident.Incident, g incident.AlertGroup, now time.Time) (bool, error) {
	status, reason := RunPending, ""
	target, err := rb.target.render(TemplateData{Labels: g.Labels, IncidentID: inc.ID, Severity: string(inc.Severity), Runbook: rb.Name})
	if err != nil {
		status, reason, target = RunRejected, fmt.Sprintf("target: %v", err), rb.Name
	}
	if g.Labels == nil {
		g.Labels = map[string]string{}
	}
	labels, _ := json.Marshal(g.Labels)
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO runbook_runs
		(incident_id, runbook, target, status, reason, severity, labels, dry_run, continue_on_resolve, created_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (incident_id, runbook, target) DO NOTHING RETURNING id`,
		inc.ID, rb.Name, target, status, reason, string(inc.Severity), string(labels),
		b2i(cfg.DryRun || rb.DryRun), b2i(rb.ContinueOnResolve), ms(now), map[bool]int64{true: ms(now)}[status != RunPending]).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // this incident already has a run of this runbook on this target
	}
	if err != nil {
		return false, fmt.Errorf("runbook %s: record run: %w", rb.Name, err)
	}
	if status == RunPending {
		if err := enqueueRun(ctx, tx, now, now, id, inc.ID); err != nil {
			return false, err
		}
	}
	msg := fmt.Sprintf("runbook %s scheduled (run %d, target %s)", rb.Name, id, target)
	if status == RunRejected {
		msg = fmt.Sprintf("runbook %s not run: %s", rb.Name, reason)
		e.metrics.executions.WithLabelValues(rb.Name, RunRejected).Inc()
	} else if cfg.DryRun || rb.DryRun {
		msg += " in dry-run mode"
	}
	if err := e.opts.Incidents.AddTimeline(ctx, tx, incident.TimelineEntry{
		IncidentID: inc.ID, Time: now, Kind: "runbook_run", Actor: "runbook:" + rb.Name, Message: msg,
		Data: map[string]any{"run_id": id, "status": status, "group_key": g.GroupKey},
	}); err != nil {
		return false, fmt.Errorf("runbook %s: %w", rb.Name, err)
	}
	if err := insertAudit(ctx, tx, &AuditEntry{RunID: id, IncidentID: inc.ID, Runbook: rb.Name, Time: now,
		Event: "run_" + status, StepIndex: -1, Status: status, DryRun: cfg.DryRun || rb.DryRun, Error: reason,
		Input: map[string]any{"target": target, "labels": g.Labels, "group_key": g.GroupKey}}); err != nil {
		return false, err
	}
	return status == RunPending, nil
}

func (e *Engine) cancelForIncident(ctx context.Context, tx *sql.Tx, incidentID, reason string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3
		WHERE incident_id = $4 AND status = $5 AND continue_on_resolve = 0`,
		RunCancelled, reason, ms(now), incidentID, RunPending); err != nil {
		return fmt.Errorf("cancel runbook runs of %s: %w", incidentID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET cancel_requested = 1, cancel_reason = $1
		WHERE incident_id = $2 AND status IN ($3, $4) AND continue_on_resolve = 0`,
		reason, incidentID, RunRunning, RunWaitingApproval); err != nil {
		return fmt.Errorf("cancel runbook runs of %s: %w", incidentID, err)
	}
	return nil
}

// Queue is the work queue of runbook runs: each run is one job of kind
// KindRun, enqueued with the run, whose lease is the run's. A replica
// executing a run renews its job's lease every cycle; a run whose replica
// died is claimed by another once the lease expired and resumes at the first
// step its journal does not record as finished.
const (
	Queue             = "runbook"
	KindRun jobs.Kind = "runbook.run"
)

// maxResumes bounds how many times a run is resumed after its replica
// stopped: a step that brings sred down is not run forever.
const maxResumes = 3

type runJob struct {
	RunID int64 `json:"run_id"`
}

func runKey(id int64) string { return "run/" + strconv.FormatInt(id, 10) }

// enqueueRun puts run id in the queue, due at at.
func enqueueRun(ctx context.Context, tx jobs.Execer, now, at time.Time, id int64, incidentID string) error {
	if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindRun, Key: runKey(id), Group: incidentID,
		RunAt: at, Payload: runJob{RunID: id}}); err != nil {
		return fmt.Errorf("runbook run %d: %w", id, err)
	}
	return nil
}

// Run is the worker actor: it takes back the runs a stopped process left,
// then claims and executes the runs of the queue until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Recover(ctx); err != nil {
		return err
	}
	defer e.shutdown()
	for {
		if err := e.Cycle(ctx); err != nil && ctx.Err() == nil {
			e.logger.Error("runbook worker cycle", "err", err)
		}
		e.cycles.Add(1)
		cfg, _ := e.config()
		t := time.NewTimer(time.Duration(cfg.PollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-e.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// shutdown cancels the runs in progress and waits for them to hand their
// jobs back to the queue.
func (e *Engine) shutdown() {
	defer func() {
		liveMu.Lock()
		delete(liveOwners, e.owner)
		liveMu.Unlock()
	}()
	e.activeMu.Lock()
	for _, a := range e.active {
		a.cancel(errShutdown)
	}
	e.activeMu.Unlock()
	e.wg.Wait()
}

// Wait blocks until every run this engine started has finished.
func (e *Engine) Wait() { e.wg.Wait() }

// liveOwners are the engines running in this process. On SQLite, which one
// process uses at a time, a run leased to anyone else was left by a process
// that stopped.
var (
	liveMu     sync.Mutex
	liveOwners = map[string]bool{}
)

// Recover prepares the queue when the worker starts: on SQLite the leases of
// runs left by a process that stopped end at once (on PostgreSQL other
// replicas may be alive: their leases run out). Open runs recorded by a
// version of sred before the queue got their job in migration
// runbook/0003_jobs.
func (e *Engine) Recover(ctx context.Context) error {
	// The lock is held through the update: an engine of this process that
	// starts meanwhile cannot claim a run between the snapshot of the live
	// owners and the update, and see its lease ended.
	liveMu.Lock()
	defer liveMu.Unlock()
	liveOwners[e.owner] = true
	if e.db.Dialect != store.SQLite {
		return nil
	}
	owners := make([]string, 0, len(liveOwners))
	for o := range liveOwners {
		owners = append(owners, o)
	}
	var n int64
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = jobs.ExpireLeases(ctx, tx, Queue, owners)
		return err
	})
	if err != nil {
		return err
	}
	if n > 0 {
		e.logger.Warn("runbook runs left by a stopped process resume now", "runs", n)
	}
	return nil
}

// Cycle does one round of the worker: apply the kill switch, renew the job
// leases and target locks of the runs this replica executes and apply their
// cancellations, and claim due runs (new ones, and those whose replica died).
func (e *Engine) Cycle(ctx context.Context) error {
	now := e.now()
	ks, err := getKillSwitch(ctx, e.db)
	if err != nil {
		return err
	}
	e.metrics.killSwitch.Set(float64(b2i(ks.Enabled)))
	killed := ""
	if ks.Enabled {
		killed = fmt.Sprintf("kill switch engaged by %s: %s", ks.By, ks.Reason)
		e.activeMu.Lock()
		for _, a := range e.active {
			a.cancel(errKilled)
		}
		e.activeMu.Unlock()
		if err := e.skipPending(ctx, killed, now); err != nil {
			return err
		}
	}
	// A failed renewal is reported, but due runs are still claimed.
	return errors.Join(e.renew(ctx, now), e.claim(ctx, now, killed))
}

func (e *Engine) skipPending(ctx context.Context, reason string, now time.Time) error {
	var runs []*Run
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		runs = nil
		// The switch may have been released since the cycle read it: the
		// runs recorded since then are not skipped.
		if ks, err := getKillSwitch(ctx, tx); err != nil || !ks.Enabled {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3
		WHERE status = $4 RETURNING `+runColumns, RunSkipped, reason, ms(now), RunPending)
		if err != nil {
			return fmt.Errorf("skip pending runs: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, r := range runs {
		e.metrics.executions.WithLabelValues(r.Runbook, RunSkipped).Inc()
		e.record(ctx, r, &AuditEntry{Event: "run_finished", StepIndex: -1, Status: RunSkipped, Error: reason},
			fmt.Sprintf("runbook %s run %d skipped: %s", r.Runbook, r.ID, reason))
	}
	return nil
}

// renew extends the job lease of every run this replica executes, with its
// target lock, and applies cancellation requests. A run whose job is no
// longer leased to this replica (the lease expired and another replica
// claimed it to resume the run) or whose target lock another run holds now
// is cancelled at once with a leaseLost cause: it must not go on acting on a
// target it no longer owns. An error renewing one run does not stop the others.
// A run that began recording its end on this replica (activeRun.ending) is
// left alone: its own write completed its job and released its lock, which
// a renewal listing it just before must not read as a lease lost.
func (e *Engine) renew(ctx context.Context, now time.Time) error {
	cfg, _ := e.config()
	lease := time.Duration(cfg.LeaseDuration)
	e.activeMu.Lock()
	runs := make([]*activeRun, 0, len(e.active))
	for _, a := range e.active {
		runs = append(runs, a)
	}
	e.activeMu.Unlock()
	slices.SortFunc(runs, func(a, b *activeRun) int { return int(a.run.ID - b.run.ID) })
	var errs []error
	for _, a := range runs {
		var (
			cancel int
			reason string
			lost   *leaseLost
		)
		// The job lease and the target lock are renewed in one transaction,
		// and only while the run is in progress: a run that just finished
		// (and released its lock in its own transaction) does not get it back.
		err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			cancel, reason, lost = 0, "", nil
			err := jobs.Extend(ctx, tx, a.job, e.owner, now.Add(lease))
			if errors.Is(err, jobs.ErrLeaseLost) {
				lost = &leaseLost{reason: "the run's job is no longer leased to this replica (another replica resumes it)", job: true}
				return nil
			}
			if err != nil {
				return fmt.Errorf("renew lease of run %d: %w", a.run.ID, err)
			}
			err = tx.QueryRowContext(ctx, `SELECT cancel_requested, cancel_reason FROM runbook_runs WHERE id = $1`, a.run.ID).Scan(&cancel, &reason)
			if err != nil {
				return fmt.Errorf("renew lease of run %d: %w", a.run.ID, err)
			}
			ok, err := acquireLock(ctx, tx, a.run.Target, a.run.ID, e.owner, now, lease)
			if err != nil {
				return fmt.Errorf("renew lock of run %d: %w", a.run.ID, err)
			}
			if !ok {
				lost = &leaseLost{reason: fmt.Sprintf("the lock on target %s is held by another run", a.run.Target)}
			}
			return nil
		})
		switch {
		case a.ending.Load():
			// The run ended (or handed its job back) on this replica
			// since the renewal listed it: the job it completed, the lock
			// it released, are not a lease another replica took.
		case err != nil:
			errs = append(errs, err)
		case lost != nil:
			e.logger.Warn("runbook run lost its lease; stopping it", "run", a.run.ID, "runbook", a.run.Runbook,
				"incident", a.run.IncidentID, "reason", lost.reason)
			a.cancel(lost)
		case cancel != 0:
			a.cancel(&cancelRequest{reason: reason})
		}
	}
	return errors.Join(errs...)
}

// claim takes due jobs of the queue, as many as this replica may start, and
// for each decides within the rate limits and target locks: start a pending
// run, resume one whose replica died, or close it. On PostgreSQL a
// transaction-scoped advisory lock serialises these decisions across
// replicas, so limits and locks are exact. With the kill switch engaged
// (killed says why) nothing starts: due runs are closed.
func (e *Engine) claim(ctx context.Context, now time.Time, killed string) error {
	cfg, _ := e.config()
	e.activeMu.Lock()
	free := cfg.MaxConcurrent - len(e.active)
	e.activeMu.Unlock()
	if killed != "" {
		free = 50
	}
	if free <= 0 {
		return nil
	}
	var got []jobs.Job
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		got, err = jobs.ClaimIn(ctx, store.TxQueries(ctx, tx), e.db.Dialect, jobs.ClaimOptions{Queue: Queue, Owner: e.owner, Now: now,
			Lease: time.Duration(cfg.LeaseDuration), Limit: free})
		return err
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, j := range got {
		if err := e.admit(ctx, j, now, killed); err != nil {
			errs = append(errs, err)
			// The job comes back once its lease expired.
		}
	}
	return errors.Join(errs...)
}

// admit decides what to do with the run of a claimed job.
func (e *Engine) admit(ctx context.Context, j jobs.Job, now time.Time, killed string) error {
	var p runJob
	if err := j.Decode(&p); err != nil {
		return errors.Join(err, e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return jobs.Fail(ctx, tx, j.ID, e.owner, now, err.Error())
		}))
	}
	e.activeMu.Lock()
	_, mine := e.active[p.RunID]
	e.activeMu.Unlock()
	if mine {
		// Its lease ran out while this replica executes it (renewals
		// failed): the claim renewed it.
		return nil
	}
	cfg, set := e.config()
	lease := time.Duration(cfg.LeaseDuration)
	var (
		run     *Run
		rb      *Runbook
		closed  bool
		resumed bool
	)
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		run, rb, closed, resumed = nil, nil, false, false
		if killed != "" {
			// Released since the cycle read it: the job comes back at the
			// next cycle, under the usual limits.
			if ks, err := getKillSwitch(ctx, tx); err != nil {
				return err
			} else if !ks.Enabled {
				return jobs.Retry(ctx, tx, j.ID, e.owner, now, "kill switch released")
			}
		}
		if e.db.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(store.LockRunbookClaim)); err != nil {
				return fmt.Errorf("claim lock: %w", err)
			}
		}
		r, err := getRun(ctx, tx, p.RunID)
		if errors.Is(err, ErrNotFound) {
			return jobs.Complete(ctx, tx, j.ID, e.owner, now)
		}
		if err != nil {
			return err
		}
		run = r
		later := func(why string) error {
			return jobs.Retry(ctx, tx, j.ID, e.owner, now.Add(time.Duration(cfg.PollInterval)), why)
		}
		final, reason := "", ""
		switch r.Status {
		case RunPending:
			rb = set.Get(r.Runbook)
			switch {
			case killed != "":
				final, reason = RunSkipped, killed
			case rb == nil && now.Sub(r.CreatedAt) < time.Minute:
				return later("runbook not loaded") // another replica may have it loaded (a rolling reload)
			case rb == nil:
				final, reason = RunSkipped, fmt.Sprintf("runbook %q is not loaded", r.Runbook)
			default:
				if final, reason, err = e.overLimit(ctx, tx, cfg, rb, r, now); err != nil {
					return err
				}
			}
		case RunRunning, RunWaitingApproval:
			// Its replica stopped: the lease expired, or it handed the run back.
			rb = set.Get(r.Runbook)
			var cancelled int
			var cancelReason string
			if err := tx.QueryRowContext(ctx, `SELECT cancel_requested, cancel_reason FROM runbook_runs WHERE id = $1`, r.ID).Scan(&cancelled, &cancelReason); err != nil {
				return fmt.Errorf("run %d: %w", r.ID, err)
			}
			var resumes int
			if err := tx.QueryRowContext(ctx, `UPDATE runbook_runs SET resumes = resumes + 1 WHERE id = $1 RETURNING resumes`, r.ID).Scan(&resumes); err != nil {
				return fmt.Errorf("run %d: %w", r.ID, err)
			}
			switch {
			case killed != "":
				final, reason = RunCancelled, killed
			case cancelled != 0:
				final, reason = RunCancelled, cancelReason
			case resumes > maxResumes:
				final, reason = RunInterrupted, fmt.Sprintf("replica stopped during step %d %d times; given up", r.CurrentStep+1, resumes)
			case rb == nil:
				final, reason = RunInterrupted, fmt.Sprintf("replica stopped during step %d and runbook %q is no longer loaded", r.CurrentStep+1, r.Runbook)
			default:
				resumed = true
			}
		default:
			// Finished already (cancelled while pending, or closed elsewhere).
			return jobs.Complete(ctx, tx, j.ID, e.owner, now)
		}
		if final != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3 WHERE id = $4`,
				final, reason, ms(now), r.ID); err != nil {
				return err
			}
			if err := releaseLock(ctx, tx, r.Target, r.ID); err != nil {
				return err
			}
			r.Status, r.Reason, closed = final, reason, true
			return jobs.Complete(ctx, tx, j.ID, e.owner, now)
		}
		ok, err := acquireLock(ctx, tx, r.Target, r.ID, e.owner, now, lease)
		if err != nil {
			return err
		}
		if !ok {
			run = nil
			return later("target " + r.Target + " is locked by another run") // this one waits
		}
		// Taking the lock may have waited for the previous holder's
		// release: the run starts now, not when the cycle began.
		st := e.now()
		if resumed {
			_, err = tx.ExecContext(ctx, `UPDATE runbook_runs SET owner = $1 WHERE id = $2`, e.owner, r.ID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, owner = $2, started_at = $3 WHERE id = $4 AND status = $5`,
				RunRunning, e.owner, ms(st), r.ID, RunPending)
			r.Status, r.StartedAt = RunRunning, &st
		}
		r.Owner = e.owner
		return err
	})
	if err != nil {
		return fmt.Errorf("runbook run job %s: %w", j.Key, err)
	}
	switch {
	case run == nil:
	case closed:
		var d time.Duration
		if run.StartedAt != nil {
			// It ran on a replica that stopped: it ends now, closed at its claim.
			d = now.Sub(*run.StartedAt)
			e.metrics.duration.WithLabelValues(run.Runbook).Observe(d.Seconds())
		}
		e.metrics.executions.WithLabelValues(run.Runbook, run.Status).Inc()
		e.record(ctx, run, &AuditEntry{Event: "run_finished", StepIndex: -1, Status: run.Status, Error: run.Reason, Duration: d},
			fmt.Sprintf("runbook %s run %d %s: %s", run.Runbook, run.ID, run.Status, run.Reason))
		if run.Status == RunEscalated {
			e.escalate(ctx, run, run.Reason, e.logger.With("runbook", run.Runbook, "run", run.ID, "incident", run.IncidentID))
		}
	case rb != nil:
		e.start(ctx, run, rb, j.ID, resumed)
	}
	return nil
}

// overLimit says whether starting r now would exceed its runbook's
// max_runs on the target (the run ends escalated) or its rate limits.
func (e *Engine) overLimit(ctx context.Context, tx *sql.Tx, cfg Config, rb *Runbook, r *Run, now time.Time) (string, string, error) {
	var n int
	if rb.MaxRuns > 0 {
		w := time.Duration(rb.Window)
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runbook_runs WHERE runbook = $1 AND target = $2 AND started_at >= $3`,
			r.Runbook, r.Target, ms(now.Add(-w))).Scan(&n); err != nil {
			return "", "", fmt.Errorf("max_runs: %w", err)
		}
		if n >= rb.MaxRuns {
			return RunEscalated, fmt.Sprintf("max_runs: runbook %s already ran %d times on %s in the last %s (limit %d); a human takes over",
				r.Runbook, n, r.Target, model.Duration(w), rb.MaxRuns), nil
		}
	}
	lim := e.rateLimit(cfg, rb)
	since := ms(now.Add(-time.Hour))
	if lim.PerHour > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runbook_runs WHERE runbook = $1 AND started_at >= $2`, r.Runbook, since).Scan(&n); err != nil {
			return "", "", fmt.Errorf("rate limit: %w", err)
		}
		if n >= lim.PerHour {
			return RunRateLimited, fmt.Sprintf("rate limit: runbook %s already started %d times in the last hour (limit %d)", r.Runbook, n, lim.PerHour), nil
		}
	}
	if lim.PerTargetPerHour > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runbook_runs WHERE target = $1 AND started_at >= $2`, r.Target, since).Scan(&n); err != nil {
			return "", "", fmt.Errorf("rate limit: %w", err)
		}
		if n >= lim.PerTargetPerHour {
			return RunRateLimited, fmt.Sprintf("rate limit: target %s already had %d runs in the last hour (limit %d)", r.Target, n, lim.PerTargetPerHour), nil
		}
	}
	return "", "", nil
}

// rateLimit is the limit of rb's runs: its own rate_limit, each field it
// leaves out taken from the global one.
func (e *Engine) rateLimit(cfg Config, rb *Runbook) RateLimit {
	if rb.RateLimit != nil {
		return rb.RateLimit.Over(cfg.RateLimit)
	}
	return cfg.RateLimit
}

// start executes run in its own goroutine. The run's context is cancelled
// by the kill switch, a cancellation request, the maximum run time, a lost
// lease and shutdown.
func (e *Engine) start(ctx context.Context, run *Run, rb *Runbook, job int64, resumed bool) {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	e.activeMu.Lock()
	e.active[run.ID] = &activeRun{run: run, job: job, cancel: cancel}
	e.metrics.active.Set(float64(len(e.active)))
	e.activeMu.Unlock()
	e.wg.Add(1)
	stop := context.AfterFunc(ctx, func() { cancel(errShutdown) })
	go func() {
		defer e.wg.Done()
		defer stop()
		defer cancel(nil)
		e.execute(rctx, run, rb, job, resumed)
		e.activeMu.Lock()
		delete(e.active, run.ID)
		e.metrics.active.Set(float64(len(e.active)))
		e.activeMu.Unlock()
		e.Wake()
	}()
}

// Cancel asks a run to stop: a pending run is cancelled at once, a running
// one at its replica's next cycle.
func (e *Engine) Cancel(ctx context.Context, runID int64, by, reason string) (*Run, error) {
	now := e.now()
	if reason == "" {
		reason = "cancelled by " + by
	}
	var run *Run
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := getRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		switch r.Status {
		case RunPending:
			_, err = tx.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3 WHERE id = $4`,
				RunCancelled, reason, ms(now), runID)
		case RunRunning, RunWaitingApproval:
			_, err = tx.ExecContext(ctx, `UPDATE runbook_runs SET cancel_requested = 1, cancel_reason = $1 WHERE id = $2`, reason, runID)
		default:
			return fmt.Errorf("run %d is %s: %w", runID, r.Status, ErrConflict)
		}
		if err != nil {
			return err
		}
		run, err = getRun(ctx, tx, runID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if run.Status == RunCancelled {
		e.metrics.executions.WithLabelValues(run.Runbook, RunCancelled).Inc()
		e.record(ctx, run, &AuditEntry{Event: "run_finished", StepIndex: -1, Status: RunCancelled, Error: reason},
			fmt.Sprintf("runbook %s run %d cancelled: %s", run.Runbook, run.ID, reason))
	}
	e.Wake()
	return run, nil
}

// ErrConflict is returned when a run is not in a state that allows the request.
var ErrConflict = errors.New("conflict")

// SetKillSwitch engages or releases the kill switch. Engaged, it cancels
// every run in progress (killing their processes) and skips pending runs.
func (e *Engine) SetKillSwitch(ctx context.Context, enabled bool, by, reason string) (KillSwitch, error) {
	ks := KillSwitch{Enabled: enabled, By: by, Reason: reason, UpdatedAt: e.now()}
	if err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return setKillSwitch(ctx, tx, ks) }); err != nil {
		return ks, err
	}
	e.metrics.killSwitch.Set(float64(b2i(enabled)))
	e.logger.Warn("runbook kill switch", "enabled", enabled, "by", by, "reason", reason)
	if e.opts.Bus != nil {
		e.opts.Bus.Publish(events.Event{Type: "runbook.kill_switch", Time: ks.UpdatedAt,
			Data: map[string]any{"enabled": enabled, "by": by, "reason": reason}})
	}
	e.Wake()
	return ks, nil
}

// KillSwitch returns the kill switch state.
func (e *Engine) KillSwitch(ctx context.Context) (KillSwitch, error) { return getKillSwitch(ctx, e.db) }

// Approve approves the approval step a run is waiting on.
func (e *Engine) Approve(ctx context.Context, runID int64, by, comment string) (*Run, error) {
	if by == "" {
		return nil, errors.New("approve: the approver's name is required")
	}
	now := e.now()
	var run *Run
	err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := getRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		if r.Status != RunWaitingApproval {
			return fmt.Errorf("run %d is %s, not waiting for approval: %w", runID, r.Status, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO runbook_approvals (run_id, step_index, approved_by, comment, at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, step_index) DO NOTHING`, runID, r.CurrentStep, by, comment, ms(now)); err != nil {
			return fmt.Errorf("approve run %d: %w", runID, err)
		}
		run = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.Wake()
	return run, nil
}

// GetRun returns a run with its audit log.
func (e *Engine) GetRun(ctx context.Context, id int64) (*Run, error) {
	r, err := getRun(ctx, e.db, id)
	if err != nil {
		return nil, err
	}
	if r.Audit, err = listAudit(ctx, e.db, id); err != nil {
		return nil, err
	}
	return r, nil
}

// ListRuns lists runs, newest first.
func (e *Engine) ListRuns(ctx context.Context, f RunFilter) ([]*Run, error) {
	return listRuns(ctx, e.db, f)
}

// Locks lists the target locks held now.
func (e *Engine) Locks(ctx context.Context) ([]Lock, error) { return listLocks(ctx, e.db) }

// record writes an audit row and a timeline entry for run, logging errors:
// bookkeeping must not stop a remediation in progress.
func (e *Engine) record(ctx context.Context, run *Run, a *AuditEntry, message string) {
	_ = e.recordWith(ctx, run, a, message, nil)
}

// recordWith is record whose audit row is written in one transaction with
// change (when not nil), so that a reader who sees the change sees the row
// too (a run shown waiting for approval has its approval_requested entry).
// When change is given and the write fails, nothing is recorded and the
// error is returned.
func (e *Engine) recordWith(ctx context.Context, run *Run, a *AuditEntry, message string, change func(context.Context, *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a.RunID, a.IncidentID, a.Runbook, a.DryRun = run.ID, run.IncidentID, run.Runbook, run.DryRun
	if a.Time.IsZero() {
		a.Time = e.now()
	}
	if err := e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if change != nil {
			if err := change(ctx, tx); err != nil {
				return err
			}
		}
		return insertAudit(ctx, tx, a)
	}); err != nil {
		if change != nil {
			return err
		}
		e.logger.Error("runbook audit", "run", run.ID, "err", err)
	}
	data := map[string]any{"run_id": run.ID, "status": a.Status, "dry_run": run.DryRun}
	if a.StepName != "" {
		data["step"], data["step_type"] = a.StepName, a.StepType
		data["duration_seconds"] = a.Duration.Seconds()
		if a.ExitCode != nil {
			data["exit_code"] = *a.ExitCode
		}
		if a.Output != "" {
			data["output"] = a.Output
		}
	}
	if a.Input != nil {
		data["input"] = a.Input
	}
	if a.Error != "" {
		data["error"] = a.Error
	}
	kind := "runbook_run"
	if a.Event == "step" {
		kind = "runbook_step"
	}
	if err := e.opts.Incidents.AddTimeline(ctx, nil, incident.TimelineEntry{
		IncidentID: run.IncidentID, Time: a.Time, Kind: kind, Actor: "runbook:" + run.Runbook, Message: message, Data: data,
	}); err != nil {
		e.logger.Error("runbook timeline", "run", run.ID, "incident", run.IncidentID, "err", err)
	}
	if e.opts.Bus != nil {
		e.opts.Bus.Publish(events.Event{Type: "runbook." + a.Event, Time: a.Time, IncidentID: run.IncidentID, Data: data})
	}
	return nil
}

// execute runs the steps of run in order. A resumed run (its replica
// stopped) skips the steps its journal records as finished. The step that
// was in progress runs again if it is safe to repeat (Step.SafeToRepeat);
// otherwise the run ends interrupted at that step and the incident
// escalates: exactly once, or a human decides.
func (e *Engine) execute(ctx context.Context, run *Run, rb *Runbook, job int64, resumed bool) {
	cfg, _ := e.config()
	maxRun := time.Duration(cfg.MaxRunTime)
	if rb.MaxRunTime > 0 && time.Duration(rb.MaxRunTime) < maxRun {
		maxRun = time.Duration(rb.MaxRunTime)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, maxRun, errMaxRunTime)
	defer cancel()
	begin := time.Now()
	log := e.logger.With("run", run.ID, "runbook", run.Runbook, "incident", run.IncidentID)
	done, started, err := journal(ctx, e.db, run.ID)
	if err != nil {
		// Without the journal a resumed run would repeat its steps: the
		// job comes back later.
		log.Error("runbook run not started", "err", err)
		e.handBack(ctx, run, job, fmt.Sprintf("step journal unreadable: %v", err), e.now().Add(time.Duration(cfg.PollInterval)), log)
		return
	}
	if resumed {
		log.Warn("runbook run resumed", "target", run.Target, "step", run.CurrentStep+1, "steps_done", len(done))
		e.record(ctx, run, &AuditEntry{Event: "run_resumed", StepIndex: run.CurrentStep, Status: RunRunning,
			Input: map[string]any{"owner": e.owner, "steps_done": len(done)}},
			fmt.Sprintf("runbook %s run %d resumed at step %d on %s: its replica stopped; finished steps are not repeated",
				run.Runbook, run.ID, run.CurrentStep+1, e.owner))
	} else {
		log.Info("runbook run started", "target", run.Target, "dry_run", run.DryRun)
		e.record(ctx, run, &AuditEntry{Event: "run_started", StepIndex: -1, Status: RunRunning,
			Input: map[string]any{"target": run.Target, "labels": run.Labels, "max_run_time": maxRun.String()}},
			fmt.Sprintf("runbook %s run %d started on %s%s", run.Runbook, run.ID, run.Target, map[bool]string{true: " (dry-run)"}[run.DryRun]))
	}

	x := &execution{run: run, rb: rb, cfg: cfg, verified: run.Verified, globalDry: noGlobalDry,
		data: TemplateData{Labels: run.Labels, IncidentID: run.IncidentID, Severity: run.Severity, Runbook: run.Runbook, RunID: run.ID}}
	status, reason := RunSucceeded, ""
	escalate := ""
	if (rb.RequireApproval || slices.Contains(cfg.ApprovalSeverities, incident.Severity(run.Severity))) && !done[-1] {
		timeout := rb.ApprovalTimeout
		if timeout <= 0 {
			timeout = model.Duration(DefaultApprovalTimeout)
		}
		gate := &Step{Name: "approval-gate", typ: StepApproval, OnFailure: FailStop, Timeout: timeout,
			Approval: &ApprovalStep{}, tmpls: map[string]*tmpl{}}
		if err := e.startStep(ctx, x, -1); err != nil {
			e.handBack(ctx, run, job, err.Error(), e.now().Add(time.Duration(cfg.PollInterval)), log)
			return
		}
		if res := e.runStep(ctx, x, -1, gate); res.Status != StepOK && res.Status != StepDryRun {
			status, reason = RunFailed, "approval gate: "+res.Error
		} else {
			e.journal(ctx, x, -1, res.Status, log)
		}
	}
	for i, s := range rb.Steps {
		if status != RunSucceeded {
			break
		}
		if done[i] {
			x.step = i
			continue
		}
		if ctx.Err() != nil {
			status, reason = RunFailed, context.Cause(ctx).Error()
			break
		}
		if started[i] && !s.SafeToRepeat() {
			// Its replica died during the step: whether it took effect is
			// unknown, and running it again could do it twice.
			x.step = i
			status = RunInterrupted
			reason = fmt.Sprintf("its replica stopped during step %d (%s), which is not idempotent: not run again, a human decides", i+1, s.Name)
			escalate = fmt.Sprintf("runbook %s run %d was interrupted during step %s, which is not idempotent: check whether it took effect and finish the remediation by hand",
				rb.Name, run.ID, s.Name)
			log.Warn("runbook run interrupted: the step in progress when its replica stopped is not idempotent", "step", i+1, "name", s.Name)
			break
		}
		if err := e.startStep(ctx, x, i); err != nil {
			// Not started: the run comes back to this step later.
			e.handBack(ctx, run, job, err.Error(), e.now().Add(time.Duration(cfg.PollInterval)), log)
			return
		}
		res := e.runStep(ctx, x, i, s)
		if res.Status == StepOK || res.Status == StepDryRun {
			if s.Verify && res.Status == StepOK {
				x.verified = true
				e.markVerified(ctx, run, log)
			}
			e.journal(ctx, x, i, res.Status, log)
			continue
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errMaxRunTime) {
			status, reason = RunFailed, cause.Error()
			break
		}
		switch s.OnFailure {
		case FailContinue:
			e.journal(ctx, x, i, res.Status, log)
			continue
		case FailEscalate:
			escalate = fmt.Sprintf("runbook %s step %s failed: %s", rb.Name, s.Name, res.Error)
		}
		status, reason = RunFailed, fmt.Sprintf("step %s failed: %s", s.Name, res.Error)
	}
	switch cause := context.Cause(ctx); {
	case cause == nil || status == RunSucceeded:
	case errors.Is(cause, errShutdown):
		// The next replica resumes the run at the step that was stopped.
		e.handBack(ctx, run, job, fmt.Sprintf("sred stopped during step %d", x.step+1), e.now(), log)
		return
	case errors.Is(cause, errKilled):
		status, reason = RunCancelled, "kill switch engaged"
	case errors.Is(cause, errMaxRunTime):
		status, reason = RunFailed, fmt.Sprintf("run exceeded its maximum run time of %s", maxRun)
		escalate = fmt.Sprintf("runbook %s did not finish within %s", rb.Name, maxRun)
	default:
		var (
			cr *cancelRequest
			ll *leaseLost
		)
		switch {
		case errors.As(cause, &cr):
			status, reason = RunCancelled, cr.reason
		case errors.As(cause, &ll) && ll.job:
			e.lost(ctx, run, x, ll, log)
			return
		case errors.As(cause, &ll):
			status, reason = RunInterrupted, fmt.Sprintf("%s during step %d; stopped, not repeated", ll.Error(), x.step+1)
			x.leaseLost = true
		}
	}
	switch {
	case run.DryRun && status == RunSucceeded && x.globalDry != noGlobalDry:
		reason = "dry-run: runbooks.dry_run was turned on after the run was created; nothing was executed from that point on"
	case run.DryRun && status == RunSucceeded:
		reason = "dry-run: nothing was executed"
	}
	if escalate != "" && (status == RunFailed || status == RunInterrupted) {
		e.escalate(ctx, run, escalate, log)
	}
	e.finish(ctx, run, rb, x, job, status, reason, e.runDuration(run, begin, resumed), log)
}

// runDuration is how long the run took. A resumed run counts from its
// stored start, on the replica (or earlier process) that died during it,
// not from its resumption: its duration is its finished_at - started_at.
func (e *Engine) runDuration(run *Run, begin time.Time, resumed bool) time.Duration {
	if resumed && run.StartedAt != nil {
		if d := e.now().Sub(*run.StartedAt); d > 0 {
			return d
		}
	}
	return time.Since(begin)
}

// startStep records in the journal that step idx of the run starts, before
// it runs: a replica that resumes the run knows the step was in progress.
func (e *Engine) startStep(ctx context.Context, x *execution, idx int) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := e.now()
	return e.write(bctx, func(ctx context.Context, tx *sql.Tx) error {
		return journalStart(ctx, tx, x.run.ID, idx, e.owner, now)
	})
}

// journal records that step idx finished, so that a resumed run skips it.
func (e *Engine) journal(ctx context.Context, x *execution, idx int, status string, log *slog.Logger) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := e.now()
	if err := e.write(bctx, func(ctx context.Context, tx *sql.Tx) error {
		return journalStep(ctx, tx, x.run.ID, idx, status, e.owner, now)
	}); err != nil {
		log.Error("a resumed run would repeat this step", "step", idx+1, "err", err)
	}
}

// handBack returns the job of a run this replica stops executing to the
// queue, due at at, the run still open: the replica that claims it resumes
// the run. Should that fail, the job's lease expires and the same happens.
func (e *Engine) handBack(ctx context.Context, run *Run, job int64, why string, at time.Time, log *slog.Logger) {
	e.ending(run.ID)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.write(bctx, func(ctx context.Context, tx *sql.Tx) error {
		return jobs.Retry(ctx, tx, job, e.owner, at, why)
	}); err != nil {
		log.Error("hand the run back to the queue; it resumes once its lease expired", "err", err)
	}
	e.queue.Run("retry")
	log.Info("runbook run handed back to the queue", "reason", why)
	e.record(bctx, run, &AuditEntry{Event: "run_released", StepIndex: run.CurrentStep, Status: run.Status, Error: why},
		fmt.Sprintf("runbook %s run %d handed back: %s; it resumes on the next replica", run.Runbook, run.ID, why))
}

// ending marks run id as ending on this replica (activeRun.ending), before
// the write that completes or hands back its job.
func (e *Engine) ending(id int64) {
	e.activeMu.Lock()
	defer e.activeMu.Unlock()
	if a := e.active[id]; a != nil {
		a.ending.Store(true)
	}
}

// lost records that this replica stopped a run whose job another replica
// claimed: that replica resumes and finishes it.
func (e *Engine) lost(ctx context.Context, run *Run, x *execution, ll *leaseLost, log *slog.Logger) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e.metrics.executions.WithLabelValues(run.Runbook, runLeaseLost).Inc()
	e.queue.Run("lease_lost")
	log.Warn("runbook run stopped: another replica resumes it", "step", x.step+1, "reason", ll.reason)
	e.record(bctx, run, &AuditEntry{Event: "lease_lost", StepIndex: x.step, Status: run.Status, Error: ll.Error()},
		fmt.Sprintf("runbook %s run %d stopped on %s during step %d: %s", run.Runbook, run.ID, e.owner, x.step+1, ll.Error()))
}

func (e *Engine) markVerified(ctx context.Context, run *Run, log *slog.Logger) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.write(bctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE runbook_runs SET verified = 1 WHERE id = $1`, run.ID)
		return err
	}); err != nil {
		log.Error("record verification", "err", err)
	}
	if err := e.opts.Incidents.MarkMitigated(bctx, run.IncidentID, "automation"); err != nil {
		log.Error("mark incident mitigated", "err", err)
	}
}

func (e *Engine) escalate(ctx context.Context, run *Run, reason string, log *slog.Logger) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	a := &AuditEntry{Event: "escalation", StepIndex: -1, Status: "requested", Input: map[string]any{"reason": reason}}
	if e.opts.Escalator == nil {
		a.Status, a.Error = "not_configured", "no escalation engine is configured"
	} else if err := e.opts.Escalator.EscalateNow(bctx, run.IncidentID, reason); err != nil {
		a.Status, a.Error = "failed", err.Error()
		log.Error("escalate incident", "err", err)
	}
	e.record(bctx, run, a, fmt.Sprintf("runbook %s run %d escalates the incident: %s", run.Runbook, run.ID, reason))
}

func (e *Engine) finish(ctx context.Context, run *Run, rb *Runbook, x *execution, job int64, status, reason string, d time.Duration, log *slog.Logger) {
	e.ending(run.ID)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := e.now()
	// The end of the run, the release of its target lock and the completion
	// of its job commit together, and only while the job is still leased to
	// this replica: otherwise another replica resumes the run and ends it.
	err := e.write(bctx, func(bctx context.Context, tx *sql.Tx) error {
		if err := jobs.Complete(bctx, tx, job, e.owner, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(bctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3
		WHERE id = $4 AND owner = $5 AND status IN ($6, $7)`, status, reason, ms(now), run.ID, e.owner, RunRunning, RunWaitingApproval)
		if err != nil {
			return fmt.Errorf("record run end: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			log.Warn("run was taken over or closed by another replica while executing")
		}
		if err := releaseLock(bctx, tx, run.Target, run.ID); err != nil {
			return fmt.Errorf("release target lock %s: %w", run.Target, err)
		}
		return nil
	})
	if errors.Is(err, jobs.ErrLeaseLost) {
		e.lost(ctx, run, x, &leaseLost{reason: "the run's job was claimed by another replica before the run ended", job: true}, log)
		return
	}
	if err != nil {
		log.Error("finish run", "err", err)
	} else {
		e.queue.Run("done")
	}
	run.Status, run.Reason = status, reason
	result := status
	switch {
	case run.DryRun && status == RunSucceeded:
		result = runDryRun
	case status == RunInterrupted && x.leaseLost:
		// Another run took the target lock over.
		result = runLeaseLost
	}
	e.metrics.executions.WithLabelValues(run.Runbook, result).Inc()
	e.metrics.duration.WithLabelValues(run.Runbook).Observe(d.Seconds())
	log.Info("runbook run finished", "status", status, "reason", reason, "duration", d)
	msg := fmt.Sprintf("runbook %s run %d %s", run.Runbook, run.ID, status)
	if reason != "" {
		msg += ": " + reason
	}
	e.record(bctx, run, &AuditEntry{Event: "run_finished", StepIndex: x.step, Status: status, Error: reason, Duration: d}, msg)
	if status == RunSucceeded && x.verified && rb.ResolveOnVerify && !run.DryRun {
		if err := e.opts.Incidents.Resolve(bctx, run.IncidentID, "runbook:"+run.Runbook, "verified by runbook "+run.Runbook); err != nil {
			log.Error("resolve incident", "err", err)
		}
	}
}
