package budget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
)

// Migrations create the budget tables: the last known state per SLO group,
// the timeline of state changes (per service) and the gate's decisions;
// then the index by time of the gate's decisions, which retention walks to
// delete the expired ones (retention.gate_decisions); then the count of
// repeats of a decision (recordDecision) and the time of the last one;
// then the subject of a decision.
var Migrations = []store.Migration{{
	ID: "budget/0001_init",
	SQLite: `
CREATE TABLE budget_states (
	service    TEXT NOT NULL,
	slo        TEXT NOT NULL,
	grp        TEXT NOT NULL,
	state      TEXT NOT NULL,
	remaining  DOUBLE PRECISION,
	since_ms   BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL,
	PRIMARY KEY (service, slo, grp)
);
CREATE TABLE budget_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ms    BIGINT NOT NULL,
	service    TEXT NOT NULL,
	slo        TEXT NOT NULL,
	grp        TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	remaining  DOUBLE PRECISION,
	message    TEXT NOT NULL
);
CREATE INDEX budget_events_service ON budget_events (service, time_ms);
CREATE TABLE gate_decisions (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ms         BIGINT NOT NULL,
	service         TEXT NOT NULL,
	change_kind     TEXT NOT NULL,
	allowed         INTEGER NOT NULL,
	state           TEXT NOT NULL,
	reason          TEXT NOT NULL,
	override        INTEGER NOT NULL,
	override_reason TEXT NOT NULL,
	actor           TEXT NOT NULL
);
CREATE INDEX gate_decisions_service ON gate_decisions (service, time_ms);
`,
	Postgres: `
CREATE TABLE budget_states (
	service    TEXT NOT NULL,
	slo        TEXT NOT NULL,
	grp        TEXT NOT NULL,
	state      TEXT NOT NULL,
	remaining  DOUBLE PRECISION,
	since_ms   BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL,
	PRIMARY KEY (service, slo, grp)
);
CREATE TABLE budget_events (
	id         BIGSERIAL PRIMARY KEY,
	time_ms    BIGINT NOT NULL,
	service    TEXT NOT NULL,
	slo        TEXT NOT NULL,
	grp        TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	remaining  DOUBLE PRECISION,
	message    TEXT NOT NULL
);
CREATE INDEX budget_events_service ON budget_events (service, time_ms);
CREATE TABLE gate_decisions (
	id              BIGSERIAL PRIMARY KEY,
	time_ms         BIGINT NOT NULL,
	service         TEXT NOT NULL,
	change_kind     TEXT NOT NULL,
	allowed         INTEGER NOT NULL,
	state           TEXT NOT NULL,
	reason          TEXT NOT NULL,
	override        INTEGER NOT NULL,
	override_reason TEXT NOT NULL,
	actor           TEXT NOT NULL
);
CREATE INDEX gate_decisions_service ON gate_decisions (service, time_ms);
`,
}, {
	ID:     "budget/0002_gate_decisions_time",
	SQLite: `CREATE INDEX gate_decisions_time ON gate_decisions (time_ms);`,
}, {
	ID: "budget/0003_gate_decision_repeats",
	SQLite: `
ALTER TABLE gate_decisions ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gate_decisions ADD COLUMN last_ms BIGINT;
`,
}, {
	// The subject of a decision (a Flagger canary) apart from its reason,
	// so that a repeat is counted in the latest row of its subject
	// (recordDecision); the rows recorded before have none.
	ID:     "budget/0004_gate_decision_subject",
	SQLite: `ALTER TABLE gate_decisions ADD COLUMN subject TEXT NOT NULL DEFAULT '';`,
}}

// DecisionRepeatWindow is how long a recorded gate decision takes in the
// identical decisions that follow it (recordDecision).
const DecisionRepeatWindow = time.Minute

// MaxSubjectDecisions is how many rows the decisions of one actor, service
// and change kind take within DecisionRepeatWindow when they name subjects
// (a Flagger pre-rollout hook names its canary): the subjects are the
// caller's to choose, any viewer may call the hook, and each other subject
// would be another row. Beyond it the decisions are recorded as one row
// for other subjects (OtherSubjects), whose repeats count them.
const MaxSubjectDecisions = 10

// OtherSubjects is the subject recorded for the decisions beyond
// MaxSubjectDecisions.
var OtherSubjects = fmt.Sprintf("other subjects: more than %d decisions of this caller within %s", MaxSubjectDecisions, DecisionRepeatWindow)

