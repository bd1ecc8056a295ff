// Package jobs is sred's one durable work queue, on the sred store. Every
// subsystem that must do something later or exactly once (escalation timers,
// notification deliveries, and later chaos fault leases, rollout stages,
// scaling decisions) puts jobs in a named queue of the one `jobs` table.
//
// A job is a row with a queue, a kind (what to do), a dedup key, an optional
// group (cancel related jobs together, e.g. an incident's) and a due time.
// A worker claims a due job under a lease (state running, lease_owner,
// lease_until); a claimed job whose worker died is claimed again by any
// worker once its lease expired. Claims use FOR UPDATE SKIP LOCKED on
// PostgreSQL; SQLite serialises write transactions itself.
//
// Two ways to run a job:
//   - Worker with a Handler: the handler runs in a transaction that also
//     completes the job, and the completion only commits while the lease is
//     still this worker's, so a handler that only writes to the database takes
//     effect exactly once, even if its worker dies or stalls past its lease.
//   - Claim, then Complete/Retry/Fail: for work on the outside world (the
//     notification sender). Delivery is then at least once; a worker that died
//     mid-send leaves the job to be sent again after the lease.
//
// Finished rows (done, cancelled, failed) are deleted after a retention
// period (Prune; default 7 days).
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
)

// jobsSchema is the schema of both backends; %[1]s is the id column's type.
const jobsSchema = `CREATE TABLE jobs (
	id          %[1]s,
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
CREATE INDEX jobs_grp ON jobs (queue, grp, state);`

// Migrations create the jobs table.
var Migrations = []store.Migration{{
	ID:       "jobs/0001_init",
	SQLite:   fmt.Sprintf(jobsSchema, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(jobsSchema, "BIGSERIAL PRIMARY KEY"),
}, {
	// Typed kinds and real leases. Escalation jobs carried their kind in
	// the payload; it moves to its own column.
	ID: "jobs/0002_kind_lease",
	SQLite: `ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET kind = COALESCE(json_extract(payload, '$.kind'), '') WHERE json_valid(payload);
CREATE INDEX jobs_finished ON jobs (state, finished_at);`,
	Postgres: `ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET kind = COALESCE(payload::jsonb->>'kind', '');
CREATE INDEX jobs_finished ON jobs (state, finished_at);`,
}, {
	// The kind joins the due index, so that looking for due jobs of some
	// kinds (Due with ExcludeKinds or Kinds) reads the index alone.
	ID:       "jobs/0003_due_kind",
	SQLite:   `DROP INDEX jobs_due; CREATE INDEX jobs_due ON jobs (queue, state, run_at, kind);`,
	Postgres: `DROP INDEX jobs_due; CREATE INDEX jobs_due ON jobs (queue, state, run_at, kind);`,
}, {
	// The kind before run_at, for looking for due jobs of some kinds
	// (Due and claims with Kinds): one seek per kind, however many due
	// jobs of the other kinds wait. A notification sender with a failing
	// channel paused looks for the other channels' messages once a second;
	// in jobs_due it walked every due message of the paused channel's
	// backlog, which grows for as long as the channel fails.
	ID:       "jobs/0004_kind_due",
	SQLite:   `CREATE INDEX jobs_kind_due ON jobs (queue, state, kind, run_at);`,
	Postgres: `CREATE INDEX jobs_kind_due ON jobs (queue, state, kind, run_at);`,
}, {
	// Each index holds only the jobs its queries look for: the due
	// indexes the live jobs (pending and running), jobs_finished the
	// finished ones that retention deletes. Every job ends finished and
	// stays until retention, and every change of state moved it in all
	// three: a job's enqueue, claim and completion were 15 index writes
	// in them, now 9 (TestPartialIndexes), and the due indexes no longer
	// grow with the finished jobs. The queries name the states as these
	// predicates do (a literal state; IN for the finished ones), which is
	// what lets SQLite and PostgreSQL use the indexes.
	ID:       "jobs/0005_partial",
	SQLite:   partialIndexes,
	Postgres: partialIndexes,
}, {
	// On PostgreSQL a job's completion is sent with its transaction's
	// COMMIT (runTx), so its rows affected are not read: the statement
	// itself fails when the job is no longer leased to the worker, with
	// this function's error (SQLSTATE leaseLostState). SQLite reads the
	// rows affected.
	ID:     "jobs/0006_lease_lost",
	SQLite: `SELECT 1`,
	Postgres: `CREATE OR REPLACE FUNCTION sre_job_lease_lost(job BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'job % is no longer leased to this worker', job USING ERRCODE = '` + leaseLostState + `';
END $$`,
}, {
	// When a running job's worker began its attempt on the outside world
	// (Start; 0 until then, and again at each claim): a job cancelled
	// before it is withdrawn, one cancelled after may still be completed
	// (CancelIDs, CompleteAttempt).
	ID:       "jobs/0007_started",
	SQLite:   `ALTER TABLE jobs ADD COLUMN started_at BIGINT NOT NULL DEFAULT 0;`,
	Postgres: `ALTER TABLE jobs ADD COLUMN started_at BIGINT NOT NULL DEFAULT 0;`,
}}

// leaseLostState is the SQLSTATE of sre_job_lease_lost's error.
const leaseLostState = "SRE01"

const partialIndexes = `DROP INDEX jobs_due;
DROP INDEX jobs_kind_due;
DROP INDEX jobs_finished;
CREATE INDEX jobs_due ON jobs (queue, state, run_at, kind) WHERE ` + liveStates + `;
CREATE INDEX jobs_kind_due ON jobs (queue, state, kind, run_at) WHERE ` + liveStates + `;
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE ` + finishedStates + `;`

// liveStates and finishedStates are the predicates of the partial
// indexes; a query that looks for jobs by these indexes must name a state
// that implies them (state = 'pending', or the predicate itself).
const (
	liveStates     = `(state = 'pending' OR state = 'running')`
	finishedStates = `state IN ('done', 'cancelled', 'failed')`
)

// Job states.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateDone      = "done"
	StateCancelled = "cancelled"
	StateFailed    = "failed"
)

// Kind names what a job does. Each queue's owner declares its kinds as
// constants and handles each; enqueueing a job needs one.
type Kind string

// Defaults of a queue.
const (
	DefaultLease       = 2 * time.Minute
	DefaultClaimBatch  = 16
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultMaxAttempts = 10
)

// Millis converts t to unix milliseconds, the time format of every table here.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts unix milliseconds to a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Execer is satisfied by *sql.DB, *sql.Tx and *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Querier is satisfied by *sql.DB, *sql.Tx and *sql.Conn.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Owner returns a name for this process in leases: host-pid-random.
func Owner() string {
	host, _ := os.Hostname()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(rnd[:]))
}

