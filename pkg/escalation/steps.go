package escalation

// The timers of an escalation (jobs of the escalation queue) and what each
// does when it fires: page a level, follow an on-call handoff, remind the
// acknowledger, re-escalate after the ack timeout.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
)

// job is the payload of an escalation timer.
type job struct {
	Incident string `json:"incident"`
	Epoch    int    `json:"epoch"`
	Cycle    int    `json:"cycle,omitempty"`
	Level    int    `json:"level"`
	Schedule string `json:"schedule,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// User is who acknowledged (reminder).
	User string `json:"user,omitempty"`
	// Count numbers the reminders of one acknowledgement.
	Count int `json:"count,omitempty"`
	// AckAt is when the reminded acknowledgement was made (reminder).
	AckAt time.Time `json:"ack_at,omitzero"`
	// After is the acknowledgement timeout it was planned with (ack
	// timeout; absent in those planned before it was recorded).
	After time.Duration `json:"after,omitempty"`
}

// Handle fires one escalation timer, inside the transaction that completes
// its job (jobs.Worker commits it only while the job is still leased to it).
func (e *Engine) Handle(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
	var p job
	if err := j.Decode(&p); err != nil {
		return err
	}
	now := e.clock.Now()
	var at time.Time
	level := -1
	if j.Kind == KindStep {
		at = now        // a step looks for a maintenance window
		level = p.Level // and at who is on call for the level
	}
	st, err := e.loadAt(ctx, tx, p.Incident, at, level)
	if err != nil {
		return err
	}
	if st == nil || st.epoch != p.Epoch {
		return nil // superseded by a newer trigger
	}
	switch j.Kind {
	case KindStep:
		if st.state != StateActive {
			return nil
		}
		return e.fireStep(ctx, tx, st, p, j.RunAt, now)
	case KindHandoff:
		if st.state != StateActive {
			return nil
		}
		return e.handoff(ctx, tx, st, p, now)
	case KindAckTimeout:
		if st.state != StateAcknowledged || len(st.frozen.Levels) == 0 {
			return nil
		}
		// The timeout planned at the acknowledgement, which the policy
		// frozen since (a raised severity's) may not share.
		after := p.After
		if after <= 0 {
			after = st.frozen.AckTimeout
		}
		if until, err := snoozedUntil(ctx, tx, st.snap.ID, now); err != nil || !until.IsZero() {
			if err != nil {
				return err
			}
			// A responder said "not before then": the end of the snooze
			// pages the incident's escalation again if it is still open
			// (incident.WakeSnoozed), so the timeout pages nobody now.
			return e.note(ctx, tx, st.snap.ID, now, fmt.Sprintf("Acknowledgement timed out after %s while snoozed until %s: nobody paged now; the end of the snooze escalates if the incident is still open",
				after, until.UTC().Format(time.RFC3339)), map[string]any{"epoch": st.epoch})
		}
		return e.reescalate(ctx, tx, st, after, now)
	case KindReminder:
		if st.state != StateAcknowledged {
			return nil
		}
		if until, err := snoozedUntil(ctx, tx, st.snap.ID, now); err != nil || !until.IsZero() {
			// No reminder during a snooze; its end escalates again.
			return err
		}
		return e.remind(ctx, tx, st, p, now)
	}
	return fmt.Errorf("unknown escalation job kind %q", j.Kind)
}

// snoozedUntil returns the end of the incident's snooze if it is snoozed
// at now, else the zero time.
func snoozedUntil(ctx context.Context, tx *sql.Tx, id string, now time.Time) (time.Time, error) {
	var until sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT snoozed_until FROM incidents WHERE id = $1`, id).Scan(&until); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("read the snooze of %s: %w", id, err)
	}
	if !until.Valid || until.Int64 <= jobs.Millis(now) {
		return time.Time{}, nil
	}
	return jobs.FromMillis(until.Int64), nil
}

