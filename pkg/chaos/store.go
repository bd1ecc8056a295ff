package chaos

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

// chaosSchema is the schema of both backends; %[1]s is the floating-point type.
const chaosSchema = `
CREATE TABLE chaos_runs (
	id TEXT PRIMARY KEY,
	experiment TEXT NOT NULL,
	service TEXT NOT NULL,
	environment TEXT NOT NULL,
	actor TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	spec TEXT NOT NULL,
	owner TEXT NOT NULL,
	lease_ms BIGINT NOT NULL,
	stop_requested TEXT NOT NULL DEFAULT '',
	started_ms BIGINT NOT NULL,
	finished_ms BIGINT,
	score %[1]s,
	report_md TEXT NOT NULL DEFAULT '',
	report_json TEXT NOT NULL DEFAULT ''
);
CREATE INDEX chaos_runs_status ON chaos_runs (status, lease_ms);
CREATE TABLE chaos_steps (
	run_id TEXT NOT NULL REFERENCES chaos_runs (id),
	seq INTEGER NOT NULL,
	step TEXT NOT NULL,
	status TEXT NOT NULL,
	started_ms BIGINT NOT NULL,
	finished_ms BIGINT,
	detail TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, seq)
);
CREATE TABLE chaos_faults (
	id TEXT PRIMARY KEY,
	run_id TEXT NOT NULL REFERENCES chaos_runs (id),
	name TEXT NOT NULL,
	driver TEXT NOT NULL,
	spec TEXT NOT NULL,
	state TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	owner TEXT NOT NULL,
	lease_ms BIGINT NOT NULL,
	created_ms BIGINT NOT NULL,
	reverted_ms BIGINT,
	error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX chaos_faults_status ON chaos_faults (status, lease_ms);
`

// Migrations create the run, step and fault-journal tables.
var Migrations = []store.Migration{{
	ID:       "chaos/0001_init",
	SQLite:   fmt.Sprintf(chaosSchema, "REAL"),
	Postgres: fmt.Sprintf(chaosSchema, "DOUBLE PRECISION"),
}, {
	// The approvals of runs that wait for one (experiments with approval:),
	// as runbook_approvals is for runbook runs.
	ID:     "chaos/0002_approvals",
	SQLite: approvalSchema, Postgres: approvalSchema,
}, {
	// The retention compaction deletes the runs finished before
	// retention.chaos_runs, oldest first (pkg/retention chaosBatch).
	ID:       "chaos/0003_runs_finished",
	SQLite:   `CREATE INDEX chaos_runs_finished ON chaos_runs (finished_ms)`,
	Postgres: `CREATE INDEX chaos_runs_finished ON chaos_runs (finished_ms)`,
}}

const approvalSchema = `
CREATE TABLE chaos_approvals (
	run_id TEXT PRIMARY KEY REFERENCES chaos_runs (id),
	approved_by TEXT NOT NULL,
	role TEXT NOT NULL,
	comment TEXT NOT NULL DEFAULT '',
	at_ms BIGINT NOT NULL
);
`

// Run statuses.
const (
	StatusRunning   = "running"
	StatusWaiting   = "waiting_approval" // safety checks passed, waiting for an approval
	StatusSucceeded = "succeeded"        // ran to the end, hypothesis held
	StatusFailed    = "failed"           // ran to the end, hypothesis did not hold (or a step failed)
	StatusAborted   = "aborted"          // stopped early by an abort condition or a manual stop
	StatusRefused   = "refused"          // refused before anything started
)

// Fault journal statuses.
const (
	FaultPending  = "pending" // journaled, injection under way
	FaultActive   = "active"
	FaultReverted = "reverted"
	FaultFailed   = "revert_failed"
)

