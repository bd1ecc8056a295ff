package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/store"
)

// Notification is one Alertmanager group notification, already validated by
// the receiver: the whole group as Alertmanager sees it, not a change list.
type Notification struct {
	Receiver          string
	Status            string // firing | resolved (of the group)
	GroupKey          string
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	TruncatedAlerts   int
	Alerts            []NotifiedAlert
	// Actor is recorded in the timeline; "alertmanager" when empty (the
	// reconciler and the Watchdog check use their own names).
	Actor string
	// Revive is set by the reconciler only, for alerts Alertmanager holds
	// active: an episode stored resolved that fires again is not a late
	// delivery (out of order) but fires again with the same start
	// (Prometheus sent it again after a gap longer than its validity, and
	// Alertmanager had resolved it): it comes back as new and re-opens its
	// incident, as a stale one does.
	Revive bool
}

// NotifiedAlert is one alert of a notification.
type NotifiedAlert struct {
	Status       string // firing | resolved
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time // zero when unknown
	GeneratorURL string
	Fingerprint  string

	// The labels and annotations as stored (labelsJSON), when encoded
	// before the write (encodeAlerts); "" when not.
	labelsText, annotationsText string
}

// labelsStored returns a's labels as stored.
func (a *NotifiedAlert) labelsStored() string {
	if a.labelsText != "" {
		return a.labelsText
	}
	return labelsJSON(a.Labels)
}

// annotationsStored returns a's annotations as stored.
func (a *NotifiedAlert) annotationsStored() string {
	if a.annotationsText != "" {
		return a.annotationsText
	}
	return labelsJSON(a.Annotations)
}

// encodeAlerts returns a copy of as with every alert's labels and
// annotations encoded as they are stored. Ingest encodes them on the
// caller's goroutine before the write: on SQLite every write runs on the
// one writer goroutine, whose time bounds ingestion, and the 10 alerts of
// a delivery's two JSON objects each were about 4% of it.
func encodeAlerts(as []NotifiedAlert) []NotifiedAlert {
	out := make([]NotifiedAlert, len(as))
	for i, a := range as {
		a.labelsText, a.annotationsText = labelsJSON(a.Labels), labelsJSON(a.Annotations)
		out[i] = a
	}
	return out
}

// IngestResult says what a notification did.
type IngestResult struct {
	// Incidents touched by the notification (created, updated or re-opened).
	Incidents []string `json:"incidents"`
	// Created lists the incidents the notification opened.
	Created []string `json:"created,omitempty"`
	// Duplicate is true when the notification changed nothing.
	Duplicate bool `json:"duplicate"`
	// Alert counts by outcome: new, resolved, updated, unchanged, out_of_order, late.
	Alerts map[string]int `json:"alerts"`
}

type alertKey struct {
	fp     string
	starts int64
}

// incoming is an alert of the notification being applied.
type incoming struct {
	NotifiedAlert
	key alertKey
}

type storedAlert struct {
	incidentID  sql.NullString
	status      string
	endsAt      sql.NullInt64
	annotations string
}

// Ingest applies one notification in one transaction. It is idempotent:
// applying the same notification again, concurrently, on another replica,
// or after later notifications of the same group, leaves the same state.
//
// The model: an incident is one episode of an Alertmanager group. Each
// alert episode (fingerprint, startsAt) is stored once per group and only
// moves from firing to resolved. New firing episodes join the group's open
// incident; if the group's last incident is resolved, they re-open it
// (flapping) when they started within the flap window of its end, or open a
// new incident otherwise. Resolves never inferred from an alert missing from
// a notification: reconciliation with Alertmanager handles lost resolves.
func (s *Service) Ingest(ctx context.Context, n Notification) (*IngestResult, error) {
	start := time.Now()
	var (
		res *IngestResult
		p   *pending
		err error
	)
	var dup *IngestResult
	isDup := false
	first := s.groups.unseen(n.GroupKey)
	if !first && !n.Revive {
		dup, isDup = s.duplicateOf(ctx, nil, n)
	}
	if isDup {
		res, p = dup, &pending{}
		if n.Actor == "" {
			s.noteDelivery(n.GroupKey, s.now())
		}
	} else {
		n.Alerts = encodeAlerts(n.Alerts)
		res, p, err = s.ingestWrite(ctx, n, first)
	}
	s.m.ingestDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.deliveries.WithLabelValues("error").Inc()
		return nil, err
	}
	if n.TruncatedAlerts > 0 {
		s.m.truncated.Add(float64(n.TruncatedAlerts))
	}
	if !res.Duplicate {
		opts := s.Options()
		if svcs := mixedServices(opts, n); len(svcs) > 1 {
			s.m.mixedServices.Inc()
			s.logger.Warn("Alertmanager group holds alerts of several services, one incident is named after one of them: add the service label to the route's group_by",
				"group_key", n.GroupKey, "services", strings.Join(svcs, ","), "incidents", strings.Join(res.Incidents, ","))
		}
	}
	for k, v := range res.Alerts {
		s.m.alerts.WithLabelValues(k).Add(float64(v))
	}
	s.m.outOfOrder.Add(float64(res.Alerts["out_of_order"]))
	s.m.late.Add(float64(res.Alerts["late"]))
	if res.Duplicate {
		s.m.deliveries.WithLabelValues("duplicate").Inc()
		s.m.duplicates.Inc()
	} else {
		s.m.deliveries.WithLabelValues("changed").Inc()
	}
	for _, id := range res.Created {
		if inc := p.find(id); inc != nil {
			s.m.incidentsCreated.WithLabelValues(string(inc.Severity)).Inc()
		}
	}
	s.publish(p)
	return res, nil
}

// mergeAlerts indexes a notification's alerts by episode; an episode listed
// twice keeps its resolved form.
func mergeAlerts(n Notification) (map[alertKey]*incoming, []alertKey) {
	byKey := make(map[alertKey]*incoming, len(n.Alerts))
	order := make([]alertKey, 0, len(n.Alerts))
	slab := make([]incoming, len(n.Alerts)) // one allocation for all
	for i, a := range n.Alerts {
		k := alertKey{a.Fingerprint, ms(a.StartsAt)}
		if prev, ok := byKey[k]; ok {
			if a.Status == "resolved" && prev.Status != "resolved" {
				prev.NotifiedAlert = a
			}
			continue
		}
		slab[i] = incoming{NotifiedAlert: a, key: k}
		byKey[k] = &slab[i]
		order = append(order, k)
	}
	return byKey, order
}

