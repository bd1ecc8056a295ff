package escalation

// The escalation state of an incident: its frozen policy, epoch, level and
// state, and the transitions the incident service drives (start,
// acknowledge, resolve).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
)

// Escalation states.
const (
	StateActive       = "active"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
	StateNoPolicy     = "no_policy"
	// StateRecovering: the incident's SLO stopped burning (every short
	// window under its threshold): no more pages, the all-clear went out.
	StateRecovering = "recovering"
)

// Frozen is the policy as it was when the incident triggered: later config
// reloads do not change a running escalation.
type Frozen struct {
	Policy   string        `json:"policy"`
	Severity string        `json:"severity"`
	Levels   []FrozenLevel `json:"levels"`
	// RepeatAfter is the wait after the last level before the chain repeats.
	Repeat      int           `json:"repeat"`
	RepeatAfter time.Duration `json:"repeat_after"`
	AckTimeout  time.Duration `json:"ack_timeout"`
	// AckReminder and ReminderChannels: reminders to the acknowledger.
	AckReminder      time.Duration `json:"ack_reminder,omitempty"`
	ReminderChannels []string      `json:"reminder_channels,omitempty"`
}

// FrozenLevel is one level with its effective offset and channels.
type FrozenLevel struct {
	Offset    time.Duration `json:"offset"`
	Users     []string      `json:"users,omitempty"`
	Schedules []string      `json:"schedules,omitempty"`
	Teams     []string      `json:"teams,omitempty"`
	Channels  []string      `json:"channels"`
}

// Freeze computes the effective chain of p for an incident of severity sev.
func (c *Config) Freeze(p *Policy, sev incident.Severity) *Frozen {
	rule := c.Severities[sev]
	if rule == nil {
		rule = c.Severities[incident.SeverityMedium]
	}
	f := &Frozen{Policy: p.Name, Severity: string(sev), Repeat: p.Repeat, AckTimeout: time.Duration(c.AckTimeout)}
	if p.AckTimeout != nil {
		f.AckTimeout = time.Duration(*p.AckTimeout)
	}
	f.AckReminder = time.Duration(c.AckReminder)
	if p.AckReminder != nil {
		f.AckReminder = time.Duration(*p.AckReminder)
	}
	if f.AckReminder > 0 {
		f.ReminderChannels = slices.Clone(c.AckReminderChannels)
	}
	for i, l := range p.Levels {
		off := time.Duration(l.After)
		if rule.EscalateAfter > 0 && i > 0 {
			off = time.Duration(l.After) - time.Duration(p.Levels[1].After) + time.Duration(p.Levels[0].After) + time.Duration(rule.EscalateAfter)
		}
		chs := l.Channels
		if len(chs) == 0 {
			chs = rule.Channels
		}
		f.Levels = append(f.Levels, FrozenLevel{Offset: off, Users: l.Users, Schedules: l.Schedules, Teams: l.Teams, Channels: slices.Clone(chs)})
	}
	f.RepeatAfter = time.Duration(p.RepeatAfter)
	if f.RepeatAfter == 0 {
		if len(f.Levels) > 1 {
			f.RepeatAfter = f.Levels[1].Offset - f.Levels[0].Offset
		} else {
			f.RepeatAfter = 15 * time.Minute
		}
	}
	return f
}

// snapshot is what messages need to know about the incident.
type snapshot struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Service  string            `json:"service"`
	Severity string            `json:"severity"`
	Labels   map[string]string `json:"labels"`
	Impact   string            `json:"impact,omitempty"`
	Started  time.Time         `json:"started"`
}

type stateRow struct {
	policy string
	frozen Frozen
	snap   snapshot
	epoch  int
	state  string
	level  int
	// cycle is the round of a repeating policy that level was paged in
	// (0: the first run of the chain).
	cycle   int
	started time.Time
	// ackedBy is who acknowledged the current epoch ("" if nobody did).
	ackedBy string
	// maint are the stored maintenance windows active at the time
	// loadAt read them (maintRead), in ListMaintenance's order.
	maint     []*MaintenanceWindow
	maintRead bool
	// ovs are the stored on-call overrides of the schedules of level
	// ovsLevel over [at, at+horizon), by schedule, when loadAt read them
	// with the state (ovsRead, PostgreSQL).
	ovs      map[string][]*oncall.Override
	ovsLevel int
	ovsAt    time.Time
	ovsRead  bool
}

