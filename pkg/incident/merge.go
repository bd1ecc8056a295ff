package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// SplitResult says what Split did.
type SplitResult struct {
	// From is the incident the group was split out of.
	From *Incident `json:"from"`
	// Incident is the incident the group now belongs to.
	Incident *Incident `json:"incident"`
	// Duplicate is true when the group had already been split out (the
	// request changed nothing).
	Duplicate bool `json:"duplicate"`
}

// MergeResult says what Merge did.
type MergeResult struct {
	// Incident is the incident merged into.
	Incident *Incident `json:"incident"`
	// Merged is the incident merged into it (resolved, merged_into set).
	Merged *Incident `json:"merged"`
	// Duplicate is true when it had already been merged (the request
	// changed nothing).
	Duplicate bool `json:"duplicate"`
}

// lockGroup locks an alert group's row on PostgreSQL, as deliveries do
// first, so that a split or merge and a delivery of the group apply one
// after the other (and take their locks in the same order).
func (s *Service) lockGroup(ctx context.Context, tx *sql.Tx, groupKey string) (sql.NullString, bool, error) {
	q := `SELECT incident_id FROM alert_groups WHERE group_key = $1`
	if s.db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	var cur sql.NullString
	err := tx.QueryRowContext(ctx, q, groupKey).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return cur, false, nil
	}
	if err != nil {
		return cur, false, fmt.Errorf("lock group: %w", err)
	}
	return cur, true, nil
}