// activeWindow returns the maintenance window silencing the incident at t.
// The stored windows are st's when it read them at t (loadAt).
func (e *Engine) activeWindow(ctx context.Context, q querier, st *stateRow, t time.Time) (*MaintenanceWindow, error) {
	cfg, _, _ := e.config()
	set := labelSetOf(st.snap.labels())
	for _, w := range cfg.MaintenanceWindows {
		if w.Active(t) && w.Matches(set) {
			return w, nil
		}
	}
	stored := st.maint
	if !st.maintRead {
		var err error
		if stored, err = ListMaintenance(ctx, q, t, t.Add(time.Millisecond)); err != nil {
			return nil, err
		}
	}
	for _, w := range stored {
		if w.Active(t) && w.Matches(set) {
			return w, nil
		}
	}
	return nil, nil
}

func (s *snapshot) labels() map[string]string {
	out := map[string]string{}
	for k, v := range s.Labels {
		out[k] = v
	}
	if s.Service != "" {
		out["service"] = s.Service
	}
	out["severity"] = s.Severity
	return out
}

// resolveTargets turns a level's targets into user names, in order, once
// each. windows holds each known schedule of the level over [t,
// t+horizon), read once: who is on call at t, and the next handoff whose
// check (handoffJob) the step plans.
//
// The overrides of each schedule are st's when loadAt read them for
// level at t (PostgreSQL), read from tx otherwise.
func (e *Engine) resolveTargets(ctx context.Context, tx *sql.Tx, st *stateRow, level int, l FrozenLevel, t time.Time) (users, notes []string, windows map[string]*oncall.Window, err error) {
	oc := e.dir.Config()
	add := func(u string) {
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, u := range l.Users {
		add(u)
	}
	for _, s := range l.Schedules {
		if oc.Schedule(s) == nil {
			// Removed by a reload since the policy was frozen.
			notes = append(notes, fmt.Sprintf("unknown schedule %s", s))
			continue
		}
		var w *oncall.Window
		if ovs, ok := st.overridesOf(level, t, s); ok {
			w, err = e.dir.WindowWith(s, t, t.Add(e.horizon), ovs)
		} else {
			w, err = e.dir.Window(ctx, tx, s, t, t.Add(e.horizon))
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("who is on call for %s: %w", s, err)
		}
		if windows == nil {
			windows = map[string]*oncall.Window{}
		}
		windows[s] = w
		u := w.OnCall()
		if u == "" {
			notes = append(notes, fmt.Sprintf("schedule %s has nobody on call", s))
			continue
		}
		add(u)
	}
	for _, name := range l.Teams {
		team := oc.Team(name)
		if team == nil {
			notes = append(notes, fmt.Sprintf("unknown team %s", name))
			continue
		}
		for _, m := range team.Members {
			add(m)
		}
	}
	return users, notes, windows, nil
}

func (e *Engine) fireStep(ctx context.Context, tx *sql.Tx, st *stateRow, p job, due, now time.Time) error {
	id := st.snap.ID
	if p.Level >= len(st.frozen.Levels) {
		return nil
	}
	w, err := e.activeWindow(ctx, tx, st, now)
	if err != nil {
		return err
	}
	if w != nil {
		// Nobody is paged during the window; the step fires when it ends.
		e.steps.WithLabelValues(st.snap.Severity, "suppressed").Inc()
		if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindStep, Key: fmt.Sprintf("%s/%d/step/%d/%d/after/%d", id, st.epoch, p.Cycle, p.Level, jobs.Millis(w.End)),
			Group: id, RunAt: w.End, Payload: p}); err != nil {
			return err
		}
		return e.note(ctx, tx, id, now, fmt.Sprintf("Maintenance window %q until %s: not paging level %d", w.Name, w.End.UTC().Format(time.RFC3339), p.Level),
			map[string]any{"maintenance_window": w.Name, "level": p.Level})
	}
	lvl := st.frozen.Levels[p.Level]
	users, problems, windows, err := e.resolveTargets(ctx, tx, st, p.Level, lvl, now)
	if err != nil {
		return err
	}
	var next time.Time
	var nextCycle, nextLevel int
	switch {
	case p.Level+1 < len(st.frozen.Levels):
		nextCycle, nextLevel = p.Cycle, p.Level+1
		next = due.Add(st.frozen.Levels[p.Level+1].Offset - lvl.Offset)
	case p.Cycle < st.frozen.Repeat:
		nextCycle, nextLevel = p.Cycle+1, 0
		next = due.Add(st.frozen.RepeatAfter)
	}
	if p.Reason != "" {
		// Escalate-now: the next level keeps the normal spacing from now.
		if !next.IsZero() {
			next = now.Add(next.Sub(due))
		}
	}
	outcome := "paged"
	if len(users) == 0 {
		outcome = "no_targets"
	}
	// The next level's step and the handoff checks of the schedules paged
	// at this level (a handoff before the incident is acknowledged pages
	// the new on-call person; a schedule removed by a reload since the
	// policy was frozen has no window and nothing to watch) are written
	// with the page's messages, in one statement.
	//
	// An escalate-now may page a level paged before (the last level
	// again, or a level of the first run while the chain repeats): its
	// messages and handoff watches get keys of their own, or the queue
	// would take them for the earlier page's (or the watch it cancelled)
	// and write none.
	tag := ""
	if p.Reason != "" {
		tag = fmt.Sprintf("now/%d", jobs.Millis(due))
	}
	var also []jobs.New
	if !next.IsZero() {
		also = append(also, stepJob(id, st.epoch, nextCycle, nextLevel, next, now, ""))
	}
	for _, s := range lvl.Schedules {
		if j, ok := handoffJob(st, s, windows[s], p.Level, tag); ok {
			also = append(also, j)
		}
	}
	// The step's writes (who was paged, the messages and the escalation's
	// jobs, its state, its timeline entry) depend on nothing written by
	// each other: on PostgreSQL they run in one statement, with the job's
	// completion when a worker runs the step: one round trip instead of
	// five.
	b := jobs.CompletionBatch(ctx)
	own := b == nil
	if own {
		b = &store.Batch{}
	}
	out, err := e.page(ctx, tx, b, st, p.Cycle, p.Level, users, lvl.Channels, now, next, tag, p.Reason, also)
	if err != nil {
		return err
	}
	b.Add(pagedLevelSQL, StateActive, p.Level, p.Cycle, jobs.Millis(now), id)
	e.steps.WithLabelValues(st.snap.Severity, outcome).Inc()
	msg := fmt.Sprintf("Escalation level %d (policy %q): ", p.Level, st.frozen.Policy)
	if p.Reason != "" {
		msg = fmt.Sprintf("Escalated now (%s): level %d (policy %q): ", p.Reason, p.Level, st.frozen.Policy)
	}
	if len(users) == 0 {
		msg += "nobody to page"
	} else {
		msg += "paging " + out.describe(users)
	}
	if len(problems) > 0 {
		msg += " (" + strings.Join(problems, "; ") + ")"
	}
	if !next.IsZero() {
		msg += fmt.Sprintf("; level %d at %s if not acknowledged", nextLevel, next.UTC().Format(notify.EntryTime))
	}
	data := map[string]any{"level": p.Level, "cycle": p.Cycle, "users": users, "policy": st.frozen.Policy}
	out.addTo(data)
	if err := e.noteTo(ctx, tx, b, id, now, msg, data); err != nil {
		return err
	}
	if !own {
		return nil // written by the worker, with the job's completion
	}
	if err := b.Exec(ctx, e.db.Dialect, tx); err != nil {
		return fmt.Errorf("escalation step of %s: %w", id, err)
	}
	return nil
}