// Job is one job, as claimed or listed.
type Job struct {
	ID       int64
	Queue    string
	Kind     Kind
	Key      string
	Group    string
	RunAt    time.Time
	Payload  json.RawMessage
	State    string
	Attempts int
	// LastError is the error of the last failed attempt.
	LastError  string
	CreatedAt  time.Time
	FinishedAt *time.Time
	// Owner and LeaseUntil are set while the job is running, and on a
	// job cancelled after its attempt began (CancelIDs) until that
	// attempt's outcome is recorded (CompleteAttempt, AbandonAttempt),
	// its lease ended or not.
	Owner      string
	LeaseUntil time.Time
	// StartedAt is when the worker began the running attempt on the
	// outside world (Start); zero before.
	StartedAt time.Time
	// Unattempted is, for a claimed job whose attempts begin with Start,
	// how many of its claims in a row before this one ended (their lease)
	// without Start: they attempted nothing, and Start gives back their
	// attempts. Other jobs' claims leave it meaningless.
	Unattempted int
}

// AttemptUnderway reports whether j's attempt on the outside world has
// begun (Start) and its outcome is not recorded yet at now: a running job
// past Start, or one cancelled during its attempt (CancelIDs) whose worker
// has neither completed it (CompleteAttempt: done) nor given it up
// (AbandonAttempt), in both cases while its worker's lease lasts. Such an
// attempt may still succeed. One whose lease ended by now is over: its
// worker died or stalled without reporting back (a running job is then
// claimed again, and a cancelled one never is).
func (j Job) AttemptUnderway(now time.Time) bool {
	if j.StartedAt.IsZero() || !j.LeaseUntil.After(now) {
		return false
	}
	return j.State == StateRunning || j.State == StateCancelled && j.Owner != ""
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
	Kind  Kind
	// Key deduplicates: enqueueing a key that already exists in the queue
	// (in any state) does nothing.
	Key string
	// Group lets related jobs be cancelled together (e.g. an incident ID).
	Group   string
	RunAt   time.Time
	Payload any
}

// payload checks that j names its queue, kind and key, and encodes its
// payload ("{}" without one).
func (j New) payload() (string, error) {
	if j.Queue == "" || j.Key == "" || j.Kind == "" {
		return "", fmt.Errorf("enqueue job %q/%q: queue, kind and key are required", j.Queue, j.Key)
	}
	if j.Payload == nil {
		return "{}", nil
	}
	b, err := json.Marshal(j.Payload)
	if err != nil {
		return "", fmt.Errorf("enqueue job %s/%s: encode payload: %w", j.Queue, j.Key, err)
	}
	return string(b), nil
}