func (e *Engine) load(ctx context.Context, tx *sql.Tx, id string) (*stateRow, error) {
	return e.loadAt(ctx, tx, id, time.Time{}, -1)
}

// loadAt is load that also reads, when at is not zero, the stored
// maintenance windows active at at, in the same statement (a step's
// check for a window, one round trip less). On PostgreSQL it also reads
// there, when level is not negative, the stored overrides of the
// schedules of the frozen policy's level over [at, at+horizon), which the
// step's resolveTargets would read schedule by schedule: one round trip
// less for a level with one schedule.
func (e *Engine) loadAt(ctx context.Context, tx *sql.Tx, id string, at time.Time, level int) (*stateRow, error) {
	q := `SELECT policy, frozen, snapshot, epoch, state, level, cycle, started_at, acked_by`
	if e.db.Dialect == store.Postgres {
		q = `SELECT s.policy, s.frozen, s.snapshot, s.epoch, s.state, s.level, s.cycle, s.started_at, s.acked_by`
	}
	args := []any{id}
	withOverrides := !at.IsZero() && level >= 0 && e.db.Dialect == store.Postgres
	if !at.IsZero() {
		args = append(args, jobs.Millis(at), jobs.Millis(at.Add(time.Millisecond)))
		if e.db.Dialect == store.Postgres {
			q += `, (SELECT json_agg(json_build_array(m.id, m.name, m.matchers, m.starts_at, m.ends_at) ORDER BY m.starts_at, m.id)::text
	FROM escalation_maintenance m WHERE m.ends_at > $2 AND m.starts_at < $3)`
			if withOverrides {
				// oncall.Directory.Overrides' query, for the schedules
				// of the level read from the frozen policy in this row.
				args = append(args, level, jobs.Millis(at.Add(e.horizon)))
				q += `, (SELECT json_agg(json_build_array(o.schedule, o.id, o.user_name, o.starts_at, o.ends_at, o.reason) ORDER BY ` + oncall.OverridesOrder("o.") + `)::text
	FROM oncall_overrides o WHERE o.schedule IN (SELECT json_array_elements_text(s.frozen::json -> 'levels' -> $4::int -> 'schedules'))
	AND o.ends_at > $2 AND o.starts_at < $5)`
			}
		} else {
			q += `, (SELECT json_group_array(json_array(id, name, matchers, starts_at, ends_at)) FROM
	(SELECT id, name, matchers, starts_at, ends_at FROM escalation_maintenance WHERE ends_at > $2 AND starts_at < $3 ORDER BY starts_at, id))`
		}
	}
	if e.db.Dialect == store.Postgres {
		// The incident's row first (FOR KEY SHARE, the lock the
		// escalation's timeline entries take through their foreign key
		// anyway), then the state's: the order of a status change, which
		// locks the incident FOR UPDATE and then loads its escalation.
		// Locking the state first, a step or an escalate-now deadlocked
		// with an acknowledgement on the incident's row.
		q += ` FROM escalation_state s JOIN incidents i ON i.id = s.incident_id WHERE s.incident_id = $1 FOR KEY SHARE OF i FOR UPDATE OF s`
	} else {
		q += ` FROM escalation_state WHERE incident_id = $1`
	}
	var (
		r            stateRow
		frozen, snap string
		started      int64
		maint, ovs   sql.NullString
	)
	dest := []any{&r.policy, &frozen, &snap, &r.epoch, &r.state, &r.level, &r.cycle, &started, &r.ackedBy}
	if !at.IsZero() {
		dest = append(dest, &maint)
	}
	if withOverrides {
		dest = append(dest, &ovs)
	}
	err := store.TxQueries(ctx, tx).QueryRowContext(ctx, q, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load escalation of %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(frozen), &r.frozen); err != nil {
		return nil, fmt.Errorf("escalation of %s: frozen policy: %w", id, err)
	}
	if err := json.Unmarshal([]byte(snap), &r.snap); err != nil {
		return nil, fmt.Errorf("escalation of %s: snapshot: %w", id, err)
	}
	r.started = jobs.FromMillis(started)
	if !at.IsZero() {
		if r.maint, err = decodeMaintenance(maint.String); err != nil {
			return nil, err
		}
		r.maintRead = true
	}
	if withOverrides {
		if r.ovs, err = decodeOverrides(ovs.String); err != nil {
			return nil, fmt.Errorf("escalation of %s: %w", id, err)
		}
		r.ovsLevel, r.ovsAt, r.ovsRead = level, at, true
	}
	return &r, nil
}

