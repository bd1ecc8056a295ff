package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/store"
)

// Applying a notification is a pipeline of named stages over one delivery,
// as Alertmanager's notify.Pipeline names the stages of a notification:
//
//	load      lock (PostgreSQL) or read (SQLite) the group, its stored
//	          episodes and its current incident
//	classify  sort the notification's episodes: new firing, new resolved,
//	          resolves of stored firing ones, unchanged, out of order
//	place     choose the incident new episodes join: the open one, the
//	          resolved one re-opened (flapping, revived), or a new one
//	resolve   mark stored firing episodes resolved, possibly of older incidents
//	persist   write the new incident, the group, the new episodes and the
//	          timeline entries
//	settle    recompute every touched incident from its stored alerts,
//	          auto-resolve, save, run the hooks
//
// Every stage runs inside the caller's transaction and works on the
// delivery; a stage's error aborts the delivery (its savepoint or
// transaction is rolled back).
var ingestStages = []ingestStage{
	{"load", (*Service).loadStage},
	{"classify", (*Service).classifyStage},
	{"place", (*Service).placeStage},
	{"resolve", (*Service).resolveStage},
	{"persist", (*Service).persistStage},
	{"settle", (*Service).settleStage},
}

type ingestStage struct {
	name string
	exec func(s *Service, ctx context.Context, tx *sql.Tx, d *delivery) error
}

// delivery is one notification going through the stages.
type delivery struct {
	n     Notification
	opts  Options
	now   time.Time
	actor string
	p     *pending
	res   *IngestResult
	// firstSight: a group this process has not seen, not checked for a
	// duplicate before the transaction (ingestWrite).
	firstSight bool

	// load
	delivered int64          // last_delivery_at to record (0: leave it)
	curID     sql.NullString // the group's current incident
	cur       *record
	byKey     map[alertKey]*incoming
	order     []alertKey
	stored    map[alertKey]storedAlert

	// classify
	newFiring, newResolved, resolves []*incoming
	revivedOf                        string // incident of stale episodes that fire again

	// place
	target                     *record
	created, reopened, revived bool
	attached                   bool  // correlation placed the group on an open incident
	link                       *Link // the group's link to target, when new

	// every stage
	deferred  *deferredWrite // persist's statement, run by settle (PostgreSQL)
	touched   map[string]*record
	changed   bool
	tl        []TimelineEntry // written in one statement by persist
	newAlerts []newAlert      // likewise
}

func (d *delivery) touch(r *record) {
	if _, ok := d.touched[r.ID]; !ok {
		r.sevBefore = r.Severity
		d.touched[r.ID] = r
		d.res.Incidents = append(d.res.Incidents, r.ID)
	}
}

// ingestTx runs the stages for n inside tx.
func (s *Service) ingestTx(ctx context.Context, tx *sql.Tx, opts Options, n Notification, p *pending, firstSight bool) (*IngestResult, error) {
	d := &delivery{
		n: n, opts: opts, now: s.now(), actor: n.Actor, p: p, firstSight: firstSight,
		res:     &IngestResult{Incidents: []string{}, Alerts: map[string]int{}},
		touched: map[string]*record{},
	}
	if d.actor == "" {
		d.actor = "alertmanager"
	}
	for _, st := range ingestStages {
		if err := st.exec(s, ctx, tx, d); err != nil {
			return nil, err
		}
	}
	if d.created {
		d.res.Created = []string{d.target.ID}
	}
	if len(d.res.Incidents) == 0 && d.cur != nil {
		d.res.Incidents = append(d.res.Incidents, d.cur.ID)
	}
	d.res.Duplicate = !d.changed
	return d.res, nil
}

