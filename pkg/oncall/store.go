package oncall

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the table of runtime overrides.
var Migrations = []store.Migration{{
	ID: "oncall/0001_overrides",
	SQLite: `CREATE TABLE oncall_overrides (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule   TEXT NOT NULL,
	user_name  TEXT NOT NULL,
	starts_at  BIGINT NOT NULL,
	ends_at    BIGINT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX oncall_overrides_schedule ON oncall_overrides (schedule, ends_at);`,
	Postgres: `CREATE TABLE oncall_overrides (
	id         BIGSERIAL PRIMARY KEY,
	schedule   TEXT NOT NULL,
	user_name  TEXT NOT NULL,
	starts_at  BIGINT NOT NULL,
	ends_at    BIGINT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX oncall_overrides_schedule ON oncall_overrides (schedule, ends_at);`,
}, {
	// precedence orders overrides where they overlap (later ones win): NULL
	// for an override as stored (its id), the id of the override it was
	// split from for the part a replaced window cut off, which keeps the
	// precedence of the original over the overrides stored after it.
	ID:     "oncall/0002_override_precedence",
	SQLite: `ALTER TABLE oncall_overrides ADD COLUMN precedence BIGINT;`,
}}

// OverridesOrder is the SQL order of stored overrides, earlier first (later
// ones win where they overlap), of the table aliased as the prefix.
func OverridesOrder(prefix string) string {
	return "COALESCE(" + prefix + "precedence, " + prefix + "id), " + prefix + "id"
}

// Querier is satisfied by *sql.DB and *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Directory combines the configured schedules with the overrides stored in
// the database. It is safe for concurrent use; SetConfig swaps the
// configuration on reload.
type Directory struct {
	db *store.DB

	mu    sync.RWMutex
	cfg   *Config
	hooks []ChangeHook
}

// ChangeHook is told, inside the transaction that changed them, which
// schedules' stored overrides changed (the escalation engine re-plans the
// shift handoffs of running escalations).
type ChangeHook func(ctx context.Context, tx *sql.Tx, schedules []string, now time.Time) error

// OnChange registers a hook called by every change of stored overrides.
func (d *Directory) OnChange(h ChangeHook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hooks = append(d.hooks, h)
}

func (d *Directory) changed(ctx context.Context, tx *sql.Tx, schedules []string, now time.Time) error {
	d.mu.RLock()
	hooks := slices.Clone(d.hooks)
	d.mu.RUnlock()
	for _, h := range hooks {
		if err := h(ctx, tx, schedules, now); err != nil {
			return err
		}
	}
	return nil
}

// NewDirectory returns a directory over cfg and db.
func NewDirectory(db *store.DB, cfg *Config) *Directory {
	if cfg == nil {
		cfg = &Config{}
	}
	return &Directory{db: db, cfg: cfg}
}

// Config returns the configuration in force.
func (d *Directory) Config() *Config {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg
}

// SetConfig replaces the configuration.
func (d *Directory) SetConfig(cfg *Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = cfg
}

// Overrides returns the stored overrides of schedule that overlap [from, to),
// oldest first (later ones win; the part of an override split by a replaced
// window keeps the original's place).
func (d *Directory) Overrides(ctx context.Context, q Querier, schedule string, from, to time.Time) ([]*Override, error) {
	if q == nil {
		q = d.db
	}
	rows, err := q.QueryContext(ctx, `SELECT id, user_name, starts_at, ends_at, reason FROM oncall_overrides
WHERE schedule = $1 AND ends_at > $2 AND starts_at < $3 ORDER BY `+OverridesOrder(""), schedule, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list overrides of %s: %w", schedule, err)
	}
	defer rows.Close()
	var out []*Override
	for rows.Next() {
		var o Override
		var s, e int64
		if err := rows.Scan(&o.ID, &o.User, &s, &e, &o.Reason); err != nil {
			return nil, fmt.Errorf("list overrides of %s: %w", schedule, err)
		}
		o.Start, o.End = time.UnixMilli(s).UTC(), time.UnixMilli(e).UTC()
		out = append(out, &o)
	}
	return out, rows.Err()
}

// lockSchedules serialises, on PostgreSQL, the changes of the stored
// overrides of schedules until tx ends (in the order of their names, so
// that two changes of the same two schedules do not deadlock): a
// replacement reads the overrides it trims, and two replacements of one
// window on two replicas would otherwise both keep theirs. SQLite has one
// writer.
func lockSchedules(ctx context.Context, tx *sql.Tx, dialect store.Dialect, schedules ...string) error {
	if dialect != store.Postgres {
		return nil
	}
	names := slices.Clone(schedules)
	slices.Sort(names)
	for _, s := range slices.Compact(names) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(store.LockOncallOverrides), s); err != nil {
			return fmt.Errorf("lock overrides of %s: %w", s, err)
		}
	}
	return nil
}

// ReplaceOverrides replaces what the stored overrides of schedule say about
// [from, to) with ovs, in one transaction: overrides overlapping the window
// are trimmed at its edges (split in two if they span it), not dropped.
func (d *Directory) ReplaceOverrides(ctx context.Context, schedule string, from, to time.Time, ovs []*Override, by string, now time.Time) error {
	return d.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := lockSchedules(ctx, tx, d.db.Dialect, schedule); err != nil {
			return err
		}
		if err := replaceOverrides(ctx, tx, schedule, from, to, ovs, by, now); err != nil {
			return err
		}
		return d.changed(ctx, tx, []string{schedule}, now)
	})
}