// duplicateOf tells, from committed data and without taking a lock, whether
// applying n would change nothing: every episode in it is already stored,
// and either resolved or firing with the same annotations. Alert episodes
// only move from firing to resolved, so a concurrent writer cannot make
// such a notification change anything. This answers the repeated
// notifications of Alertmanager (repeat_interval, HA peers, retries)
// without entering the write path. ok is false when n may change something
// (or the read failed): the caller applies it in a transaction.
//
// It only saves work: when it answers false the transaction applies n and
// finds what it would have found. So Ingest skips it for a group this
// process has not seen (seenGroups), as most deliveries of a storm are.
// On SQLite such a group takes the write path. On PostgreSQL, where
// another replica may have stored it, the transaction's first statement
// inserts the group's row only if it is not stored, without waiting for a
// lock on a stored one, and runs this check (tx) when it is (loadStage):
// the duplicates of another replica's group still wait for no lock, and a
// new group costs no round trip more.
func (s *Service) duplicateOf(ctx context.Context, tx *sql.Tx, n Notification) (*IngestResult, bool) {
	s.episodeReads.Add(1)
	byKey, order := mergeAlerts(n)
	stored, err := s.loadGroupAlerts(ctx, tx, n.GroupKey, byKey)
	if err != nil || len(stored) < len(order) {
		return nil, false
	}
	res := &IngestResult{Incidents: []string{}, Alerts: map[string]int{}, Duplicate: true}
	for _, k := range order {
		a, st := byKey[k], stored[k]
		switch {
		case st.status == stale:
			return nil, false
		case st.status == "resolved" && a.Status == "firing":
			res.Alerts["out_of_order"]++
		case st.status == "resolved":
			res.Alerts["unchanged"]++
		case a.Status == "resolved" || st.annotations != a.annotationsStored():
			return nil, false
		default:
			res.Alerts["unchanged"]++
		}
		if st.incidentID.Valid && !slices.Contains(res.Incidents, st.incidentID.String) {
			res.Incidents = append(res.Incidents, st.incidentID.String)
		}
	}
	return res, true
}

// seenGroups remembers the groups Ingest was given since the process
// started, so that the first delivery of a group skips the duplicate
// check on SQLite: a read outside the writer, whose read transaction
// alone costs about as much as the probe of the group. On SQLite one
// process owns the database; a group stored before the process started
// (or by an import) takes the write path once, which applies the
// delivery correctly, duplicate or not. On PostgreSQL another replica may
// have stored the group, and its duplicates should not wait for its row
// lock: every delivery is checked, the first of a group by a cheaper
// read when the group is not stored (loadGroupAlerts). At most
// maxSeenGroups keys are kept; then the set starts over (each group then
// takes the write path once more on SQLite).
type seenGroups struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

const maxSeenGroups = 16384

// unseen reports whether group is new to this process, and remembers it.
func (g *seenGroups) unseen(group string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.keys[group]; ok {
		return false
	}
	if g.keys == nil || len(g.keys) >= maxSeenGroups {
		g.keys = make(map[string]struct{}, 1024)
	}
	g.keys[group] = struct{}{}
	return true
}

// ingestWrite applies a notification through Write: in its own
// transaction on PostgreSQL (concurrent transactions commit in parallel,
// and each group's row lock orders deliveries of one group), grouped with
// other writes on SQLite (group commit; every answer still waits for the
// durable commit).
//
// A notification of more than maxAlertsPerWrite episodes is applied in
// parts of at most that many, each a write of its own (firing episodes
// first), so that a large group neither holds the write lock for long (a
// one-alert delivery of another group goes in between its parts) nor
// outgrows the writer's time limit on a slow machine. Each part is what a
// notification of the group holding those episodes would apply, and
// applying a notification is idempotent (episodes only move from firing to
// resolved, resolves are never inferred from a missing alert), so a
// failure half-way is answered as an error and the redelivery applies what
// is left.
//
// firstSight is a group this process has not seen (seenGroups): on
// PostgreSQL its first part's transaction checks for a duplicate itself
// (loadStage) and rolls back when it is one.
func (s *Service) ingestWrite(ctx context.Context, n Notification, firstSight bool) (*IngestResult, *pending, error) {
	opts := s.Options()
	parts := splitNotification(n, maxAlertsPerWrite)
	total := &IngestResult{Incidents: []string{}, Alerts: map[string]int{}, Duplicate: true}
	all := &pending{}
	for i, part := range parts {
		var res *IngestResult
		var p *pending
		err := s.writeAgain(ctx, func(ctx context.Context, tx *sql.Tx) error {
			p = &pending{}
			var err error
			res, err = s.ingestTx(ctx, tx, opts, part, p, firstSight && i == 0)
			return err
		})
		var dup *duplicateDelivery
		if errors.As(err, &dup) {
			res, p, err = dup.res, &pending{}, nil
			if part.Actor == "" {
				s.noteDelivery(part.GroupKey, s.now())
			}
		}
		if err != nil {
			if len(parts) > 1 {
				// What the parts before stored is published: it is committed.
				s.publish(all)
			}
			// Named here, not where the statement was run: on PostgreSQL
			// a delivery's last write fails with its COMMIT
			// (store.AtCommit).
			return nil, nil, fmt.Errorf("store delivery of group %s: %w", part.GroupKey, err)
		}
		if len(parts) == 1 {
			return res, p, nil
		}
		total.merge(res)
		all.events = append(all.events, p.events...)
		all.kinds = append(all.kinds, p.kinds...)
		all.changed = append(all.changed, p.changed...)
	}
	return total, all, nil
}

// writeAgain is Write, run again (up to maxWriteAttempts in all) when the
// transaction was rolled back for a reason running it again can cure: on
// PostgreSQL, a deadlock PostgreSQL broke (two deliveries holding an
// incident's share lock that both need to write its row) or the incident
// a delivery joins changing status before it was locked
// (errIncidentMoved). fn starts from nothing each time.
func (s *Service) writeAgain(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.write(ctx, fn, true)
		if err == nil || attempt == maxWriteAttempts || ctx.Err() != nil ||
			!(errors.Is(err, errIncidentMoved) || store.Retryable(err)) {
			return err
		}
		s.logger.Debug("Delivery rolled back, applying it again", "attempt", attempt, "err", err)
		if errors.Is(err, errIncidentMoved) {
			// Once round with the incident's row to itself (attach).
			ctx = context.WithValue(ctx, lockForWriteKey{}, true)
		}
	}
}