// loadStage serialises deliveries of the group on every replica and loads
// what is stored of it. On PostgreSQL the upsert creates or locks the
// group's row until commit (a concurrent delivery of the same group waits
// there, then sees what the first one committed); the same statement
// records when Alertmanager last delivered the group (auto_resolve_after).
// sred's own notifications (reconciler, Watchdog) pass 0, which leaves it
// as it is. On SQLite the writer's transaction holds the write lock (BEGIN
// IMMEDIATE) from its start: reading the group is enough, and persist
// writes its row once.
//
// On PostgreSQL a group this process has not seen (d.firstSight) was not
// checked for a duplicate before the transaction. Its row is inserted
// only if it is not stored (ON CONFLICT DO NOTHING takes no lock on a
// stored row; it waits only for a transaction inserting the same group):
// a new group, as most of a storm's are, then goes on without the check's
// round trip. A stored one (another replica's, or this process's before
// a restart) is checked here as Ingest checks a seen group, without a
// lock, and a duplicate rolls back (duplicateDelivery); otherwise the
// upsert below locks its row and the delivery is applied.
func (s *Service) loadStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	if d.actor == "alertmanager" {
		d.delivered = ms(d.now)
	}
	newGroup := false
	if d.firstSight && s.db.Dialect == store.Postgres {
		err := s.queryRow(ctx, tx, `INSERT INTO alert_groups (group_key, last_delivery_at) VALUES ($1, $2)
			ON CONFLICT (group_key) DO NOTHING RETURNING incident_id`, d.n.GroupKey, d.delivered).Scan(&d.curID)
		switch {
		case err == nil:
			newGroup = true
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("insert group: %w", err)
		default:
			if dup, ok := s.duplicateOf(ctx, tx, d.n); ok {
				return &duplicateDelivery{res: dup}
			}
		}
	}
	if newGroup {
		// Inserted above, with no stored alerts.
	} else if s.db.Dialect == store.SQLite {
		err := s.queryRow(ctx, tx, `SELECT incident_id FROM alert_groups WHERE group_key = $1`, d.n.GroupKey).Scan(&d.curID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			newGroup = true // and without stored alerts
		case err != nil:
			return fmt.Errorf("read group: %w", err)
		}
	} else if err := s.queryRow(ctx, tx,
		// xmax = 0 in RETURNING: the row was inserted, not updated (the
		// updated row carries this transaction's lock in its xmax), so the
		// group is new and, as on SQLite, has no stored alerts to read.
		`INSERT INTO alert_groups (group_key, last_delivery_at) VALUES ($1, $2)
		ON CONFLICT (group_key) DO UPDATE SET last_delivery_at = CASE
			WHEN alert_groups.last_delivery_at > excluded.last_delivery_at THEN alert_groups.last_delivery_at
			ELSE excluded.last_delivery_at END
		RETURNING incident_id, xmax = 0`, d.n.GroupKey, d.delivered).Scan(&d.curID, &newGroup); err != nil {
		return fmt.Errorf("lock group: %w", err)
	}
	d.byKey, d.order = mergeAlerts(d.n)
	d.stored = map[alertKey]storedAlert{}
	if !newGroup {
		var err error
		if d.stored, err = s.loadGroupAlerts(ctx, tx, d.n.GroupKey, d.byKey); err != nil {
			return err
		}
	}
	if d.curID.Valid {
		var err error
		if d.cur, err = s.load(ctx, tx, d.curID.String); err != nil {
			return err
		}
	}
	return nil
}