func replaceOverrides(ctx context.Context, tx *sql.Tx, schedule string, from, to time.Time, ovs []*Override, by string, now time.Time) error {
	// Overrides overlapping the window are trimmed to what lies outside it
	// (split in two when they span it): only [from, to) is replaced.
	rows, err := tx.QueryContext(ctx, `SELECT id, COALESCE(precedence, id), user_name, starts_at, ends_at, reason, created_by, created_at FROM oncall_overrides
WHERE schedule = $1 AND ends_at > $2 AND starts_at < $3 ORDER BY id`, schedule, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return fmt.Errorf("replace overrides of %s: %w", schedule, err)
	}
	type stored struct {
		id, precedence        int64
		user, reason, creator string
		start, end, created   int64
	}
	var old []stored
	for rows.Next() {
		var o stored
		if err := rows.Scan(&o.id, &o.precedence, &o.user, &o.start, &o.end, &o.reason, &o.creator, &o.created); err != nil {
			rows.Close()
			return fmt.Errorf("replace overrides of %s: %w", schedule, err)
		}
		old = append(old, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replace overrides of %s: %w", schedule, err)
	}
	f, t := from.UnixMilli(), to.UnixMilli()
	for _, o := range old {
		var q string
		var args []any
		switch {
		case o.start < f:
			// Keep the part before the window (the row keeps its id).
			q, args = `UPDATE oncall_overrides SET ends_at = $1 WHERE id = $2`, []any{f, o.id}
		case o.end > t:
			q, args = `UPDATE oncall_overrides SET starts_at = $1 WHERE id = $2`, []any{t, o.id}
		default:
			q, args = `DELETE FROM oncall_overrides WHERE id = $1`, []any{o.id}
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("replace overrides of %s: trim override %d: %w", schedule, o.id, err)
		}
		if o.start < f && o.end > t {
			// It spanned the window: keep the part after it too, with
			// the original's precedence over the overrides stored after it.
			if _, err := tx.ExecContext(ctx, `INSERT INTO oncall_overrides (schedule, user_name, starts_at, ends_at, reason, created_by, created_at, precedence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, schedule, o.user, t, o.end, o.reason, o.creator, o.created, o.precedence); err != nil {
				return fmt.Errorf("replace overrides of %s: split override %d: %w", schedule, o.id, err)
			}
		}
	}
	for _, o := range ovs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oncall_overrides (schedule, user_name, starts_at, ends_at, reason, created_by, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, schedule, o.User, o.Start.UnixMilli(), o.End.UnixMilli(), o.Reason, by, now.UnixMilli()); err != nil {
			return fmt.Errorf("store override of %s: %w", schedule, err)
		}
	}
	return nil
}

// DeleteOverride removes one stored override.
func (d *Directory) DeleteOverride(ctx context.Context, schedule string, id int64, now time.Time) (bool, error) {
	var n int64
	err := d.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oncall_overrides WHERE schedule = $1 AND id = $2`, schedule, id)
		if err != nil {
			return fmt.Errorf("delete override %d: %w", id, err)
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		return d.changed(ctx, tx, []string{schedule}, now)
	})
	return n == 1, err
}

// OnCall returns who is on call for schedule at t ("" for nobody), reading
// stored overrides through q (a transaction, or nil for the pool).
func (d *Directory) OnCall(ctx context.Context, q Querier, schedule string, t time.Time) (string, error) {
	w, err := d.Window(ctx, q, schedule, t, t.Add(time.Millisecond))
	if err != nil {
		return "", err
	}
	return w.OnCall(), nil
}

// Window is a schedule over [from, to) with its stored overrides, read
// once: who is on call at from and the next handoff after it, as OnCall
// and NextHandoff answer them, from one read of oncall_overrides instead
// of one each (an escalation step that pages a schedule asks both).
type Window struct {
	s        *Schedule
	from, to time.Time
	ovs      []*Override
}

// Window reads the stored overrides of schedule that overlap [from, to)
// through q (a transaction, or nil for the pool).
func (d *Directory) Window(ctx context.Context, q Querier, schedule string, from, to time.Time) (*Window, error) {
	if d.Config().Schedule(schedule) == nil {
		return nil, fmt.Errorf("unknown schedule %q", schedule)
	}
	ovs, err := d.Overrides(ctx, q, schedule, from, to)
	if err != nil {
		return nil, err
	}
	return d.WindowWith(schedule, from, to, ovs)
}

// WindowWith is Window with the stored overrides of schedule over [from,
// to) read by the caller (as Overrides reads them, in the order of their
// IDs): a caller that reads them with other rows in one statement.
func (d *Directory) WindowWith(schedule string, from, to time.Time, ovs []*Override) (*Window, error) {
	s := d.Config().Schedule(schedule)
	if s == nil {
		return nil, fmt.Errorf("unknown schedule %q", schedule)
	}
	return &Window{s: s, from: from, to: to, ovs: ovs}, nil
}

// OnCall is who is on call at the window's start ("" for nobody). An
// override of the window that does not cover its start changes nothing.
func (w *Window) OnCall() string {
	u, _ := w.s.At(w.from, w.ovs)
	return u
}

// NextHandoff is the first instant after the window's start at which
// someone else goes on call, and whether there is one before its end.
func (w *Window) NextHandoff() (time.Time, bool) {
	return w.s.NextHandoff(w.from, w.to.Sub(w.from), w.ovs)
}

// Shifts returns the shifts of schedule in [from, to) with stored overrides.
func (d *Directory) Shifts(ctx context.Context, q Querier, schedule string, from, to time.Time) ([]Shift, error) {
	w, err := d.Window(ctx, q, schedule, from, to)
	if err != nil {
		return nil, err
	}
	return w.s.Shifts(from, to, w.ovs), nil
}
