package rollout

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// schema is the schema of both backends; %[1]s is the id column's type.
const schema = `CREATE TABLE rollouts (
	id               %[1]s,
	name             TEXT NOT NULL,
	service          TEXT NOT NULL,
	environment      TEXT NOT NULL,
	strategy         TEXT NOT NULL,
	version          TEXT NOT NULL,
	stable           TEXT NOT NULL,
	state            TEXT NOT NULL,
	stage            INTEGER NOT NULL,
	phase            TEXT NOT NULL,
	weight           INTEGER NOT NULL DEFAULT 0,
	seq              INTEGER NOT NULL DEFAULT 0,
	ending           TEXT NOT NULL DEFAULT '',
	reason           TEXT NOT NULL DEFAULT '',
	actor            TEXT NOT NULL,
	definition       TEXT NOT NULL,
	change_id        BIGINT NOT NULL DEFAULT 0,
	attempts         INTEGER NOT NULL DEFAULT 0,
	created_ms       BIGINT NOT NULL,
	updated_ms       BIGINT NOT NULL,
	stage_started_ms BIGINT NOT NULL DEFAULT 0,
	due_ms           BIGINT NOT NULL DEFAULT 0,
	finished_ms      BIGINT
);
CREATE INDEX rollouts_state ON rollouts (state, id);
CREATE TABLE rollout_events (
	id         %[1]s,
	rollout_id BIGINT NOT NULL,
	at_ms      BIGINT NOT NULL,
	kind       TEXT NOT NULL,
	stage      TEXT NOT NULL,
	status     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	message    TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX rollout_events_rollout ON rollout_events (rollout_id, id);`

// Migrations create the rollout tables.
var Migrations = []store.Migration{{
	ID:       "rollout/0001_init",
	SQLite:   fmt.Sprintf(schema, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(schema, "BIGSERIAL PRIMARY KEY"),
}, {
	ID:       "rollout/0002_no_data_since",
	SQLite:   `ALTER TABLE rollouts ADD COLUMN no_data_since_ms BIGINT NOT NULL DEFAULT 0;`,
	Postgres: `ALTER TABLE rollouts ADD COLUMN no_data_since_ms BIGINT NOT NULL DEFAULT 0;`,
}}

// States of a rollout.
const (
	StateRunning    = "running"
	StatePaused     = "paused"
	StateSucceeded  = "succeeded"
	StateRolledBack = "rolled_back"
	StateAborted    = "aborted"
	// StateDenied: the deploy gate said no; nothing changed.
	StateDenied = "denied"
	// StateRefused: the target is locked by another change (chaos, scaling,
	// another rollout); nothing changed.
	StateRefused = "refused"
	// StateFailed: the rollback itself failed; a human must finish it.
	StateFailed = "failed"
)

// Final reports whether a state is final.
func Final(state string) bool { return state != StateRunning && state != StatePaused }

// Phases of the current stage.
const (
	phaseAct      = "act"      // run the stage's action
	phaseHold     = "hold"     // hold the stage until due, then analyse
	phaseRollback = "rollback" // run the rollback action
	phaseDone     = "done"
)

// Rollout is one run of a definition.
type Rollout struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Strategy    string `json:"strategy"`
	Version     string `json:"version"`
	Stable      string `json:"stable"`
	State       string `json:"state"`
	// Stage is the index of the current stage in Stages (-1 before the first).
	Stage  int    `json:"stage"`
	Phase  string `json:"phase"`
	Weight int    `json:"weight"`
	// Reason says why the rollout is paused, denied, rolled back or failed.
	Reason       string     `json:"reason,omitempty"`
	Actor        string     `json:"actor"`
	ChangeID     int64      `json:"change_id,omitempty"`
	Created      time.Time  `json:"created"`
	Updated      time.Time  `json:"updated"`
	StageStarted *time.Time `json:"stage_started,omitempty"`
	// Due is when the current stage's next analysis runs: the end of its
	// hold, or during a no-data wait the next analysis.
	Due *time.Time `json:"due,omitempty"`
	// NoDataSince is when the current stage's no-data wait began (the end
	// of its hold): its analysis failed on no data only and runs again
	// until rollouts.no_data_wait after that.
	NoDataSince *time.Time `json:"no_data_since,omitempty"`
	Finished    *time.Time `json:"finished,omitempty"`
	Stages      []Stage    `json:"stages"`
	Events      []Event    `json:"events,omitempty"`

	seq      int64
	ending   string
	attempts int
	def      *Definition
}