// classifyStage sorts the notification's episodes against the stored ones.
func (s *Service) classifyStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	for _, k := range d.order {
		a := d.byKey[k]
		st, known := d.stored[k]
		switch {
		case !known && a.Status == "firing":
			d.newFiring = append(d.newFiring, a)
		case !known:
			d.newResolved = append(d.newResolved, a)
		case a.Status == "firing" && (st.status == stale || (st.status == "resolved" && d.n.Revive)):
			// sred resolved its incident for lack of deliveries, but
			// Alertmanager still has it firing: the episode comes back as
			// new, and re-opens that incident (place).
			if _, err := s.exec(ctx, tx, `DELETE FROM incident_alerts WHERE group_key = $1 AND fingerprint = $2 AND starts_at = $3`,
				d.n.GroupKey, k.fp, k.starts); err != nil {
				return fmt.Errorf("revive alert: %w", err)
			}
			d.newFiring = append(d.newFiring, a)
			if st.incidentID.Valid {
				d.revivedOf = st.incidentID.String
			}
		case a.Status == "firing" && st.status == "resolved":
			d.res.Alerts["out_of_order"]++
		case a.Status == "resolved" && (st.status == "firing" || st.status == stale):
			d.resolves = append(d.resolves, a)
		default:
			// Same state. Annotations may carry new template values.
			ann := a.annotationsStored()
			if a.Status == "firing" && ann != st.annotations {
				if _, err := s.exec(ctx, tx, `UPDATE incident_alerts SET annotations = $4, updated_at = $5
					WHERE group_key = $1 AND fingerprint = $2 AND starts_at = $3`,
					d.n.GroupKey, k.fp, k.starts, ann, ms(d.now)); err != nil {
					return fmt.Errorf("update alert: %w", err)
				}
				d.res.Alerts["updated"]++
				d.changed = true
			} else {
				d.res.Alerts["unchanged"]++
			}
		}
	}
	return nil
}