// overridesOf returns the stored overrides of schedule over [at,
// at+horizon) when loadAt read them for level at at, and whether it did.
func (r *stateRow) overridesOf(level int, at time.Time, schedule string) ([]*oncall.Override, bool) {
	if !r.ovsRead || r.ovsLevel != level || !r.ovsAt.Equal(at) {
		return nil, false
	}
	return r.ovs[schedule], true
}

// decodeOverrides decodes on-call overrides aggregated by loadAt as a JSON
// array of [schedule, id, user, starts_at, ends_at, reason] (empty or
// null: none), by schedule in the array's order.
func decodeOverrides(s string) (map[string][]*oncall.Override, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, fmt.Errorf("on-call overrides: %w", err)
	}
	out := map[string][]*oncall.Override{}
	for _, row := range rows {
		if len(row) != 6 {
			return nil, fmt.Errorf("on-call overrides: a row of %d columns", len(row))
		}
		var (
			o        oncall.Override
			schedule string
			s, e     int64
		)
		for i, dst := range []any{&schedule, &o.ID, &o.User, &s, &e, &o.Reason} {
			if err := json.Unmarshal(row[i], dst); err != nil {
				return nil, fmt.Errorf("on-call overrides: column %d: %w", i+1, err)
			}
		}
		o.Start, o.End = time.UnixMilli(s).UTC(), time.UnixMilli(e).UTC()
		out[schedule] = append(out[schedule], &o)
	}
	return out, nil
}

// decodeMaintenance decodes maintenance windows aggregated by a query as
// a JSON array of [id, name, matchers, starts_at, ends_at] (empty or
// null: none).
func decodeMaintenance(s string) ([]*MaintenanceWindow, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, fmt.Errorf("maintenance windows: %w", err)
	}
	out := make([]*MaintenanceWindow, 0, len(rows))
	for _, row := range rows {
		if len(row) != 5 {
			return nil, fmt.Errorf("maintenance windows: a row of %d columns", len(row))
		}
		var (
			w        MaintenanceWindow
			matchers string
			s, e     int64
		)
		for i, dst := range []any{&w.ID, &w.Name, &matchers, &s, &e} {
			if err := json.Unmarshal(row[i], dst); err != nil {
				return nil, fmt.Errorf("maintenance windows: column %d: %w", i+1, err)
			}
		}
		if err := w.stored(matchers, s, e); err != nil {
			return nil, err
		}
		out = append(out, &w)
	}
	return out, nil
}

// setStateSQL sets an escalation's state, level and time of change.
const setStateSQL = `UPDATE escalation_state SET state = $1, level = $2, updated_at = $3 WHERE incident_id = $4`

// pagedLevelSQL records the level a step paged, and the round of the
// chain (cycle) it is in, as the escalation's level: active.
const pagedLevelSQL = `UPDATE escalation_state SET state = $1, level = $2, cycle = $3, updated_at = $4 WHERE incident_id = $5`

func (e *Engine) setState(ctx context.Context, tx *sql.Tx, id, state string, level int, now time.Time) error {
	_, err := tx.ExecContext(ctx, setStateSQL, state, level, jobs.Millis(now), id)
	if err != nil {
		return fmt.Errorf("update escalation of %s: %w", id, err)
	}
	return nil
}

// start freezes the policy onto the incident and schedules level 0.
func (e *Engine) start(ctx context.Context, tx *sql.Tx, inc *incident.Incident, now time.Time) error {
	return e.startIn(ctx, tx, nil, inc, now)
}

// startIn is start with its writes added to w (when not nil) rather than
// run: for a new incident, written by the same statement (see
// IncidentChangedIn), whose escalation is its first.
func (e *Engine) startIn(ctx context.Context, tx *sql.Tx, w *incident.Writes, inc *incident.Incident, now time.Time) error {
	return e.startAfter(ctx, tx, w, inc, now, 0)
}

// startAfter is startIn with level 0 held back by hold (a damped
// flapping re-opening).
func (e *Engine) startAfter(ctx context.Context, tx *sql.Tx, w *incident.Writes, inc *incident.Incident, now time.Time, hold time.Duration) error {
	return e.startOver(ctx, tx, w, inc, now, hold, nil)
}

