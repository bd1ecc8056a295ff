package runbook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// runbookSchema is the schema of both backends; %[1]s is the id column's type.
const runbookSchema = `
CREATE TABLE runbook_runs (
	id %[1]s,
	incident_id TEXT NOT NULL,
	runbook TEXT NOT NULL,
	target TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	labels TEXT NOT NULL DEFAULT '{}',
	dry_run INTEGER NOT NULL DEFAULT 0,
	continue_on_resolve INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	cancel_reason TEXT NOT NULL DEFAULT '',
	current_step INTEGER NOT NULL DEFAULT -1,
	verified INTEGER NOT NULL DEFAULT 0,
	owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	started_at BIGINT NOT NULL DEFAULT 0,
	finished_at BIGINT NOT NULL DEFAULT 0,
	UNIQUE (incident_id, runbook)
);
CREATE INDEX runbook_runs_status ON runbook_runs (status, id);
CREATE INDEX runbook_runs_started ON runbook_runs (runbook, started_at);
CREATE INDEX runbook_runs_target ON runbook_runs (target, started_at);
CREATE TABLE runbook_audit (
	id %[1]s,
	run_id BIGINT NOT NULL,
	incident_id TEXT NOT NULL,
	runbook TEXT NOT NULL,
	at BIGINT NOT NULL,
	event TEXT NOT NULL,
	step_index INTEGER NOT NULL DEFAULT -1,
	step_name TEXT NOT NULL DEFAULT '',
	step_type TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	dry_run INTEGER NOT NULL DEFAULT 0,
	input TEXT NOT NULL DEFAULT '{}',
	output TEXT NOT NULL DEFAULT '',
	exit_code INTEGER,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runbook_audit_run ON runbook_audit (run_id, id);
CREATE TABLE runbook_approvals (
	run_id BIGINT NOT NULL,
	step_index INTEGER NOT NULL,
	approved_by TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	at BIGINT NOT NULL,
	PRIMARY KEY (run_id, step_index)
);
CREATE TABLE runbook_locks (
	target TEXT PRIMARY KEY,
	run_id BIGINT NOT NULL,
	owner TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE TABLE runbook_settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);`