// scheduleHandoff enqueues the handoff check of schedule at its next
// handoff within w (nil: none).
func (e *Engine) scheduleHandoff(ctx context.Context, tx *sql.Tx, st *stateRow, schedule string, w *oncall.Window, level int, now time.Time) error {
	j, ok := handoffJob(st, schedule, w, level, "")
	if !ok {
		return nil
	}
	_, err := jobs.Enqueue(ctx, tx, now, j)
	return err
}

// handoffJob is the handoff check of schedule at its next handoff within w;
// false when there is none (or no window: a schedule removed by a reload).
//
// tag, when not empty, ends the key: a watch planned again after the
// incident's timers were cancelled (escalate now) must not share the key
// of the cancelled one, which would keep it from being written.
func handoffJob(st *stateRow, schedule string, w *oncall.Window, level int, tag string) (jobs.New, bool) {
	if w == nil {
		return jobs.New{}, false
	}
	at, ok := w.NextHandoff()
	if !ok {
		return jobs.New{}, false
	}
	key := fmt.Sprintf("%s/%d/handoff/%s/%d", st.snap.ID, st.epoch, schedule, jobs.Millis(at))
	if tag != "" {
		key += "/" + tag
	}
	return jobs.New{Queue: Queue, Kind: KindHandoff, Key: key,
		Group: st.snap.ID, RunAt: at, Payload: job{Incident: st.snap.ID, Epoch: st.epoch, Level: level, Schedule: schedule}}, true
}