// startOver is startAfter for an escalation that replaces prev (not nil:
// the incident's severity rose, and its policy is frozen again for the new
// severity): its timeline entry says so, with the severity and policy
// frozen before.
func (e *Engine) startOver(ctx context.Context, tx *sql.Tx, w *incident.Writes, inc *incident.Incident, now time.Time, hold time.Duration, prev *stateRow) error {
	note := func(msg string, data map[string]any) error {
		if w == nil {
			return e.note(ctx, tx, inc.ID, now, msg, data)
		}
		if e.timeline != nil {
			w.Timeline = append(w.Timeline, incident.TimelineEntry{IncidentID: inc.ID, Time: now, Kind: "escalation", Actor: "sred", Message: msg, Data: data})
		}
		return nil
	}
	fz, err := e.freeze(inc)
	if err != nil {
		return fmt.Errorf("start escalation of %s: %w", inc.ID, err)
	}
	p, frozen, fb, sb := fz.policy, fz.frozen, fz.fb, fz.sb
	state, policyName := StateNoPolicy, ""
	if p != nil {
		state, policyName = StateActive, p.Name
	}
	// The escalation's epoch is the previous one's plus one (1 for the
	// first): the upsert computes it and returns it, and locks the state
	// row as reading it FOR UPDATE did, in one statement. The incident's
	// pending jobs are cancelled after it, once any transaction that held
	// the row (a step of the previous epoch) has committed. The first
	// epoch has nothing to cancel: every job of the queue in the incident's
	// group is enqueued by an escalation that has its state row, and there
	// was none. A new incident's escalation (every delivery that opens
	// one) skips the UPDATE: 1 of the 4 statements of a start. In a batch
	// (a new incident's, whose state row cannot exist yet) the epoch is 1
	// and the row a plain insert.
	epoch := 1
	if w != nil {
		w.Add(`INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
VALUES ($1, $2, $3, $4, 1, $5, -1, $6, $6)`, inc.ID, policyName, string(fb), string(sb), state, jobs.Millis(now))
	} else if err := store.TxQueries(ctx, tx).QueryRowContext(ctx, `INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
VALUES ($1, $2, $3, $4, 1, $5, -1, $6, $6)
ON CONFLICT (incident_id) DO UPDATE SET policy = excluded.policy, frozen = excluded.frozen, snapshot = excluded.snapshot,
	epoch = escalation_state.epoch + 1, state = excluded.state, level = -1, cycle = 0, started_at = excluded.started_at, updated_at = excluded.updated_at,
	acked_by = ''
RETURNING epoch`,
		inc.ID, policyName, string(fb), string(sb), state, jobs.Millis(now)).Scan(&epoch); err != nil {
		return fmt.Errorf("start escalation of %s: %w", inc.ID, err)
	}
	if epoch > 1 {
		if _, err := jobs.CancelGroup(ctx, tx, now, Queue, inc.ID); err != nil {
			return err
		}
	}
	if p == nil {
		e.steps.WithLabelValues(string(inc.Severity), "no_policy").Inc()
		return note("No escalation policy matches this incident: nobody will be paged", nil)
	}
	step := stepJob(inc.ID, epoch, 0, 0, now.Add(hold+frozen.Levels[0].Offset), now, "")
	if w != nil {
		if err := jobs.EnqueueAllTo(&w.Batch, now, []jobs.New{step}); err != nil {
			return err
		}
	} else if _, err := jobs.Enqueue(ctx, tx, now, step); err != nil {
		return err
	}
	if prev != nil {
		was := prev.snap.Severity
		data := map[string]any{"policy": p.Name, "epoch": epoch, "severity": string(inc.Severity), "previous_severity": prev.snap.Severity}
		if prev.policy != p.Name {
			data["previous_policy"] = prev.policy
			if prev.policy != "" {
				was += fmt.Sprintf(", policy %q", prev.policy)
			}
		}
		return note(fmt.Sprintf("Escalation policy %q frozen again for severity %s (was %s): %d levels, %s",
			p.Name, inc.Severity, was, len(frozen.Levels), describeOffsets(frozen)), data)
	}
	if hold > 0 {
		return note(fmt.Sprintf("Escalation policy %q frozen onto the incident (%d levels, %s), held back %s for flapping: it pages if the incident is still open at %s",
			p.Name, len(frozen.Levels), describeOffsets(frozen), model.Duration(hold), now.Add(hold).UTC().Format(notify.EntryTime)),
			map[string]any{"policy": p.Name, "epoch": epoch, "hold_seconds": hold.Seconds()})
	}
	return note(fmt.Sprintf("Escalation policy %q frozen onto the incident (%d levels, %s)", p.Name, len(frozen.Levels), describeOffsets(frozen)),
		map[string]any{"policy": p.Name, "epoch": epoch})
}