// placeStage chooses the incident new episodes join and records them on it.
func (s *Service) placeStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	cur, now, opts := d.cur, d.now, d.opts
	if len(d.newFiring) > 0 {
		switch {
		case cur != nil && cur.Status.Open():
			d.target = cur
		case cur != nil && cur.Status == StatusResolved && d.revivedOf == cur.ID:
			d.target = cur
			d.reopened, d.revived = true, true
		case cur != nil && cur.Status == StatusResolved && opts.FlapWindow > 0 &&
			withinFlap(cur, earliest(d.newFiring), opts.FlapWindow):
			d.target = cur
			d.reopened = true
		default:
			svc := serviceOf(opts, d.n, d.newFiring[0].Labels)
			k, err := s.correlate(ctx, tx, d, svc)
			if err != nil {
				return err
			}
			if k != nil {
				if err := s.attach(ctx, tx, d, k, svc); err != nil {
					return err
				}
				break
			}
			if d.target, err = s.create(ctx, tx, opts, d.n, d.newFiring, now); err != nil {
				return err
			}
			d.created = true // written by persist, once its alerts are merged
			d.link = &Link{GroupKey: d.n.GroupKey, Service: svc, Labels: nonNil(d.n.CommonLabels), Reason: "opened", AttachedAt: now, Firing: true}
		}
	} else if cur != nil && cur.Status.Open() && len(d.newResolved) > 0 {
		// Alerts that fired and resolved between two notifications of an
		// open incident belong to it (they also join an incident opened or
		// re-opened by this notification, above).
		d.target = cur
	}
	target := d.target
	if target == nil {
		// Resolves that arrived with nowhere to go: keep them so that a late
		// firing of the same episode is recognised as out of order.
		for _, a := range d.newResolved {
			d.newAlerts = append(d.newAlerts, newAlert{"", a.NotifiedAlert})
			d.res.Alerts["late"]++
			d.changed = true
		}
		return nil
	}
	d.touch(target)
	if len(d.newFiring) > 0 {
		// Hooks match this group's labels, not the incident's (those of
		// the group that opened it): the group may have joined it.
		target.groups = []AlertGroup{{GroupKey: d.n.GroupKey, Labels: nonNil(d.n.CommonLabels)}}
	}
	prev := target.Status
	var reopen *Change
	if d.reopened {
		if err := s.restoreLinksFiring(ctx, tx, target.ID); err != nil {
			return err
		}
		target.Status = StatusTriggered
		target.Flapping = target.Flapping || !d.revived
		target.reopenCount++
		target.ResolvedAt = nil
		target.RecoveredAt = nil
		target.SnoozedUntil = nil
		target.RecoveringSince = nil
		target.UpdatedAt = now
		kind := ChangeReopened
		damped := !d.revived && opts.FlapThreshold > 0 && target.reopenCount >= opts.FlapThreshold
		if damped {
			kind = ChangeFlapping
		}
		ch := Change{Kind: kind, Incident: &target.Incident, Prev: prev, Actor: d.actor, Time: now, Groups: target.groups}
		if damped {
			ch.Hold = opts.FlapWindow
		}
		reopen = &ch
		if damped {
			d.tl = append(d.tl, TimelineEntry{IncidentID: target.ID, Time: now, Kind: "status", Actor: d.actor,
				Message: fmt.Sprintf("re-opened: fired again within the flap window of %[1]s (flapping, re-opened %[2]d times: damped, escalation held back %[1]s: it pages again only if the incident is still open then)",
					formatDuration(opts.FlapWindow), target.reopenCount),
				Data: map[string]any{"from": string(prev), "to": string(StatusTriggered), "flapping": true, "damped": true, "reopen_count": target.reopenCount}})
		} else if d.revived && d.n.Revive {
			d.tl = append(d.tl, TimelineEntry{IncidentID: target.ID, Time: now, Kind: "status", Actor: d.actor,
				Message: "re-opened: Alertmanager has alerts firing again, with the start they had, after they resolved",
				Data:    map[string]any{"from": string(prev), "to": string(StatusTriggered)}})
		} else if d.revived {
			d.tl = append(d.tl, TimelineEntry{IncidentID: target.ID, Time: now, Kind: "status", Actor: d.actor,
				Message: "re-opened: Alertmanager delivered alerts still firing after the incident was resolved for lack of deliveries",
				Data:    map[string]any{"from": string(prev), "to": string(StatusTriggered)}})
		} else {
			d.tl = append(d.tl, TimelineEntry{IncidentID: target.ID, Time: now, Kind: "status", Actor: d.actor,
				Message: fmt.Sprintf("re-opened: fired again within the flap window of %s (flapping)", formatDuration(opts.FlapWindow)),
				Data:    map[string]any{"from": string(prev), "to": string(StatusTriggered), "flapping": true}})
		}
	} else if d.created {
		d.tl = append(d.tl, TimelineEntry{IncidentID: target.ID, Time: now, Kind: "status", Actor: d.actor,
			Message: fmt.Sprintf("incident created: [%s] %s", target.Severity, target.Title),
			Data:    map[string]any{"to": string(StatusTriggered), "group_key": d.n.GroupKey}})
	}
	n := len(d.newFiring) + len(d.newResolved)
	arrived := append(append(make([]*incoming, 0, n), d.newFiring...), d.newResolved...)
	fired := make([]NotifiedAlert, 0, n)
	var firedResolved []NotifiedAlert
	for _, a := range arrived {
		fired = append(fired, a.NotifiedAlert)
		if a.Status == "resolved" {
			firedResolved = append(firedResolved, a.NotifiedAlert)
		}
	}
	d.tl = append(d.tl, alertsEntry(target.ID, d.actor, "alert_fired", "fired", fired, now))
	if len(firedResolved) > 0 {
		d.tl = append(d.tl, alertsEntry(target.ID, d.actor, "alert_resolved", "resolved", firedResolved, now))
	}
	if reopen != nil {
		if err := s.reopened(ctx, tx, d, *reopen); err != nil {
			return err
		}
	}
	d.newAlerts = slices.Grow(d.newAlerts, n)
	for _, a := range arrived {
		d.newAlerts = append(d.newAlerts, newAlert{target.ID, a.NotifiedAlert})
		if a.Status == "resolved" {
			d.res.Alerts["resolved"]++
		}
		d.res.Alerts["new"]++
		before := target.Severity
		mergeAlertInfo(&target.Incident, a.NotifiedAlert, opts)
		if target.Severity != before && a.Status == "firing" && !d.created {
			target.raisedBy = &titleSource{alert: a.NotifiedAlert, receiver: d.n.Receiver, groupLabels: d.n.GroupLabels}
		}
	}
	d.changed = true
	return nil
}