// SchedulesChanged re-plans the shift handoffs of the running escalations
// that paged one of schedules (their overrides or rotations changed): a
// handoff check is queued at now for each, which pages whoever is on call
// now if they were not paged yet, then plans the next handoff with the
// schedule as it is now. It runs inside the transaction of the change (an
// oncall.ChangeHook).
func (e *Engine) SchedulesChanged(ctx context.Context, tx *sql.Tx, schedules []string, now time.Time) error {
	rows, err := store.TxQueries(ctx, tx).QueryContext(ctx, `SELECT incident_id FROM escalation_state WHERE state = $1 ORDER BY incident_id`, StateActive)
	if err != nil {
		return fmt.Errorf("running escalations: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("running escalations: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("running escalations: %w", err)
	}
	for _, id := range ids {
		st, err := e.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if st == nil || st.state != StateActive {
			continue
		}
		seen := map[string]bool{}
		for lvl := 0; lvl <= st.level && lvl < len(st.frozen.Levels); lvl++ {
			for _, s := range st.frozen.Levels[lvl].Schedules {
				if seen[s] || !slices.Contains(schedules, s) {
					continue
				}
				seen[s] = true
				if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindHandoff, Key: fmt.Sprintf("%s/%d/handoff/%s/%d", id, st.epoch, s, jobs.Millis(now)),
					Group: id, RunAt: now, Payload: job{Incident: id, Epoch: st.epoch, Level: lvl, Schedule: s}}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// RecheckHandoffs runs SchedulesChanged through Options.Write (on SQLite,
// in the incident writer's batch), for a configuration reload that may
// have changed rotations.
func (e *Engine) RecheckHandoffs(ctx context.Context, schedules []string) error {
	return e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return e.SchedulesChanged(ctx, tx, schedules, e.clock.Now())
	})
}

func (e *Engine) handoff(ctx context.Context, tx *sql.Tx, st *stateRow, p job, now time.Time) error {
	if p.Level >= len(st.frozen.Levels) || e.dir.Config().Schedule(p.Schedule) == nil {
		return nil // the schedule was removed by a reload: nothing to watch
	}
	w, err := e.dir.Window(ctx, tx, p.Schedule, now, now.Add(e.horizon))
	if err != nil {
		return err
	}
	if u := w.OnCall(); u != "" {
		var n int
		if err := store.TxQueries(ctx, tx).QueryRowContext(ctx, `SELECT COUNT(*) FROM escalation_pages WHERE incident_id = $1 AND epoch = $2 AND user_name = $3`,
			st.snap.ID, st.epoch, u).Scan(&n); err != nil {
			return fmt.Errorf("handoff of %s: %w", st.snap.ID, err)
		}
		if n == 0 {
			if mw, err := e.activeWindow(ctx, tx, st, now); err != nil || mw != nil {
				if err != nil {
					return err
				}
				return e.handoffAfterWindow(ctx, tx, st, p, u, mw, now)
			}
			next, err := e.nextStepAt(ctx, tx, st)
			if err != nil {
				return err
			}
			out, err := e.pageHandoff(ctx, tx, st, p, u, now, next)
			if err != nil {
				return err
			}
			e.steps.WithLabelValues(st.snap.Severity, "handoff").Inc()
			if err := e.note(ctx, tx, st.snap.ID, now, fmt.Sprintf("Shift handoff on schedule %s during an unacknowledged escalation: paging the new on-call %s", p.Schedule, out.describe([]string{u})),
				out.addTo(map[string]any{"schedule": p.Schedule, "user": u, "level": p.Level})); err != nil {
				return err
			}
		}
	}
	return e.scheduleHandoff(ctx, tx, st, p.Schedule, w, p.Level, now)
}

// pageHandoff pages u, the new on-call of schedule p.Schedule at level
// p.Level, as a step pages that level, with a message that says it is a
// shift handoff's page: "Shift handoff on schedule primary: paging the
// new on-call carol (escalation level 0)".
func (e *Engine) pageHandoff(ctx context.Context, tx *sql.Tx, st *stateRow, p job, u string, now, next time.Time) (*sentSet, error) {
	return e.send(ctx, tx, st, pageSpec{level: p.Level, users: []string{u}, channels: st.frozen.Levels[p.Level].Channels, now: now, next: next,
		tag: "handoff/" + p.Schedule, event: notify.EventTrigger, status: "triggered", record: true,
		actions: fmt.Sprintf("Shift handoff on schedule %s: paging the new on-call %s (escalation level %d)", p.Schedule, u, p.Level)})
}

// nextStepAt returns when the next step of st's escalation pages, the
// zero time when none is planned (the last level was paged): the "Next
// Update" of a page sent between steps (a shift handoff's), as a step's
// page says when the level after it is due.
func (e *Engine) nextStepAt(ctx context.Context, tx *sql.Tx, st *stateRow) (time.Time, error) {
	js, err := jobs.List(ctx, tx, jobs.Filter{Queue: Queue, Group: st.snap.ID, Kind: KindStep, States: []string{jobs.StatePending}})
	if err != nil {
		return time.Time{}, fmt.Errorf("next step of %s: %w", st.snap.ID, err)
	}
	var next time.Time
	for _, j := range js {
		var p job
		if err := j.Decode(&p); err != nil || p.Epoch != st.epoch {
			continue
		}
		if next.IsZero() || j.RunAt.Before(next) {
			next = j.RunAt
		}
	}
	return next, nil
}

// handoffAfterWindow holds back the page of u, who went on call during
// the maintenance window mw, as a level due in it is: the handoff check
// runs again when the window ends and pages whoever is on call then, if
// the escalation is still unacknowledged and they were not paged yet.
func (e *Engine) handoffAfterWindow(ctx context.Context, tx *sql.Tx, st *stateRow, p job, u string, mw *MaintenanceWindow, now time.Time) error {
	e.steps.WithLabelValues(st.snap.Severity, "suppressed").Inc()
	if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindHandoff,
		Key:   fmt.Sprintf("%s/%d/handoff/%s/%d/after/%d", st.snap.ID, st.epoch, p.Schedule, jobs.Millis(now), jobs.Millis(mw.End)),
		Group: st.snap.ID, RunAt: mw.End, Payload: job{Incident: st.snap.ID, Epoch: st.epoch, Level: p.Level, Schedule: p.Schedule}}); err != nil {
		return err
	}
	return e.note(ctx, tx, st.snap.ID, now, fmt.Sprintf("Maintenance window %q until %s: not paging the new on-call %s of schedule %s",
		mw.Name, mw.End.UTC().Format(time.RFC3339), u, p.Schedule),
		map[string]any{"maintenance_window": mw.Name, "schedule": p.Schedule, "user": u, "level": p.Level})
}