// Split moves an alert group that correlation (or a merge) wrongly put on
// incident id to an incident of its own, which pages as a new incident
// does. Both timelines record it. Splitting a group already split out of
// id changes nothing (Duplicate); so do Alertmanager's redeliveries of the
// group, which go to its new incident.
func (s *Service) Split(ctx context.Context, id, groupKey, actor string) (*SplitResult, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if groupKey == "" {
		return nil, invalid("group_key", "group_key must not be empty")
	}
	var res *SplitResult
	var p *pending
	body := func(ctx context.Context, tx *sql.Tx) error {
		p = &pending{}
		res = &SplitResult{}
		cur, known, err := s.lockGroup(ctx, tx, groupKey)
		if err != nil {
			return err
		}
		from, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if owner, ok := strings.CutPrefix(groupKey, ManualGroupPrefix); ok {
			// The link of an incident opened by hand has no alert group
			// (nor alerts) to move: "not found" would not say why.
			what := "the link of " + limits.Cut(owner) + ", an incident opened by hand"
			if owner == id {
				what = "the incident's own link (it was opened by hand)"
			}
			return reject(from, "split "+limits.Cut(groupKey)+" out of", "it is "+what+", not an alert group; only an alert group can be split off")
		}
		if !known {
			return fmt.Errorf("%w: %s", ErrGroupNotFound, limits.Cut(groupKey))
		}
		links, err := loadLinks(ctx, tx, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(links, func(l Link) bool { return l.GroupKey == groupKey })
		if i < 0 {
			if cur.Valid && cur.String != id {
				// Already split out (or never here): the group's incident
				// says which.
				var split int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_links WHERE incident_id = $1 AND group_key = $2 AND reason = 'split'`,
					cur.String, groupKey).Scan(&split); err != nil {
					return fmt.Errorf("split: %w", err)
				}
				if split > 0 {
					to, err := s.load(ctx, tx, cur.String)
					if err != nil {
						return err
					}
					res.From, res.Incident, res.Duplicate = &from.Incident, &to.Incident, true
					return nil
				}
			}
			return reject(from, "split "+limits.Cut(groupKey)+" out of", "the alert group is not on this incident")
		}
		link := links[i]
		if len(links) == 1 {
			return reject(from, "split "+limits.Cut(groupKey)+" out of", "it is the incident's only alert group")
		}
		now := s.now()
		rows, err := tx.QueryContext(ctx, `SELECT fingerprint, starts_at, ends_at, status, labels, annotations, generator_url
			FROM incident_alerts WHERE group_key = $1 AND incident_id = $2 ORDER BY starts_at, fingerprint`, groupKey, id)
		if err != nil {
			return fmt.Errorf("split: %w", err)
		}
		var alerts []*incoming
		for rows.Next() {
			var a incoming
			var starts int64
			var ends sql.NullInt64
			var labels, ann string
			if err := rows.Scan(&a.Fingerprint, &starts, &ends, &a.Status, &labels, &ann, &a.GeneratorURL); err != nil {
				rows.Close()
				return fmt.Errorf("split: %w", err)
			}
			a.StartsAt = fromMS(starts)
			if ends.Valid {
				a.EndsAt = fromMS(ends.Int64)
			}
			_ = json.Unmarshal([]byte(labels), &a.Labels)
			_ = json.Unmarshal([]byte(ann), &a.Annotations)
			alerts = append(alerts, &a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("split: %w", err)
		}
		if len(alerts) == 0 {
			return reject(from, "split "+limits.Cut(groupKey)+" out of", "the alert group has no alerts on this incident")
		}
		opts := s.Options()
		n := Notification{GroupKey: groupKey, Receiver: from.Receiver, CommonLabels: link.Labels}
		for _, a := range alerts {
			n.Alerts = append(n.Alerts, a.NotifiedAlert)
		}
		to, err := s.create(ctx, tx, opts, n, alerts, now)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			mergeAlertInfo(&to.Incident, a.NotifiedAlert, opts)
		}
		if err := s.insertIncident(ctx, tx, to); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE incident_alerts SET incident_id = $3 WHERE group_key = $1 AND incident_id = $2`,
			`UPDATE alert_groups SET incident_id = $3 WHERE group_key = $1 AND incident_id = $2`,
			`DELETE FROM incident_links WHERE group_key = $1 AND incident_id = $2 AND $3 <> ''`,
		} {
			if _, err := tx.ExecContext(ctx, q, groupKey, id, to.ID); err != nil {
				return fmt.Errorf("split: %w", err)
			}
		}
		msg := fmt.Sprintf("split out of %s by %s", id, actor)
		firing := slices.ContainsFunc(alerts, func(a *incoming) bool { return a.Status == "firing" })
		if err := s.insertLink(ctx, tx, to.ID, &Link{GroupKey: groupKey, Service: link.Service, Labels: link.Labels,
			Reason: "split", Explanation: msg, AttachedAt: now, Firing: firing}); err != nil {
			return err
		}
		if err := s.change(ctx, tx, p, Change{Kind: ChangeCreated, Incident: &to.Incident, Actor: actor, Time: now},
			&TimelineEntry{IncidentID: to.ID, Time: now, Kind: "correlation", Actor: actor,
				Message: fmt.Sprintf("incident created: alert group of %s %s", serviceText(link.Service), msg),
				Data:    map[string]any{"to": string(StatusTriggered), "group_key": groupKey, "from": id}}); err != nil {
			return err
		}
		if err := s.settle(ctx, tx, opts, to, now, p, false, actor); err != nil {
			return err
		}
		rest := links[:i:i]
		rest = append(rest, links[i+1:]...)
		s.reroot(from, servicesOf(rest))
		if err := s.addTimeline(ctx, tx, TimelineEntry{IncidentID: id, Time: now, Kind: "correlation", Actor: actor,
			Message: fmt.Sprintf("split by %s: the alert group of %s moved to %s", actor, serviceText(link.Service), to.ID),
			Data:    map[string]any{"group_key": groupKey, "service": link.Service, "to": to.ID, "root": from.RootService}}); err != nil {
			return err
		}
		if err := s.settle(ctx, tx, opts, from, now, p, false, actor); err != nil {
			return err
		}
		from.Services, from.Links = servicesOf(rest), rest
		to.Services = []string{link.Service}
		res.From, res.Incident = &from.Incident, &to.Incident
		return nil
	}
	// PostgreSQL may break a deadlock with another merge, split or
	// delivery of these groups by rolling this one back: it runs again
	// from the start (body resets what it keeps), as a status change does,
	// rather than answering 503 for a request nothing was wrong with.
	err := store.RunAgain(ctx, func() error { return s.Write(ctx, body) })
	if err != nil {
		return nil, err
	}
	if !res.Duplicate {
		s.publish(p)
		s.m.incidentsCreated.WithLabelValues(string(res.Incident.Severity)).Inc()
	}
	return res, nil
}

// reroot sets an incident's likely root from its remaining services.
func (s *Service) reroot(r *record, services []string) {
	if len(services) == 0 {
		return
	}
	if c := s.corr.Load(); c != nil {
		if root := c.Root(services); root != "" {
			r.RootService = root
			return
		}
	}
	if !slices.Contains(services, r.RootService) {
		r.RootService = services[0]
	}
}

// Merge merges incident from into incident into: from's alerts and alert
// groups move to into (later deliveries of those groups go there), from
// is resolved with merged_into set, and both timelines record it. into
// must be open. Merging again changes nothing (Duplicate).
func (s *Service) Merge(ctx context.Context, into, from, actor string) (*MergeResult, error) {
	if err := checkActor(actor); err != nil {
		return nil, err
	}
	if into == from {
		return nil, invalid("from", "cannot merge an incident into itself")
	}
	var res *MergeResult
	var p *pending
	body := func(ctx context.Context, tx *sql.Tx) error {
		p = &pending{}
		res = &MergeResult{}
		// The groups' rows first, as deliveries lock them, then both
		// incidents in ID order.
		gq := `SELECT group_key FROM alert_groups WHERE incident_id = $1 ORDER BY group_key`
		if s.db.Dialect == store.Postgres {
			gq += ` FOR UPDATE`
		}
		rows, err := tx.QueryContext(ctx, gq, from)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				rows.Close()
				return fmt.Errorf("merge: %w", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		ids := []string{into, from}
		sort.Strings(ids)
		recs := map[string]*record{}
		for _, id := range ids {
			r, err := s.load(ctx, tx, id)
			if err != nil {
				return err
			}
			recs[id] = r
		}
		dst, src := recs[into], recs[from]
		if src.MergedInto == into {
			res.Incident, res.Merged, res.Duplicate = &dst.Incident, &src.Incident, true
			return nil
		}
		if src.MergedInto != "" {
			return reject(src, "merge", "it was merged into "+src.MergedInto)
		}
		if dst.MergedInto != "" {
			return reject(dst, "merge "+from+" into", "it was merged into "+dst.MergedInto)
		}
		if !dst.Status.Open() {
			return reject(dst, "merge "+from+" into", fmt.Sprintf("it is %s", dst.Status))
		}
		// dst's row is locked (load): concurrent merges into it count one
		// after the other.
		if err := s.room(ctx, tx, into, boundMerged); err != nil {
			return err
		}
		now := s.now()
		srcLinks, err := loadLinks(ctx, tx, from)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("merged from %s by %s", from, actor)
		for _, l := range srcLinks {
			l.Reason, l.Explanation, l.AttachedAt = "merged", msg, now
			if err := s.insertLink(ctx, tx, into, &l); err != nil {
				return err
			}
		}
		for _, q := range []string{
			`UPDATE incident_alerts SET incident_id = $2 WHERE incident_id = $1`,
			`UPDATE alert_groups SET incident_id = $2 WHERE incident_id = $1`,
			`DELETE FROM incident_links WHERE incident_id = $1 AND $2 <> ''`,
		} {
			if _, err := tx.ExecContext(ctx, q, from, into); err != nil {
				return fmt.Errorf("merge: %w", err)
			}
		}
		opts := s.Options()
		dstLinks, err := loadLinks(ctx, tx, into)
		if err != nil {
			return err
		}
		services := servicesOf(dstLinks)
		prevRoot := dst.RootService
		s.reroot(dst, services)
		if dst.Severity.Rank() > src.Severity.Rank() {
			dst.Severity = src.Severity
		}
		// The merged incident paged at the higher of both peaks.
		dst.PeakSeverity = higher(dst.PeakSeverity, src.PeakSeverity)
		for _, u := range src.RunbookURLs {
			if !slices.Contains(dst.RunbookURLs, u) {
				dst.RunbookURLs = append(dst.RunbookURLs, u)
			}
		}
		sort.Strings(dst.RunbookURLs)
		if src.DetectedAt.Before(dst.DetectedAt) {
			dst.DetectedAt = src.DetectedAt
		}
		data := map[string]any{"from": from, "services": services, "root": dst.RootService}
		text := fmt.Sprintf("merged %s into this incident (by %s): services %s", from, actor, strings.Join(services, ", "))
		if dst.RootService != prevRoot {
			text += "; likely root: " + dst.RootService
		}
		if err := s.addTimeline(ctx, tx, TimelineEntry{IncidentID: into, Time: now, Kind: "correlation", Actor: actor, Message: text, Data: data}); err != nil {
			return err
		}
		if err := s.settle(ctx, tx, opts, dst, now, p, false, actor); err != nil {
			return err
		}
		prev := src.Status
		src.MergedInto = into
		src.UpdatedAt = now
		src.SnoozedUntil = nil
		var kind ChangeKind = ChangeUpdated
		if src.Status.Open() {
			src.Status = StatusResolved
			src.ResolvedAt = &now
			kind = ChangeResolved
		}
		if err := s.save(ctx, tx, src); err != nil {
			return err
		}
		if err := s.change(ctx, tx, p, Change{Kind: kind, Incident: &src.Incident, Prev: prev, Actor: actor, Time: now},
			&TimelineEntry{IncidentID: from, Time: now, Kind: "status", Actor: actor,
				Message: fmt.Sprintf("merged into %s by %s", into, actor),
				Data:    map[string]any{"from": string(prev), "to": string(src.Status), "merged_into": into}}); err != nil {
			return err
		}
		dst.Services, dst.Links = services, dstLinks
		res.Incident, res.Merged = &dst.Incident, &src.Incident
		return nil
	}
	// PostgreSQL may break a deadlock with another merge, split or
	// delivery of these groups by rolling this one back: it runs again
	// from the start (body resets what it keeps), as a status change does,
	// rather than answering 503 for a request nothing was wrong with.
	err := store.RunAgain(ctx, func() error { return s.Write(ctx, body) })
	if err != nil {
		return nil, err
	}
	if !res.Duplicate {
		s.publish(p)
	}
	return res, nil
}