// Migrations create the runbook tables. Times are unix milliseconds.
var Migrations = []store.Migration{{
	ID:       "runbook/0001_init",
	SQLite:   fmt.Sprintf(runbookSchema, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(runbookSchema, "BIGSERIAL PRIMARY KEY"),
}, {
	// Runs become jobs of the one work queue (queue "runbook", kind
	// runbook.run), whose lease replaces the run's own; the step journal
	// records each finished step, so that a run resumed after its replica
	// died does not repeat them. One text: both backends run it.
	ID: "runbook/0002_queue",
	SQLite: `
CREATE TABLE runbook_steps (
	run_id BIGINT NOT NULL,
	step_index INTEGER NOT NULL,
	status TEXT NOT NULL,
	owner TEXT NOT NULL DEFAULT '',
	at BIGINT NOT NULL,
	PRIMARY KEY (run_id, step_index)
);
ALTER TABLE runbook_runs ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;`,
}, {
	// The queue's job lease replaced the run's own heartbeat
	// (runbook_runs.lease_until). Open runs recorded by a version of sred
	// before the queue get their job here (the engine did it at start
	// before), due when their old lease ends (at once if it ended), and
	// the column goes. One text: both backends run it.
	ID: "runbook/0003_jobs",
	SQLite: `
INSERT INTO jobs (queue, kind, dedup_key, grp, run_at, payload, state, created_at)
SELECT 'runbook', 'runbook.run', 'run/' || id, incident_id,
	CASE WHEN lease_until > created_at THEN lease_until ELSE created_at END,
	'{"run_id":' || id || '}', 'pending', created_at
FROM runbook_runs WHERE status IN ('pending', 'running', 'waiting_approval')
ON CONFLICT (queue, dedup_key) DO NOTHING;
ALTER TABLE runbook_runs DROP COLUMN lease_until;`,
}, {
	// A run is unique per incident, runbook and target (it was per
	// incident and runbook): a runbook is matched against each alert
	// group of an incident, and the groups correlation attaches to one
	// incident may need the same runbook on other targets (the pools of
	// two services). SQLite cannot drop a table's constraint: the table
	// is made again, its AUTOINCREMENT counter carried over so that no
	// run id is given twice (jobs and audit rows name runs by id).
	ID: "runbook/0004_run_per_target",
	SQLite: `
CREATE TABLE runbook_runs_per_target (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id TEXT NOT NULL,
	runbook TEXT NOT NULL,
	target TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	labels TEXT NOT NULL DEFAULT '{}',
	dry_run INTEGER NOT NULL DEFAULT 0,
	continue_on_resolve INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	cancel_reason TEXT NOT NULL DEFAULT '',
	current_step INTEGER NOT NULL DEFAULT -1,
	verified INTEGER NOT NULL DEFAULT 0,
	owner TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	started_at BIGINT NOT NULL DEFAULT 0,
	finished_at BIGINT NOT NULL DEFAULT 0,
	resumes INTEGER NOT NULL DEFAULT 0,
	UNIQUE (incident_id, runbook, target)
);
INSERT INTO runbook_runs_per_target (id, incident_id, runbook, target, status, reason, severity, labels, dry_run,
		continue_on_resolve, cancel_requested, cancel_reason, current_step, verified, owner, created_at, started_at,
		finished_at, resumes)
	SELECT id, incident_id, runbook, target, status, reason, severity, labels, dry_run,
		continue_on_resolve, cancel_requested, cancel_reason, current_step, verified, owner, created_at, started_at,
		finished_at, resumes
	FROM runbook_runs ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'runbook_runs_per_target';
INSERT INTO sqlite_sequence (name, seq) SELECT 'runbook_runs_per_target', seq FROM sqlite_sequence WHERE name = 'runbook_runs';
DROP TABLE runbook_runs;
ALTER TABLE runbook_runs_per_target RENAME TO runbook_runs;
CREATE INDEX runbook_runs_status ON runbook_runs (status, id);
CREATE INDEX runbook_runs_started ON runbook_runs (runbook, started_at);
CREATE INDEX runbook_runs_target ON runbook_runs (target, started_at);`,
	Postgres: `
ALTER TABLE runbook_runs DROP CONSTRAINT runbook_runs_incident_id_runbook_key;
ALTER TABLE runbook_runs ADD CONSTRAINT runbook_runs_incident_id_runbook_target_key UNIQUE (incident_id, runbook, target);`,
}}

// stepStarted is the journal status of a step that started and has not
// finished (yet): if the run is resumed, its replica died during the step.
const stepStarted = "started"

// journalStart records in the step journal that step idx of run starts,
// with the step the run is at.
func journalStart(ctx context.Context, q querier, runID int64, idx int, owner string, now time.Time) error {
	if _, err := q.ExecContext(ctx, `UPDATE runbook_runs SET current_step = $1 WHERE id = $2`, idx, runID); err != nil {
		return fmt.Errorf("record the start of step %d of run %d: %w", idx, runID, err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO runbook_steps (run_id, step_index, status, owner, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (run_id, step_index) DO UPDATE SET owner = excluded.owner, at = excluded.at
		WHERE runbook_steps.status = $3`, runID, idx, stepStarted, owner, ms(now)); err != nil {
		return fmt.Errorf("record the start of step %d of run %d: %w", idx, runID, err)
	}
	return nil
}

// journalStep records in the step journal that step idx of run finished
// with status (ok, dry_run, or a failure the runbook continues past).
func journalStep(ctx context.Context, q querier, runID int64, idx int, status, owner string, now time.Time) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO runbook_steps (run_id, step_index, status, owner, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (run_id, step_index) DO UPDATE SET status = excluded.status, owner = excluded.owner, at = excluded.at
		WHERE runbook_steps.status = $6`, runID, idx, status, owner, ms(now), stepStarted); err != nil {
		return fmt.Errorf("journal step %d of run %d: %w", idx, runID, err)
	}
	return nil
}

// journal returns the steps of run the journal records: finished (done),
// and started without finishing (started: the replica died during them).
func journal(ctx context.Context, q querier, runID int64) (done, started map[int]bool, err error) {
	rows, err := q.QueryContext(ctx, `SELECT step_index, status FROM runbook_steps WHERE run_id = $1`, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("read the step journal of run %d: %w", runID, err)
	}
	defer rows.Close()
	done, started = map[int]bool{}, map[int]bool{}
	for rows.Next() {
		var (
			i      int
			status string
		)
		if err := rows.Scan(&i, &status); err != nil {
			return nil, nil, fmt.Errorf("read the step journal of run %d: %w", runID, err)
		}
		if status == stepStarted {
			started[i] = true
		} else {
			done[i] = true
		}
	}
	return done, started, rows.Err()
}

// Run statuses.
const (
	RunPending         = "pending"
	RunRunning         = "running"
	RunWaitingApproval = "waiting_approval"
	RunSucceeded       = "succeeded"
	RunFailed          = "failed"
	RunCancelled       = "cancelled"
	RunInterrupted     = "interrupted"
	RunRateLimited     = "rate_limited"
	RunSkipped         = "skipped"
	RunRejected        = "rejected"
	// RunEscalated: the runbook already ran max_runs times on the target
	// within its window; the run did not start and the incident was
	// escalated to a human instead.
	RunEscalated = "escalated"
)

// Run is one execution of a runbook for an incident.
type Run struct {
	ID                int64             `json:"id"`
	IncidentID        string            `json:"incident_id"`
	Runbook           string            `json:"runbook"`
	Target            string            `json:"target"`
	Status            string            `json:"status"`
	Reason            string            `json:"reason,omitempty"`
	Severity          string            `json:"severity"`
	Labels            map[string]string `json:"labels"`
	DryRun            bool              `json:"dry_run"`
	ContinueOnResolve bool              `json:"continue_on_resolve,omitempty"`
	CancelRequested   bool              `json:"cancel_requested,omitempty"`
	CurrentStep       int               `json:"current_step"`
	Verified          bool              `json:"verified"`
	Owner             string            `json:"owner,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	StartedAt         *time.Time        `json:"started_at,omitempty"`
	FinishedAt        *time.Time        `json:"finished_at,omitempty"`
	Audit             []AuditEntry      `json:"audit,omitempty"`
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID         int64          `json:"id"`
	RunID      int64          `json:"run_id"`
	IncidentID string         `json:"incident_id"`
	Runbook    string         `json:"runbook"`
	Time       time.Time      `json:"time"`
	Event      string         `json:"event"` // run_started, step, run_finished, approval
	StepIndex  int            `json:"step_index"`
	StepName   string         `json:"step_name,omitempty"`
	StepType   string         `json:"step_type,omitempty"`
	Status     string         `json:"status"`
	DryRun     bool           `json:"dry_run"`
	Input      map[string]any `json:"input,omitempty"`
	Output     string         `json:"output,omitempty"`
	ExitCode   *int           `json:"exit_code,omitempty"`
	Duration   time.Duration  `json:"duration_ns"`
	Error      string         `json:"error,omitempty"`
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := time.UnixMilli(v).UTC()
	return &t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const runColumns = `id, incident_id, runbook, target, status, reason, severity, labels, dry_run,
	continue_on_resolve, cancel_requested, current_step, verified, owner, created_at, started_at, finished_at`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var (
		r                           Run
		labels                      string
		dry, cont, cancel, verified int
		created, started, finished  int64
	)
	if err := sc.Scan(&r.ID, &r.IncidentID, &r.Runbook, &r.Target, &r.Status, &r.Reason, &r.Severity, &labels, &dry,
		&cont, &cancel, &r.CurrentStep, &verified, &r.Owner, &created, &started, &finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return nil, fmt.Errorf("run %d: labels: %w", r.ID, err)
	}
	r.DryRun, r.ContinueOnResolve, r.CancelRequested, r.Verified = dry != 0, cont != 0, cancel != 0, verified != 0
	r.CreatedAt = time.UnixMilli(created).UTC()
	r.StartedAt, r.FinishedAt = fromMS(started), fromMS(finished)
	return &r, nil
}

// ErrNotFound is returned for an unknown run.
var ErrNotFound = errors.New("not found")

func getRun(ctx context.Context, q querier, id int64) (*Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runbook_runs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	return r, err
}

// RunFilter selects runs to list.
type RunFilter struct {
	IncidentID string
	Runbook    string
	Status     string
	Limit      int
}

func listRuns(ctx context.Context, q querier, f RunFilter) ([]*Run, error) {
	var (
		where []string
		args  []any
	)
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("incident_id", f.IncidentID)
	add("runbook", f.Runbook)
	add("status", f.Status)
	query := `SELECT ` + runColumns + ` FROM runbook_runs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, f.Limit)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func insertAudit(ctx context.Context, q querier, a *AuditEntry) error {
	in, err := json.Marshal(a.Input)
	if err != nil {
		return fmt.Errorf("audit input: %w", err)
	}
	if a.Input == nil {
		in = []byte("{}")
	}
	var exit any
	if a.ExitCode != nil {
		exit = *a.ExitCode
	}
	_, err = q.ExecContext(ctx, `INSERT INTO runbook_audit
		(run_id, incident_id, runbook, at, event, step_index, step_name, step_type, status, dry_run, input, output, exit_code, duration_ms, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		a.RunID, a.IncidentID, a.Runbook, ms(a.Time), a.Event, a.StepIndex, a.StepName, a.StepType, a.Status,
		b2i(a.DryRun), string(in), a.Output, exit, a.Duration.Milliseconds(), a.Error)
	if err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

func listAudit(ctx context.Context, q querier, runID int64) ([]AuditEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, run_id, incident_id, runbook, at, event, step_index, step_name, step_type,
		status, dry_run, input, output, exit_code, duration_ms, error FROM runbook_audit WHERE run_id = $1 ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			a        AuditEntry
			at, dur  int64
			dry      int
			in       string
			exitCode sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &a.RunID, &a.IncidentID, &a.Runbook, &at, &a.Event, &a.StepIndex, &a.StepName, &a.StepType,
			&a.Status, &dry, &in, &a.Output, &exitCode, &dur, &a.Error); err != nil {
			return nil, err
		}
		a.Time = time.UnixMilli(at).UTC()
		a.DryRun = dry != 0
		a.Duration = time.Duration(dur) * time.Millisecond
		if exitCode.Valid {
			c := int(exitCode.Int64)
			a.ExitCode = &c
		}
		if err := json.Unmarshal([]byte(in), &a.Input); err != nil {
			return nil, fmt.Errorf("audit %d: input: %w", a.ID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// KillSwitch is the persisted emergency stop of all automation.
type KillSwitch struct {
	Enabled   bool      `json:"enabled"`
	By        string    `json:"by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitempty"`
}

const killSwitchKey = "kill_switch"

func getKillSwitch(ctx context.Context, q querier) (KillSwitch, error) {
	var (
		v  string
		ks KillSwitch
	)
	err := q.QueryRowContext(ctx, `SELECT value FROM runbook_settings WHERE key = $1`, killSwitchKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return ks, nil
	}
	if err != nil {
		return ks, fmt.Errorf("read kill switch: %w", err)
	}
	if err := json.Unmarshal([]byte(v), &ks); err != nil {
		return ks, fmt.Errorf("read kill switch: %w", err)
	}
	return ks, nil
}

func setKillSwitch(ctx context.Context, q querier, ks KillSwitch) error {
	v, _ := json.Marshal(ks)
	_, err := q.ExecContext(ctx, `INSERT INTO runbook_settings (key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		killSwitchKey, string(v), ks.By, ms(ks.UpdatedAt))
	if err != nil {
		return fmt.Errorf("write kill switch: %w", err)
	}
	return nil
}

// acquireLock takes the target lock for run, or renews it if run holds it.
// It succeeds when the lock is free, expired, or already run's.
func acquireLock(ctx context.Context, q querier, target string, runID int64, owner string, now time.Time, lease time.Duration) (bool, error) {
	var holder int64
	err := q.QueryRowContext(ctx, `INSERT INTO runbook_locks (target, run_id, owner, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (target) DO UPDATE SET run_id = excluded.run_id, owner = excluded.owner, expires_at = excluded.expires_at
		WHERE runbook_locks.expires_at < $5 OR runbook_locks.run_id = excluded.run_id
		RETURNING run_id`, target, runID, owner, ms(now.Add(lease)), ms(now)).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock target %q: %w", target, err)
	}
	return holder == runID, nil
}

func releaseLock(ctx context.Context, q querier, target string, runID int64) error {
	_, err := q.ExecContext(ctx, `DELETE FROM runbook_locks WHERE target = $1 AND run_id = $2`, target, runID)
	return err
}

// Lock is a held target lock, as listed by the API.
type Lock struct {
	Target    string    `json:"target"`
	RunID     int64     `json:"run_id"`
	Owner     string    `json:"owner"`
	ExpiresAt time.Time `json:"expires_at"`
}

func listLocks(ctx context.Context, q querier) ([]Lock, error) {
	rows, err := q.QueryContext(ctx, `SELECT target, run_id, owner, expires_at FROM runbook_locks ORDER BY target`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Lock{}
	for rows.Next() {
		var (
			l  Lock
			at int64
		)
		if err := rows.Scan(&l.Target, &l.RunID, &l.Owner, &at); err != nil {
			return nil, err
		}
		l.ExpiresAt = time.UnixMilli(at).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// dbOf is a helper to pass a *store.DB where a querier is wanted.
func dbOf(db *store.DB) querier { return db.DB }