// scheduleReminder enqueues reminder n of the acknowledgement made by actor
// at ackAt, unless reminders are off or the ack timeout comes first.
func (e *Engine) scheduleReminder(ctx context.Context, tx *sql.Tx, st *stateRow, actor string, n int, ackAt, now time.Time) error {
	every := st.frozen.AckReminder
	if every <= 0 {
		return nil
	}
	at := ackAt.Add(time.Duration(n) * every)
	if st.frozen.AckTimeout > 0 && !at.Before(ackAt.Add(st.frozen.AckTimeout)) {
		return nil // the ack timeout re-escalates first
	}
	_, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindReminder, Key: fmt.Sprintf("%s/%d/reminder/%d/%d", st.snap.ID, st.epoch, jobs.Millis(ackAt), n),
		Group: st.snap.ID, RunAt: at, Payload: job{Incident: st.snap.ID, Epoch: st.epoch, Level: st.level, User: actor, Count: n, AckAt: ackAt}})
	return err
}

// remind tells the acknowledger (or, when the acknowledgement came from
// outside the on-call directory, the users paged so far) that the incident
// is still open, then schedules the next reminder.
func (e *Engine) remind(ctx context.Context, tx *sql.Tx, st *stateRow, p job, now time.Time) error {
	users := []string{p.User}
	if e.dir.Config().User(p.User) == nil {
		var err error
		if users, err = e.pagedUsers(ctx, tx, st); err != nil {
			return fmt.Errorf("reminder: %w", err)
		}
	}
	ackAt := p.AckAt
	if ackAt.IsZero() {
		// Reminders enqueued before the ack time had its own field carried
		// it in Reason.
		var err error
		if ackAt, err = time.Parse(time.RFC3339Nano, p.Reason); err != nil {
			return fmt.Errorf("reminder of %s: acknowledgement time: %w", st.snap.ID, err)
		}
	}
	var next time.Time
	if err := e.scheduleReminder(ctx, tx, st, p.User, p.Count+1, ackAt, now); err != nil {
		return err
	}
	if at := ackAt.Add(time.Duration(p.Count+1) * st.frozen.AckReminder); st.frozen.AckTimeout == 0 || at.Before(ackAt.Add(st.frozen.AckTimeout)) {
		next = at
	}
	actions := fmt.Sprintf("Reminder %d: acknowledged by %s %s ago and still not resolved", p.Count, p.User, now.Sub(ackAt).Round(time.Second))
	out, err := e.send(ctx, tx, st, pageSpec{level: st.level, users: users, channels: st.frozen.ReminderChannels, now: now, next: next,
		tag: fmt.Sprintf("reminder/%d/%d", jobs.Millis(ackAt), p.Count), event: notify.EventReminder, status: string(incident.StatusAcknowledged), actions: actions, record: false})
	if err != nil {
		return err
	}
	e.steps.WithLabelValues(st.snap.Severity, "reminded").Inc()
	msg := fmt.Sprintf("Acknowledgement reminder %d: %s still open, reminding %s", p.Count, st.snap.ID, out.describe(users))
	if len(users) == 0 || len(out.channels) == 0 {
		msg = fmt.Sprintf("Acknowledgement reminder %d: nobody to remind (no user or no configured reminder channel)", p.Count)
	}
	return e.note(ctx, tx, st.snap.ID, now, msg, out.addTo(map[string]any{"reminder": p.Count, "users": users}))
}

