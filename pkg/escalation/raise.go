package escalation

// A raised severity (a page tier joining its ticket tier's incident, an
// exhausted error budget): an escalation still paging starts over with the
// policy of the new severity; an acknowledged one only takes that policy for
// later, and whoever acknowledged it is told once, without a page.

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// severityRaised follows an incident whose severity rose. While nobody has
// acknowledged it (it is triggered) or its escalation pages again (the
// acknowledgement timed out, a snooze ended, escalated by hand) the
// escalation starts over from level 0 with the new severity's policy, as
// for a new incident. Once acknowledged (acknowledged, investigating,
// snoozed, recovering) nobody is paged: the policy of the new severity is
// frozen in place of the old one for whatever escalates it later (the
// acknowledgement timeout, the end of a snooze, escalate now), the timers
// already planned keep their times, and the acknowledger (the assignee
// when there is one; the users paged in the current round when the
// acknowledgement came from outside the on-call directory) gets one
// notice through the reminder channels.
func (e *Engine) severityRaised(ctx context.Context, tx *sql.Tx, inc *incident.Incident, now time.Time) error {
	st, err := e.load(ctx, tx, inc.ID)
	if err != nil {
		return err
	}
	if inc.Status == incident.StatusTriggered || (st != nil && st.state == StateActive) {
		// The timeline tells the policy frozen again for the new
		// severity from the first one (startOver).
		if st == nil {
			return e.start(ctx, tx, inc, now)
		}
		return e.startOver(ctx, tx, nil, inc, now, 0, st)
	}
	if st != nil && st.state == StateResolved {
		return nil
	}
	fz, err := e.freeze(inc)
	if err != nil {
		return fmt.Errorf("raise the severity of %s's escalation: %w", inc.ID, err)
	}
	p, frozen := fz.policy, fz.frozen
	// The escalation row as it is after the raise. An acknowledged incident
	// without one (none was started for it) or without a policy until now
	// is acknowledged under the new policy from now.
	cur := stateRow{epoch: 1, level: -1, state: StateNoPolicy, started: now}
	if st != nil {
		cur = *st
	}
	from, prev := cur.snap.Severity, cur.state
	cur.frozen, cur.snap, cur.policy = *frozen, fz.snap, ""
	switch {
	case p == nil:
		cur.state = StateNoPolicy
	case prev == StateNoPolicy:
		cur.state = StateAcknowledged
	}
	if p != nil {
		cur.policy = p.Name
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (incident_id) DO UPDATE SET policy = excluded.policy, frozen = excluded.frozen, snapshot = excluded.snapshot,
	state = excluded.state, updated_at = excluded.updated_at`,
		inc.ID, cur.policy, string(fz.fb), string(fz.sb), cur.epoch, cur.state, cur.level, jobs.Millis(cur.started), jobs.Millis(now)); err != nil {
		return fmt.Errorf("raise the severity of %s's escalation: %w", inc.ID, err)
	}
	what := fmt.Sprintf("Severity raised %s -> %s while the incident is %s", from, inc.Severity, inc.Status)
	if from == "" {
		what = fmt.Sprintf("Severity raised to %s while the incident is %s", inc.Severity, inc.Status)
	}
	if inc.SnoozedUntil != nil && inc.SnoozedUntil.After(now) {
		what += fmt.Sprintf(" (snoozed until %s)", inc.SnoozedUntil.UTC().Format(time.RFC3339))
	}
	if cur.state == StateRecovering {
		what += " and recovering"
	}
	msg := what + ": nobody is paged again"
	data := map[string]any{"from": from, "to": string(inc.Severity), "epoch": cur.epoch}
	switch {
	case p == nil:
		// Nothing to escalate to: the timers of the old policy go.
		n, err := jobs.CancelGroup(ctx, tx, now, Queue, inc.ID)
		if err != nil {
			return err
		}
		msg += fmt.Sprintf("; no escalation policy matches it now (%d pending timer(s) cancelled)", n)
	default:
		data["policy"] = p.Name
		msg += fmt.Sprintf("; escalation policy %q frozen for %s (%d levels, %s), for a later escalation (acknowledgement timeout, end of the snooze, escalate now)",
			p.Name, inc.Severity, len(frozen.Levels), describeOffsets(frozen))
		if prev == StateNoPolicy && frozen.AckTimeout > 0 {
			if _, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindAckTimeout, Key: fmt.Sprintf("%s/%d/acktimeout/%d", inc.ID, cur.epoch, jobs.Millis(now)),
				Group: inc.ID, RunAt: now.Add(frozen.AckTimeout), Payload: job{Incident: inc.ID, Epoch: cur.epoch, After: frozen.AckTimeout}}); err != nil {
				return err
			}
			msg += fmt.Sprintf("; re-escalates if not resolved within %s", frozen.AckTimeout)
		}
	}
	users, err := e.acknowledgers(ctx, tx, &cur, inc)
	if err != nil {
		return err
	}
	data["users"] = users
	if len(users) == 0 {
		return e.note(ctx, tx, inc.ID, now, msg+"; nobody to tell (no acknowledger in the on-call directory, nobody paged)", data)
	}
	cfg, _, _ := e.config()
	channels := cur.frozen.ReminderChannels
	if len(channels) == 0 {
		channels = cfg.AckReminderChannels
	}
	if len(channels) == 0 {
		channels = DefaultAckReminderChannels
	}
	out, err := e.send(ctx, tx, &cur, pageSpec{level: cur.level, users: users, channels: channels, now: now,
		tag: fmt.Sprintf("severity/%s/%d", inc.Severity, jobs.Millis(now)), event: EventUpdate, status: string(inc.Status),
		actions: what + ": nobody is paged again; the escalation policy of the new severity applies if it escalates again"})
	if err != nil {
		return err
	}
	if len(out.channels) == 0 {
		msg += fmt.Sprintf("; could not tell %s (no contact on a configured channel of %v)", out.describe(users), channels)
	} else {
		msg += "; told " + out.describe(users)
	}
	return e.note(ctx, tx, inc.ID, now, msg, out.addTo(data))
}

// acknowledgers are who to tell about an acknowledged incident: its
// assignee, else whoever acknowledged it, when they are in the on-call
// directory; else the users paged in the current round.
func (e *Engine) acknowledgers(ctx context.Context, tx *sql.Tx, st *stateRow, inc *incident.Incident) ([]string, error) {
	oc := e.dir.Config()
	for _, u := range []string{inc.Assignee, st.ackedBy} {
		if u != "" && oc.User(u) != nil {
			return []string{u}, nil
		}
	}
	return e.pagedUsers(ctx, tx, st)
}

// pagedUsers are the users paged in the escalation's current epoch, first
// paged first.
func (e *Engine) pagedUsers(ctx context.Context, tx *sql.Tx, st *stateRow) ([]string, error) {
	rows, err := store.TxQueries(ctx, tx).QueryContext(ctx, `SELECT user_name, MIN(paged_at) FROM escalation_pages WHERE incident_id = $1 AND epoch = $2 GROUP BY user_name ORDER BY MIN(paged_at), user_name`,
		st.snap.ID, st.epoch)
	if err != nil {
		return nil, fmt.Errorf("users paged for %s: %w", st.snap.ID, err)
	}
	defer rows.Close()
	users := []string{}
	for rows.Next() {
		var u string
		var at int64
		if err := rows.Scan(&u, &at); err != nil {
			return nil, fmt.Errorf("users paged for %s: %w", st.snap.ID, err)
		}
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users paged for %s: %w", st.snap.ID, err)
	}
	return users, nil
}