// RunInfo is one run of an experiment.
type RunInfo struct {
	ID          string     `json:"id"`
	Experiment  string     `json:"experiment"`
	Service     string     `json:"service"`
	Environment string     `json:"environment"`
	Actor       string     `json:"actor"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Started     time.Time  `json:"started"`
	Finished    *time.Time `json:"finished,omitempty"`
	Score       *float64   `json:"score,omitempty"`
	// Approval is who approved the run (experiments with approval: only).
	Approval *ApprovalRecord `json:"approval,omitempty"`
	Steps    []Step          `json:"steps"`
	Faults   []FaultRecord   `json:"faults"`
}

// Step is one step of the workflow, with timestamps.
type Step struct {
	Name     string     `json:"name"`
	Status   string     `json:"status"` // running, ok, failed, skipped
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	Detail   string     `json:"detail,omitempty"`
}

// FaultRecord is one journaled fault.
type FaultRecord struct {
	ID       string          `json:"id"`
	RunID    string          `json:"run_id"`
	Name     string          `json:"name"`
	Driver   string          `json:"driver"`
	Fault    Fault           `json:"fault"`
	State    json.RawMessage `json:"state,omitempty"`
	Status   string          `json:"status"`
	Owner    string          `json:"owner"`
	Lease    time.Time       `json:"lease"`
	Created  time.Time       `json:"created"`
	Reverted *time.Time      `json:"reverted,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// ErrNotFound is returned for an unknown run.
var ErrNotFound = errors.New("chaos run not found")

// ErrConflict is returned for an action the run's state does not allow.
var ErrConflict = errors.New("conflict")

// ErrForbidden is returned when the caller's role does not allow an action.
var ErrForbidden = errors.New("forbidden")

func msPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

type journal struct{ db *store.DB }

func (j journal) insertRun(ctx context.Context, r *RunInfo, spec []byte, owner string, lease time.Time) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO chaos_runs (id, experiment, service, environment, actor, status, spec, owner, lease_ms, started_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.ID, r.Experiment, r.Service, r.Environment, r.Actor, r.Status, string(spec), owner, lease.UnixMilli(), r.Started.UnixMilli())
	if err != nil {
		return fmt.Errorf("record chaos run: %w", err)
	}
	return nil
}

func (j journal) startStep(ctx context.Context, runID string, seq int, name string, at time.Time) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO chaos_steps (run_id, seq, step, status, started_ms) VALUES ($1, $2, $3, 'running', $4)`,
		runID, seq, name, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("record step %s: %w", name, err)
	}
	return nil
}

func (j journal) finishStep(ctx context.Context, runID string, seq int, status, detail string, at time.Time) error {
	_, err := j.db.ExecContext(ctx, `UPDATE chaos_steps SET status = $1, detail = $2, finished_ms = $3 WHERE run_id = $4 AND seq = $5`,
		status, detail, at.UnixMilli(), runID, seq)
	if err != nil {
		return fmt.Errorf("record step end: %w", err)
	}
	return nil
}

// finishRun closes a run this replica (owner) holds; a run another replica
// took over (and closed) is left as that replica recorded it: ErrRunLost.
func (j journal) finishRun(ctx context.Context, id, owner, status, reason string, score *float64, md, js string, at time.Time) error {
	var sc any
	if score != nil {
		sc = *score
	}
	res, err := j.db.ExecContext(ctx, `UPDATE chaos_runs SET status = $1, reason = $2, score = $3, report_md = $4, report_json = $5, finished_ms = $6
		WHERE id = $7 AND owner = $8`, status, reason, sc, md, js, at.UnixMilli(), id, owner)
	if err != nil {
		return fmt.Errorf("record run end: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return j.lost(ctx, id, owner)
	}
	return nil
}

// runScore is the score of an experiment's last scored run.
type runScore struct {
	experiment, service string
	score               float64
}

// lastScores returns, per experiment and service, the score of the last
// finished run that has one.
func (j journal) lastScores(ctx context.Context) ([]runScore, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT r.experiment, r.service, r.score FROM chaos_runs r
		WHERE r.score IS NOT NULL AND r.finished_ms IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM chaos_runs o WHERE o.experiment = r.experiment AND o.service = r.service
			AND o.score IS NOT NULL AND o.finished_ms IS NOT NULL
			AND (o.finished_ms > r.finished_ms OR (o.finished_ms = r.finished_ms AND o.id > r.id)))
		ORDER BY r.experiment, r.service`)
	if err != nil {
		return nil, fmt.Errorf("read resilience scores: %w", err)
	}
	defer rows.Close()
	var out []runScore
	for rows.Next() {
		var sc runScore
		if err := rows.Scan(&sc.experiment, &sc.service, &sc.score); err != nil {
			return nil, fmt.Errorf("read resilience scores: %w", err)
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read resilience scores: %w", err)
	}
	return out, nil
}

// ErrRunLost is returned to a runner whose run another replica took over
// (its lease expired): the runner must leave the run and its faults alone.
var ErrRunLost = errors.New("run taken over by another replica")

