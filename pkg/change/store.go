package change

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// schema is the schema of both backends; %[1]s is the id column's type.
// Times are unix milliseconds.
const schema = `
CREATE TABLE changes (
	id %[1]s,
	service TEXT NOT NULL,
	kind TEXT NOT NULL,
	source TEXT NOT NULL,
	ref TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	commit_sha TEXT NOT NULL DEFAULT '',
	commit_at BIGINT,
	description TEXT NOT NULL DEFAULT '',
	actor TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL,
	failed INTEGER NOT NULL DEFAULT 0,
	gate_decision TEXT NOT NULL DEFAULT '',
	gate_state TEXT NOT NULL DEFAULT '',
	gate_reason TEXT NOT NULL DEFAULT '',
	gate_override INTEGER NOT NULL DEFAULT 0,
	override_reason TEXT NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL,
	finished_at BIGINT
);
CREATE INDEX changes_service ON changes (service, started_at);
CREATE INDEX changes_started ON changes (started_at);
CREATE INDEX changes_ref ON changes (ref, outcome);
CREATE TABLE change_incidents (
	change_id BIGINT NOT NULL,
	incident_id TEXT NOT NULL,
	service TEXT NOT NULL,
	opened_at BIGINT NOT NULL,
	resolved_at BIGINT,
	PRIMARY KEY (change_id, incident_id)
);
CREATE INDEX change_incidents_incident ON change_incidents (incident_id);`

// Migrations create the change tables.
var Migrations = []store.Migration{{
	ID:       "change/0001_init",
	SQLite:   fmt.Sprintf(schema, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(schema, "BIGSERIAL PRIMARY KEY"),
}, {
	// The idempotency key of a record (Change.Key): one text, both backends
	// have partial unique indexes.
	ID: "change/0002_key",
	SQLite: `ALTER TABLE changes ADD COLUMN idem_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX changes_idem_key ON changes (idem_key) WHERE idem_key <> '';`,
}, {
	// When a change that failed was rolled back (Change.RolledBackAt).
	ID:     "change/0003_rolled_back_at",
	SQLite: `ALTER TABLE changes ADD COLUMN rolled_back_at BIGINT;`,
}, {
	// The slots of the deploy gate's yellow quota taken by changes the
	// gate allowed and that are not recorded yet (ReserveChange).
	ID:       "change/0004_quota_slots",
	SQLite:   fmt.Sprintf(quotaSlots, "INTEGER PRIMARY KEY AUTOINCREMENT"),
	Postgres: fmt.Sprintf(quotaSlots, "BIGSERIAL PRIMARY KEY"),
}}

// quotaSlots is the table of the yellow quota's slots; %[1]s is the id
// column's type. Times are unix milliseconds.
const quotaSlots = `
CREATE TABLE change_quota_slots (
	id %[1]s,
	service TEXT NOT NULL,
	taken_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX change_quota_slots_service ON change_quota_slots (service, expires_at);`

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insert records c; a change with the same (non-empty) key recorded
// before is read back into c instead, and existed is true.
func insert(ctx context.Context, q querier, c *Change) (existed bool, err error) {
	var g Gate
	if c.Gate != nil {
		g = *c.Gate
	}
	err = q.QueryRowContext(ctx, `INSERT INTO changes (service, kind, source, ref, version, commit_sha, commit_at, description, actor,
		outcome, failed, gate_decision, gate_state, gate_reason, gate_override, override_reason, started_at, finished_at, idem_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		ON CONFLICT (idem_key) WHERE idem_key <> '' DO NOTHING RETURNING id`,
		c.Service, string(c.Kind), c.Source, c.Ref, c.Version, c.Commit, nullMS(c.CommitTime), c.Description, c.Actor,
		string(c.Outcome), b2i(c.Failed), g.Decision, g.State, g.Reason, b2i(g.Override), g.OverrideReason,
		ms(c.StartedAt), nullMS(c.FinishedAt), c.Key).Scan(&c.ID)
	if errors.Is(err, sql.ErrNoRows) && c.Key != "" {
		prev, err := byKey(ctx, q, c.Key)
		if err != nil {
			return false, err
		}
		*c = *prev
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("record change: %w", err)
	}
	return false, nil
}

// byKey reads the change recorded with an idempotency key (ErrNotFound).
func byKey(ctx context.Context, q querier, key string) (*Change, error) {
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM changes WHERE idem_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read change with key %q: %w", key, err)
	}
	return c, nil
}