// reopened runs the hooks of the re-open (or damped re-open) ch of the
// delivery's target, as the incident was before the new alerts merged
// into it (settle reports what they change: a raised severity). The
// timeline entries of the delivery so far, the re-open's and the alerts'
// that caused it, are written first: the hooks write theirs at once (the
// escalation's, a policy frozen for the new run), and the timeline,
// read in the order written, tells the cause before its effect (the
// escalation's entries came before the re-open's). On PostgreSQL they go
// with the hooks' first statement (store.AtCommit), no round trip more.
func (s *Service) reopened(ctx context.Context, tx *sql.Tx, d *delivery, ch Change) error {
	if err := s.insertTimeline(store.AtCommit(ctx), tx, d.tl); err != nil {
		return err
	}
	d.tl = nil
	return s.change(ctx, tx, d.p, ch, nil)
}

// resolveStage resolves known firing episodes, possibly of older incidents,
// with the copies other groups hold of them on the same incidents, and
// touches the incidents they belong to.
//
// The incidents are locked (load, FOR UPDATE on PostgreSQL) before any of
// their alerts is written, as the group's current incident is (loadStage):
// a resolve writes other groups' copies of an episode too, so two groups'
// deliveries resolving one episode each write both copies; holding the
// episode's incident first, the second waits for the first before it
// writes either copy. Writing the copies first, a delivery whose group had
// moved on to a newer incident would hold its copy while the other group's
// delivery, holding the episode's incident, waited for it, and wait for
// that incident in turn (a deadlock, broken by rolling one back).
func (s *Service) resolveStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	locked, err := s.lockResolvedIncidents(ctx, tx, d)
	if err != nil {
		return err
	}
	resolved, others, err := s.resolveAlerts(ctx, tx, d.n.GroupKey, d.resolves, d.stored, d.now)
	if err != nil {
		return err
	}
	if n := len(d.resolves) - len(resolved); n > 0 {
		d.res.Alerts["unchanged"] += n // resolved meanwhile by another group (resolveAlerts)
	}
	resolvedBy := map[string][]NotifiedAlert{}
	var resolvedOrder []string
	for _, a := range resolved {
		d.res.Alerts["resolved"]++
		d.changed = true
		st := d.stored[a.key]
		if !st.incidentID.Valid {
			continue
		}
		id := st.incidentID.String
		if d.touched[id] == nil {
			r := d.cur
			if d.cur == nil || d.cur.ID != id {
				r = locked[id]
			}
			d.touch(r)
		}
		if r := d.touched[id]; r != nil && mapSeverity(d.opts, a.Labels[d.opts.SeverityLabel]) == r.Severity {
			r.recheckSeverity = true
		}
		if _, ok := resolvedBy[id]; !ok {
			resolvedOrder = append(resolvedOrder, id)
		}
		resolvedBy[id] = append(resolvedBy[id], a.NotifiedAlert)
	}
	for _, id := range resolvedOrder {
		d.tl = append(d.tl, alertsEntry(id, d.actor, "alert_resolved", "resolved", resolvedBy[id], d.now))
		if len(d.newFiring) > 0 && d.target != nil && d.target.ID == id {
			continue // the group fires on it again (persist)
		}
		// The group's link stops firing once none of its alerts on the
		// incident fires (correlation: relatedLinksAnyQuery).
		if _, err := s.exec(ctx, tx, clearLinkFiringSQL, id, d.n.GroupKey); err != nil {
			return fmt.Errorf("link of %s: %w", id, err)
		}
	}
	// Other groups' copies of the episodes, resolved on the same incident
	// (resolveAlerts): their links may stop firing too.
	done := map[copyOnIncident]bool{}
	for _, c := range others {
		if done[c] {
			continue
		}
		done[c] = true
		if _, err := s.exec(ctx, tx, clearLinkFiringSQL, c.incidentID, c.groupKey); err != nil {
			return fmt.Errorf("link of %s: %w", c.incidentID, err)
		}
	}
	return nil
}