// lost returns the ErrRunLost of a run owner no longer holds, naming who does.
func (j journal) lost(ctx context.Context, id, owner string) error {
	var status, holder string
	err := j.db.QueryRowContext(ctx, `SELECT status, owner FROM chaos_runs WHERE id = $1`, id).Scan(&status, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("run %s is no longer recorded: %w", id, ErrRunLost)
	}
	if err != nil {
		return fmt.Errorf("read chaos run: %w", err)
	}
	return fmt.Errorf("run %s is %s, held by %s, not by %s: %w", id, status, holder, owner, ErrRunLost)
}

// holds returns nil while owner holds the run, ErrRunLost once another
// replica took it over.
func (j journal) holds(ctx context.Context, id, owner string) error {
	var holder string
	err := j.db.QueryRowContext(ctx, `SELECT owner FROM chaos_runs WHERE id = $1`, id).Scan(&holder)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil // unknown: the runner does what it must
	}
	if err != nil || holder != owner {
		return j.lost(ctx, id, owner)
	}
	return nil
}

// renewRun extends the lease of a run under way and of its faults, where
// owner still holds them; it returns the stop request recorded for the
// run. A run or fault another replica took over (its lease expired) is not
// renewed: ErrRunLost.
func (j journal) renewRun(ctx context.Context, id, owner string, lease time.Time) (stopBy string, err error) {
	res, err := j.db.ExecContext(ctx, `UPDATE chaos_runs SET lease_ms = $1 WHERE id = $2 AND owner = $3 AND status IN ('running', 'waiting_approval')`,
		lease.UnixMilli(), id, owner)
	if err != nil {
		return "", fmt.Errorf("renew run lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return "", j.lost(ctx, id, owner)
	}
	if _, err := j.db.ExecContext(ctx, `UPDATE chaos_faults SET lease_ms = $1 WHERE run_id = $2 AND owner = $3 AND status IN ('pending', 'active')`,
		lease.UnixMilli(), id, owner); err != nil {
		return "", fmt.Errorf("renew fault leases: %w", err)
	}
	taken, err := j.faults(ctx, `WHERE run_id = $1 AND owner <> $2 AND status IN ('pending', 'active')`, id, owner)
	if err != nil {
		return "", err
	}
	if len(taken) > 0 {
		var names []string
		for _, f := range taken {
			names = append(names, f.Name+" (by "+f.Owner+")")
		}
		return "", fmt.Errorf("faults of run %s taken over after their lease expired: %s: %w", id, strings.Join(names, ", "), ErrRunLost)
	}
	err = j.db.QueryRowContext(ctx, `SELECT stop_requested FROM chaos_runs WHERE id = $1`, id).Scan(&stopBy)
	if err != nil {
		return "", fmt.Errorf("read stop request: %w", err)
	}
	return stopBy, nil
}

// requestStop marks running runs as to be stopped (all when id is "").
func (j journal) requestStop(ctx context.Context, id, actor string) (int64, error) {
	q := `UPDATE chaos_runs SET stop_requested = $1 WHERE status IN ('running', 'waiting_approval') AND stop_requested = ''`
	args := []any{actor}
	if id != "" {
		q += ` AND id = $2`
		args = append(args, id)
	}
	res, err := j.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("request stop: %w", err)
	}
	return res.RowsAffected()
}