// reescalate starts the escalation over from level 0 once the
// acknowledgement timed out, after the time it had.
func (e *Engine) reescalate(ctx context.Context, tx *sql.Tx, st *stateRow, after time.Duration, now time.Time) error {
	id := st.snap.ID
	epoch := st.epoch + 1
	if _, err := tx.ExecContext(ctx, `UPDATE escalation_state SET epoch = $1, state = $2, level = -1, cycle = 0, started_at = $3, updated_at = $3, acked_by = '' WHERE incident_id = $4`,
		epoch, StateActive, jobs.Millis(now), id); err != nil {
		return fmt.Errorf("re-escalate %s: %w", id, err)
	}
	e.steps.WithLabelValues(st.snap.Severity, "reescalated").Inc()
	if err := e.enqueueStep(ctx, tx, id, epoch, 0, 0, now.Add(st.frozen.Levels[0].Offset), now, ""); err != nil {
		return err
	}
	return e.note(ctx, tx, id, now, fmt.Sprintf("Acknowledgement timed out after %s without resolution: re-escalating from level 0", after),
		map[string]any{"epoch": epoch})
}

// ErrNoEscalation is returned by EscalateNow for an incident without a
// running escalation (no policy matched, or resolved).
var ErrNoEscalation = errors.New("incident has no escalation to advance")