// Event is one entry of a rollout's history.
type Event struct {
	Time    time.Time      `json:"time"`
	Kind    string         `json:"kind"`
	Stage   string         `json:"stage,omitempty"`
	Status  string         `json:"status"`
	Actor   string         `json:"actor"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

const columns = `id, name, service, environment, strategy, version, stable, state, stage, phase, weight, seq, ending, reason, actor,
definition, change_id, attempts, created_ms, updated_ms, stage_started_ms, due_ms, finished_ms, no_data_since_ms`

type rowScanner interface{ Scan(...any) error }

func scanRollout(r rowScanner) (*Rollout, error) {
	var (
		ro                             Rollout
		def                            string
		created, updated, started, due int64
		noDataSince                    int64
		finished                       sql.NullInt64
	)
	if err := r.Scan(&ro.ID, &ro.Name, &ro.Service, &ro.Environment, &ro.Strategy, &ro.Version, &ro.Stable, &ro.State, &ro.Stage,
		&ro.Phase, &ro.Weight, &ro.seq, &ro.ending, &ro.Reason, &ro.Actor, &def, &ro.ChangeID, &ro.attempts,
		&created, &updated, &started, &due, &finished, &noDataSince); err != nil {
		return nil, err
	}
	ro.Created, ro.Updated = jobs.FromMillis(created), jobs.FromMillis(updated)
	if started > 0 {
		t := jobs.FromMillis(started)
		ro.StageStarted = &t
	}
	if due > 0 {
		t := jobs.FromMillis(due)
		ro.Due = &t
	}
	if noDataSince > 0 {
		t := jobs.FromMillis(noDataSince)
		ro.NoDataSince = &t
	}
	if finished.Valid {
		t := jobs.FromMillis(finished.Int64)
		ro.Finished = &t
	}
	d, err := Parse([]byte(def), fmt.Sprintf("rollout %d's definition", ro.ID))
	if err != nil {
		return nil, err
	}
	ro.def = d
	ro.Stages = d.Plan()
	return &ro, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ErrNotFound is returned for an unknown rollout.
var ErrNotFound = errors.New("not found")

func getRollout(ctx context.Context, q querier, id int64) (*Rollout, error) {
	ro, err := scanRollout(q.QueryRowContext(ctx, `SELECT `+columns+` FROM rollouts WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read rollout %d: %w", id, err)
	}
	return ro, nil
}

// ListFilter selects rollouts.
type ListFilter struct {
	// Active keeps the running and paused ones.
	Active bool
	Name   string
	Limit  int
}

func listRollouts(ctx context.Context, q querier, f ListFilter) ([]*Rollout, error) {
	var (
		where []string
		args  []any
	)
	if f.Active {
		where = append(where, "state IN ('running', 'paused')")
	}
	if f.Name != "" {
		args = append(args, f.Name)
		where = append(where, fmt.Sprintf("name = $%d", len(args)))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	query := `SELECT ` + columns + ` FROM rollouts`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	var out []*Rollout
	for rows.Next() {
		ro, err := scanRollout(rows)
		if err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		out = append(out, ro)
	}
	return out, rows.Err()
}

func insertEvent(ctx context.Context, q querier, id int64, at time.Time, e Event) error {
	detail := []byte("{}")
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("rollout %d event: %w", id, err)
		}
		detail = b
	}
	msg := strings.ToValidUTF8(strings.ReplaceAll(e.Message, "\x00", ""), "\uFFFD")
	_, err := q.ExecContext(ctx, `INSERT INTO rollout_events (rollout_id, at_ms, kind, stage, status, actor, message, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, jobs.Millis(at), e.Kind, e.Stage, e.Status, e.Actor, msg, string(detail))
	if err != nil {
		return fmt.Errorf("rollout %d event: %w", id, err)
	}
	return nil
}

func listEvents(ctx context.Context, q querier, id int64) ([]Event, error) {
	rows, err := q.QueryContext(ctx, `SELECT at_ms, kind, stage, status, actor, message, detail FROM rollout_events
WHERE rollout_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("rollout %d events: %w", id, err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var (
			e      Event
			at     int64
			detail string
		)
		if err := rows.Scan(&at, &e.Kind, &e.Stage, &e.Status, &e.Actor, &e.Message, &detail); err != nil {
			return nil, fmt.Errorf("rollout %d events: %w", id, err)
		}
		e.Time = jobs.FromMillis(at)
		if detail != "{}" && detail != "" {
			_ = json.Unmarshal([]byte(detail), &e.Detail)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func nullMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return jobs.Millis(*t)
}

func millisOrZero(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return jobs.Millis(*t)
}

// save writes ro's progress if its seq is still prev (no one else moved
// it meanwhile); it reports whether it did.
func save(ctx context.Context, q querier, ro *Rollout, prev int64) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE rollouts SET state = $1, stage = $2, phase = $3, weight = $4, seq = $5, ending = $6,
reason = $7, change_id = $8, attempts = $9, updated_ms = $10, stage_started_ms = $11, due_ms = $12, finished_ms = $13,
no_data_since_ms = $14 WHERE id = $15 AND seq = $16`,
		ro.State, ro.Stage, ro.Phase, ro.Weight, ro.seq, ro.ending, ro.Reason, ro.ChangeID, ro.attempts, jobs.Millis(ro.Updated),
		millisOrZero(ro.StageStarted), millisOrZero(ro.Due), nullMillis(ro.Finished), millisOrZero(ro.NoDataSince), ro.ID, prev)
	if err != nil {
		return false, fmt.Errorf("save rollout %d: %w", ro.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("save rollout %d: %w", ro.ID, err)
	}
	return n == 1, nil
}
