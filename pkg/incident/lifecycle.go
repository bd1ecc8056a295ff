package incident

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/store"
)

// mutate loads an incident under lock, lets fn change it, saves it, runs the
// hooks for the change fn returns (if any) and publishes after commit. It
// refuses an empty or over-long actor (checkActor) before it starts.
// fn returns the change kind ("" for none), the timeline entry to add, and
// an error (a *TransitionError for a rejected change). extra functions run
// in the same transaction after the incident is saved. A transaction that
// PostgreSQL rolled back to break a deadlock (store.Retryable) runs once
// more from the start, so a status change is not refused for it.
func (s *Service) mutate(ctx context.Context, id, actor string, fn func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error),
	extra ...func(ctx context.Context, tx *sql.Tx) error) (*Incident, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	p := &pending{}
	var out *Incident
	body := func(tx *sql.Tx) error {
		p = &pending{}
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		prev := r.Status
		kind, entry, err := fn(r, now)
		if err != nil {
			return err
		}
		r.UpdatedAt = now
		if err := s.save(ctx, tx, r); err != nil {
			return err
		}
		for _, f := range extra {
			if err := f(ctx, tx); err != nil {
				return err
			}
		}
		if entry != nil {
			entry.IncidentID, entry.Time, entry.Actor = r.ID, now, actor
		}
		if kind != "" {
			if err := s.change(ctx, tx, p, Change{Kind: kind, Incident: &r.Incident, Prev: prev, Actor: actor, Time: now}, entry); err != nil {
				return err
			}
		} else if entry != nil {
			// Its ID is the caller's to answer (a note's).
			if err := s.addTimelineID(ctx, tx, entry); err != nil {
				return err
			}
			p.events = append(p.events, timelineEvent(&r.Incident, *entry))
		}
		out = &r.Incident
		return nil
	}
	// PostgreSQL may break a deadlock (or a serialization failure) by
	// rolling the change back: it runs again from the start, as the caller
	// (an API call, an acknowledge link) would have to.
	err := store.RunAgain(ctx, func() error { return s.db.InTx(ctx, body) })
	if err != nil {
		return nil, err
	}
	s.publish(p)
	return out, nil
}

func statusEntry(from, to Status, msg string) *TimelineEntry {
	return &TimelineEntry{Kind: "status", Message: msg, Data: map[string]any{"from": string(from), "to": string(to)}}
}

func reject(r *record, action, reason string) error {
	return &TransitionError{ID: r.ID, From: r.Status, Action: action, Reason: reason}
}

// Acknowledge moves a triggered incident to acknowledged.
func (s *Service) Acknowledge(ctx context.Context, id, actor string) (*Incident, error) {
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if r.Status != StatusTriggered {
			return "", nil, reject(r, "acknowledge", fmt.Sprintf("it is %s, only a triggered incident can be acknowledged", r.Status))
		}
		prev := r.Status
		r.Status = StatusAcknowledged
		r.AcknowledgedAt = &now
		return ChangeAcknowledged, statusEntry(prev, r.Status, "acknowledged by "+actor), nil
	})
}

// Investigate moves a triggered or acknowledged incident to investigating,
// assigning it to assignee (the actor when empty). On an incident already
// being investigated it only changes the assignee. The assignee is at most
// MaxAssignee characters.
func (s *Service) Investigate(ctx context.Context, id, actor, assignee string) (*Incident, error) {
	if assignee == "" {
		assignee = actor
	}
	if err := checkLine("assignee", assignee, MaxAssignee); err != nil {
		return nil, err
	}
	assigning := false
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		assigning = false
		switch r.Status {
		case StatusTriggered, StatusAcknowledged:
			prev := r.Status
			r.Status = StatusInvestigating
			r.Assignee = assignee
			if r.AcknowledgedAt == nil {
				r.AcknowledgedAt = &now
			}
			r.investigatingAt = &now
			e := statusEntry(prev, r.Status, "investigating, assigned to "+assignee)
			e.Data["assignee"] = assignee
			return ChangeInvestigating, e, nil
		case StatusInvestigating:
			assigning = true
			return s.assign(r, assignee)
		default:
			return "", nil, reject(r, "investigate", fmt.Sprintf("it is %s", r.Status))
		}
	}, func(ctx context.Context, tx *sql.Tx) error {
		if !assigning {
			return nil
		}
		// A new assignee of an incident already investigated is one
		// more timeline entry (MaxEdits).
		return s.room(ctx, tx, id, boundEdits)
	})
}