// ErrUnknownIncident is returned by EscalateNow for an incident it knows
// nothing of: no such incident (or none whose escalation was ever
// started). It is an ErrNoEscalation too.
var ErrUnknownIncident = fmt.Errorf("%w: unknown incident", ErrNoEscalation)

// InFlightError is returned by EscalateNowOnce for a call that found an
// escalate-now of the incident's escalation already in flight (its step
// not fired yet, or waiting for a maintenance window to end), or fired
// since the call was made (by a call made at the same time): the call
// changed nothing and paged nobody; the escalation it found pages Level.
type InFlightError struct {
	Incident string
	Level    int
	Reason   string
	// Asked is when the escalation found was requested.
	Asked time.Time
	// Fired: its step has paged already (after this call was made).
	Fired bool
}

func (e *InFlightError) Error() string {
	what := "is already in flight"
	if e.Fired {
		what = "paged it while this call waited"
	}
	return fmt.Sprintf("escalate %s now: an escalation to level %d (%s, requested at %s) %s; nobody else paged",
		e.Incident, e.Level, e.Reason, e.Asked.UTC().Format("15:04:05.000 UTC"), what)
}

// EscalateNow pages the next level of an incident's escalation at once
// (for example when a runbook's verification failed), even if it was
// acknowledged. reason is written to the timeline. It runs through
// Options.Write (incident.Service.Write: on SQLite, in the writer's batch);
// a caller that holds a transaction calls EscalateNowTx instead. A call
// that finds an escalate-now of the incident in flight is merged into it
// (nil): see EscalateNowOnce.
func (e *Engine) EscalateNow(ctx context.Context, incidentID, reason string) error {
	err := e.EscalateNowOnce(ctx, incidentID, reason)
	var inFlight *InFlightError
	if errors.As(err, &inFlight) {
		return nil
	}
	return err
}

// EscalateNowOnce is EscalateNow that tells a merged call: when an
// escalate-now of the incident's current escalation is in flight, or was
// fired after this call was made (two calls at once, the second one
// served after the first's step paged), it changes nothing and returns
// an *InFlightError naming that escalation. Calls at once thus page one
// level once, not a level each, and a call never cancels another's step.
func (e *Engine) EscalateNowOnce(ctx context.Context, incidentID, reason string) error {
	asked := e.clock.Now()
	return e.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return e.escalateNowTx(ctx, tx, incidentID, reason, asked)
	})
}

// EscalateNowTx is EscalateNow with the caller's transaction, like the
// engine's other actions (IncidentChanged, Handle, SchedulesChanged).
func (e *Engine) EscalateNowTx(ctx context.Context, tx *sql.Tx, incidentID, reason string) error {
	err := e.escalateNowTx(ctx, tx, incidentID, reason, e.clock.Now())
	var inFlight *InFlightError
	if errors.As(err, &inFlight) {
		return nil
	}
	return err
}