// frozenIncident is an incident's policy, frozen as it is now, and its
// snapshot, with their encodings as the state row keeps them.
type frozenIncident struct {
	policy *Policy // nil: no policy matches
	frozen *Frozen
	snap   snapshot
	fb, sb []byte
}

// freeze selects the policy of inc as it is now and freezes it.
func (e *Engine) freeze(inc *incident.Incident) (*frozenIncident, error) {
	cfg, _, _ := e.config()
	f := &frozenIncident{policy: cfg.Select(LabelSet(inc)),
		snap: snapshot{ID: inc.ID, Title: inc.Title, Service: inc.Service, Severity: string(inc.Severity), Labels: inc.Labels, Impact: inc.Impact, Started: inc.DetectedAt}}
	if f.snap.Started.IsZero() {
		f.snap.Started = inc.CreatedAt
	}
	if f.policy != nil {
		f.frozen = cfg.Freeze(f.policy, inc.Severity)
	} else {
		f.frozen = &Frozen{Severity: string(inc.Severity)}
	}
	var err error
	if f.fb, err = json.Marshal(f.frozen); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if f.sb, err = json.Marshal(f.snap); err != nil {
		return nil, fmt.Errorf("encode incident: %w", err)
	}
	return f, nil
}

func describeOffsets(f *Frozen) string {
	var parts []string
	for i, l := range f.Levels {
		parts = append(parts, fmt.Sprintf("level %d at +%s", i, l.Offset))
	}
	return strings.Join(parts, ", ")
}

func (e *Engine) enqueueStep(ctx context.Context, tx *sql.Tx, id string, epoch, cycle, level int, at, now time.Time, reason string) error {
	_, err := jobs.Enqueue(ctx, tx, now, stepJob(id, epoch, cycle, level, at, now, reason))
	return err
}

// stepJob is the job of an escalation's step at level of cycle, due at at.
func stepJob(id string, epoch, cycle, level int, at, now time.Time, reason string) jobs.New {
	key := fmt.Sprintf("%s/%d/step/%d/%d", id, epoch, cycle, level)
	if reason != "" {
		key = fmt.Sprintf("%s/%d/now/%d", id, epoch, jobs.Millis(now))
	}
	return jobs.New{Queue: Queue, Kind: KindStep, Key: key, Group: id, RunAt: at,
		Payload: job{Incident: id, Epoch: epoch, Cycle: cycle, Level: level, Reason: reason}}
}