// lockResolvedIncidents loads, locked, the incidents of the episodes the
// delivery resolves that it has neither loaded nor touched yet, in the
// order of their IDs (resolveStage).
func (s *Service) lockResolvedIncidents(ctx context.Context, tx *sql.Tx, d *delivery) (map[string]*record, error) {
	var ids []string
	for _, a := range d.resolves {
		st := d.stored[a.key]
		if !st.incidentID.Valid {
			continue
		}
		id := st.incidentID.String
		if d.touched[id] != nil || (d.cur != nil && d.cur.ID == id) || slices.Contains(ids, id) {
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	locked := make(map[string]*record, len(ids))
	for _, id := range ids {
		r, err := s.load(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		locked[id] = r
	}
	return locked, nil
}

// persistStage writes the new incident, the group's row, the new episodes
// and the timeline entries.
func (s *Service) persistStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	if s.db.Dialect == store.Postgres && len(d.newAlerts) <= maxMergedRows && len(d.tl) <= maxMergedRows {
		return s.persistMerged(ctx, tx, d)
	}
	if d.created {
		if err := s.insertIncident(ctx, tx, d.target); err != nil {
			return err
		}
	}
	if d.created || d.attached {
		d.curID = sql.NullString{String: d.target.ID, Valid: true}
	}
	if d.link != nil {
		if err := s.insertLink(ctx, tx, d.target.ID, d.link); err != nil {
			return err
		}
	} else if d.target != nil && len(d.newFiring) > 0 {
		if _, err := s.exec(ctx, tx, setLinkFiringSQL, d.target.ID, d.n.GroupKey); err != nil {
			return fmt.Errorf("link of %s: %w", d.target.ID, err)
		}
	}
	if s.db.Dialect == store.SQLite {
		if _, err := s.exec(ctx, tx, `INSERT INTO alert_groups (group_key, incident_id, last_delivery_at) VALUES ($1, $2, $3)
			ON CONFLICT (group_key) DO UPDATE SET incident_id = excluded.incident_id, last_delivery_at = CASE
				WHEN alert_groups.last_delivery_at > excluded.last_delivery_at THEN alert_groups.last_delivery_at
				ELSE excluded.last_delivery_at END`, d.n.GroupKey, d.curID, d.delivered); err != nil {
			return fmt.Errorf("write group: %w", err)
		}
	} else if d.created || d.attached {
		if _, err := s.exec(ctx, tx, `UPDATE alert_groups SET incident_id = $2 WHERE group_key = $1`,
			d.n.GroupKey, d.target.ID); err != nil {
			return fmt.Errorf("update group: %w", err)
		}
	}
	if err := s.insertAlerts(ctx, tx, d.n.GroupKey, d.newAlerts, d.now); err != nil {
		return err
	}
	return s.insertTimeline(ctx, tx, d.tl)
}

// maxMergedRows bounds the alerts and the timeline entries persistMerged
// writes in its one statement (PostgreSQL takes at most 65,535 parameters;
// 500 alerts are 5,500); larger deliveries take persistStage's statements.
const maxMergedRows = 500

// persistMerged is persistStage on PostgreSQL in one statement, one round
// trip instead of one per table: every write is a data-modifying WITH
// query of it. PostgreSQL runs each of them exactly once and to completion
// whatever the main query reads, and checks the foreign keys (the alerts',
// the link's and the group's reference to a new incident) after all of
// them. The rows are those persistStage writes, in the same order.
//
// The statement is not run here but left to settle (d.deferred): the
// incident's UPDATE (save) joins it, one round trip less while the
// incident's row lock is held; settle runs it first whenever it reads.
func (s *Service) persistMerged(ctx context.Context, tx *sql.Tx, d *delivery) error {
	w := &deferredWrite{}
	var sb strings.Builder
	// values adds a row of parameters and returns its placeholders.
	values := func(row []any) string {
		sb.Reset()
		sb.Grow(len(row) * 7)
		s.placeholders(&sb, len(w.args), len(row))
		w.args = append(w.args, row...)
		return sb.String()
	}
	if d.created {
		w.add(insertIncidentSQL + values(incidentRow(&d.target.Incident)))
	}
	if d.created || d.attached {
		d.curID = sql.NullString{String: d.target.ID, Valid: true}
	}
	if d.link != nil {
		n := len(w.args) // incident_id, service and attached_at: $n+1, $n+3, $n+7
		w.add(insertLinkSQL + values(linkRow(d.target.ID, d.link)) + insertLinkConflict)
		// The incident's per-service summary without the row lock of an
		// upsert on every join (see linkServiceSlackMS): every group of a
		// storm joining one incident writes the same row.
		w.add(insertLinkServiceSQL + fmt.Sprintf("($%d, $%d, $%d)", n+1, n+3, n+7) + ` ON CONFLICT (incident_id, service) DO NOTHING`)
		w.add(fmt.Sprintf(`UPDATE incident_link_services SET last_at = $%[3]d
			WHERE incident_id = $%[1]d AND service = $%[2]d AND last_at < $%[3]d - %[4]d`, n+1, n+3, n+7, linkServiceSlackMS))
	} else if d.target != nil && len(d.newFiring) > 0 {
		w.add(fmt.Sprintf(`UPDATE incident_links SET firing = 1 WHERE incident_id = $%d AND group_key = $%d AND firing = 0`,
			len(w.args)+1, len(w.args)+2), d.target.ID, d.n.GroupKey)
	}
	if d.created || d.attached {
		n := len(w.args)
		w.add(fmt.Sprintf(`UPDATE alert_groups SET incident_id = $%d WHERE group_key = $%d`, n+2, n+1), d.n.GroupKey, d.target.ID)
	}
	if len(d.newAlerts) > 0 {
		n := len(w.args)
		w.args = appendAlertRows(w.args, d.n.GroupKey, d.newAlerts, d.now)
		sb.Reset()
		sb.Grow(len(insertAlertsSQL) + len(d.newAlerts)*alertCols*7)
		sb.WriteString(insertAlertsSQL)
		for i := range d.newAlerts {
			if i > 0 {
				sb.WriteString(", ")
			}
			s.placeholders(&sb, n+i*alertCols, alertCols)
		}
		w.add(sb.String())
	}
	// The timeline entries are written last, by exec, with any that the
	// hooks of a new incident add (changeIn), in one INSERT: in the order
	// added, which a statement's several INSERTs would not keep.
	w.tl = d.tl
	if len(w.writes) > 0 || len(w.tl) > 0 {
		d.deferred = w
	}
	return nil
}

// deferredWrite is a statement of several writes being built: each a
// data-modifying query with its parameters numbered after the ones before.
type deferredWrite struct {
	writes []string
	args   []any
	tl     []TimelineEntry // written by exec, after writes
	// probes are queries whose finding a row the statement returns
	// (Writes.Probe), their placeholders numbered among args.
	probes []string
}

// add appends a write whose parameters, args, are numbered after w.args.
func (w *deferredWrite) add(q string, args ...any) {
	w.writes = append(w.writes, q)
	w.args = append(w.args, args...)
}

// exec runs the writes in one statement: the last one is the main query,
// the others WITH queries of it. With probes, every write is a WITH query
// and the main query returns whether each probe finds a row, as the
// database was before the statement (execProbes).
func (w *deferredWrite) exec(ctx context.Context, s *Service, tx *sql.Tx) error {
	_, err := w.execProbes(ctx, s, tx)
	return err
}

// execProbes is exec, returning whether each probe found a row.
func (w *deferredWrite) execProbes(ctx context.Context, s *Service, tx *sql.Tx) ([]bool, error) {
	if len(w.tl) > 0 {
		var sb strings.Builder
		sb.WriteString(insertTimelineSQL)
		for i, e := range w.tl {
			if i > 0 {
				sb.WriteString(", ")
			}
			s.placeholders(&sb, len(w.args), 6)
			w.args = appendTimelineRow(w.args, e)
		}
		w.tl = nil
		w.writes = append(w.writes, sb.String())
	}
	writes := w.writes
	var main string
	if len(w.probes) == 0 {
		main, writes = writes[len(writes)-1], writes[:len(writes)-1]
	} else {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, p := range w.probes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "EXISTS (%s)", p)
		}
		main = b.String()
	}
	q := main
	if len(writes) > 0 {
		var b strings.Builder
		b.WriteString("WITH ")
		for i, q := range writes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "w%d AS (%s)", i, q)
		}
		b.WriteByte(' ')
		b.WriteString(main)
		q = b.String()
	}
	if len(w.probes) == 0 {
		// Nothing is read from it: on PostgreSQL it goes with the
		// transaction's next statement or its COMMIT, one round trip less
		// (store.AtCommit). Its error is then theirs, wrapped the same.
		_, err := s.exec(store.AtCommit(ctx), tx, q, w.args...)
		return nil, err
	}
	found := make([]bool, len(w.probes))
	dest := make([]any, len(found))
	for i := range found {
		dest[i] = &found[i]
	}
	if err := s.queryRow(ctx, tx, q, w.args...).Scan(dest...); err != nil {
		return nil, err
	}
	return found, nil
}

