package incident

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a manual incident's fields.
const (
	MaxManualTitle       = 300
	MaxManualService     = 200
	MaxManualDescription = 10000
)

// ManualIncident is an incident opened by hand (the "manual
// escalation" trigger), not by Alertmanager.
type ManualIncident struct {
	Title       string
	Service     string
	Severity    Severity
	Description string
	// Actor is who opened it.
	Actor string
}

// Check validates a manual incident, naming the first bad field (a
// *ValidationError).
func (m ManualIncident) Check() error {
	switch {
	case strings.TrimSpace(m.Title) == "":
		return invalid("title", `"title" must not be empty`)
	case utf8.RuneCountInString(m.Title) > MaxManualTitle:
		return invalid("title", `"title" longer than %d characters`, MaxManualTitle)
	case strings.TrimSpace(m.Service) == "":
		return invalid("service", `"service" must not be empty`)
	case len(m.Service) > MaxManualService || strings.ContainsAny(m.Service, "\r\n\t"):
		return invalid("service", `"service" must be one line of at most %d bytes`, MaxManualService)
	case utf8.RuneCountInString(m.Description) > MaxManualDescription:
		return invalid("description", `"description" longer than %d characters`, MaxManualDescription)
	}
	if err := checkActor(m.Actor); err != nil {
		return err
	}
	if _, err := ParseSeverity(string(m.Severity)); err != nil {
		return invalid("severity", `"severity": %v`, err)
	}
	return nil
}

// ManualReceiver is the receiver recorded on incidents opened by hand.
const ManualReceiver = "manual"

// Create opens an incident by hand. It is triggered like an alert-driven
// incident (the hooks run, so escalation pages whoever its policy says) and
// its group key is "manual:<id>", so no Alertmanager notification ever
// updates or resolves it. Its link (manualLink) makes it a correlation
// candidate for the alert groups of its service while it is open; the
// alerts of the groups that join it never resolve it (settled): a person
// does. The labels are the service and severity labels of
// the options plus source="manual"; the description is the first timeline
// note.
func (s *Service) Create(ctx context.Context, m ManualIncident) (*Incident, error) {
	m.Title, m.Service, m.Actor = strings.TrimSpace(m.Title), strings.TrimSpace(m.Service), strings.TrimSpace(m.Actor)
	m.Description = strings.TrimSpace(m.Description)
	sev, err := ParseSeverity(string(m.Severity))
	if err == nil {
		m.Severity = sev
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	opts := s.Options()
	p := &pending{}
	var out *Incident
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		p = &pending{}
		now := s.now()
		id, err := s.nextID(ctx, tx, opts.IDPrefix, now)
		if err != nil {
			return err
		}
		labels := map[string]string{opts.SeverityLabel: strings.ToLower(string(m.Severity)), "source": "manual"}
		if len(opts.ServiceLabels) > 0 {
			labels[opts.ServiceLabels[0]] = m.Service
		}
		r := &record{Incident: Incident{
			ID: id, Title: m.Title, Service: m.Service, RootService: m.Service, Severity: m.Severity, Status: StatusTriggered,
			Labels: labels, GroupKey: ManualGroupPrefix + id, Receiver: ManualReceiver,
			DetectedAt: now, CreatedAt: now, UpdatedAt: now,
		}}
		if err := s.insertIncident(ctx, tx, r); err != nil {
			return err
		}
		if err := s.insertLink(ctx, tx, id, manualLink(r)); err != nil {
			return err
		}
		msg := "opened by hand"
		if m.Description != "" {
			msg += ": " + m.Description
		}
		if err := s.change(ctx, tx, p, Change{Kind: ChangeCreated, Incident: &r.Incident, Prev: "", Actor: m.Actor, Time: now},
			&TimelineEntry{IncidentID: id, Time: now, Kind: "created", Actor: m.Actor, Message: msg}); err != nil {
			return err
		}
		out = &r.Incident
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.publish(p)
	s.m.incidentsCreated.WithLabelValues(string(out.Severity)).Inc()
	return out, nil
}

// manualLink is the link of an incident opened by hand: its service, as
// the link of the group that opens an alert-driven incident, so that
// correlation places the alert groups of that service (or of a related
// one) on it instead of opening a second incident. It counts as firing
// while the incident is open: a person declared the service affected, and
// only a person resolves it (a resolve by hand clears it, clearLinksFiring).
func manualLink(r *record) *Link {
	return &Link{GroupKey: r.GroupKey, Service: r.Service, Labels: r.Labels, Reason: "opened",
		AttachedAt: r.CreatedAt, Firing: true}
}

// declaredSeverity is the severity a person gave r when opening it by hand
// (its severity label, written by Create), "" for other incidents: the
// alerts that join it raise its severity, and lower it again no further.
func declaredSeverity(opts Options, r *record) Severity {
	if !strings.HasPrefix(r.GroupKey, ManualGroupPrefix) {
		return ""
	}
	sev, err := ParseSeverity(r.Labels[opts.SeverityLabel])
	if err != nil {
		return ""
	}
	return sev
}

// Stats are response figures over a time range.
type Stats struct {
	Since time.Time `json:"since"`
	// Created counts the incidents created in the range.
	Created int `json:"created"`
	// Acknowledged and Resolved count those of them acknowledged and resolved.
	Acknowledged int `json:"acknowledged"`
	Resolved     int `json:"resolved"`
	// MTTA is the mean time from detection to acknowledgement, MTTR from
	// detection to resolution (nil when none was).
	MTTA *time.Duration `json:"mtta,omitempty"`
	MTTR *time.Duration `json:"mttr,omitempty"`
	// Open counts the incidents open now, by severity.
	Open map[Severity]int `json:"open"`
}

// Stats computes MTTA and MTTR over the incidents created since since, and
// the open incidents by severity, with aggregate queries (cheap with
// hundreds of thousands of incidents).
func (s *Service) Stats(ctx context.Context, since time.Time) (*Stats, error) {
	st := &Stats{Since: since.UTC(), Open: map[Severity]int{}}
	var mtta, mttr sql.NullFloat64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN acknowledged_at IS NOT NULL THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN resolved_at IS NOT NULL THEN 1 ELSE 0 END), 0),
		AVG(CASE WHEN acknowledged_at IS NOT NULL THEN acknowledged_at - detected_at END),
		AVG(CASE WHEN resolved_at IS NOT NULL THEN resolved_at - detected_at END)
		FROM incidents WHERE created_at >= $1`, ms(since)).Scan(&st.Created, &st.Acknowledged, &st.Resolved, &mtta, &mttr)
	if err != nil {
		return nil, fmt.Errorf("incident stats: %w", err)
	}
	if mtta.Valid {
		d := time.Duration(mtta.Float64) * time.Millisecond
		st.MTTA = &d
	}
	if mttr.Valid {
		d := time.Duration(mttr.Float64) * time.Millisecond
		st.MTTR = &d
	}
	if st.Open, err = s.OpenCounts(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// OpenCounts counts the open incidents by severity.
func (s *Service) OpenCounts(ctx context.Context) (map[Severity]int, error) {
	out := map[Severity]int{}
	rows, err := s.db.QueryContext(ctx, `SELECT severity, COUNT(*) FROM incidents
		WHERE status IN ('triggered', 'acknowledged', 'investigating') GROUP BY severity`)
	if err != nil {
		return nil, fmt.Errorf("count open incidents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sev string
		var n int
		if err := rows.Scan(&sev, &n); err != nil {
			return nil, fmt.Errorf("count open incidents: %w", err)
		}
		out[Severity(sev)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count open incidents: %w", err)
	}
	return out, nil
}
