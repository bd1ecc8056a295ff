package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/store"
)

// stale is the status of an alert episode still firing when its incident
// was resolved for lack of deliveries (ResolveQuiet).
const stale = "stale"

// SweepActor names sred itself in the timeline entries of timed actions
// (end of a snooze, auto_resolve_after).
const SweepActor = "sred"

// Snooze limits.
const (
	MinSnooze = time.Minute
	MaxSnooze = 30 * 24 * time.Hour
)

// Snooze pauses an acknowledged or investigated incident for d: the end
// time is recorded on the incident and in the timeline, hooks see a
// ChangeSnoozed (the silencer silences its alerts until then), and when the
// snooze ends with the incident still open, WakeSnoozed notifies responders
// again. Snoozing a snoozed incident replaces the end time. A triggered
// incident must be acknowledged first. Each snooze is a timeline entry
// counted against MaxEdits (a *FullError past it).
func (s *Service) Snooze(ctx context.Context, id, actor string, d time.Duration) (*Incident, error) {
	if d < MinSnooze || d > MaxSnooze {
		return nil, invalid("duration", "snooze duration must be between %s and %s, got %s",
			formatDuration(MinSnooze), formatDuration(MaxSnooze), formatDuration(d))
	}
	return s.mutate(ctx, id, actor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		switch r.Status {
		case StatusAcknowledged, StatusInvestigating:
		case StatusTriggered:
			return "", nil, reject(r, "snooze", "it is triggered: acknowledge it first")
		default:
			return "", nil, reject(r, "snooze", fmt.Sprintf("it is %s, only an open incident can be snoozed", r.Status))
		}
		until := now.Add(d)
		msg := fmt.Sprintf("snoozed by %s for %s, until %s", actor, formatDuration(d), until.Format(time.RFC3339))
		if r.SnoozedUntil != nil && r.SnoozedUntil.After(now) {
			msg += fmt.Sprintf(" (was until %s)", r.SnoozedUntil.Format(time.RFC3339))
		}
		r.SnoozedUntil = &until
		return ChangeSnoozed, &TimelineEntry{Kind: "snooze", Message: msg,
			Data: map[string]any{"until": until.Format(time.RFC3339Nano), "duration": formatDuration(d)}}, nil
	}, s.roomFor(id, boundEdits))
}

// WakeFunc notifies responders of an incident whose snooze ended while it
// is still open. It returns a note for the timeline ("paged level 1").
type WakeFunc func(ctx context.Context, inc *Incident) (string, error)

// WakeSnoozed ends every snooze that is over. For an incident still open
// it calls wake, then clears the snooze and records it in the timeline; a
// wake that fails is retried at the next call. Crashing between the two
// calls wakes again (at least once). On PostgreSQL one replica at a time
// runs it. It returns the incidents woken.
func (s *Service) WakeSnoozed(ctx context.Context, wake WakeFunc) ([]string, error) {
	var woken []string
	err := s.sweep(ctx, sweepSnoozeLock, func() error {
		now := s.now()
		ids, err := s.ids(ctx, `SELECT id FROM incidents WHERE snoozed_until IS NOT NULL AND snoozed_until <= $1
			AND status IN ('triggered', 'acknowledged', 'investigating') ORDER BY snoozed_until, id LIMIT 100`, ms(now))
		if err != nil {
			return fmt.Errorf("snoozed incidents: %w", err)
		}
		var errs []error
		for _, id := range ids {
			inc, err := s.Get(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			note := ""
			if wake != nil {
				if note, err = wake(ctx, inc); err != nil {
					errs = append(errs, fmt.Errorf("end snooze of %s: %w", id, err))
					continue
				}
			}
			until := *inc.SnoozedUntil
			ok, err := s.endSnooze(ctx, id, until, note)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				woken = append(woken, id)
			}
		}
		return errors.Join(errs...)
	})
	return woken, err
}