// lockForWriteKey marks a delivery run again because the incident it
// joined under a share lock had to be written: attach locks it to write.
type lockForWriteKey struct{}

const maxWriteAttempts = 5

// maxAlertsPerWrite bounds the episodes one write applies (see ingestWrite).
var maxAlertsPerWrite = 1000

// splitNotification returns n in parts of at most max distinct episodes,
// firing ones first; n itself when it is small enough.
func splitNotification(n Notification, max int) []Notification {
	if len(n.Alerts) <= max {
		return []Notification{n} // no more distinct episodes than alerts
	}
	byKey, order := mergeAlerts(n)
	if len(order) <= max {
		return []Notification{n}
	}
	alerts := make([]NotifiedAlert, 0, len(order))
	for _, k := range order {
		if byKey[k].Status != "resolved" {
			alerts = append(alerts, byKey[k].NotifiedAlert)
		}
	}
	for _, k := range order {
		if byKey[k].Status == "resolved" {
			alerts = append(alerts, byKey[k].NotifiedAlert)
		}
	}
	var parts []Notification
	for len(alerts) > 0 {
		k := min(max, len(alerts))
		part := n
		part.Alerts = alerts[:k:k]
		parts = append(parts, part)
		alerts = alerts[k:]
	}
	return parts
}

// merge adds the result of one part of a notification to r.
func (r *IngestResult) merge(o *IngestResult) {
	for _, id := range o.Incidents {
		if !slices.Contains(r.Incidents, id) {
			r.Incidents = append(r.Incidents, id)
		}
	}
	for _, id := range o.Created {
		if !slices.Contains(r.Created, id) {
			r.Created = append(r.Created, id)
		}
	}
	for k, v := range o.Alerts {
		r.Alerts[k] += v
	}
	r.Duplicate = r.Duplicate && o.Duplicate
}