// same reads the change recorded without a key that is c as a request
// without a key names it, with the started_at it gives: of the same
// service, kind, source, commit, version and description, started at the
// same millisecond, with c's outcome as it was recorded (refused when the
// gate denied it; rolled back since when it failed) (ErrNotFound). A
// change recorded in progress and then again as succeeded is not the
// same request: the second is not hidden behind the first.
func same(ctx context.Context, q querier, c *Change) (*Change, error) {
	prev, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM changes WHERE service = $1 AND started_at = $2 AND idem_key = ''
		AND kind = $3 AND source = $4 AND commit_sha = $5 AND version = $6 AND description = $7
		AND (outcome = $8 OR outcome = $9 OR (rolled_back_at IS NOT NULL AND $8 = $10)) ORDER BY id LIMIT 1`,
		c.Service, ms(c.StartedAt), string(c.Kind), c.Source, c.Commit, c.Version, c.Description,
		string(c.Outcome), string(Refused), string(Failed)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no change of %s started at %s", ErrNotFound, c.Service, c.StartedAt.Format(time.RFC3339Nano))
	}
	if err != nil {
		return nil, fmt.Errorf("read the change of %s started at %s: %w", c.Service, c.StartedAt.Format(time.RFC3339Nano), err)
	}
	return prev, nil
}

const columns = `id, service, kind, source, ref, version, commit_sha, commit_at, description, actor, outcome, failed,
	gate_decision, gate_state, gate_reason, gate_override, override_reason, started_at, finished_at, idem_key, rolled_back_at`

func scan(sc interface{ Scan(...any) error }) (*Change, error) {
	var (
		c                  Change
		kind, outcome      string
		commitAt, finished sql.NullInt64
		rolledBack         sql.NullInt64
		failed, override   int
		started            int64
		g                  Gate
	)
	if err := sc.Scan(&c.ID, &c.Service, &kind, &c.Source, &c.Ref, &c.Version, &c.Commit, &commitAt, &c.Description, &c.Actor,
		&outcome, &failed, &g.Decision, &g.State, &g.Reason, &override, &g.OverrideReason, &started, &finished, &c.Key, &rolledBack); err != nil {
		return nil, err
	}
	c.Kind, c.Outcome, c.Failed = Kind(kind), Outcome(outcome), failed != 0
	c.CommitTime, c.FinishedAt, c.StartedAt = fromNullMS(commitAt), fromNullMS(finished), fromMS(started)
	c.RolledBackAt = fromNullMS(rolledBack)
	if g.Decision != "" {
		g.Override = override != 0
		c.Gate = &g
	}
	return &c, nil
}

func get(ctx context.Context, q querier, id int64) (*Change, error) {
	c, err := scan(q.QueryRowContext(ctx, `SELECT `+columns+` FROM changes WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read change %d: %w", id, err)
	}
	return c, nil
}

func finish(ctx context.Context, q querier, id int64, o Outcome, now time.Time) error {
	failed := b2i(o == Failed || o == RolledBack)
	if _, err := q.ExecContext(ctx, `UPDATE changes SET outcome = $1, finished_at = $2, failed = CASE WHEN failed = 1 THEN 1 ELSE $3 END WHERE id = $4`,
		string(o), ms(now), failed, id); err != nil {
		return fmt.Errorf("finish change %d: %w", id, err)
	}
	return nil
}

// rollBack records that a change that failed was rolled back at now: its
// outcome becomes rolled_back; it finished (failed) when it did.
func rollBack(ctx context.Context, q querier, id int64, now time.Time) error {
	if _, err := q.ExecContext(ctx, `UPDATE changes SET outcome = $1, rolled_back_at = $2, failed = 1 WHERE id = $3 AND outcome = $4`,
		string(RolledBack), ms(now), id, string(Failed)); err != nil {
		return fmt.Errorf("roll back change %d: %w", id, err)
	}
	return nil
}