// Enqueue inserts a job, usually inside the caller's transaction. It reports
// whether the job was new.
func Enqueue(ctx context.Context, ex Execer, now time.Time, j New) (bool, error) {
	payload, err := j.payload()
	if err != nil {
		return false, err
	}
	res, err := ex.ExecContext(ctx, `INSERT INTO jobs (queue, kind, dedup_key, grp, run_at, payload, state, created_at)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) ON CONFLICT (queue, dedup_key) DO NOTHING`,
		j.Queue, string(j.Kind), j.Key, j.Group, Millis(j.RunAt), payload, Millis(now))
	if err != nil {
		return false, fmt.Errorf("enqueue job %s/%s: %w", j.Queue, j.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("enqueue job %s/%s: %w", j.Queue, j.Key, err)
	}
	return n == 1, nil
}

// enqueueAllRows bounds the rows of one EnqueueAll statement (7 parameters
// each; SQLite takes at most 32,766 parameters, PostgreSQL 65,535).
const enqueueAllRows = 500

// EnqueueAll inserts jobs as Enqueue does each, in one statement (per
// enqueueAllRows): on PostgreSQL one round trip instead of one per job, as
// an escalation page writes a message per channel. A job whose key is
// already in its queue, or repeats an earlier job of js, is dropped. It
// reports how many were new.
func EnqueueAll(ctx context.Context, ex Execer, now time.Time, js []New) (int64, error) {
	var added int64
	for len(js) > 0 {
		part := js[:min(len(js), enqueueAllRows)]
		js = js[len(part):]
		q, args, err := enqueueAllSQL(now, part)
		if err != nil {
			return added, err
		}
		res, err := ex.ExecContext(ctx, q, args...)
		if err != nil {
			return added, fmt.Errorf("enqueue %d jobs of %s: %w", len(part), part[0].Queue, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return added, fmt.Errorf("enqueue %d jobs of %s: %w", len(part), part[0].Queue, err)
		}
		added += n
	}
	return added, nil
}

// EnqueueAllTo adds to b the statements EnqueueAll would run, for jobs
// that need not know which were new: on PostgreSQL they join the batch's
// other writes in one round trip (see store.Batch).
func EnqueueAllTo(b *store.Batch, now time.Time, js []New) error {
	for len(js) > 0 {
		part := js[:min(len(js), enqueueAllRows)]
		js = js[len(part):]
		q, args, err := enqueueAllSQL(now, part)
		if err != nil {
			return err
		}
		b.Add(q, args...)
	}
	return nil
}

// enqueueAllSQL is the statement inserting js (at most enqueueAllRows).
func enqueueAllSQL(now time.Time, js []New) (string, []any, error) {
	var q strings.Builder
	q.WriteString(`INSERT INTO jobs (queue, kind, dedup_key, grp, run_at, payload, state, created_at) VALUES `)
	args := make([]any, 0, 7*len(js))
	for i, j := range js {
		payload, err := j.payload()
		if err != nil {
			return "", nil, err
		}
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, 'pending', $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7)
		args = append(args, j.Queue, string(j.Kind), j.Key, j.Group, Millis(j.RunAt), payload, Millis(now))
	}
	q.WriteString(` ON CONFLICT (queue, dedup_key) DO NOTHING`)
	return q.String(), args, nil
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

// Cancellation is what CancelIDs cancelled, by what had become of each
// job's attempt, as the cancelling statement itself found it.
type Cancellation struct {
	// NotBegun were cancelled before their attempt began: pending, or
	// running with their worker not past Start. A running one's worker
	// loses its lease; nothing of the attempt happened.
	NotBegun int64
	// Ended were running past Start with their worker's lease ended by
	// now: the attempt is over (Job.AttemptUnderway), its outcome not
	// recorded and not known (a stalled worker may still record a
	// success, late: CompleteAttempt).
	Ended int64
	// Underway were running past Start with their worker's lease not
	// ended by now: the attempt is not withdrawn, and may still succeed.
	Underway int64
}

// Cancelled is how many were cancelled as attempts not underway (NotBegun
// and Ended): none of them is attempted again.
func (c Cancellation) Cancelled() int64 { return c.NotBegun + c.Ended }

// CancelIDs cancels the jobs ids that are still pending or running and
// reports how many it cancelled of each kind (Cancellation), read from
// the rows its one statement changed (RETURNING): a job completed by its
// worker before the statement is not cancelled, and not counted, also
// when the caller read it as running just before. A running job whose
// attempt had not begun loses its worker's lease, and its outcome is not
// recorded. A job cancelled during its attempt (Underway) keeps its
// worker's lease for CompleteAttempt and AbandonAttempt alone: the
// attempt happened, and its success is recorded (done); a failure leaves
// the job cancelled, never retried (Retry and Fail find the lease lost;
// AbandonAttempt records it and ends the lease). So does a job whose
// attempt had begun and whose worker's lease ended by now (Ended): its
// worker stalled or died during the attempt, which may still have
// succeeded, and a stalled worker that reports the success records it,
// late (CompleteAttempt), as it would have had the cancellation come
// before the lease's end.
func CancelIDs(ctx context.Context, q Querier, now time.Time, ids []int64) (Cancellation, error) {
	var c Cancellation
	if len(ids) == 0 {
		return c, nil
	}
	in := make([]string, len(ids))
	args := make([]any, 0, len(ids)+1)
	args = append(args, Millis(now))
	for i, id := range ids {
		args = append(args, id)
		in[i] = fmt.Sprintf("$%d", len(args))
	}
	// A running job past Start keeps its worker's lease (lease_owner,
	// lease_until), ended or not; every other loses it: the lease it
	// returns tells the kinds apart.
	rows, err := q.QueryContext(ctx, `UPDATE jobs SET state = 'cancelled', finished_at = $1,
	lease_owner = CASE WHEN state = 'running' AND started_at > 0 THEN lease_owner ELSE '' END,
	lease_until = CASE WHEN state = 'running' AND started_at > 0 THEN lease_until ELSE 0 END
WHERE state IN ('pending', 'running') AND id IN (`+strings.Join(in, ", ")+`)
RETURNING lease_owner, lease_until`, args...)
	if err != nil {
		return Cancellation{}, fmt.Errorf("cancel %d job(s): %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var owner string
		var until int64
		if err := rows.Scan(&owner, &until); err != nil {
			return Cancellation{}, fmt.Errorf("cancel %d job(s): %w", len(ids), err)
		}
		switch {
		case owner == "":
			c.NotBegun++
		case until > Millis(now):
			c.Underway++
		default:
			c.Ended++
		}
	}
	if err := rows.Err(); err != nil {
		return Cancellation{}, fmt.Errorf("cancel %d job(s): %w", len(ids), err)
	}
	return c, nil
}

// Start records that owner begins job id's attempt on the outside world
// (a notification's send), if the job is still running under owner's
// lease, and reports whether it is: a job cancelled (CancelIDs) or
// claimed by another worker since is not, and must not be attempted.
// From then on a cancellation no longer withdraws the attempt (see
// CancelIDs).
//
// For a job whose every attempt begins with Start, a claim whose lease
// ended before Start (its worker died, or Start failed: the store
// failing) attempted nothing; the claims that took the job again after
// such ones (Job.Unattempted) counted attempts all the same, and Start
// gives them back (attempts less Unattempted), so that they do not use
// up the job's attempts.
func Start(ctx context.Context, ex Execer, id int64, owner string, now time.Time) (bool, error) {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET started_at = $1, attempts = attempts + CASE WHEN started_at < 0 THEN started_at ELSE 0 END
WHERE id = $2 AND lease_owner = $3 AND state = 'running'`,
		Millis(now), id, owner)
	if err != nil {
		return false, fmt.Errorf("start job %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("start job %d: %w", id, err)
	}
	return n == 1, nil
}

// Unstart records that owner did not begin job id's attempt after all,
// when Start failed without knowing whether its write was stored (the
// answer to its commit lost): a job still running under owner's lease is
// no longer marked begun, so that its next claim counts no attempt (see
// Start); one that a cancellation took for begun (CancelIDs) has its
// attempt over, with cause as its last error, as AbandonAttempt records
// a failed one, instead of reading as underway until the lease ends
// (Job.AttemptUnderway). A job not marked begun is left as it is.
func Unstart(ctx context.Context, ex Execer, id int64, owner, cause string) error {
	if _, err := ex.ExecContext(ctx, `UPDATE jobs SET started_at = 0 WHERE id = $1 AND lease_owner = $2 AND state = 'running' AND started_at > 0`,
		id, owner); err != nil {
		return fmt.Errorf("unstart job %d: %w", id, err)
	}
	if _, err := AbandonAttempt(ctx, ex, id, owner, cause); err != nil {
		return fmt.Errorf("unstart job %d: %w", id, err)
	}
	return nil
}

// ErrNoGroup is returned by List and Count for a Filter that names no
// group and does not ask for every group (Filter.AllGroups): an empty
// group, an incident ID not filled in say, would otherwise select the
// jobs of every group of the queue.
var ErrNoGroup = errors.New("no group selected (set Group, or AllGroups for every group)")

// Filter selects jobs of one queue for List and Count: those of Group, or
// of every group with AllGroups (one of the two, never both).
type Filter struct {
	Queue     string
	Group     string
	AllGroups bool
	// Kind and States narrow the selection when set.
	Kind   Kind
	States []string
}

func (f Filter) where() (string, []any, error) {
	if (f.Group == "") != f.AllGroups {
		if f.AllGroups {
			return "", nil, fmt.Errorf("group %q with AllGroups", f.Group)
		}
		return "", nil, ErrNoGroup
	}
	conds := []string{"queue = $1"}
	args := []any{f.Queue}
	if f.Group != "" {
		args = append(args, f.Group)
		conds = append(conds, fmt.Sprintf("grp = $%d", len(args)))
	}
	if f.Kind != "" {
		args = append(args, string(f.Kind))
		conds = append(conds, fmt.Sprintf("kind = $%d", len(args)))
	}
	if len(f.States) > 0 {
		conds = append(conds, statesCond(f.States))
	}
	return strings.Join(conds, " AND "), args, nil
}

// statesCond selects jobs in any of states, written as literals so that
// the planner can prove the due indexes' predicate (a parameter proves
// nothing; the live states, in either order, as liveStates is). A name
// that is not a state matches no job.
func statesCond(states []string) string {
	if len(states) == 2 && slices.Contains(states, StatePending) && slices.Contains(states, StateRunning) {
		return liveStates
	}
	ors := make([]string, 0, len(states))
	for _, st := range states {
		switch st {
		case StatePending, StateRunning, StateDone, StateCancelled, StateFailed:
			ors = append(ors, "state = '"+st+"'")
		}
	}
	if len(ors) == 0 {
		return "1 = 0"
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

const jobColumns = `id, queue, kind, dedup_key, grp, run_at, payload, state, attempts, last_error, created_at, finished_at, lease_owner, lease_until, started_at`

func scanJobs(rows *sql.Rows) ([]Job, error) {
	defer rows.Close()
	out := []Job{}
	for rows.Next() {
		var (
			j                     Job
			kind, payload         string
			runAt, created, lease int64
			started               int64
			finished              sql.NullInt64
		)
		if err := rows.Scan(&j.ID, &j.Queue, &kind, &j.Key, &j.Group, &runAt, &payload, &j.State, &j.Attempts, &j.LastError,
			&created, &finished, &j.Owner, &lease, &started); err != nil {
			return nil, err
		}
		j.Kind, j.Payload = Kind(kind), json.RawMessage(payload)
		j.RunAt, j.CreatedAt = FromMillis(runAt), FromMillis(created)
		if lease > 0 {
			j.LeaseUntil = FromMillis(lease)
		}
		if started > 0 {
			j.StartedAt = FromMillis(started)
		}
		if started < 0 {
			j.Unattempted = int(-started)
		}
		if finished.Valid {
			t := FromMillis(finished.Int64)
			j.FinishedAt = &t
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// List returns the jobs f selects, by due time then id (ErrNoGroup for a
// filter of no group).
func List(ctx context.Context, q Querier, f Filter) ([]Job, error) {
	where, args, err := f.where()
	if err != nil {
		return nil, fmt.Errorf("list jobs of %s: %w", f.Queue, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+where+` ORDER BY run_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs of %s: %w", f.Queue, err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("list jobs of %s: %w", f.Queue, err)
	}
	return out, nil
}

// RowQuerier is satisfied by *sql.DB, *sql.Tx and *sql.Conn.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Count returns how many jobs f selects (ErrNoGroup for a filter of no
// group).
func Count(ctx context.Context, q RowQuerier, f Filter) (int, error) {
	where, args, err := f.where()
	if err != nil {
		return 0, fmt.Errorf("count jobs of %s: %w", f.Queue, err)
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs of %s: %w", f.Queue, err)
	}
	return n, nil
}

// ClaimOptions say what Claim takes.
type ClaimOptions struct {
	Queue string
	// Owner names the claiming worker; Complete, Retry and Fail only act on
	// jobs still leased to it.
	Owner string
	Now   time.Time
	// Lease is how long the claim stays exclusive (DefaultLease if zero).
	Lease time.Duration
	// Limit bounds how many jobs one claim takes (1 if zero).
	Limit int
	// ExcludeKinds are left out (e.g. the busy lanes of a sender).
	ExcludeKinds []Kind
	// Kinds, if set, are the only kinds taken (e.g. one message to probe a
	// notification channel that was failing).
	Kinds []Kind
	// First takes the jobs due first strictly: the oldest run_at, then
	// the smallest id, whatever the index's order of jobs due in the
	// same millisecond (a failing notification channel's one probe).
	// Without it, which of those is taken at the claim's limit is left
	// to the index on PostgreSQL (see claimQuery).
	First bool
}

// Due reports whether Claim with o would take a job now, with a read only:
// a worker polling an idle queue asks this first and takes the write lock
// (on SQLite, the one writer's) only when there is something to claim.
func Due(ctx context.Context, db *store.DB, o ClaimOptions) (bool, error) {
	query, args := dueQuery(o, db.Dialect)
	var one int
	switch err := db.QueryRowContext(ctx, query, args...).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look for due jobs of %s: %w", o.Queue, err)
	}
	return true, nil
}

// dueQuery is Due's statement: due pending jobs, then running ones whose
// lease expired, each in a query of its own so that the pending one is
// answered from the index jobs_due (queue, state, run_at, kind) alone. A
// notification sender asks this on every pass with its paused channels in
// ExcludeKinds: the due messages of a failing channel, a backlog that
// grows for as long as it fails, are then rejected by their kind in the
// index, not each by a read of its row (with the index on (queue, state,
// run_at), 47% of sred's CPU at 100 deliveries/s with failing channels).
//
// With Kinds on PostgreSQL the pending jobs are looked for kind by kind
// (a LATERAL subquery per element of an array), each an equality on kind
// in jobs_kind_due (queue, state, kind, run_at): asked with kind IN (...),
// the planner (statistics from before the backlog, or none) walked the
// index by run_at alone and read every due message of the paused
// channels' backlog to reject it by kind (808 buffers and 872 heap reads
// for a backlog of 872 messages, 5.3 ms, against 14 buffers and 0.7 ms;
// the sender asks about once a second per replica).
func dueQuery(o ClaimOptions, dialect store.Dialect) (string, []any) {
	args := []any{o.Queue, Millis(o.Now)}
	var kinds string
	add := func(op string, ks []Kind) {
		ph := make([]string, len(ks))
		for i, k := range ks {
			args = append(args, string(k))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		kinds += ` AND kind ` + op + ` (` + strings.Join(ph, ", ") + `)`
	}
	if len(o.ExcludeKinds) > 0 {
		add("NOT IN", o.ExcludeKinds)
	}
	if dialect == store.Postgres && len(o.Kinds) > 0 {
		ks := make([]string, len(o.Kinds))
		for i, k := range o.Kinds {
			ks[i] = string(k)
		}
		args = append(args, ks)
		arr := fmt.Sprintf("$%d::text[]", len(args))
		return `SELECT 1 FROM unnest(` + arr + `) AS k (kind) CROSS JOIN LATERAL (SELECT 1 FROM jobs
	WHERE queue = $1 AND state = 'pending' AND kind = k.kind AND run_at <= $2` + kinds + ` LIMIT 1) AS j
UNION ALL SELECT 1 FROM jobs WHERE queue = $1 AND state = 'running' AND lease_until <= $2` + kinds +
			` AND kind = ANY(` + arr + `) LIMIT 1`, args
	}
	if len(o.Kinds) > 0 {
		add("IN", o.Kinds)
	}
	return `SELECT 1 FROM jobs WHERE queue = $1 AND state = 'pending' AND run_at <= $2` + kinds +
		` UNION ALL SELECT 1 FROM jobs WHERE queue = $1 AND state = 'running' AND lease_until <= $2` + kinds +
		` LIMIT 1`, args
}

// Claim leases due jobs: pending ones due by now, and running ones whose
// lease expired (their worker died or stalled). Each claim counts as an
// attempt; for a job whose attempts begin with Start, a claim that took
// it again after a claim whose lease ended before Start is counted in
// Job.Unattempted (started_at below 0, kept while the job is put back
// unattempted, Postpone), and Start gives those attempts back.
func Claim(ctx context.Context, db *store.DB, o ClaimOptions) ([]Job, error) {
	return ClaimIn(ctx, db, db.Dialect, o)
}

// ClaimIn is Claim in a transaction of the given dialect's database (e.g.
// one of the incident service's batched writes, so that claiming does not
// take SQLite's write lock on its own).
func ClaimIn(ctx context.Context, q Querier, dialect store.Dialect, o ClaimOptions) ([]Job, error) {
	if o.Owner == "" {
		return nil, errors.New("claim jobs: owner is required")
	}
	lease := o.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	q2, args := claimQuery(o, dialect, lease)
	rows, err := q.QueryContext(ctx, q2, args...)
	if err != nil {
		return nil, fmt.Errorf("claim jobs of %s: %w", o.Queue, err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("claim jobs of %s: %w", o.Queue, err)
	}
	// RETURNING gives no order; run the oldest first.
	sortJobs(out)
	return out, nil
}

// claimQuery is ClaimIn's statement: it leases up to o.Limit due jobs,
// the oldest first. On SQLite the due pending jobs and the expired leases
// are looked for in two branches, as in dueQuery: asked with an OR, SQLite
// read every job of the queue (its primary key's index on queue) and
// sorted them, on every claim, so that an escalation worker's claim, run
// by the incident service's one writer, cost more the more incidents had
// their next step pending (28% of sred's CPU after 40 s at 150
// deliveries/s, 14% after 10 s). PostgreSQL locks each branch's rows
// with FOR UPDATE SKIP LOCKED in a CTE of its own (a UNION does not take
// it), and the pending jobs' branch asks for them by run_at alone, the
// order of jobs_due, so that the scan stops after o.Limit of them: asked
// with an OR, PostgreSQL read every due job of the queue with a bitmap of
// both index conditions and sorted them, on every claim, so that the
// claims of a storm's first pages cost more the further they fell behind
// (1,313 buffers and 7.8 ms per claim with 2,877 steps due in a
// benchmark's store, 60 and 0.6 ms this way; TestClaimQueryPlanPostgres).
// When more than o.Limit jobs are due in the same millisecond, which of
// them are claimed first is left to the index; the claim's result is
// still sorted by run_at and id. A branch may lock a row that the claim
// then leaves out (an expired lease beside o.Limit due jobs): it is
// unlocked at the end of the claim's transaction.
//
// With o.First each PostgreSQL branch orders by run_at, id: it sorts the
// due jobs it may take (their kinds' backlog for a probe of one kind)
// instead of stopping at the index's first o.Limit, so that of jobs due
// in the same millisecond the one written first is taken (the index
// holds them in the order of their rows' places in the table, which an
// update moves). SQLite's claim is already in that order.
func claimQuery(o ClaimOptions, dialect store.Dialect, lease time.Duration) (string, []any) {
	limit := max(o.Limit, 1)
	args := []any{o.Owner, Millis(o.Now.Add(lease)), Millis(o.Now), o.Queue, limit}
	skip := ""
	if len(o.ExcludeKinds) > 0 {
		ph := make([]string, len(o.ExcludeKinds))
		for i, k := range o.ExcludeKinds {
			args = append(args, string(k))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		skip = ` AND kind NOT IN (` + strings.Join(ph, ", ") + `)`
	}
	if len(o.Kinds) > 0 {
		ph := make([]string, len(o.Kinds))
		for i, k := range o.Kinds {
			args = append(args, string(k))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		skip += ` AND kind IN (` + strings.Join(ph, ", ") + `)`
	}
	var inner string
	if dialect == store.Postgres {
		order := "run_at"
		if o.First {
			order = "run_at, id"
		}
		inner = `WITH p AS (SELECT id, run_at FROM jobs WHERE queue = $4 AND state = 'pending' AND run_at <= $3` + skip + `
ORDER BY ` + order + ` LIMIT $5 FOR UPDATE SKIP LOCKED),
r AS (SELECT id, run_at FROM jobs WHERE queue = $4 AND state = 'running' AND lease_until <= $3` + skip + `
ORDER BY ` + order + ` LIMIT $5 FOR UPDATE SKIP LOCKED)
SELECT id FROM (SELECT id, run_at FROM p UNION ALL SELECT id, run_at FROM r) AS due ORDER BY run_at, id LIMIT $5`
	} else {
		inner = `SELECT id FROM (SELECT id, run_at FROM jobs WHERE queue = $4 AND state = 'pending' AND run_at <= $3` + skip + `
UNION ALL SELECT id, run_at FROM jobs WHERE queue = $4 AND state = 'running' AND lease_until <= $3` + skip + `)
ORDER BY run_at, id LIMIT $5`
	}
	return `UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1,
started_at = CASE WHEN started_at > 0 THEN 0 WHEN state = 'running' THEN started_at - 1 ELSE started_at END
WHERE id IN (` + inner + `) RETURNING ` + jobColumns, args
}

func sortJobs(js []Job) {
	for i := 1; i < len(js); i++ {
		for k := i; k > 0 && (js[k].RunAt.Before(js[k-1].RunAt) || js[k].RunAt.Equal(js[k-1].RunAt) && js[k].ID < js[k-1].ID); k-- {
			js[k], js[k-1] = js[k-1], js[k]
		}
	}
}

// ErrLeaseLost is returned by Complete, Retry, Fail and Extend when the job
// is no longer leased to the owner (its lease expired and another worker
// claimed it, or it was cancelled).
var ErrLeaseLost = errors.New("job lease lost")

func leased(res sql.Result, err error, what string, id int64) error {
	if err != nil {
		return fmt.Errorf("%s job %d: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s job %d: %w", what, id, err)
	}
	if n != 1 {
		return fmt.Errorf("%s job %d: %w", what, id, ErrLeaseLost)
	}
	return nil
}

// Complete marks a job leased to owner done.
func Complete(ctx context.Context, ex Execer, id int64, owner string, now time.Time) error {
	res, err := ex.ExecContext(ctx, completeSQL, Millis(now), id, owner)
	return leased(res, err, "complete", id)
}

// CompleteAttempt marks a job leased to owner done, as Complete does,
// and also one cancelled during its attempt (after Start: CancelIDs):
// the attempt that succeeded happened all the same. It reports whether
// the completion is late: the job was cancelled during its attempt, or
// after it began and its worker's lease had ended, and that lease had
// ended by now, so that until this completion the
// attempt read as over without an outcome (Job.AttemptUnderway), and
// whatever was decided meanwhile took it for one that did not succeed.
// The caller makes up for those decisions (notify.Sender.OnLateDelivery).
func CompleteAttempt(ctx context.Context, ex Execer, id int64, owner string, now time.Time) (late bool, err error) {
	res, err := ex.ExecContext(ctx, completeSQL, Millis(now), id, owner)
	if err = leased(res, err, "complete", id); !errors.Is(err, ErrLeaseLost) {
		return false, err
	}
	res, err = ex.ExecContext(ctx, completeCancelledSQL+` AND lease_until > $1`, Millis(now), id, owner)
	if err = leased(res, err, "complete", id); !errors.Is(err, ErrLeaseLost) {
		return false, err
	}
	res, err = ex.ExecContext(ctx, completeCancelledSQL+` AND lease_until <= $1`, Millis(now), id, owner)
	if err = leased(res, err, "complete", id); err != nil {
		return false, err
	}
	return true, nil
}

// completeCancelledSQL marks job $2, cancelled during the attempt of $3,
// done at $1.
const completeCancelledSQL = `UPDATE jobs SET state = 'done', finished_at = $1, last_error = '', lease_owner = '', lease_until = 0
WHERE id = $2 AND lease_owner = $3 AND state = 'cancelled' AND started_at > 0`

// AbandonAttempt records that owner's attempt of job id, cancelled
// during it (after Start: CancelIDs), failed, and reports whether the
// job was such a one: it stays cancelled (never retried), with cause as
// its last error, and is no longer leased to owner, so that its attempt
// reads as over (Job.AttemptUnderway), not as one that may still
// succeed. For a job not cancelled during owner's attempt it changes
// nothing and reports false (Retry and Fail are for those).
func AbandonAttempt(ctx context.Context, ex Execer, id int64, owner, cause string) (bool, error) {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET last_error = $1, lease_owner = '', lease_until = 0
WHERE id = $2 AND lease_owner = $3 AND state = 'cancelled' AND started_at > 0`, cause, id, owner)
	if err != nil {
		return false, fmt.Errorf("abandon attempt of job %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("abandon attempt of job %d: %w", id, err)
	}
	return n == 1, nil
}

// completeSQL marks job $2 leased to $3 done at $1.
const completeSQL = `UPDATE jobs SET state = 'done', finished_at = $1, last_error = '', lease_owner = '', lease_until = 0
WHERE id = $2 AND lease_owner = $3 AND state = 'running'`

// Retry puts a job leased to owner back in the queue, due at at.
func Retry(ctx context.Context, ex Execer, id int64, owner string, at time.Time, cause string) error {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET state = 'pending', run_at = $1, last_error = $2, lease_owner = '', lease_until = 0
WHERE id = $3 AND lease_owner = $4 AND state = 'running'`, Millis(at), cause, id, owner)
	return leased(res, err, "retry", id)
}

// EarlierLive returns the due time of the oldest job of queue, group and
// kind created before job id (a lower id) that is still pending or
// running, or cancelled during an attempt still underway at now (after
// Start: CancelIDs; its worker's lease not over and its outcome not
// recorded: Job.AttemptUnderway), and whether there is one: a job that
// must not overtake it waits for it (see Postpone).
func EarlierLive(ctx context.Context, q RowQuerier, queue, group string, kind Kind, id int64, now time.Time) (time.Time, bool, error) {
	var runAt int64
	err := q.QueryRowContext(ctx, `SELECT run_at FROM jobs WHERE queue = $1 AND grp = $2
AND (state IN ('pending', 'running') OR state = 'cancelled' AND started_at > 0 AND lease_owner <> '' AND lease_until > $5)
AND kind = $3 AND id < $4 ORDER BY id LIMIT 1`, queue, group, string(kind), id, Millis(now)).Scan(&runAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("look for jobs before job %d: %w", id, err)
	}
	return FromMillis(runAt), true, nil
}

// EarlierFailed returns the oldest job of queue, group and kind created
// before job id (a lower id) that is still pending or running and has
// failed at least once (it has a last error), with its id, state and due
// time set, and whether there is one: a job that may go out together with
// the fresh jobs before it, but not overtake one whose delivery failed,
// waits for it (see Postpone).
func EarlierFailed(ctx context.Context, q RowQuerier, queue, group string, kind Kind, id int64) (Job, bool, error) {
	var (
		j     Job
		runAt int64
	)
	err := q.QueryRowContext(ctx, `SELECT id, state, run_at FROM jobs WHERE queue = $1 AND grp = $2 AND state IN ('pending', 'running')
AND kind = $3 AND id < $4 AND last_error <> '' ORDER BY id LIMIT 1`, queue, group, string(kind), id).Scan(&j.ID, &j.State, &runAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Job{}, false, nil
	case err != nil:
		return Job{}, false, fmt.Errorf("look for failed jobs before job %d: %w", id, err)
	}
	j.RunAt = FromMillis(runAt)
	return j, true, nil
}

// Postpone puts a job leased to owner back in the queue, due at at, as if
// it had not been claimed: the claim does not count as an attempt.
func Postpone(ctx context.Context, ex Execer, id int64, owner string, at time.Time) error {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET state = 'pending', run_at = $1, attempts = attempts - 1, lease_owner = '', lease_until = 0
WHERE id = $2 AND lease_owner = $3 AND state = 'running'`, Millis(at), id, owner)
	return leased(res, err, "postpone", id)
}

// Fail gives up on a job leased to owner.
func Fail(ctx context.Context, ex Execer, id int64, owner string, now time.Time, cause string) error {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET state = 'failed', finished_at = $1, last_error = $2, lease_owner = '', lease_until = 0
WHERE id = $3 AND lease_owner = $4 AND state = 'running'`, Millis(now), cause, id, owner)
	return leased(res, err, "fail", id)
}

// Extend renews the lease of a job leased to owner until until (a heartbeat
// for long jobs).
func Extend(ctx context.Context, ex Execer, id int64, owner string, until time.Time) error {
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'`,
		Millis(until), id, owner)
	return leased(res, err, "extend lease of", id)
}

// ExpireLeases ends at once the leases of queue's running jobs whose owner is
// not in live, so that they can be claimed now rather than when their lease
// runs out, and returns how many. It is for a store that one process uses at
// a time (SQLite, under sred's lock file): there a lease held by a worker not
// alive in that process was left by a process that stopped.
func ExpireLeases(ctx context.Context, ex Execer, queue string, live []string) (int64, error) {
	args := []any{queue}
	cond := ""
	if len(live) > 0 {
		ph := make([]string, len(live))
		for i, o := range live {
			args = append(args, o)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		cond = ` AND lease_owner NOT IN (` + strings.Join(ph, ", ") + `)`
	}
	res, err := ex.ExecContext(ctx, `UPDATE jobs SET lease_until = 0 WHERE queue = $1 AND state = 'running'`+cond, args...)
	if err != nil {
		return 0, fmt.Errorf("expire leases of %s: %w", queue, err)
	}
	return res.RowsAffected()
}

// Prune deletes the finished jobs (done, cancelled, failed) of queue that
// finished before before, and returns how many.
func Prune(ctx context.Context, ex Execer, queue string, before time.Time) (int64, error) {
	res, err := ex.ExecContext(ctx, `DELETE FROM jobs WHERE queue = $1 AND `+finishedStates+` AND finished_at < $2`,
		queue, Millis(before))
	if err != nil {
		return 0, fmt.Errorf("prune jobs of %s: %w", queue, err)
	}
	return res.RowsAffected()
}

// Backoff is base * 2^(attempt-1), capped at limit.
func Backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Handler runs one job inside a transaction that also completes it.
// Returning an error rolls the transaction back and retries the job later.
type Handler func(ctx context.Context, tx *sql.Tx, j Job) error

// Options configure a Worker. Zero values take the defaults.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer gets the queue's metrics (see Metrics); nil registers none.
	Registerer prometheus.Registerer
	// Kinds are the job kinds of the queue, so that their failure counters
	// exist (at zero) from the start.
	Kinds []Kind
	// Owner names the worker in leases (default Owner()).
	Owner string
	// Lease is how long a claimed job stays exclusive (default 2m).
	Lease time.Duration
	// Retention is how long finished jobs are kept (default 7 days).
	Retention time.Duration
	// Tick is how often Run looks for due jobs (default 1s).
	Tick time.Duration
	// MaxAttempts after which a failing job is marked failed (default 10).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the retry backoff (1s and 17m).
	MinBackoff, MaxBackoff time.Duration
	// Write, if set, runs the worker's transactions: each claim, each
	// job's handler with its completion, and each failure's record. Give
	// it incident.Service.Write, which on SQLite applies them in the single
	// writer's next batch (group commit) instead of taking the write lock
	// and an fsync of their own beside the webhook's deliveries. fn's
	// changes must commit or roll back together (a savepoint of their own
	// at least). The handler must then not ask for another Write. Nil: a
	// transaction of the worker's own.
	Write func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
	// ClaimBatch is how many due jobs one claim takes (default 16); each
	// still runs in a transaction of its own. Under load every webhook
	// delivery that opens an incident makes a job due at once, and one
	// claim per job was a transaction of its own per job. A claimed job's
	// handler must check that its work is still wanted (a job cancelled
	// after the claim still runs, as one cancelled while it ran did).
	ClaimBatch int
	// Concurrency is how many jobs of a claim run at once (default 1: one
	// after another). Jobs of one Group (an incident's escalation) still
	// run one after another, in their claim's order, and so do the jobs
	// without a group; only different groups run side by side. Each job
	// is still a write of its own: through Write on SQLite the concurrent
	// ones join one batch of the single writer instead of a batch each,
	// and on PostgreSQL they are concurrent transactions.
	Concurrency int
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Owner == "" {
		o.Owner = Owner()
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.ClaimBatch <= 0 {
		o.ClaimBatch = DefaultClaimBatch
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 1024 * time.Second
	}
}

// write runs fn through Options.Write, or in a transaction of its own.
func (w *Worker) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if w.opts.Write != nil {
		return w.opts.Write(ctx, fn)
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin transaction: %w", w.queue, err)
	}
	defer tx.Rollback() //nolint:errcheck
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", w.queue, err)
	}
	return nil
}

// Worker claims and runs the due jobs of one queue.
type Worker struct {
	db      *store.DB
	queue   string
	handler Handler
	opts    Options
	metrics *Metrics
	// AfterRun, if set, is called after each job's transaction committed
	// (e.g. to wake the notification sender for the messages it wrote).
	AfterRun func()
	// NoPrune leaves finished jobs to another component (sred's retention
	// compaction, which deletes them in batches); set it before Run.
	NoPrune bool

	pruned time.Time
}

// NewWorker returns a worker for queue.
func NewWorker(db *store.DB, queue string, h Handler, opts Options) *Worker {
	opts.defaults()
	return &Worker{db: db, queue: queue, handler: h, opts: opts,
		metrics: NewMetrics(db, queue, opts.Kinds, opts.Clock, opts.Registerer)}
}

// Owner is the worker's name in leases.
func (w *Worker) Owner() string { return w.opts.Owner }

// Run processes due jobs every Tick until ctx is cancelled, and prunes
// finished jobs past their retention once an hour.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Tick)
	defer t.Stop()
	for {
		if _, err := w.RunDue(ctx); err != nil && ctx.Err() == nil {
			w.opts.Logger.Warn("run due jobs", "queue", w.queue, "err", err)
		}
		if now := w.opts.Clock.Now(); !w.NoPrune && now.Sub(w.pruned) >= time.Hour {
			if _, err := w.Prune(ctx); err != nil && ctx.Err() == nil {
				w.opts.Logger.Warn("prune finished jobs", "queue", w.queue, "err", err)
			}
			w.pruned = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Prune deletes the queue's jobs that finished longer than the retention ago.
func (w *Worker) Prune(ctx context.Context) (int64, error) {
	return Prune(ctx, w.db, w.queue, w.opts.Clock.Now().Add(-w.opts.Retention))
}

// RunDue runs every job due at the clock's current time and returns how many
// it took (including failed attempts, which are rescheduled). It claims up
// to ClaimBatch jobs at a time and runs them one by one; the jobs of a claim
// it does not get to (an error, ctx cancelled) go back to pending at once,
// their attempt not counted, instead of waiting for their lease to expire.
func (w *Worker) RunDue(ctx context.Context) (int, error) {
	n := 0
	for {
		got, err := w.claim(ctx)
		if err != nil || len(got) == 0 {
			return n, err
		}
		if w.opts.Concurrency > 1 {
			ran, err := w.runLanes(ctx, got)
			n += ran
			if err != nil {
				return n, err
			}
			continue
		}
		for i, j := range got {
			ran, err := w.run(ctx, j)
			if err != nil || !ran {
				w.release(ctx, got[i+1:])
				return n, err
			}
			n++
		}
	}
}

// runLanes runs the jobs of a claim, Concurrency at a time: the jobs of
// one group (and those without a group) one after another in claim order,
// different groups side by side. After an error (or ctx cancelled) no job
// starts any more; the jobs not run go back to the queue as RunDue's do. It
// returns how many ran and the first error.
func (w *Worker) runLanes(ctx context.Context, got []Job) (int, error) {
	var (
		lanes [][]Job
		index = map[string]int{}
	)
	for _, j := range got {
		i, ok := index[j.Group]
		if !ok {
			i = len(lanes)
			index[j.Group] = i
			lanes = append(lanes, nil)
		}
		lanes[i] = append(lanes[i], j)
	}
	var (
		mu      sync.Mutex
		ran     int
		first   error
		stopped bool
		left    []Job
		wg      sync.WaitGroup
		slots   = make(chan struct{}, w.opts.Concurrency)
	)
	for _, lane := range lanes {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			for i, j := range lane {
				mu.Lock()
				if stopped {
					left = append(left, lane[i:]...)
					mu.Unlock()
					return
				}
				mu.Unlock()
				ok, err := w.run(ctx, j)
				mu.Lock()
				if !ok || err != nil {
					stopped = true
					if first == nil {
						first = err
					}
					left = append(left, lane[i+1:]...)
					mu.Unlock()
					return
				}
				ran++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.release(ctx, left)
	return ran, first
}

// claim claims up to ClaimBatch due jobs in one transaction.
func (w *Worker) claim(ctx context.Context) ([]Job, error) {
	now := w.opts.Clock.Now()
	o := ClaimOptions{Queue: w.queue, Owner: w.opts.Owner, Now: now, Lease: w.opts.Lease, Limit: w.opts.ClaimBatch}
	if w.db.Dialect == store.Postgres {
		// The claim is one statement, atomic on its own: without a
		// transaction around it, BEGIN and COMMIT cost no round trips.
		return ClaimIn(ctx, w.db, w.db.Dialect, o)
	}
	var got []Job
	err := w.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		got, err = ClaimIn(ctx, store.TxQueries(ctx, tx), w.db.Dialect, o)
		return err
	})
	if err != nil {
		// got is not read: a write whose ctx ended returns at once while
		// the writer may still run the claim (its jobs' leases then expire
		// and another claim takes them).
		return nil, err
	}
	return got, nil
}

// release gives claimed jobs that were not run back to the queue, as if
// they had not been claimed.
func (w *Worker) release(ctx context.Context, js []Job) {
	if len(js) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, j := range js {
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'pending', lease_owner = '', lease_until = 0, attempts = attempts - 1
WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, j.ID, w.opts.Owner); err != nil {
				return fmt.Errorf("release job %s: %w", j.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		// Their leases expire and another claim takes them.
		w.opts.Logger.Warn("release claimed jobs", "queue", w.queue, "jobs", len(js), "err", err)
	}
}

// run runs a claimed job. It reports whether the job was taken (false
// with ctx cancelled).
func (w *Worker) run(ctx context.Context, j Job) (bool, error) {
	now := w.opts.Clock.Now()
	log := w.opts.Logger.With("queue", w.queue, "kind", j.Kind, "key", j.Key, "attempt", j.Attempts)
	herr := w.runTx(ctx, j)
	if herr == nil {
		w.metrics.runs.WithLabelValues("done").Inc()
		if w.AfterRun != nil {
			w.AfterRun()
		}
		return true, nil
	}
	if errors.Is(herr, ErrLeaseLost) {
		// Another worker holds the job now; its outcome is that worker's.
		w.metrics.runs.WithLabelValues("lease_lost").Inc()
		log.Warn("job lease lost before it completed; its effects were rolled back", "err", herr)
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if j.Attempts >= w.opts.MaxAttempts {
		if err := w.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return Fail(ctx, tx, j.ID, w.opts.Owner, now, herr.Error())
		}); err != nil {
			return false, fmt.Errorf("record job %s failure: %w", j.Key, err)
		}
		w.metrics.runs.WithLabelValues("failed").Inc()
		w.metrics.Failed(j.Kind)
		log.Error("job failed, giving up", "err", herr)
		return true, nil
	}
	wait := Backoff(w.opts.MinBackoff, w.opts.MaxBackoff, j.Attempts)
	if err := w.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return Retry(ctx, tx, j.ID, w.opts.Owner, now.Add(wait), herr.Error())
	}); err != nil {
		return false, fmt.Errorf("record job %s failure: %w", j.Key, err)
	}
	w.metrics.runs.WithLabelValues("retry").Inc()
	log.Warn("job failed, retrying", "retry_in", wait, "err", herr)
	// The job is no longer due now, so the loop moves on.
	return true, nil
}

// runTx runs the handler in a transaction that completes the job, and commits
// only while the job is still leased to this worker. The writes the
// handler leaves in the context's batch (CompletionBatch) run with the
// completion, in one statement on PostgreSQL.
//
// On PostgreSQL that statement goes with the transaction's COMMIT, in its
// round trip (store.AtCommit): the statement itself fails when the job is
// no longer leased to the worker (sre_job_lease_lost, in a query after the
// completion), instead of the worker reading its rows affected first.
func (w *Worker) runTx(ctx context.Context, j Job) error {
	err := w.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		b := &store.Batch{}
		if err := w.handler(context.WithValue(ctx, completionKey{}, b), tx, j); err != nil {
			return err
		}
		now := Millis(w.opts.Clock.Now())
		if w.db.Dialect == store.Postgres {
			b.Add(completeSQL+` RETURNING id`, now, j.ID, w.opts.Owner)
			b.Add(fmt.Sprintf(`SELECT sre_job_lease_lost($1) WHERE NOT EXISTS (SELECT FROM w%d)`, b.Len()-1), j.ID)
			return b.Exec(store.AtCommit(ctx), w.db.Dialect, tx)
		}
		b.Add(completeSQL, now, j.ID, w.opts.Owner)
		res, err := b.ExecResult(ctx, w.db.Dialect, tx)
		return leased(res, err, "complete", j.ID)
	})
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == leaseLostState {
		return fmt.Errorf("complete job %d: %w (%w)", j.ID, ErrLeaseLost, err)
	}
	return err
}