// settle recomputes an incident's derived fields from its alerts, resolves
// it when all alerts resolved (auto_resolve), saves it and runs the hooks.
func (s *Service) settle(ctx context.Context, tx *sql.Tx, opts Options, r *record, now time.Time, p *pending, created bool, actor string) error {
	if created {
		// Written whole by insertIncident: it has firing alerts (it was
		// opened for them) and DetectedAt is already their earliest start.
		return s.change(ctx, tx, p, Change{Kind: ChangeCreated, Incident: &r.Incident, Prev: "", Actor: actor, Time: now,
			Groups: r.groups}, nil)
	}
	var firing int
	var total int
	var minStart, maxEnd int64
	err := s.queryRow(ctx, tx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'firing' THEN 1 ELSE 0 END), 0),
		COALESCE(MIN(starts_at), 0), COALESCE(MAX(ends_at), 0) FROM incident_alerts WHERE incident_id = $1`, r.ID).
		Scan(&total, &firing, &minStart, &maxEnd)
	if err != nil {
		return fmt.Errorf("settle incident %s: %w", r.ID, err)
	}
	if total > 0 && fromMS(minStart).Before(r.DetectedAt) {
		r.DetectedAt = fromMS(minStart)
	}
	return s.settled(ctx, tx, opts, r, now, p, actor, firing > 0, func() int64 {
		if total > 0 && firing == 0 {
			return maxEnd
		}
		return -1
	}())
}

// settled finishes settle once the alerts' aggregates are known: firing
// says whether any alert fires; recovered is the latest end when every
// alert resolved (-1 otherwise).
func (s *Service) settled(ctx context.Context, tx *sql.Tx, opts Options, r *record, now time.Time, p *pending, actor string, firingAny bool, recovered int64) error {
	firing, total := 0, 1
	if firingAny {
		firing = 1
	} else if recovered < 0 {
		total = 0
	}
	maxEnd := recovered
	if total > 0 && firing == 0 {
		t := fromMS(maxEnd)
		r.RecoveredAt = &t
	} else {
		r.RecoveredAt = nil
	}
	r.UpdatedAt = now
	prev := r.Status
	if r.recheckSeverity && firing > 0 && r.Status.Open() {
		if w := r.deferred; w != nil {
			// highestFiring reads the alerts the statement writes.
			r.deferred = nil
			if err := w.exec(ctx, s, tx); err != nil {
				return fmt.Errorf("store delivery: %w", err)
			}
		}
		if err := s.highestFiring(ctx, tx, opts, r); err != nil {
			return err
		}
	}
	// An incident opened by hand is resolved by a person, not by the
	// alerts of the groups that joined it: it stays open, recovered.
	resolve := opts.AutoResolve && total > 0 && firing == 0 && r.Status.Open() && !strings.HasPrefix(r.GroupKey, ManualGroupPrefix)
	if resolve {
		r.Status = StatusResolved
		r.ResolvedAt = &now
		r.SnoozedUntil = nil
		// The link of an incident opened by hand merged into it fires
		// while it is open (its groups' links stopped with their alerts);
		// a re-opening marks it firing again (restoreLinksFiring).
		if _, err := s.exec(ctx, tx, clearManualLinksFiringSQL, r.ID); err != nil {
			return fmt.Errorf("links of %s: %w", r.ID, err)
		}
	}
	// The title changes in the UPDATE save runs anyway: no statement of
	// its own.
	oldTitle := s.retitle(opts, r, resolve)
	if err := s.save(ctx, tx, r); err != nil {
		return err
	}
	if err := s.change(ctx, tx, p, Change{Kind: ChangeUpdated, Incident: &r.Incident, Prev: prev, Actor: actor, Time: now,
		Groups: r.groups}, nil); err != nil {
		return err
	}
	if r.sevBefore != "" && r.Severity != r.sevBefore && r.Status.Open() && !resolve {
		kind, verb := ChangeSeverityRaised, "raised"
		if r.Severity.Rank() > r.sevBefore.Rank() {
			kind, verb = ChangeSeverityLowered, "lowered"
		}
		msg := fmt.Sprintf("severity %s: %s -> %s (the highest severity of its firing alerts)", verb, r.sevBefore, r.Severity)
		entry := &TimelineEntry{IncidentID: r.ID, Time: now, Kind: "severity", Actor: actor, Message: msg,
			Data: map[string]any{"from": string(r.sevBefore), "to": string(r.Severity)}}
		if kind == ChangeSeverityRaised && r.raisedBy != nil && r.raisedBy.alert.Labels["alertname"] != "" {
			// The alert rule that raised it: the noise report counts
			// the incident's page for it (pkg/noise).
			entry.Data["alertname"] = r.raisedBy.alert.Labels["alertname"]
			if slo := r.raisedBy.alert.Labels["slo"]; slo != "" {
				entry.Data["slo"] = slo
			}
		}
		if oldTitle != "" {
			// Both entries in one statement.
			if err := s.insertTimeline(ctx, tx, []TimelineEntry{*entry, {IncidentID: r.ID, Time: now, Kind: "title", Actor: actor,
				Message: fmt.Sprintf("title changed: %q -> %q (the alert that raised it to %s: %s)",
					oldTitle, r.Title, r.Severity, describe(r.raisedBy.alert.Labels)),
				Data: map[string]any{"from": oldTitle, "to": r.Title}}}); err != nil {
				return err
			}
			entry = nil
		}
		if err := s.change(ctx, tx, p, Change{Kind: kind, Incident: &r.Incident, Prev: prev, Actor: actor, Time: now, Groups: r.groups},
			entry); err != nil {
			return err
		}
	}
	r.raisedBy = nil
	if resolve {
		if err := s.change(ctx, tx, p, Change{Kind: ChangeResolved, Incident: &r.Incident, Prev: prev, Actor: actor, Time: now},
			&TimelineEntry{IncidentID: r.ID, Time: now, Kind: "status", Actor: actor,
				Message: "resolved automatically: all alerts resolved",
				Data:    map[string]any{"from": string(prev), "to": string(StatusResolved)}}); err != nil {
			return err
		}
	}
	return nil
}

// retitle renders r's title again from the alert that raised its severity
// in this delivery (title_template, with that alert's labels and
// annotations as the common ones) when the raise sets a new peak: the
// incident is named after the highest severity it reached, not after the
// first alert that opened it (a ticket, before the page joined). A title
// a person gave (an incident opened by hand) is kept, and so is the title
// when the severity falls or rises again to a peak it had. It returns the
// title replaced, or "" when the title stays.
func (s *Service) retitle(opts Options, r *record, resolving bool) string {
	src := r.raisedBy
	if src == nil || resolving || !r.Status.Open() || strings.HasPrefix(r.GroupKey, ManualGroupPrefix) {
		return ""
	}
	if r.Severity.Rank() >= higher(r.PeakSeverity, r.sevBefore).Rank() ||
		mapSeverity(opts, src.alert.Labels[opts.SeverityLabel]) != r.Severity {
		return ""
	}
	a := src.alert
	var names []string
	if v := a.Labels["alertname"]; v != "" {
		names = []string{v}
	}
	burnRate, burnTier := fastestBurn([]NotifiedAlert{a})
	title, err := renderTitleCached(opts.TitleTemplate, TitleData{
		Service: r.Service, Severity: r.Severity, Receiver: src.receiver,
		GroupLabels: nonNil(src.groupLabels), CommonLabels: nonNil(a.Labels), CommonAnnotations: nonNil(a.Annotations),
		Alertnames: names, BurnRate: burnRate, BurnTier: burnTier,
	})
	if err != nil || title == "" || title == r.Title {
		if err != nil {
			s.logger.Warn("Render incident title", "incident", r.ID, "err", err)
		}
		return ""
	}
	old := r.Title
	r.Title = title
	return old
}

// titleSource is the alert retitle renders a title from, with its
// delivery's receiver and group labels.
type titleSource struct {
	alert       NotifiedAlert
	receiver    string
	groupLabels map[string]string
}

// highestFiringSQL reads the labels of an incident's firing alerts (0) and
// of the links of incidents opened by hand on it (1): its own, or one
// merged into it, whose labels hold the severity a person gave.
const highestFiringSQL = `SELECT labels, 0 FROM incident_alerts WHERE incident_id = $1 AND status = 'firing'
	UNION ALL SELECT labels, 1 FROM incident_links WHERE incident_id = $1 AND group_key LIKE 'manual:%'`

// highestFiring sets r's severity to the highest severity among its firing
// alerts (the severity label, mapped as at creation), and for an incident
// opened by hand, or one an incident opened by hand was merged into, never
// below the severity the person gave it.
func (s *Service) highestFiring(ctx context.Context, tx *sql.Tx, opts Options, r *record) error {
	rows, err := s.query(ctx, tx, highestFiringSQL, r.ID)
	if err != nil {
		return fmt.Errorf("severity of %s: %w", r.ID, err)
	}
	defer rows.Close()
	best, declared := Severity(""), declaredSeverity(opts, r)
	for rows.Next() {
		var raw string
		var manual int
		if err := rows.Scan(&raw, &manual); err != nil {
			return fmt.Errorf("severity of %s: %w", r.ID, err)
		}
		var ls map[string]string
		_ = json.Unmarshal([]byte(raw), &ls)
		if manual != 0 {
			if sv, err := ParseSeverity(ls[opts.SeverityLabel]); err == nil {
				declared = higher(declared, sv)
			}
			continue
		}
		if sv := mapSeverity(opts, ls[opts.SeverityLabel]); best == "" || sv.Rank() < best.Rank() {
			best = sv
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("severity of %s: %w", r.ID, err)
	}
	if best != "" {
		r.Severity = higher(best, declared)
	}
	return nil
}

func (s *Service) create(ctx context.Context, tx *sql.Tx, opts Options, n Notification, firing []*incoming, now time.Time) (*record, error) {
	id, err := s.nextID(ctx, tx, opts.IDPrefix, now)
	if err != nil {
		return nil, err
	}
	labels := nonNil(n.CommonLabels)
	svc := serviceOf(opts, n, firing[0].Labels)
	sev := opts.DefaultSeverity
	if v, ok := n.CommonLabels[opts.SeverityLabel]; ok {
		sev = mapSeverity(opts, v)
	} else {
		best := Severity("")
		for _, a := range firing {
			sv := mapSeverity(opts, a.Labels[opts.SeverityLabel])
			if best == "" || sv.Rank() < best.Rank() {
				best = sv
			}
		}
		sev = best
	}
	names := map[string]bool{}
	for _, a := range n.Alerts {
		if v := a.Labels["alertname"]; v != "" {
			names[v] = true
		}
	}
	alertnames := slices.Sorted(maps.Keys(names))
	burnRate, burnTier := fastestBurn(n.Alerts)
	title, err := renderTitleCached(opts.TitleTemplate, TitleData{
		Service: svc, Severity: sev, Receiver: n.Receiver,
		GroupLabels: nonNil(n.GroupLabels), CommonLabels: labels, CommonAnnotations: nonNil(n.CommonAnnotations),
		Alertnames: alertnames, BurnRate: burnRate, BurnTier: burnTier,
	})
	if err != nil || title == "" {
		s.logger.Warn("Render incident title", "err", err)
		title = strings.Join(alertnames, ", ") + " on " + svc
	}
	rec := &record{Incident: Incident{
		ID: id, Title: title, Service: svc, Severity: sev, Status: StatusTriggered, Labels: labels,
		GroupKey: n.GroupKey, Receiver: n.Receiver, DetectedAt: earliest(firing), CreatedAt: now, UpdatedAt: now,
		RootService: svc,
	}}
	return rec, nil
}

// insertIncident writes a new incident with every column (its final state
// for the delivery that creates it).
func (s *Service) insertIncident(ctx context.Context, tx *sql.Tx, r *record) error {
	_, err := s.exec(ctx, tx, insertIncidentSQL+`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		incidentRow(&r.Incident)...)
	if err != nil {
		return fmt.Errorf("create incident %s: %w", r.ID, err)
	}
	return nil
}