// endSnooze clears the snooze that ended at until (unless it was changed
// meanwhile) and records it.
func (s *Service) endSnooze(ctx context.Context, id string, until time.Time, note string) (bool, error) {
	done := false
	_, err := s.mutate(ctx, id, SweepActor, func(r *record, now time.Time) (ChangeKind, *TimelineEntry, error) {
		done = false // a run again (mutate) starts over
		if r.SnoozedUntil == nil || !r.SnoozedUntil.Equal(until) {
			return "", nil, nil
		}
		r.SnoozedUntil = nil
		done = true
		if !r.Status.Open() {
			return "", nil, nil
		}
		msg := fmt.Sprintf("snooze ended (was until %s): the incident is still %s", until.Format(time.RFC3339), r.Status)
		if note != "" {
			msg += "; " + note
		}
		return "", &TimelineEntry{Kind: "snooze", Message: msg, Data: map[string]any{"ended": until.Format(time.RFC3339Nano)}}, nil
	})
	if err != nil {
		return false, fmt.Errorf("end snooze of %s: %w", id, err)
	}
	return done, nil
}

// noteDelivery remembers that Alertmanager delivered group at t (for a
// delivery answered as a duplicate, which writes nothing).
func (s *Service) noteDelivery(group string, t time.Time) {
	s.seenMu.Lock()
	if s.seen == nil {
		s.seen = map[string]int64{}
	}
	if v := ms(t); v > s.seen[group] {
		s.seen[group] = v
	}
	s.seenMu.Unlock()
}

// FlushDeliveries writes the delivery times of duplicate deliveries noted
// since the last call to alert_groups, in one transaction. Run it more often
// than auto_resolve_after by a wide margin (sred runs it every few seconds).
func (s *Service) FlushDeliveries(ctx context.Context) error {
	s.seenMu.Lock()
	seen := s.seen
	s.seen = nil
	s.seenMu.Unlock()
	if len(seen) == 0 {
		return nil
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys) // one lock order for every replica
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `UPDATE alert_groups SET last_delivery_at = $2
				WHERE group_key = $1 AND last_delivery_at < $2`, k, seen[k]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Keep them for the next attempt.
		for k, v := range seen {
			s.seenMu.Lock()
			if s.seen == nil {
				s.seen = map[string]int64{}
			}
			if v > s.seen[k] {
				s.seen[k] = v
			}
			s.seenMu.Unlock()
		}
		return fmt.Errorf("record delivery times: %w", err)
	}
	return nil
}

// ResolveQuiet resolves every open incident that still has firing alerts
// but whose Alertmanager group has sent nothing for the quiet time `after`
// (Options.AutoResolveAfter when after is 0; nothing when both are 0).
// Alertmanager repeats a firing group's notification every repeat_interval,
// so a longer silence means the resolve was lost. The incident's firing
// alerts become stale (ended at the last delivery), the incident resolves
// with a timeline entry saying why, and a later delivery of one of those
// alerts re-opens it. On PostgreSQL one replica at a time runs it. It
// returns the incidents resolved.
func (s *Service) ResolveQuiet(ctx context.Context, after time.Duration) ([]string, error) {
	if after <= 0 {
		after = s.Options().AutoResolveAfter
	}
	if after <= 0 {
		return nil, nil
	}
	if err := s.FlushDeliveries(ctx); err != nil {
		return nil, err
	}
	var resolved []string
	err := s.sweep(ctx, sweepQuietLock, func() error {
		cutoff := ms(s.now().Add(-after))
		ids, err := s.ids(ctx, `SELECT i.id FROM incidents i JOIN alert_groups g ON g.group_key = i.group_key AND g.incident_id = i.id
			WHERE i.status IN ('triggered', 'acknowledged', 'investigating') AND i.group_key NOT LIKE 'sred:%'
			AND g.last_delivery_at <= $1 AND i.created_at <= $1
			AND EXISTS (SELECT 1 FROM incident_alerts a WHERE a.incident_id = i.id AND a.status = 'firing')
			ORDER BY i.id LIMIT 100`, cutoff)
		if err != nil {
			return fmt.Errorf("quiet incidents: %w", err)
		}
		var errs []error
		for _, id := range ids {
			ok, err := s.resolveQuiet(ctx, id, after)
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				resolved = append(resolved, id)
			}
		}
		return errors.Join(errs...)
	})
	return resolved, err
}