func links(ctx context.Context, q querier, where string, arg any) ([]Link, error) {
	rows, err := q.QueryContext(ctx, `SELECT change_id, incident_id, service, opened_at, resolved_at FROM change_incidents WHERE `+where+` ORDER BY opened_at, change_id`, arg)
	if err != nil {
		return nil, fmt.Errorf("read incident links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		var (
			l        Link
			opened   int64
			resolved sql.NullInt64
		)
		if err := rows.Scan(&l.ChangeID, &l.IncidentID, &l.Service, &opened, &resolved); err != nil {
			return nil, fmt.Errorf("read incident links: %w", err)
		}
		l.OpenedAt, l.ResolvedAt = fromMS(opened), fromNullMS(resolved)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Query selects changes for List.
type Query struct {
	Service string
	Kind    Kind
	Outcome Outcome
	// Since and Until bound StartedAt (zero: unbounded).
	Since, Until time.Time
	// Before is a change id: only older changes (paging).
	Before int64
	Limit  int
}

// Page sizes of List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// List returns changes, newest first, with their linked incidents.
func (s *Service) List(ctx context.Context, q Query) ([]Change, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Service != "" {
		add("service = $%d", q.Service)
	}
	if q.Kind != "" {
		add("kind = $%d", string(q.Kind))
	}
	if q.Outcome != "" {
		add("outcome = $%d", string(q.Outcome))
	}
	if !q.Since.IsZero() {
		add("started_at >= $%d", ms(q.Since))
	}
	if !q.Until.IsZero() {
		add("started_at < $%d", ms(q.Until))
	}
	if q.Before > 0 {
		add("id < $%d", q.Before)
	}
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	sqlText := `SELECT ` + columns + ` FROM changes`
	if len(where) > 0 {
		sqlText += ` WHERE ` + strings.Join(where, " AND ")
	}
	sqlText += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, q.Limit)
	rows, err := s.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	var out []Change
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list changes: %w", err)
		}
		out = append(out, *c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	for i := range out {
		if out[i].Incidents, err = links(ctx, s.db, "change_id = $1", out[i].ID); err != nil {
			return nil, err
		}
		out[i].fill()
	}
	return out, nil
}

// QuotaSlotTTL is how long a slot of the yellow quota taken by the deploy
// gate (ReserveChange) counts when no recorded change consumes it: Submit
// records the change right after the gate answers, so a slot outlives it
// only when sred stops (or its database fails) in between.
const QuotaSlotTTL = 5 * time.Minute

// countQuota is what the yellow quota counts: the changes of a service ($1)
// that started at or after $2 and were not refused ($3), and the slots
// taken and not yet consumed nor expired ($4: now). One statement, so
// that it reads one snapshot: a change recorded with the slot it consumes
// counts once, before its transaction or after it.
const countQuota = `SELECT
	(SELECT COUNT(*) FROM changes WHERE service = $1 AND started_at >= $2 AND outcome <> $3) +
	(SELECT COUNT(*) FROM change_quota_slots WHERE service = $1 AND expires_at > $4)`

// CountChanges counts the changes of a service that started at or after
// since and were not refused, with the slots of the yellow quota the gate
// gave changes not recorded yet (ReserveChange): the deploy gate's yellow
// quota reads it when it answers a question (GET /api/v1/gate).
func (s *Service) CountChanges(ctx context.Context, service string, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, countQuota, service, ms(since), string(Refused), ms(s.clock.Now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count changes of %s: %w", service, err)
	}
	return n, nil
}

// ReserveChange counts the changes of a service as CountChanges does and,
// when they are fewer than quota, takes a slot of the quota in the same
// transaction: slot is its id (0 when the quota is used). The change the
// gate then allows is recorded with the slot (Submit), which consumes it
// in the transaction that inserts the change; a slot not consumed counts
// for QuotaSlotTTL. The count and the slot are one decision of the
// database: on PostgreSQL the transaction first takes the service's lock
// (store.LockChangeQuota), so that replicas gating changes of one service
// at once take turns and each counts the slots of those before; SQLite
// runs one write transaction at a time (BEGIN IMMEDIATE).
func (s *Service) ReserveChange(ctx context.Context, service string, since time.Time, quota int) (n int, slot int64, err error) {
	now := ms(s.clock.Now())
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if s.db.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(store.LockChangeQuota), service); err != nil {
				return fmt.Errorf("lock the quota of %s: %w", service, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM change_quota_slots WHERE service = $1 AND expires_at <= $2`, service, now); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, countQuota, service, ms(since), string(Refused), now).Scan(&n); err != nil {
			return err
		}
		if n >= quota {
			return nil
		}
		return tx.QueryRowContext(ctx, `INSERT INTO change_quota_slots (service, taken_at, expires_at) VALUES ($1, $2, $3) RETURNING id`,
			service, now, now+QuotaSlotTTL.Milliseconds()).Scan(&slot)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count changes of %s: %w", service, err)
	}
	return n, slot, nil
}

// ReleaseSlot gives back a slot of the yellow quota (0: none) taken for a
// change that will not be recorded: a rollout the gate allowed and whose
// target lock was refused, or whose gate step is tried again. Releasing a
// slot consumed or expired already is a no-op.
func (s *Service) ReleaseSlot(ctx context.Context, slot int64) error {
	return consumeSlot(ctx, s.db, slot)
}

// consumeSlot deletes a slot of the yellow quota (0: none) in the
// transaction that records its change.
func consumeSlot(ctx context.Context, q querier, slot int64) error {
	if slot == 0 {
		return nil
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM change_quota_slots WHERE id = $1`, slot); err != nil {
		return fmt.Errorf("consume quota slot %d: %w", slot, err)
	}
	return nil
}

// LinkedTo returns the changes linked to an incident (its likely causes).
func (s *Service) LinkedTo(ctx context.Context, incidentID string) ([]Change, error) {
	ls, err := links(ctx, s.db, "incident_id = $1", incidentID)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, l := range ls {
		c, err := s.Get(ctx, l.ChangeID)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