func (j journal) insertFault(ctx context.Context, f *FaultRecord) error {
	spec, _ := json.Marshal(f.Fault)
	_, err := j.db.ExecContext(ctx, `INSERT INTO chaos_faults (id, run_id, name, driver, spec, status, owner, lease_ms, created_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		f.ID, f.RunID, f.Name, f.Driver, string(spec), FaultPending, f.Owner, f.Lease.UnixMilli(), f.Created.UnixMilli())
	if err != nil {
		return fmt.Errorf("journal fault %s: %w", f.Name, err)
	}
	return nil
}

func (j journal) setFault(ctx context.Context, id, status string, state json.RawMessage, errText string, reverted *time.Time) error {
	var rv any
	if reverted != nil {
		rv = reverted.UnixMilli()
	}
	_, err := j.db.ExecContext(ctx, `UPDATE chaos_faults SET status = $1, state = $2, error = $3, reverted_ms = COALESCE($4, reverted_ms) WHERE id = $5`,
		status, string(state), errText, rv, id)
	if err != nil {
		return fmt.Errorf("update fault journal: %w", err)
	}
	return nil
}

// claimExpired takes over the faults whose lease expired (their runner died).
func (j journal) claimExpired(ctx context.Context, owner string, now, lease time.Time) ([]FaultRecord, error) {
	fs, err := j.faults(ctx, `WHERE status IN ('pending', 'active') AND lease_ms < $1`, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	var out []FaultRecord
	for _, f := range fs {
		res, err := j.db.ExecContext(ctx, `UPDATE chaos_faults SET owner = $1, lease_ms = $2 WHERE id = $3 AND lease_ms < $4 AND status IN ('pending', 'active')`,
			owner, lease.UnixMilli(), f.ID, now.UnixMilli())
		if err != nil {
			return out, fmt.Errorf("claim expired fault: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			f.Owner = owner
			out = append(out, f)
		}
	}
	return out, nil
}

// expiredRuns returns running runs whose runner stopped renewing.
func (j journal) expiredRuns(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT id FROM chaos_runs WHERE status IN ('running', 'waiting_approval') AND lease_ms < $1`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list expired runs: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (j journal) faults(ctx context.Context, where string, args ...any) ([]FaultRecord, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT id, run_id, name, driver, spec, state, status, owner, lease_ms, created_ms, reverted_ms, error
		FROM chaos_faults `+where+` ORDER BY created_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read fault journal: %w", err)
	}
	defer rows.Close()
	var out []FaultRecord
	for rows.Next() {
		var f FaultRecord
		var spec, state string
		var lease, created int64
		var rev sql.NullInt64
		if err := rows.Scan(&f.ID, &f.RunID, &f.Name, &f.Driver, &spec, &state, &f.Status, &f.Owner, &lease, &created, &rev, &f.Error); err != nil {
			return nil, fmt.Errorf("read fault journal: %w", err)
		}
		if err := json.Unmarshal([]byte(spec), &f.Fault); err != nil {
			return nil, fmt.Errorf("fault %s: stored spec: %w", f.ID, err)
		}
		if state != "" {
			f.State = json.RawMessage(state)
		}
		f.Lease, f.Created, f.Reverted = time.UnixMilli(lease).UTC(), time.UnixMilli(created).UTC(), msPtr(rev)
		out = append(out, f)
	}
	return out, rows.Err()
}

func (j journal) run(ctx context.Context, id string) (*RunInfo, string, error) {
	var r RunInfo
	var started int64
	var fin sql.NullInt64
	var score sql.NullFloat64
	var owner string
	err := j.db.QueryRowContext(ctx, `SELECT id, experiment, service, environment, actor, status, reason, started_ms, finished_ms, score, owner
		FROM chaos_runs WHERE id = $1`, id).Scan(&r.ID, &r.Experiment, &r.Service, &r.Environment, &r.Actor, &r.Status, &r.Reason,
		&started, &fin, &score, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("read chaos run: %w", err)
	}
	r.Started, r.Finished = time.UnixMilli(started).UTC(), msPtr(fin)
	if score.Valid {
		v := score.Float64
		r.Score = &v
	}
	rows, err := j.db.QueryContext(ctx, `SELECT step, status, started_ms, finished_ms, detail FROM chaos_steps WHERE run_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, "", fmt.Errorf("read steps: %w", err)
	}
	defer rows.Close()
	r.Steps = []Step{}
	for rows.Next() {
		var s Step
		var st int64
		var fn sql.NullInt64
		if err := rows.Scan(&s.Name, &s.Status, &st, &fn, &s.Detail); err != nil {
			return nil, "", err
		}
		s.Started, s.Finished = time.UnixMilli(st).UTC(), msPtr(fn)
		r.Steps = append(r.Steps, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if r.Approval, err = j.approval(ctx, id); err != nil {
		return nil, "", err
	}
	r.Faults, err = j.faults(ctx, `WHERE run_id = $1`, id)
	if r.Faults == nil {
		r.Faults = []FaultRecord{}
	}
	return &r, owner, err
}

func (j journal) list(ctx context.Context, limit int) ([]RunInfo, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT id, experiment, service, environment, actor, status, reason, started_ms, finished_ms, score
		FROM chaos_runs ORDER BY started_ms DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list chaos runs: %w", err)
	}
	defer rows.Close()
	out := []RunInfo{}
	for rows.Next() {
		var r RunInfo
		var started int64
		var fin sql.NullInt64
		var score sql.NullFloat64
		if err := rows.Scan(&r.ID, &r.Experiment, &r.Service, &r.Environment, &r.Actor, &r.Status, &r.Reason, &started, &fin, &score); err != nil {
			return nil, err
		}
		r.Started, r.Finished = time.UnixMilli(started).UTC(), msPtr(fin)
		if score.Valid {
			v := score.Float64
			r.Score = &v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (j journal) report(ctx context.Context, id string) (md, js string, err error) {
	err = j.db.QueryRowContext(ctx, `SELECT report_md, report_json FROM chaos_runs WHERE id = $1`, id).Scan(&md, &js)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return md, js, err
}

// abandonRun closes a run whose runner died as aborted, with the step it
// was in closed as failed; it reports whether this call closed it (false:
// another replica did, or the run ended meanwhile).
//
// The replica closing it (owner) becomes its owner: a runner that comes back
// renews nothing and finishes nothing of it any more (ErrRunLost).
func (j journal) abandonRun(ctx context.Context, id, owner, reason string, at time.Time) (bool, error) {
	res, err := j.db.ExecContext(ctx, `UPDATE chaos_runs SET status = 'aborted', reason = $1, finished_ms = $2, owner = $3 WHERE id = $4 AND status IN ('running', 'waiting_approval')`,
		reason, at.UnixMilli(), owner, id)
	if err != nil {
		return false, fmt.Errorf("close abandoned run: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	if _, err := j.db.ExecContext(ctx, `UPDATE chaos_steps SET status = 'failed', detail = $1, finished_ms = $2 WHERE run_id = $3 AND status = 'running'`,
		"interrupted: "+reason, at.UnixMilli(), id); err != nil {
		return true, fmt.Errorf("close the step of an abandoned run: %w", err)
	}
	return true, nil
}

// nextSeq returns the sequence number of a run's next step.
func (j journal) nextSeq(ctx context.Context, id string) (int, error) {
	var n int
	if err := j.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM chaos_steps WHERE run_id = $1`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("read steps: %w", err)
	}
	return n + 1, nil
}

func (j journal) setStatus(ctx context.Context, id, status string) error {
	if _, err := j.db.ExecContext(ctx, `UPDATE chaos_runs SET status = $1 WHERE id = $2`, status, id); err != nil {
		return fmt.Errorf("record run status: %w", err)
	}
	return nil
}

// spec returns the experiment a run was started with.
func (j journal) spec(ctx context.Context, id string) (*Experiment, error) {
	var spec string
	err := j.db.QueryRowContext(ctx, `SELECT spec FROM chaos_runs WHERE id = $1`, id).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read chaos run: %w", err)
	}
	var e Experiment
	if err := json.Unmarshal([]byte(spec), &e); err != nil {
		return nil, fmt.Errorf("run %s: stored experiment: %w", id, err)
	}
	return &e, nil
}