// Event is one budget state change in a service's timeline.
type Event struct {
	ID        int64           `json:"id"`
	Time      time.Time       `json:"time"`
	Service   string          `json:"service"`
	SLO       string          `json:"slo"`
	Group     string          `json:"group,omitempty"`
	From      slo.BudgetState `json:"from"`
	To        slo.BudgetState `json:"to"`
	Remaining *float64        `json:"remaining_ratio"`
	Message   string          `json:"message"`

	// prevSince is when the previous state began (zero for the first).
	prevSince time.Time
}

// recordState compares st with the stored state and, if it changed (or was
// never stored), updates it and appends a timeline event in one transaction.
// It returns the event, or nil when nothing changed.
func recordState(ctx context.Context, db *store.DB, st Status, now time.Time) (*Event, error) {
	var ev *Event
	grp := st.GroupString()
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var prev string
		var prevSince int64
		q := `SELECT state, since_ms FROM budget_states WHERE service = $1 AND slo = $2 AND grp = $3`
		if db.Dialect == store.Postgres {
			q += ` FOR UPDATE` // replicas polling at once record a transition once
		}
		ms := now.UnixMilli()
		rem := st.Budget.RemainingRatio
		err := tx.QueryRowContext(ctx, q, st.Service, st.SLO, grp).Scan(&prev, &prevSince)
		if errors.Is(err, sql.ErrNoRows) {
			// No row to lock: the first state is claimed by inserting
			// it. A replica inserting it at once waits for this one and
			// inserts nothing (or the other way round), then reads the
			// state the other recorded, locked, and compares with it:
			// the first state is one event, not one per replica.
			res, ierr := tx.ExecContext(ctx, `INSERT INTO budget_states (service, slo, grp, state, remaining, since_ms, updated_ms)
VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (service, slo, grp) DO NOTHING`,
				st.Service, st.SLO, grp, string(st.State), nullFloat(rem), ms)
			if ierr != nil {
				return ierr
			}
			if n, ierr := res.RowsAffected(); ierr != nil {
				return ierr
			} else if n == 1 {
				ev = &Event{Time: time.UnixMilli(ms).UTC(), Service: st.Service, SLO: st.SLO, Group: grp,
					From: StateUnknown, To: st.State, Remaining: rem, Message: stateMessage(st, "")}
				return insertEvent(ctx, tx, ev)
			}
			err = tx.QueryRowContext(ctx, q, st.Service, st.SLO, grp).Scan(&prev, &prevSince)
		}
		if err != nil {
			return err
		}
		if prev == string(st.State) {
			_, err := tx.ExecContext(ctx, `UPDATE budget_states SET remaining = $1, updated_ms = $2 WHERE service = $3 AND slo = $4 AND grp = $5`,
				nullFloat(rem), ms, st.Service, st.SLO, grp)
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO budget_states (service, slo, grp, state, remaining, since_ms, updated_ms)
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (service, slo, grp) DO UPDATE SET state = excluded.state, remaining = excluded.remaining, since_ms = excluded.since_ms, updated_ms = excluded.updated_ms`,
			st.Service, st.SLO, grp, string(st.State), nullFloat(rem), ms); err != nil {
			return err
		}
		ev = &Event{Time: time.UnixMilli(ms).UTC(), Service: st.Service, SLO: st.SLO, Group: grp,
			From: slo.BudgetState(prev), To: st.State, Remaining: rem, Message: stateMessage(st, slo.BudgetState(prev)),
			prevSince: time.UnixMilli(prevSince).UTC()}
		return insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return nil, fmt.Errorf("record budget state of %s/%s: %w", st.Service, st.SLO, err)
	}
	return ev, nil
}

// insertEvent appends ev to the timeline and sets its ID.
func insertEvent(ctx context.Context, tx *sql.Tx, ev *Event) error {
	return tx.QueryRowContext(ctx, `INSERT INTO budget_events (time_ms, service, slo, grp, from_state, to_state, remaining, message)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		ev.Time.UnixMilli(), ev.Service, ev.SLO, ev.Group, string(ev.From), string(ev.To), nullFloat(ev.Remaining), ev.Message).Scan(&ev.ID)
}