// Assign sets the assignee of an open incident. A triggered or acknowledged
// incident moves to investigating, as in Investigate.
func (s *Service) Assign(ctx context.Context, id, actor, assignee string) (*Incident, error) {
	if strings.TrimSpace(assignee) == "" {
		return nil, invalid("assignee", "assignee must not be empty")
	}
	return s.Investigate(ctx, id, actor, assignee)
}

func (s *Service) assign(r *record, assignee string) (ChangeKind, *TimelineEntry, error) {
	if r.Assignee == assignee {
		return "", nil, reject(r, "assign", "it is already assigned to "+assignee)
	}
	prev := r.Assignee
	r.Assignee = assignee
	return "", &TimelineEntry{Kind: "assignment", Message: "assigned to " + assignee,
		Data: map[string]any{"from": prev, "to": assignee}}, nil
}

// Resolve resolves an open incident with a resolution note (at most
// MaxNote characters).
func (s *Service) Resolve(ctx context.Context, id, actor, note string) (*Incident, error) {
	if err := checkText("note", note, MaxNote); err != nil {
		return nil, err
	}
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if !r.Status.Open() {
			return "", nil, reject(r, "resolve", fmt.Sprintf("it is already %s", r.Status))
		}
		prev := r.Status
		r.Status = StatusResolved
		r.ResolvedAt = &now
		r.SnoozedUntil = nil // a resolved incident wakes nobody
		msg := "resolved by " + actor
		if note != "" {
			msg += ": " + note
		}
		e := statusEntry(prev, r.Status, msg)
		e.Data["note"] = note
		return ChangeResolved, e, nil
	}, func(ctx context.Context, tx *sql.Tx) error {
		return clearLinksFiring(ctx, tx, id)
	})
}