const insertIncidentSQL = `INSERT INTO incidents (id, title, service, severity, status, labels, group_key,
		receiver, runbook_urls, detected_at, created_at, recovered_at, updated_at, root_service, peak_severity) VALUES `

// incidentRow is the row insertIncidentSQL writes for inc.
func incidentRow(inc *Incident) []any {
	inc.PeakSeverity = higher(inc.PeakSeverity, inc.Severity)
	urls := inc.RunbookURLs
	if urls == nil {
		urls = []string{}
	}
	return []any{inc.ID, inc.Title, inc.Service, string(inc.Severity), string(inc.Status), labelsJSON(inc.Labels),
		inc.GroupKey, inc.Receiver, mustJSON(urls), ms(inc.DetectedAt), ms(inc.CreatedAt), nullMS(inc.RecoveredAt),
		ms(inc.UpdatedAt), inc.RootService, string(inc.PeakSeverity)}
}

type newAlert struct {
	incidentID string // "" for a resolve with no incident
	NotifiedAlert
}

// insertAlerts stores new alert episodes with multi-row INSERTs.
func (s *Service) insertAlerts(ctx context.Context, tx *sql.Tx, groupKey string, as []newAlert, now time.Time) error {
	for len(as) > 0 {
		chunk := as[:min(len(as), 500)]
		as = as[len(chunk):]
		args := appendAlertRows(make([]any, 0, len(chunk)*alertCols), groupKey, chunk, now)
		if _, err := s.exec(ctx, tx, s.insertText(insertAlertsSQL, len(chunk), alertCols), args...); err != nil {
			return fmt.Errorf("store alerts: %w", err)
		}
	}
	return nil
}

// insertText returns head followed by rows rows of cols parameters each,
// numbered from 1 (placeholders): the text of a multi-row INSERT, built
// once per head and number of rows up to maxInsertTextRows and reused
// (every 10-alert delivery would otherwise build the same text again).
func (s *Service) insertText(head string, rows, cols int) string {
	build := func() string {
		var sb strings.Builder
		sb.Grow(len(head) + rows*cols*6)
		sb.WriteString(head)
		for i := range rows {
			if i > 0 {
				sb.WriteString(", ")
			}
			s.placeholders(&sb, i*cols, cols)
		}
		return sb.String()
	}
	if rows > maxInsertTextRows {
		return build()
	}
	k := insertTextKey{head, rows, cols}
	if v, ok := s.insertTexts.Load(k); ok {
		return v.(string)
	}
	q := build()
	s.insertTexts.Store(k, q)
	return q
}

// maxInsertTextRows bounds the row counts whose INSERT texts insertText
// keeps.
const maxInsertTextRows = 64

type insertTextKey struct {
	head       string
	rows, cols int
}

const insertAlertsSQL = `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status,
			ends_at, labels, annotations, generator_url, first_seen_at, updated_at) VALUES `

// alertCols is the number of columns of a row of insertAlertsSQL.
const alertCols = 11

// appendAlertRows appends the rows insertAlertsSQL writes for as (alertCols
// values each) to args. A value the rows share (the group, the time, the
// incident, a status) is put into an interface once, not once a row: each
// such conversion of a string or an int64 is an allocation.
func appendAlertRows(args []any, groupKey string, as []newAlert, now time.Time) []any {
	// Plain values (nil for NULL), not sql.Null*: database/sql converts
	// them without calling a driver.Valuer.
	gk, at := any(groupKey), any(ms(now))
	var inc, starts, url any
	var lastInc, lastURL string
	var lastStarts int64
	for i := range as {
		a := &as[i]
		if a.incidentID == "" {
			inc = nil
		} else if i == 0 || inc == nil || a.incidentID != lastInc {
			inc, lastInc = a.incidentID, a.incidentID
		}
		if v := ms(a.StartsAt); i == 0 || v != lastStarts {
			starts, lastStarts = v, v
		}
		if i == 0 || a.GeneratorURL != lastURL {
			url, lastURL = a.GeneratorURL, a.GeneratorURL
		}
		var status, ends any
		switch a.Status {
		case "firing":
			status = "firing"
		case "resolved":
			status = "resolved"
			if a.EndsAt.IsZero() {
				ends = at
			} else {
				ends = ms(a.EndsAt)
			}
		default:
			status = a.Status
		}
		args = append(args, gk, a.Fingerprint, starts, inc, status, ends,
			a.labelsStored(), a.annotationsStored(), url, at, at)
	}
	return args
}

// insertTimeline appends entries with multi-row INSERTs, in order.
func (s *Service) insertTimeline(ctx context.Context, tx *sql.Tx, es []TimelineEntry) error {
	const cols = 6
	for len(es) > 0 {
		chunk := es[:min(len(es), 500)]
		es = es[len(chunk):]
		args := make([]any, 0, len(chunk)*cols)
		for _, e := range chunk {
			args = appendTimelineRow(args, e)
		}
		if _, err := s.exec(ctx, tx, s.insertText(insertTimelineSQL, len(chunk), cols), args...); err != nil {
			return fmt.Errorf("add timeline: %w", err)
		}
	}
	return nil
}

const insertTimelineSQL = `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data) VALUES `