func (e *Engine) acknowledge(ctx context.Context, tx *sql.Tx, id, actor string, now time.Time) error {
	st, err := e.load(ctx, tx, id)
	if err != nil || st == nil || st.state == StateResolved {
		return err
	}
	withdrawn, sending, unknown, err := notify.Withdraw(ctx, tx, now, id, false)
	if err != nil {
		return err
	}
	if st.state == StateNoPolicy || st.state == StateRecovering {
		// Nothing to stop: who acknowledged is only recorded, to be told
		// if the severity rises (severityRaised).
		if _, err := tx.ExecContext(ctx, `UPDATE escalation_state SET acked_by = $1 WHERE incident_id = $2`, actor, id); err != nil {
			return fmt.Errorf("acknowledge escalation of %s: %w", id, err)
		}
		if withdrawn == 0 && sending == 0 && unknown == 0 {
			return nil
		}
		return e.note(ctx, tx, id, now, fmt.Sprintf("Acknowledged by %s%s", actor, withdrawnPages(withdrawn, sending, unknown, "acknowledged")),
			withdrawnData(map[string]any{"actor": actor}, withdrawn, sending, unknown))
	}
	if _, err := jobs.CancelGroup(ctx, tx, now, Queue, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE escalation_state SET state = $1, level = $2, updated_at = $3, acked_by = $4 WHERE incident_id = $5`,
		StateAcknowledged, st.level, jobs.Millis(now), actor, id); err != nil {
		return fmt.Errorf("acknowledge escalation of %s: %w", id, err)
	}
	if err := e.stateEvent(ctx, tx, st, notify.EventAcknowledge, actor, now); err != nil {
		return err
	}
	msg := fmt.Sprintf("Escalation stopped: acknowledged by %s", actor)
	if st.state == StateAcknowledged {
		msg = fmt.Sprintf("Acknowledgement renewed by %s", actor)
	}
	msg += withdrawnPages(withdrawn, sending, unknown, "acknowledged")
	if st.frozen.AckTimeout > 0 {
		if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindAckTimeout, Key: fmt.Sprintf("%s/%d/acktimeout/%d", id, st.epoch, jobs.Millis(now)), Group: id,
			RunAt: now.Add(st.frozen.AckTimeout), Payload: job{Incident: id, Epoch: st.epoch, After: st.frozen.AckTimeout}}); err != nil {
			return err
		}
		msg += fmt.Sprintf("; re-escalates if not resolved within %s", st.frozen.AckTimeout)
	}
	if err := e.scheduleReminder(ctx, tx, st, actor, 1, now, now); err != nil {
		return err
	}
	if st.frozen.AckReminder > 0 && (st.frozen.AckTimeout == 0 || st.frozen.AckReminder < st.frozen.AckTimeout) {
		msg += fmt.Sprintf("; reminders every %s until resolved", st.frozen.AckReminder)
	}
	return e.note(ctx, tx, id, now, msg, withdrawnData(map[string]any{"actor": actor}, withdrawn, sending, unknown))
}

// withdrawnPages says, for the timeline, that n pages not delivered yet
// were withdrawn because the incident was acknowledged or resolved
// (notify.Withdraw), that sending pages whose send had begun were left
// to finish (not counted withdrawn: they may well be delivered), and
// that unknown pages whose send had begun, and whose sender's lease
// ended without an outcome, were withdrawn with their outcome not known
// (their sender may still record a delivery, LateDelivery's entry);
// nothing when all are 0.
func withdrawnPages(n, sending, unknown int64, why string) string {
	var out string
	if n > 0 {
		out = fmt.Sprintf("; %d page(s) not yet delivered withdrawn: the incident is %s", n, why)
	}
	if sending > 0 {
		out += fmt.Sprintf("; %d page(s) already being sent left to finish (not retried if the send fails)", sending)
	}
	if unknown > 0 {
		out += fmt.Sprintf("; %d page(s) withdrawn whose send had begun and whose outcome is not known yet (the sender's lease ended without one; not sent again)", unknown)
	}
	return out
}

// withdrawnData adds the counts of withdrawnPages to a timeline entry's
// data: pages_withdrawn always, pages_sending and pages_outcome_unknown
// when some were.
func withdrawnData(data map[string]any, n, sending, unknown int64) map[string]any {
	data["pages_withdrawn"] = n
	if sending > 0 {
		data["pages_sending"] = sending
	}
	if unknown > 0 {
		data["pages_outcome_unknown"] = unknown
	}
	return data
}

func (e *Engine) resolve(ctx context.Context, tx *sql.Tx, id, actor string, now time.Time) error {
	st, err := e.load(ctx, tx, id)
	if err != nil || st == nil {
		return err
	}
	n, err := jobs.CancelGroup(ctx, tx, now, Queue, id)
	if err != nil {
		return err
	}
	withdrawn, sending, unknown, err := notify.Withdraw(ctx, tx, now, id, true)
	if err != nil {
		return err
	}
	if err := e.setState(ctx, tx, id, StateResolved, st.level, now); err != nil {
		return err
	}
	if err := e.stateEvent(ctx, tx, st, notify.EventResolve, actor, now); err != nil {
		return err
	}
	if st.state == StateNoPolicy && withdrawn == 0 && sending == 0 {
		return nil
	}
	return e.note(ctx, tx, id, now, fmt.Sprintf("Escalation ended: incident resolved (%d pending step(s) cancelled)%s", n, withdrawnPages(withdrawn, sending, unknown, "resolved")),
		withdrawnData(map[string]any{}, withdrawn, sending, unknown))
}

// Acknowledge stops the escalation of an incident whose status is already
// acknowledged (a second acknowledgement after an ack timeout re-escalated
// it): the core refuses the repeated status change, so the acknowledge link
// handler calls this instead.
// It returns ErrNoEscalation when the incident has no running or
// acknowledged escalation (no policy matched, or it is resolved). It runs
// through Options.Write, like EscalateNow.
func (e *Engine) Acknowledge(ctx context.Context, incidentID, actor string) error {
	return e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		st, err := e.load(ctx, tx, incidentID)
		if err != nil {
			return err
		}
		if st == nil || st.state == StateNoPolicy || st.state == StateResolved {
			return fmt.Errorf("acknowledge %s: %w", incidentID, ErrNoEscalation)
		}
		return e.acknowledge(ctx, tx, incidentID, actor, e.clock.Now())
	})
}
