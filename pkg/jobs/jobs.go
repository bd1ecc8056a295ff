// Package jobs is a small durable timer queue on the sred store. A job is a
// row with a due time; a Worker claims due jobs and runs their handler inside
// the transaction that claimed them, so the handler's database writes and the
// job's completion commit together: a job's effects happen exactly once, even
// if the process dies mid-way (the transaction rolls back and the job stays
// due) or several replicas run workers against one PostgreSQL database
// (claims use FOR UPDATE SKIP LOCKED; on SQLite write transactions are
// serialised by the database itself).
//
// Handlers must only write to the database; work on the outside world
// (sending a notification) belongs in an outbox that a separate sender drains.
package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the jobs table.
var Migrations = []store.Migration{{
	ID: "jobs/0001_init",
	SQLite: `CREATE TABLE jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	queue       TEXT NOT NULL,
	dedup_key   TEXT NOT NULL,
	grp         TEXT NOT NULL DEFAULT '',
	run_at      BIGINT NOT NULL,
	payload     TEXT NOT NULL DEFAULT '{}',
	state       TEXT NOT NULL DEFAULT 'pending',
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	finished_at BIGINT,
	UNIQUE (queue, dedup_key)
);
CREATE INDEX jobs_due ON jobs (queue, state, run_at);
CREATE INDEX jobs_grp ON jobs (queue, grp, state);`,
	Postgres: `CREATE TABLE jobs (
	id          BIGSERIAL PRIMARY KEY,
	queue       TEXT NOT NULL,
	dedup_key   TEXT NOT NULL,
	grp         TEXT NOT NULL DEFAULT '',
	run_at      BIGINT NOT NULL,
	payload     TEXT NOT NULL DEFAULT '{}',
	state       TEXT NOT NULL DEFAULT 'pending',
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	finished_at BIGINT,
	UNIQUE (queue, dedup_key)
);
CREATE INDEX jobs_due ON jobs (queue, state, run_at);
CREATE INDEX jobs_grp ON jobs (queue, grp, state);`,
}}

// Job states.
const (
	StatePending   = "pending"
	StateDone      = "done"
	StateCancelled = "cancelled"
	StateFailed    = "failed"
)

// Clock tells the time. Tests use a ManualClock to move time without sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now implements Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Millis converts t to unix milliseconds, the time format of every table here.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts unix milliseconds to a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Execer is satisfied by *sql.DB, *sql.Tx and *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Job is one claimed job.
type Job struct {
	ID       int64
	Queue    string
	Key      string
	Group    string
	RunAt    time.Time
	Payload  json.RawMessage
	Attempts int
}

// Decode unmarshals the payload into v.
func (j Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("decode job %s/%s: %w", j.Queue, j.Key, err)
	}
	return nil
}

// New describes a job to enqueue.
type New struct {
	Queue string
	// Key deduplicates: enqueueing a key that already exists in the queue
	// (in any state) does nothing.
	Key string
	// Group lets related jobs be cancelled together (e.g. an incident ID).
	Group   string
	RunAt   time.Time
	Payload any
}