// timelineRow is the row insertTimelineSQL writes for e (6 columns).
func timelineRow(e TimelineEntry) []any {
	return appendTimelineRow(make([]any, 0, 6), e)
}

// appendTimelineRow appends timelineRow's values to args.
func appendTimelineRow(args []any, e TimelineEntry) []any {
	data := "{}"
	if e.rawData != "" {
		data = e.rawData
	} else if len(e.Data) > 0 {
		data = mustJSON(e.Data)
	}
	return append(args, e.IncidentID, ms(e.Time), e.Kind, e.Actor, e.Message, data)
}

// placeholders writes "($n+1, ..., $n+k)", or "(?, ..., ?)" on SQLite:
// binding looks up every parameter's name there, by a linear scan of the
// statement's names, which makes a multi-row INSERT with hundreds of $N
// parameters quadratic; anonymous ? parameters have no name to look up.
func (s *Service) placeholders(sb *strings.Builder, n, k int) {
	sb.WriteByte('(')
	for j := 1; j <= k; j++ {
		if j > 1 {
			sb.WriteString(", ")
		}
		if s.db.Dialect == store.SQLite {
			sb.WriteByte('?')
			continue
		}
		var num [20]byte
		sb.WriteByte('$')
		sb.Write(strconv.AppendInt(num[:0], int64(n+j), 10))
	}
	sb.WriteByte(')')
}

// duplicateDelivery is what a PostgreSQL transaction returns when the
// delivery it applies turned out to change nothing (loadStage): it rolls
// back, and ingestWrite answers res.
type duplicateDelivery struct{ res *IngestResult }

func (d *duplicateDelivery) Error() string { return "duplicate delivery" }