func (s *Service) resolveQuiet(ctx context.Context, id string, after time.Duration) (bool, error) {
	p := &pending{}
	done := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		p, done = &pending{}, false
		// Take the group's lock first, as a delivery does (same lock order),
		// then look again: a delivery may have arrived since the incident
		// was listed.
		var group string
		if err := tx.QueryRowContext(ctx, `SELECT group_key FROM incidents WHERE id = $1`, id).Scan(&group); err != nil {
			return fmt.Errorf("group of %s: %w", id, err)
		}
		var last int64
		var cur sql.NullString
		if err := tx.QueryRowContext(ctx, `UPDATE alert_groups SET group_key = group_key WHERE group_key = $1
			RETURNING last_delivery_at, incident_id`, group).Scan(&last, &cur); err != nil {
			return fmt.Errorf("lock group of %s: %w", id, err)
		}
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		quietSince := max(last, ms(r.CreatedAt))
		if !r.Status.Open() || cur.String != id || quietSince > ms(now.Add(-after)) {
			return nil
		}
		// The other Alertmanager groups with alerts firing on it
		// (attached by correlation, merged) must be quiet too: a group
		// Alertmanager still repeats is still firing.
		var others sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(g.last_delivery_at) FROM alert_groups g
			WHERE g.group_key IN (SELECT a.group_key FROM incident_alerts a WHERE a.incident_id = $1 AND a.status = 'firing')
			AND g.group_key <> $2 AND g.group_key NOT LIKE 'sred:%'`, id, group).Scan(&others); err != nil {
			return fmt.Errorf("other groups of %s: %w", id, err)
		}
		if others.Valid {
			quietSince = max(quietSince, others.Int64)
			if quietSince > ms(now.Add(-after)) {
				return nil
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE incident_alerts SET status = 'stale', ends_at = $2, updated_at = $3
			WHERE incident_id = $1 AND status = 'firing'`, id, quietSince, ms(now))
		if err != nil {
			return fmt.Errorf("mark alerts of %s stale: %w", id, err)
		}
		n, _ := res.RowsAffected()
		if n == 0 {
			return nil
		}
		if err := clearLinksFiring(ctx, tx, id); err != nil {
			return fmt.Errorf("mark alerts of %s stale: %w", id, err)
		}
		prev := r.Status
		rec := fromMS(quietSince)
		r.Status, r.ResolvedAt, r.SnoozedUntil, r.UpdatedAt = StatusResolved, &now, nil, now
		if r.RecoveredAt == nil || r.RecoveredAt.Before(rec) {
			r.RecoveredAt = &rec
		}
		if err := s.save(ctx, tx, r); err != nil {
			return err
		}
		done = true
		msg := fmt.Sprintf("resolved automatically: no delivery from Alertmanager since %s (incidents.auto_resolve_after: %s) "+
			"while %s still firing; %s resolve was presumably lost", rec.Format(time.RFC3339), formatDuration(after),
			english.Count(int(n), "alert was", "alerts were"), map[bool]string{true: "its", false: "their"}[n == 1])
		return s.change(ctx, tx, p, Change{Kind: ChangeResolved, Incident: &r.Incident, Prev: prev, Actor: SweepActor, Time: now},
			&TimelineEntry{IncidentID: id, Time: now, Kind: "status", Actor: SweepActor, Message: msg,
				Data: map[string]any{"from": string(prev), "to": string(StatusResolved), "reason": "quiet",
					"last_delivery": rec.Format(time.RFC3339Nano), "stale_alerts": n}})
	})
	if err != nil {
		return false, fmt.Errorf("auto-resolve quiet incident %s: %w", id, err)
	}
	if done {
		s.publish(p)
	}
	return done, nil
}

// Advisory lock keys of the sweeps (PostgreSQL), named in pkg/store.
const (
	sweepSnoozeLock = int64(store.LockSnoozeSweep)
	sweepQuietLock  = int64(store.LockQuietSweep)
)

// sweep runs fn once at a time: in this process under a mutex, and on
// PostgreSQL under a session advisory lock, so that of several replicas one
// runs it and the others skip it (pg_try_advisory_lock; the lock goes with
// its connection if the replica dies).
func (s *Service) sweep(ctx context.Context, key int64, fn func() error) error {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if s.db.Dialect != store.Postgres {
		return fn()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sweep lock: %w", err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return fmt.Errorf("sweep lock: %w", err)
	}
	if !got {
		return nil // another replica is at it
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck
	return fn()
}

func (s *Service) ids(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