// ApprovalRecord is the approval of a run.
type ApprovalRecord struct {
	By      string    `json:"by"`
	Role    string    `json:"role"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// approve records the approval of a waiting run; it is a no-op when the run
// is already approved.
func (j journal) approve(ctx context.Context, id string, a ApprovalRecord) error {
	return j.db.InTx(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, `SELECT status FROM chaos_runs WHERE id = $1`, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read chaos run: %w", err)
		}
		if status != StatusWaiting {
			return fmt.Errorf("run %s is %s, not waiting for approval: %w", id, status, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO chaos_approvals (run_id, approved_by, role, comment, at_ms) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (run_id) DO NOTHING`, id, a.By, a.Role, a.Comment, a.At.UnixMilli()); err != nil {
			return fmt.Errorf("approve run %s: %w", id, err)
		}
		return nil
	})
}

// approval returns the approval of a run, nil when there is none.
func (j journal) approval(ctx context.Context, id string) (*ApprovalRecord, error) {
	var a ApprovalRecord
	var at int64
	err := j.db.QueryRowContext(ctx, `SELECT approved_by, role, comment, at_ms FROM chaos_approvals WHERE run_id = $1`, id).Scan(&a.By, &a.Role, &a.Comment, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read approval of run %s: %w", id, err)
	}
	a.At = time.UnixMilli(at).UTC()
	return &a, nil
}