// escalateNowTx is EscalateNowOnce's transaction for a call made at asked.
func (e *Engine) escalateNowTx(ctx context.Context, tx *sql.Tx, incidentID, reason string, asked time.Time) error {
	if reason == "" {
		reason = "manual"
	}
	now := e.clock.Now()
	// The state's row is locked (PostgreSQL) or the write is the only one
	// (SQLite): a concurrent call's step is read committed below.
	st, err := e.load(ctx, tx, incidentID)
	if err != nil {
		return err
	}
	if st == nil {
		// The id a request gave, cut as an answer quotes it
		// (limits.MaxEchoBytes): an unknown one may be of any length.
		shown, _ := limits.Truncate(incidentID, limits.MaxEchoBytes)
		return fmt.Errorf("escalate %s now: %w", shown, ErrUnknownIncident)
	}
	if st.state == StateNoPolicy || st.state == StateResolved {
		return fmt.Errorf("escalate %s now: %w", incidentID, ErrNoEscalation)
	}
	if err := e.escalationInFlight(ctx, tx, st, asked); err != nil {
		return err
	}
	if _, err := jobs.CancelGroup(ctx, tx, now, Queue, incidentID); err != nil {
		return err
	}
	if err := e.rewatchHandoffs(ctx, tx, st, now); err != nil {
		return err
	}
	level := min(st.level+1, len(st.frozen.Levels)-1)
	if err := e.setState(ctx, tx, incidentID, StateActive, st.level, now); err != nil {
		return err
	}
	// The step continues the current round of a repeating policy: after
	// the last level the chain runs again only while rounds remain, so
	// escalating by hand never adds rounds to the policy's repeat.
	return e.enqueueStep(ctx, tx, incidentID, st.epoch, st.cycle, level, now, now, reason)
}

// rewatchHandoffs plans again the handoff watches of the schedules of the
// levels paged so far, which escalate now cancelled with the incident's
// other timers: the escalation pages again, so whoever goes on call while
// it is unacknowledged is paged, as before.
func (e *Engine) rewatchHandoffs(ctx context.Context, tx *sql.Tx, st *stateRow, now time.Time) error {
	oc := e.dir.Config()
	seen := map[string]bool{}
	for lvl := 0; lvl <= st.level && lvl < len(st.frozen.Levels); lvl++ {
		for _, s := range st.frozen.Levels[lvl].Schedules {
			if seen[s] || oc.Schedule(s) == nil {
				continue
			}
			seen[s] = true
			w, err := e.dir.Window(ctx, tx, s, now, now.Add(e.horizon))
			if err != nil {
				return fmt.Errorf("who is on call for %s: %w", s, err)
			}
			if j, ok := handoffJob(st, s, w, lvl, fmt.Sprintf("now/%d", jobs.Millis(now))); ok {
				if _, err := jobs.Enqueue(ctx, tx, now, j); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// escalationInFlight returns an *InFlightError when a step of an
// escalate-now (a step with a reason) of st's epoch is pending or being
// run, or was run at or after asked.
func (e *Engine) escalationInFlight(ctx context.Context, tx *sql.Tx, st *stateRow, asked time.Time) error {
	id := st.snap.ID
	js, err := jobs.List(ctx, tx, jobs.Filter{Queue: Queue, Group: id, Kind: KindStep,
		States: []string{jobs.StatePending, jobs.StateRunning, jobs.StateDone}})
	if err != nil {
		return fmt.Errorf("escalate %s now: %w", id, err)
	}
	var found *InFlightError
	for _, j := range js {
		fired := j.State == jobs.StateDone
		if fired && (j.FinishedAt == nil || j.FinishedAt.Before(asked)) {
			continue
		}
		var p job
		if err := j.Decode(&p); err != nil || p.Epoch != st.epoch || p.Reason == "" {
			continue
		}
		if found == nil || j.CreatedAt.After(found.Asked) {
			found = &InFlightError{Incident: id, Level: p.Level, Reason: p.Reason, Asked: j.CreatedAt, Fired: fired}
		}
	}
	if found != nil {
		return found
	}
	return nil
}