func stateMessage(st Status, prev slo.BudgetState) string {
	name := st.Name()
	rem := st.RemainingText(2)
	if prev == "" {
		return fmt.Sprintf("error budget of %s is %s (%s)", name, st.State, rem)
	}
	return fmt.Sprintf("error budget of %s went from %s to %s (%s): %s", name, prev, st.State, rem, PolicyAction(st.State))
}

// PolicyAction is the budget policy's action for a state, as the deploy
// gate's reasons and the console word it.
func PolicyAction(s slo.BudgetState) string {
	switch s {
	case slo.BudgetGreen:
		return "normal operations"
	case slo.BudgetYellow:
		return "reduce deployment frequency"
	case slo.BudgetRed:
		return "freeze non-critical changes"
	case slo.BudgetExhausted:
		return "emergency changes only"
	}
	return "no data"
}

func nullFloat(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// ListEvents returns the budget timeline of a service (and SLO, if not
// empty), newest first, at most limit entries.
func ListEvents(ctx context.Context, db *store.DB, service, sloName string, limit int) ([]Event, error) {
	evs, _, err := ListEventsPage(ctx, db, EventQuery{Service: service, SLO: sloName, Limit: limit})
	return evs, err
}

// EventQuery selects a page of a service's budget timeline.
type EventQuery struct {
	Service string
	SLO     string // all SLOs when empty
	Limit   int
	// Before is the cursor of the previous page ("" for the first page).
	Before string
}

// cursor is the position of an event in the timeline order (time, then id).
type cursor struct {
	ms int64
	id int64
}

func (c cursor) String() string { return fmt.Sprintf("%d-%d", c.ms, c.id) }

// ErrBadCursor is returned for a malformed page cursor.
var ErrBadCursor = errors.New("invalid cursor")

func parseCursor(s string) (cursor, error) {
	var c cursor
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return c, fmt.Errorf("%w %s", ErrBadCursor, limits.Quote(s))
	}
	var err1, err2 error
	c.ms, err1 = strconv.ParseInt(a, 10, 64)
	c.id, err2 = strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || c.ms < 0 || c.id < 0 {
		return c, fmt.Errorf("%w %s", ErrBadCursor, limits.Quote(s))
	}
	return c, nil
}