type completionKey struct{}

// CompletionBatch is the batch of a job handler's context whose writes
// the worker runs with the job's completion (one round trip on
// PostgreSQL; see store.Batch for what may be batched), or nil outside a
// worker. A handler may leave in it writes that need not run before its
// own statements that follow.
func CompletionBatch(ctx context.Context) *store.Batch {
	b, _ := ctx.Value(completionKey{}).(*store.Batch)
	return b
}

// Metrics are the metrics of one queue: sre_jobs_pending,
// sre_jobs_oldest_due_seconds (read from the table at scrape time),
// sre_jobs_failed_total{kind} and sre_jobs_runs_total{result}, each with a
// queue label.
type Metrics struct {
	db     *store.DB
	queue  string
	clock  clock.Clock
	failed *prometheus.CounterVec
	runs   *prometheus.CounterVec

	pendingDesc, oldestDesc *prometheus.Desc
}

// NewMetrics registers the metrics of queue with reg (if not nil); kinds'
// failure counters start at zero.
func NewMetrics(db *store.DB, queue string, kinds []Kind, clk clock.Clock, reg prometheus.Registerer) *Metrics {
	labels := prometheus.Labels{"queue": queue}
	m := &Metrics{db: db, queue: queue, clock: clock.OrReal(clk),
		pendingDesc: prometheus.NewDesc("sre_jobs_pending", "Jobs of the queue (escalation, notify, runbook, recovery) waiting to run or running, due or not.", nil, labels),
		oldestDesc: prometheus.NewDesc("sre_jobs_oldest_due_seconds",
			"How long the oldest due job has waited past its due time (a running job counts only once its lease expired); 0 when none is overdue.", nil, labels),
	}
	f := promauto.With(reg)
	m.failed = f.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre", Name: "jobs_failed_total", ConstLabels: labels,
		Help: "Jobs given up after their last attempt, by kind (escalation: step, ack_timeout, handoff, reminder; notify: the channel; runbook: runbook.run).",
	}, []string{"kind"})
	m.runs = f.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre", Name: "jobs_runs_total", ConstLabels: labels,
		Help: "Job attempts run by this process (done, retry, failed, lease_lost).",
	}, []string{"result"})
	for _, k := range kinds {
		m.failed.WithLabelValues(string(k))
	}
	for _, r := range []string{"done", "retry", "failed", "lease_lost"} {
		m.runs.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

// Failed counts a job of kind given up.
func (m *Metrics) Failed(kind Kind) { m.failed.WithLabelValues(string(kind)).Inc() }

// Run counts one attempt's result (done, retry, failed, lease_lost).
func (m *Metrics) Run(result string) { m.runs.WithLabelValues(result).Inc() }

// pendingQuery counts the live jobs of queue $1 and finds the oldest due
// at $2, from a due index (its predicate in the query).
const pendingQuery = `SELECT COUNT(*), MIN(CASE WHEN (state = 'pending' AND run_at <= $2) OR (state = 'running' AND lease_until <= $2) THEN run_at END)
FROM jobs WHERE queue = $1 AND ` + liveStates

// Describe implements prometheus.Collector for the table gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.pendingDesc
	ch <- m.oldestDesc
}

// Collect implements prometheus.Collector for the table gauges.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := Millis(m.clock.Now())
	var (
		pending int64
		oldest  sql.NullInt64
	)
	err := m.db.QueryRowContext(ctx, pendingQuery, m.queue, now).Scan(&pending, &oldest)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.pendingDesc, fmt.Errorf("count jobs of %s: %w", m.queue, err))
		return
	}
	lag := 0.0
	if oldest.Valid && oldest.Int64 < now {
		lag = float64(now-oldest.Int64) / 1000
	}
	ch <- prometheus.MustNewConstMetric(m.pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(m.oldestDesc, prometheus.GaugeValue, lag)
}