// Enqueue inserts a job, usually inside the caller's transaction. It reports
// whether the job was new.
func Enqueue(ctx context.Context, ex Execer, now time.Time, j New) (bool, error) {
	if j.Queue == "" || j.Key == "" {
		return false, errors.New("enqueue job: queue and key are required")
	}
	payload := []byte("{}")
	if j.Payload != nil {
		var err error
		if payload, err = json.Marshal(j.Payload); err != nil {
			return false, fmt.Errorf("enqueue job %s/%s: encode payload: %w", j.Queue, j.Key, err)
		}
	}
	res, err := ex.ExecContext(ctx, `INSERT INTO jobs (queue, dedup_key, grp, run_at, payload, state, created_at)
VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (queue, dedup_key) DO NOTHING`,
		j.Queue, j.Key, j.Group, Millis(j.RunAt), string(payload), Millis(now))
	if err != nil {
		return false, fmt.Errorf("enqueue job %s/%s: %w", j.Queue, j.Key, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CancelGroup cancels every pending job of group in queue and returns how many.
func CancelGroup(ctx context.Context, ex Execer, now time.Time, queue, group string) (int64, error) {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled', finished_at = $1
WHERE queue = $2 AND grp = $3 AND state = 'pending'`, Millis(now), queue, group)
	if err != nil {
		return 0, fmt.Errorf("cancel jobs %s/%s: %w", queue, group, err)
	}
	return res.RowsAffected()
}

// Handler runs one job inside the transaction that claimed it. Returning an
// error rolls the transaction back and retries the job later.
type Handler func(ctx context.Context, tx *sql.Tx, j Job) error

// Worker claims and runs the due jobs of one queue.
type Worker struct {
	db      *store.DB
	queue   string
	handler Handler
	clock   Clock
	logger  *slog.Logger
	// Tick is how often Run looks for due jobs.
	Tick time.Duration
	// MaxAttempts after which a failing job is marked failed.
	MaxAttempts int
	// AfterRun, if set, is called after each job's transaction committed
	// (e.g. to wake the notification sender for the messages it wrote).
	AfterRun func()

	runs *prometheus.CounterVec
}

// NewWorker returns a worker for queue. reg may be nil.
func NewWorker(db *store.DB, queue string, h Handler, clock Clock, logger *slog.Logger, reg prometheus.Registerer) *Worker {
	if clock == nil {
		clock = SystemClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Worker{db: db, queue: queue, handler: h, clock: clock, logger: logger, Tick: time.Second, MaxAttempts: 10}
	w.runs = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Namespace:   "sre",
		Name:        "jobs_runs_total",
		Help:        "Durable jobs run by this process, by result (done, retry, failed).",
		ConstLabels: prometheus.Labels{"queue": queue},
	}, []string{"result"})
	return w
}

// Run processes due jobs every Tick until ctx is cancelled.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.Tick)
	defer t.Stop()
	for {
		if _, err := w.RunDue(ctx); err != nil && ctx.Err() == nil {
			w.logger.Warn("run due jobs", "queue", w.queue, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunDue runs every job due at the clock's current time and returns how many
// it took (including failed attempts, which are rescheduled).
func (w *Worker) RunDue(ctx context.Context) (int, error) {
	n := 0
	for {
		ran, err := w.runOne(ctx)
		if err != nil {
			return n, err
		}
		if !ran {
			return n, nil
		}
		n++
	}
}

// runOne claims one due job and runs it. It reports whether a job was taken.
func (w *Worker) runOne(ctx context.Context) (bool, error) {
	now := w.clock.Now()
	q := `SELECT id, queue, dedup_key, grp, run_at, payload, attempts FROM jobs
WHERE queue = $1 AND state = 'pending' AND run_at <= $2 ORDER BY run_at, id LIMIT 1`
	if w.db.Dialect == store.Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("claim job: %w", err)
	}
	var (
		j       Job
		runAt   int64
		payload string
	)
	err = tx.QueryRowContext(ctx, q, w.queue, Millis(now)).Scan(&j.ID, &j.Queue, &j.Key, &j.Group, &runAt, &payload, &j.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		tx.Rollback() //nolint:errcheck
		return false, nil
	}
	if err != nil {
		tx.Rollback() //nolint:errcheck
		return false, fmt.Errorf("claim job: %w", err)
	}
	j.RunAt = FromMillis(runAt)
	j.Payload = json.RawMessage(payload)
	herr := w.handler(ctx, tx, j)
	if herr == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', attempts = attempts + 1, finished_at = $1 WHERE id = $2`,
			Millis(now), j.ID); err != nil {
			tx.Rollback() //nolint:errcheck
			return false, fmt.Errorf("complete job %s: %w", j.Key, err)
		}
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("complete job %s: commit: %w", j.Key, err)
		}
		w.runs.WithLabelValues("done").Inc()
		if w.AfterRun != nil {
			w.AfterRun()
		}
		return true, nil
	}
	tx.Rollback() //nolint:errcheck
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	// Record the failure and push the job back with exponential backoff.
	attempts := j.Attempts + 1
	state, result := StatePending, "retry"
	if attempts >= w.MaxAttempts {
		state, result = StateFailed, "failed"
	}
	backoff := time.Second << min(attempts, 10)
	if _, err := w.db.ExecContext(ctx, `UPDATE jobs SET attempts = $1, state = $2, run_at = $3, last_error = $4 WHERE id = $5 AND state = 'pending'`,
		attempts, state, Millis(now.Add(backoff)), herr.Error(), j.ID); err != nil {
		return false, fmt.Errorf("record job %s failure: %w", j.Key, err)
	}
	w.runs.WithLabelValues(result).Inc()
	w.logger.Warn("job failed", "queue", w.queue, "key", j.Key, "attempt", attempts, "err", herr)
	// The job is no longer due now, so the loop moves on.
	return true, nil
}