// ListEventsPage returns one page of a service's budget timeline, newest
// first, and the cursor of the next page ("" after the last one).
func ListEventsPage(ctx context.Context, db *store.DB, eq EventQuery) ([]Event, string, error) {
	if eq.Limit <= 0 {
		eq.Limit = 100
	}
	q := `SELECT id, time_ms, service, slo, grp, from_state, to_state, remaining, message FROM budget_events WHERE service = $1`
	args := []any{eq.Service}
	if eq.SLO != "" {
		args = append(args, eq.SLO)
		q += fmt.Sprintf(` AND slo = $%d`, len(args))
	}
	if eq.Before != "" {
		c, err := parseCursor(eq.Before)
		if err != nil {
			return nil, "", err
		}
		args = append(args, c.ms, c.id)
		q += fmt.Sprintf(` AND (time_ms < $%d OR (time_ms = $%d AND id < $%d))`, len(args)-1, len(args)-1, len(args))
	}
	q += fmt.Sprintf(` ORDER BY time_ms DESC, id DESC LIMIT %d`, eq.Limit+1)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list budget events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var (
			e    Event
			ms   int64
			from string
			to   string
			rem  sql.NullFloat64
		)
		if err := rows.Scan(&e.ID, &ms, &e.Service, &e.SLO, &e.Group, &from, &to, &rem, &e.Message); err != nil {
			return nil, "", fmt.Errorf("list budget events: %w", err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		e.From, e.To = slo.BudgetState(from), slo.BudgetState(to)
		if rem.Valid {
			e.Remaining = ptr(rem.Float64)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list budget events: %w", err)
	}
	next := ""
	if len(out) > eq.Limit {
		out = out[:eq.Limit]
		last := out[len(out)-1]
		next = cursor{ms: last.Time.UnixMilli(), id: last.ID}.String()
	}
	return out, next, nil
}

// GateRecord is one recorded gate decision.
type GateRecord struct {
	ID             int64     `json:"id"`
	Time           time.Time `json:"time"`
	Service        string    `json:"service"`
	Change         string    `json:"change"`
	Allowed        bool      `json:"allowed"`
	State          string    `json:"state"`
	Reason         string    `json:"reason"`
	Override       bool      `json:"override"`
	OverrideReason string    `json:"override_reason,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	// Subject is the decision's subject (a Flagger canary), also at the
	// end of Reason; OtherSubjects for the row counting the decisions
	// beyond MaxSubjectDecisions.
	Subject string `json:"subject,omitempty"`
	// Repeats counts the identical decisions that followed within
	// DecisionRepeatWindow, recorded in this one; LastTime is the last.
	Repeats  int        `json:"repeats,omitempty"`
	LastTime *time.Time `json:"last_time,omitempty"`
}

// recordDecision records a decision; its subject, if any, in a column of
// its own and at the end of the reason. A decision identical to the latest
// one recorded for the same actor, service, change kind and subject (same
// answer, state and reason, neither an override) whose first time is less
// than DecisionRepeatWindow ago is counted in that row (repeats, last_ms)
// instead of adding one, and d.ID is that row's: any viewer may ask the
// gate in a loop, and a Flagger checking the canaries of one service in
// turn asks for each of them in a loop. A decision that changes the
// caller's last answer is always a row of its own, so every change of
// answer stays visible and the newest row is the answer last given. One
// that gives the caller's last answer for another subject is a row of its
// own while the caller has fewer than MaxSubjectDecisions rows (overrides
// aside) for the service and change kind within DecisionRepeatWindow;
// beyond, it is counted in the latest identical row of the window, if any,
// and a decision for another subject is recorded for OtherSubjects: a
// caller varying the subject (a canary's name) adds at most that many rows
// a minute while the answer holds, each naming who asked for which
// subject, and the row counting the others.
//
// The comparison with the recorded rows and the row it adds or counts in
// are one decision of the database: on PostgreSQL the transaction first
// takes the caller's lock (lockDecisions), so that two replicas recording
// the caller's decisions at once (Flagger's requests balanced across
// both) take turns, and the second sees the first one's row; SQLite runs
// one write transaction at a time (BEGIN IMMEDIATE).
//
// It reports whether it added a row (false: a repeat counted in a row).
func recordDecision(ctx context.Context, db *store.DB, d *Decision) (added bool, err error) {
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		added = false
		if err := lockDecisions(ctx, tx, db.Dialect, d); err != nil {
			return err
		}
		subject, reason := d.Subject, withSubject(d.Reason, d.Subject)
		if !d.Override {
			since := d.Time.Add(-DecisionRepeatWindow).UnixMilli()
			id, same, err := latestOfSubject(ctx, tx, d, reason, since)
			if err != nil {
				return err
			}
			if same {
				return repeatDecision(ctx, tx, d, id)
			}
			// A change of answer is always a row of its own, so the
			// newest row is the answer last given. A decision giving the
			// caller's last answer for another subject is a row of its
			// own while the caller's rows of the window are few; else it
			// is counted in the latest identical row of the window,
			// whatever its subject, and one for another subject in the
			// row of the others.
			sameAnswer, err := lastAnswerSame(ctx, tx, d, since)
			if err != nil {
				return err
			}
			var n int
			if sameAnswer {
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM gate_decisions
WHERE service = $1 AND actor = $2 AND change_kind = $3 AND time_ms > $4 AND override = 0`,
					d.Service, d.Actor, d.Change, since).Scan(&n); err != nil {
					return err
				}
			}
			if sameAnswer && n >= MaxSubjectDecisions {
				if d.Subject != "" {
					subject, reason = OtherSubjects, withSubject(d.Reason, OtherSubjects)
				}
				err := tx.QueryRowContext(ctx, `SELECT id FROM gate_decisions
WHERE service = $1 AND actor = $2 AND change_kind = $3 AND time_ms > $4 AND override = 0 AND allowed = $5 AND state = $6 AND reason = $7
ORDER BY time_ms DESC, id DESC LIMIT 1`,
					d.Service, d.Actor, d.Change, since, boolInt(d.Allowed), string(d.State), reason).Scan(&id)
				switch {
				case err == nil:
					return repeatDecision(ctx, tx, d, id)
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
		}
		added = true
		return tx.QueryRowContext(ctx, `INSERT INTO gate_decisions (time_ms, service, change_kind, allowed, state, reason, override, override_reason, actor, subject)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			d.Time.UnixMilli(), d.Service, d.Change, boolInt(d.Allowed), string(d.State), reason, boolInt(d.Override), d.OverrideReason, d.Actor, subject).Scan(&d.ID)
	})
	if err != nil {
		return false, fmt.Errorf("record gate decision: %w", err)
	}
	return added, nil
}

// lockDecisions takes, on PostgreSQL, the lock of d's actor, service and
// change kind until tx ends: the rows recordDecision compares d with (its
// subject's, the caller's last answer, the caller's rows of the window)
// are all of that caller, service and change kind. Taken before the first
// read, so that the reads see the rows of a transaction that held it
// before (READ COMMITTED). SQLite has one writer.
func lockDecisions(ctx context.Context, tx *sql.Tx, dialect store.Dialect, d *Decision) error {
	if dialect != store.Postgres {
		return nil
	}
	key := d.Service + "\n" + d.Actor + "\n" + d.Change
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(store.LockGateDecision), key); err != nil {
		return fmt.Errorf("lock the decisions of %s for %s: %w", d.Actor, d.Service, err)
	}
	return nil
}

// withSubject is the reason recorded for a decision about subject.
func withSubject(reason, subject string) string {
	if subject == "" {
		return reason
	}
	return reason + " (for " + subject + ")"
}

// latestOfSubject returns the latest row of the window (time after since)
// of d's actor, service, change kind and subject, and whether it records
// the same decision as d (reason, its recorded reason): same is false when
// there is none, or when it differs.
// lastAnswerSame tells whether the caller's latest decision for d's
// service and change kind within the window, whatever its subject, gave
// d's answer (allowed, state and reason), not as an override.
func lastAnswerSame(ctx context.Context, tx *sql.Tx, d *Decision, since int64) (bool, error) {
	var (
		allowed, override      int
		state, reason, subject string
	)
	err := tx.QueryRowContext(ctx, `SELECT allowed, state, reason, subject, override FROM gate_decisions
WHERE service = $1 AND actor = $2 AND change_kind = $3 AND time_ms > $4 ORDER BY time_ms DESC, id DESC LIMIT 1`,
		d.Service, d.Actor, d.Change, since).Scan(&allowed, &state, &reason, &subject, &override)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return override == 0 && allowed == boolInt(d.Allowed) && state == string(d.State) && reason == withSubject(d.Reason, subject), nil
}

func latestOfSubject(ctx context.Context, tx *sql.Tx, d *Decision, reason string, since int64) (id int64, same bool, err error) {
	var (
		allowed, override int
		state, last       string
	)
	err = tx.QueryRowContext(ctx, `SELECT id, allowed, state, reason, override FROM gate_decisions
WHERE service = $1 AND actor = $2 AND change_kind = $3 AND subject = $4 AND time_ms > $5 ORDER BY time_ms DESC, id DESC LIMIT 1`,
		d.Service, d.Actor, d.Change, d.Subject, since).Scan(&id, &allowed, &state, &last, &override)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return id, override == 0 && allowed == boolInt(d.Allowed) && state == string(d.State) && last == reason, nil
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// repeatDecision counts d in the recorded decision id.
func repeatDecision(ctx context.Context, tx *sql.Tx, d *Decision, id int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE gate_decisions SET repeats = repeats + 1, last_ms = $1 WHERE id = $2`, d.Time.UnixMilli(), id); err != nil {
		return err
	}
	d.ID = id
	return nil
}

// ListDecisions returns the recorded gate decisions of a service, newest first.
func ListDecisions(ctx context.Context, db *store.DB, service string, limit int) ([]GateRecord, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT id, time_ms, service, change_kind, allowed, state, reason, override, override_reason, actor, subject, repeats, last_ms
FROM gate_decisions WHERE service = $1 ORDER BY time_ms DESC, id DESC LIMIT %d`, limit), service)
	if err != nil {
		return nil, fmt.Errorf("list gate decisions: %w", err)
	}
	defer rows.Close()
	out := []GateRecord{}
	for rows.Next() {
		var (
			r        GateRecord
			ms       int64
			allowed  int
			override int
			lastMS   sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &ms, &r.Service, &r.Change, &allowed, &r.State, &r.Reason, &override, &r.OverrideReason, &r.Actor, &r.Subject, &r.Repeats, &lastMS); err != nil {
			return nil, fmt.Errorf("list gate decisions: %w", err)
		}
		if lastMS.Valid {
			last := time.UnixMilli(lastMS.Int64).UTC()
			r.LastTime = &last
		}
		r.Time = time.UnixMilli(ms).UTC()
		r.Allowed, r.Override = allowed == 1, override == 1
		out = append(out, r)
	}
	return out, rows.Err()
}