// clearLinksFiring marks every link of a resolved incident no longer
// firing: a group whose alerts still fire when a responder resolves the
// incident (its resolve lost, the quiet sweep off) no longer makes it a
// firing incident for correlation (relatedLinksAnyQuery). A new firing of
// the group that re-opens the incident marks its link firing again.
func clearLinksFiring(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE incident_links SET firing = 0 WHERE incident_id = $1 AND firing = 1`, id); err != nil {
		return fmt.Errorf("links of %s: %w", id, err)
	}
	return nil
}

// CompletePostmortem marks a resolved incident's post-mortem as done.
func (s *Service) CompletePostmortem(ctx context.Context, id, actor string) (*Incident, error) {
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if r.Status != StatusResolved {
			return "", nil, reject(r, "complete the post-mortem of", fmt.Sprintf("it is %s, only a resolved incident can complete its post-mortem", r.Status))
		}
		prev := r.Status
		r.Status = StatusPostmortemDone
		r.postmortemAt = &now
		return ChangePostmortemDone, statusEntry(prev, r.Status, "post-mortem done"), nil
	})
}

// AddNote appends a note (at most MaxNote characters) to the timeline. An
// incident holds at most MaxNotes notes: one more is a *FullError.
func (s *Service) AddNote(ctx context.Context, id, actor, text string) (*TimelineEntry, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, invalid("text", "note must not be empty")
	}
	if err := checkText("text", text, MaxNote); err != nil {
		return nil, err
	}
	var entry TimelineEntry
	_, err := s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		entry = TimelineEntry{IncidentID: r.ID, Time: now, Actor: actor, Kind: "note", Message: text}
		return "", &entry, nil
	}, s.roomFor(id, boundNotes))
	if err != nil {
		return nil, err
	}
	return &entry, nil
}

// SetImpact records the impact statement (at most MaxImpact characters) of
// an incident. Each is a timeline entry counted against MaxEdits.
func (s *Service) SetImpact(ctx context.Context, id, actor, impact string) (*Incident, error) {
	impact = strings.TrimSpace(impact)
	if err := checkText("impact", impact, MaxImpact); err != nil {
		return nil, err
	}
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		r.Impact = impact
		return "", &TimelineEntry{Kind: "impact", Message: "impact: " + r.Impact}, nil
	}, s.roomFor(id, boundEdits))
}

// MarkMitigated records that the incident was mitigated by "by" (for
// example "automation" when a runbook's verification step passed). It does
// not change the status.
func (s *Service) MarkMitigated(ctx context.Context, id, by string) (*Incident, error) {
	return s.mutate(ctx, id, by, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		r.MitigatedBy = by
		return ChangeMitigated, &TimelineEntry{Kind: "mitigated", Message: "mitigated by " + by}, nil
	})
}

func timelineEvent(inc *Incident, e TimelineEntry) events.Event {
	return events.Event{Type: "incident.timeline", Time: e.Time, Service: inc.Service, IncidentID: inc.ID,
		Data: map[string]any{"kind": e.Kind, "actor": e.Actor, "message": e.Message}}
}

// MarkRecovering records that an open incident is recovering: every short
// burn-rate window of its SLO is back under its threshold (detail says
// which). The status does not change (the incident resolves when its
// alerts do); hooks see ChangeRecovering (escalation stops, the all-clear
// goes out). Its timeline entry (kind "recovering") carries "recovery":
// true in its data, what readers match on rather than its wording
// (BurningAgain's entry, of the same kind, carries false). It changes
// nothing when the incident is already recovering.
// extra functions run in the same transaction.
func (s *Service) MarkRecovering(ctx context.Context, id, actor, detail string, extra ...func(ctx context.Context, tx *sql.Tx) error) (*Incident, error) {
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if !r.Status.Open() {
			return "", nil, reject(r, "mark recovering", "it is not open")
		}
		if r.RecoveringSince != nil {
			return "", nil, nil
		}
		r.RecoveringSince = &now
		return ChangeRecovering, &TimelineEntry{Kind: "recovering", Message: "recovering: " + detail, Data: map[string]any{"recovery": true}}, nil
	}, extra...)
}

// BurningAgain records that a recovering incident's SLO burns again over
// a short window: RecoveringSince is cleared and hooks see
// ChangeBurningAgain (escalation starts over). It changes nothing when the
// incident is not recovering.
func (s *Service) BurningAgain(ctx context.Context, id, actor, detail string, extra ...func(ctx context.Context, tx *sql.Tx) error) (*Incident, error) {
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if !r.Status.Open() {
			return "", nil, reject(r, "mark burning again", "it is not open")
		}
		if r.RecoveringSince == nil {
			return "", nil, nil
		}
		r.RecoveringSince = nil
		return ChangeBurningAgain, &TimelineEntry{Kind: "recovering", Message: "burning again: " + detail, Data: map[string]any{"recovery": false}}, nil
	}, extra...)
}

// Raise records a finding on an open incident (kind is the timeline
// entry's kind, message its text) and raises its severity to sev when that
// is higher: hooks see ChangeSeverityRaised then (escalation follows the
// new severity). A lower or equal sev only adds the entry. The severity
// follows the incident's firing alerts again when one of its severity
// resolves.
func (s *Service) Raise(ctx context.Context, id, actor string, sev Severity, kind, message string) (*Incident, error) {
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		if !r.Status.Open() {
			return "", nil, reject(r, "raise", "it is not open")
		}
		if sev.Rank() >= r.Severity.Rank() {
			return "", &TimelineEntry{Kind: kind, Message: message}, nil
		}
		from := r.Severity
		r.Severity = sev
		return ChangeSeverityRaised, &TimelineEntry{Kind: "severity", Message: fmt.Sprintf("severity raised: %s -> %s (%s)", from, sev, message),
			Data: map[string]any{"from": string(from), "to": string(sev), "reason": kind}}, nil
	})
}