// flushDeferred runs the delivery's deferred persisting statement, if any.
func (s *Service) flushDeferred(ctx context.Context, tx *sql.Tx, d *delivery) error {
	w := d.deferred
	if w == nil {
		return nil
	}
	d.deferred = nil
	return w.exec(ctx, s, tx) // its errors name the group in ingestWrite
}

// settleStage recomputes every touched incident from its stored alerts.
func (s *Service) settleStage(ctx context.Context, tx *sql.Tx, d *delivery) error {
	for _, id := range d.res.Incidents {
		r := d.touched[id]
		created := d.created && r == d.target
		if !created && settleFiring(d, r) {
			// The delivery stored a firing alert on r: r has alerts, at
			// least one firing, and its earliest start is DetectedAt or
			// one of this delivery's (DetectedAt only ever moves back to
			// an alert's start). No need to aggregate all of r's alerts,
			// which costs in proportion to a storm's size.
			// r's save runs the deferred persisting statement with it.
			r.deferred, d.deferred = d.deferred, nil
			err := s.settled(ctx, tx, d.opts, r, d.now, d.p, d.actor, true, 0)
			r.deferred = nil
			if err != nil {
				return err
			}
			continue
		}
		if w := d.deferred; created && w != nil {
			// A new incident (written whole by persist, see settle): the
			// hooks' writes of its creation join the statement writing it.
			d.deferred = nil
			if err := s.changeIn(ctx, tx, d.p, Change{Kind: ChangeCreated, Incident: &r.Incident, Actor: d.actor, Time: d.now,
				Groups: r.groups}, w); err != nil {
				return err
			}
			continue
		}
		if err := s.flushDeferred(ctx, tx, d); err != nil {
			return err
		}
		if err := s.settle(ctx, tx, d.opts, r, d.now, d.p, created, d.actor); err != nil {
			return err
		}
	}
	return s.flushDeferred(ctx, tx, d)
}

// settleFiring reports whether the delivery stored a firing alert on r, and
// moves r's DetectedAt back to the earliest start of those alerts (as the
// aggregate in settle would, to the millisecond as stored).
func settleFiring(d *delivery, r *record) bool {
	found := false
	for _, a := range d.newAlerts {
		if a.incidentID != r.ID || a.Status != "firing" {
			continue
		}
		found = true
		if t := fromMS(ms(a.StartsAt)); t.Before(r.DetectedAt) {
			r.DetectedAt = t
		}
	}
	return found
}