// loadGroupAlerts reads the stored episodes of groupKey among keys.
func (s *Service) loadGroupAlerts(ctx context.Context, tx *sql.Tx, groupKey string, keys map[alertKey]*incoming) (map[alertKey]storedAlert, error) {
	out := map[alertKey]storedAlert{}
	fps := map[string]bool{}
	for k := range keys {
		fps[k.fp] = true
	}
	list := slices.Sorted(maps.Keys(fps))
	for len(list) > 0 {
		var rows *sql.Rows
		var err error
		if s.db.Dialect == store.SQLite {
			chunk := list[:min(len(list), 500)]
			list = list[len(chunk):]
			args := []any{groupKey}
			ph := make([]string, len(chunk))
			for i, fp := range chunk {
				args = append(args, fp)
				ph[i] = fmt.Sprintf("$%d", i+2)
			}
			rows, err = s.query(ctx, tx, `SELECT fingerprint, starts_at, incident_id, status, ends_at, annotations
				FROM incident_alerts WHERE group_key = $1 AND fingerprint IN (`+strings.Join(ph, ", ")+`)`, args...)
		} else {
			// One statement for the whole group: an array parameter.
			rows, err = s.query(ctx, tx, groupAlertsQuery, groupKey, list)
			list = nil
		}
		if err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
		for rows.Next() {
			var k alertKey
			var st storedAlert
			if err := rows.Scan(&k.fp, &k.starts, &st.incidentID, &st.status, &st.endsAt, &st.annotations); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load alerts: %w", err)
			}
			if _, ok := keys[k]; ok {
				out[k] = st
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
	}
	return out, nil
}

// groupAlertsQuery reads a group's episodes of some fingerprints
// (PostgreSQL).
const groupAlertsQuery = `SELECT fingerprint, starts_at, incident_id, status, ends_at, annotations
	FROM incident_alerts WHERE group_key = $1 AND fingerprint = ANY($2::text[])`

func withinFlap(r *record, start time.Time, window time.Duration) bool {
	ref := r.ResolvedAt
	if r.RecoveredAt != nil {
		ref = r.RecoveredAt
	}
	if ref == nil {
		return false
	}
	return start.Sub(*ref) <= window
}

func earliest(as []*incoming) time.Time {
	var t time.Time
	for i, a := range as {
		if i == 0 || a.StartsAt.Before(t) {
			t = a.StartsAt
		}
	}
	return t.UTC()
}

// mergeAlertInfo raises the incident's severity and collects runbook URLs
// from a new alert.
func mergeAlertInfo(inc *Incident, a NotifiedAlert, opts Options) {
	if v, ok := a.Labels[opts.SeverityLabel]; ok {
		if sv := mapSeverity(opts, v); sv.Rank() < inc.Severity.Rank() {
			inc.Severity = sv
		}
	}
	if u := a.Annotations["runbook_url"]; u != "" && !slices.Contains(inc.RunbookURLs, u) {
		inc.RunbookURLs = append(inc.RunbookURLs, u)
		sort.Strings(inc.RunbookURLs)
	}
	if a.StartsAt.Before(inc.DetectedAt) {
		inc.DetectedAt = a.StartsAt.UTC()
	}
}

func mapSeverity(opts Options, v string) Severity {
	if sv, ok := opts.SeverityMap[strings.ToLower(strings.TrimSpace(v))]; ok {
		return sv
	}
	if sv, err := ParseSeverity(v); err == nil {
		return sv
	}
	return opts.DefaultSeverity
}

// mixedServices returns the distinct services named by a notification's
// alerts (sorted) when the group itself names none, that is when no service
// label is among its common or group labels: then alerts of several services
// share one incident, named after the first alert's.
func mixedServices(opts Options, n Notification) []string {
	for _, src := range []map[string]string{n.CommonLabels, n.GroupLabels} {
		for _, l := range opts.ServiceLabels {
			if src[l] != "" {
				return nil
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range n.Alerts {
		for _, l := range opts.ServiceLabels {
			if v := a.Labels[l]; v != "" {
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func serviceOf(opts Options, n Notification, first map[string]string) string {
	for _, src := range []map[string]string{n.CommonLabels, n.GroupLabels, first} {
		for _, l := range opts.ServiceLabels {
			if v := src[l]; v != "" {
				return v
			}
		}
	}
	return "unknown"
}

// describe renders an alert's labels compactly, as Prometheus 3 prints a
// series: alertname{k="v", ...}, values quoted as Prometheus quotes them
// (strconv.Quote: a newline is \n, a quote \", & and < stay as written).
// An alert name or a label name that is not a legacy Prometheus name
// (Prometheus 3 allows any UTF-8) is quoted too, the name inside the
// braces: {"Disk full\nnow", "my label"="v"}, so that a newline or a
// brace in it cannot end or fake the entry's line.
func describe(labels map[string]string) string {
	name := labels["alertname"]
	// The keys of most alerts' labels fit the array on the stack; the
	// text is sized beforehand (plain values quote to 2 bytes more) and
	// quoted in place: one allocation, the text's.
	var kb [16]string
	keys := kb[:0]
	size := len(name) + 4
	for k, v := range labels {
		if k != "alertname" {
			keys = append(keys, k)
			size += len(k) + len(v) + 5
		}
	}
	slices.Sort(keys)
	var sb strings.Builder
	sb.Grow(size)
	var q [64]byte // a quoted text, when it fits
	quotedName := name != "" && !legacyName(name)
	if !quotedName {
		sb.WriteString(name)
	}
	sb.WriteByte('{')
	if quotedName {
		sb.Write(strconv.AppendQuote(q[:0], name))
	}
	for i, k := range keys {
		if i > 0 || quotedName {
			sb.WriteString(", ")
		}
		if legacyName(k) {
			sb.WriteString(k)
		} else {
			sb.Write(strconv.AppendQuote(q[:0], k))
		}
		sb.WriteByte('=')
		sb.Write(strconv.AppendQuote(q[:0], labels[k]))
	}
	sb.WriteByte('}')
	return sb.String()
}

// legacyName reports whether s is a metric name of the legacy character
// set, [a-zA-Z_:][a-zA-Z0-9_:]*, which Prometheus prints unquoted.
func legacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// alertsEntry is one timeline entry for the alerts of a notification that
// fired (or resolved): "alert fired: X{...}" or "3 alerts fired: ...", with
// every alert's fingerprint and times in its data ("alerts"), held encoded
// in rawData only: Data stays nil, as the entry is only ever stored.
func alertsEntry(incidentID, actor, kind, verb string, as []NotifiedAlert, now time.Time) TimelineEntry {
	const shown = 3
	names := make([]string, 0, min(len(as), shown))
	// raw is the data encoded as encoding/json would encode the map
	// alertsData returns (keys sorted), built here rather than by
	// reflection at insert time; these entries are only ever stored, so
	// the map itself is not built (ten maps per 10-alert delivery).
	var raw strings.Builder
	size := len(`{"alerts":[]}`)
	for i := range as {
		size += len(`{"fingerprint":"","starts_at":""},`) + len(as[i].Fingerprint) + len(time.RFC3339Nano) + 4
	}
	raw.Grow(size)
	raw.WriteString(`{"alerts":[`)
	// A time as RFC 3339 needs no escaping in JSON: it is written
	// quoted, formatted in place, not as a string of its own.
	var tb [64]byte
	for i, a := range as {
		if i < shown {
			names = append(names, describe(a.Labels))
		}
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.WriteByte('{')
		if !a.EndsAt.IsZero() && a.Status == "resolved" {
			raw.WriteString(`"ends_at":"`)
			raw.Write(a.EndsAt.UTC().AppendFormat(tb[:0], time.RFC3339Nano))
			raw.WriteString(`",`)
		}
		raw.WriteString(`"fingerprint":`)
		jsonString(&raw, a.Fingerprint)
		raw.WriteString(`,"starts_at":"`)
		raw.Write(a.StartsAt.UTC().AppendFormat(tb[:0], time.RFC3339Nano))
		raw.WriteString(`"}`)
	}
	raw.WriteString(`]}`)
	msg := "alert " + verb + ": " + names[0]
	if len(as) > 1 {
		// "%d alerts %s: %s[ and %d more]", in one allocation.
		var m strings.Builder
		size := len(verb) + 32
		for _, n := range names {
			size += len(n) + 2
		}
		m.Grow(size)
		var num [20]byte
		m.Write(strconv.AppendInt(num[:0], int64(len(as)), 10))
		m.WriteString(" alerts ")
		m.WriteString(verb)
		m.WriteString(": ")
		for i, n := range names {
			if i > 0 {
				m.WriteString(", ")
			}
			m.WriteString(n)
		}
		if len(as) > shown {
			m.WriteString(" and ")
			m.Write(strconv.AppendInt(num[:0], int64(len(as)-shown), 10))
			m.WriteString(" more")
		}
		msg = m.String()
	}
	return TimelineEntry{IncidentID: incidentID, Time: now, Kind: kind, Actor: actor, Message: msg,
		rawData: raw.String()}
}

// resolveAlerts marks known firing episodes resolved, in time linear in
// their number: on PostgreSQL in one UPDATE joined with unnest() of three
// arrays (one round trip), on SQLite with one prepared UPDATE per episode,
// each a primary-key lookup (statements are cheap in-process; a joined
// UPDATE ... FROM (VALUES ...) makes SQLite scan the values for every row of
// the group, and hundreds of $N parameters are bound by name in linear time
// each).
//
// An episode resolved is resolved in every group's copy on the same
// incident: when Alertmanager's group_by changes while an alert fires, the
// alert arrives again in a new group that joins the incident, and
// Alertmanager then sends its resolve in the new group only. Each resolved
// episode's copies still firing on its incident are found by an index
// probe (incident_alerts_incident: incident, fingerprint), which finds
// nothing but the group's own copy unless another group delivered the
// episode; on PostgreSQL it is part of the same statement. The other
// groups' copies resolved are returned.
//
// The episodes of as that it resolved are returned too: the group's copy
// of an episode read firing before the delivery locked its incident may
// have been resolved since by another group's delivery (its resolve of the
// copies), committed while this one waited for that lock. Such a copy is
// left as that delivery wrote it, and the episode is not resolved twice
// (nor told twice in the timeline), as it would not be had the two
// deliveries come one after the other.
func (s *Service) resolveAlerts(ctx context.Context, tx *sql.Tx, groupKey string, as []*incoming, stored map[alertKey]storedAlert, now time.Time) ([]*incoming, []copyOnIncident, error) {
	if len(as) == 0 {
		return nil, nil, nil
	}
	endsOf := func(a *incoming) int64 {
		if a.EndsAt.IsZero() {
			return ms(now)
		}
		return ms(a.EndsAt)
	}
	var others []copyOnIncident
	if s.db.Dialect != store.SQLite {
		return s.resolveAlertsPostgres(ctx, tx, groupKey, as, now, endsOf)
	}
	st, err := tx.PrepareContext(ctx, `UPDATE incident_alerts SET status = 'resolved', ends_at = ?, updated_at = ?
		WHERE group_key = ? AND fingerprint = ? AND starts_at = ? AND status <> 'resolved'`)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve alerts: %w", err)
	}
	defer st.Close()
	resolved := make([]*incoming, 0, len(as))
	var copies *sql.Stmt
	for _, a := range as {
		res, err := st.ExecContext(ctx, endsOf(a), ms(now), groupKey, a.key.fp, a.key.starts)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		} else if n == 0 {
			continue
		}
		resolved = append(resolved, a)
		inc := stored[a.key].incidentID
		if !inc.Valid {
			continue
		}
		if copies == nil {
			if copies, err = tx.PrepareContext(ctx, resolveCopiesSQLite); err != nil {
				return nil, nil, fmt.Errorf("resolve alerts: %w", err)
			}
			defer copies.Close()
		}
		rows, err := copies.QueryContext(ctx, endsOf(a), ms(now), inc.String, a.key.fp, a.key.starts, groupKey)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		}
		for rows.Next() {
			c := copyOnIncident{incidentID: inc.String}
			if err := rows.Scan(&c.groupKey); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("resolve alerts: %w", err)
			}
			others = append(others, c)
		}
		if err := rows.Close(); err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		}
	}
	return resolved, others, nil
}

// resolveAlertsPostgres is resolveAlerts on PostgreSQL: one statement
// (resolveCopiesSQL), whose rows are either an episode of the group it
// resolved (fingerprint and start) or another group's copy it resolved
// (incident and group).
func (s *Service) resolveAlertsPostgres(ctx context.Context, tx *sql.Tx, groupKey string, as []*incoming, now time.Time, endsOf func(*incoming) int64) ([]*incoming, []copyOnIncident, error) {
	fps := make([]string, len(as))
	starts := make([]int64, len(as))
	ends := make([]int64, len(as))
	for i, a := range as {
		fps[i], starts[i], ends[i] = a.key.fp, a.key.starts, endsOf(a)
	}
	rows, err := tx.QueryContext(ctx, resolveCopiesSQL, groupKey, ms(now), fps, starts, ends)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve alerts: %w", err)
	}
	defer rows.Close()
	var others []copyOnIncident
	own := make(map[alertKey]bool, len(as))
	for rows.Next() {
		var incidentID, group, fp sql.NullString
		var start sql.NullInt64
		if err := rows.Scan(&incidentID, &group, &fp, &start); err != nil {
			return nil, nil, fmt.Errorf("resolve alerts: %w", err)
		}
		if fp.Valid {
			own[alertKey{fp.String, start.Int64}] = true
		} else {
			others = append(others, copyOnIncident{incidentID.String, group.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("resolve alerts: %w", err)
	}
	if len(own) == len(as) {
		return as, others, nil
	}
	resolved := make([]*incoming, 0, len(own))
	for _, a := range as {
		if own[a.key] {
			resolved = append(resolved, a)
		}
	}
	return resolved, others, nil
}

// copyOnIncident names another group's copy of an episode on an incident.
type copyOnIncident struct{ incidentID, groupKey string }

// resolveCopiesSQLite resolves the copies other groups (not the 6th
// parameter) still have firing of an episode on an incident (SQLite; see
// resolveAlerts), and returns their groups.
const resolveCopiesSQLite = `UPDATE incident_alerts SET status = 'resolved', ends_at = ?, updated_at = ?
	WHERE incident_id = ? AND fingerprint = ? AND starts_at = ? AND status = 'firing' AND group_key <> ?
	RETURNING group_key`

// resolveCopiesSQL resolves a group's ($1) episodes not resolved yet
// (arrays $3, $4, $5 of fingerprints, starts and ends) and the copies other
// groups still have firing of them on the same incident. It returns the
// copies (incident and group) and the episodes (fingerprint and start) it
// resolved (PostgreSQL; see resolveAlerts).
const resolveCopiesSQL = `WITH own AS (
	UPDATE incident_alerts SET status = 'resolved', ends_at = v.ends, updated_at = $2
	FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS v(fp, starts, ends)
	WHERE incident_alerts.group_key = $1 AND incident_alerts.fingerprint = v.fp AND incident_alerts.starts_at = v.starts
		AND incident_alerts.status <> 'resolved'
	RETURNING incident_alerts.incident_id, incident_alerts.fingerprint, incident_alerts.starts_at, incident_alerts.ends_at),
copies AS (
	UPDATE incident_alerts SET status = 'resolved', ends_at = own.ends_at, updated_at = $2
	FROM own
	WHERE incident_alerts.incident_id = own.incident_id AND incident_alerts.fingerprint = own.fingerprint
		AND incident_alerts.starts_at = own.starts_at AND incident_alerts.status = 'firing' AND incident_alerts.group_key <> $1
	RETURNING incident_alerts.incident_id, incident_alerts.group_key)
SELECT incident_id, group_key, NULL::text, NULL::bigint FROM copies
UNION ALL SELECT NULL::text, NULL::text, fingerprint, starts_at FROM own`

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func formatDuration(d time.Duration) string { return model.Duration(d).String() }

// burnTierOrder ranks the burn tiers the rule generator writes, fastest
// first (slo.DefaultWindows): the tier with the shortest windows is the
// fastest, whatever its factor. A short period scales the factors so that
// page_fast's can be below page_slow's (5.76 and 6 for a 24h SLO).
var burnTierOrder = map[string]int{"page_fast": 1, "page_slow": 2, "ticket_fast": 3, "ticket_slow": 4}

// fastestBurn returns the burn_rate_threshold annotation (as written) of
// the firing alert of the fastest burn tier, and that burn_tier label: the
// earliest tier of burnTierOrder, and of alerts of one tier (or of tiers
// it does not name) the highest factor.
func fastestBurn(alerts []NotifiedAlert) (rate, tier string) {
	best, bestRank := 0.0, 0
	for _, a := range alerts {
		if a.Status != "firing" {
			continue
		}
		v := a.Annotations[AnnotationBurnRate]
		if v == "" { // most alerts: no parse, no error to allocate
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			continue
		}
		rank := tierRank(a.Labels["burn_tier"])
		if rate != "" && (rank > bestRank || rank == bestRank && f <= best) {
			continue
		}
		best, bestRank, rate, tier = f, rank, v, a.Labels["burn_tier"]
	}
	return rate, tier
}

// tierRank is a burn tier's place in burnTierOrder, after every known tier
// for one it does not name.
func tierRank(tier string) int {
	if r, ok := burnTierOrder[tier]; ok {
		return r
	}
	return len(burnTierOrder) + 1
}
