package change

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// TimelineKind is the kind of the timeline entry that names a change as
// the likely cause of an incident; the console's incident page and the
// post-mortem draft show these entries as the likely cause.
const TimelineKind = incident.TimelineLikelyCause

// Hook returns the incident hook that links incidents to changes: when an
// incident opens, the latest change of its service that finished within
// changes.incident_link_window before its first alert (or was still in
// progress) becomes its likely cause, counts as failed and is named in
// its timeline; when it resolves, the link records the time to restore,
// from the failure's start (the incident's first alert) to the resolution.
//
// The hook is an incident.BatchHook: for an incident opened by a webhook
// delivery on PostgreSQL it probes for such a change in the statement
// that writes the incident, and reads and links it only when there is one.
func (s *Service) Hook(tl incident.TimelineWriter) incident.Hook {
	return &linkHook{s: s, tl: tl}
}

type linkHook struct {
	s  *Service
	tl incident.TimelineWriter
}

// IncidentChangedIn implements incident.BatchHook: a new incident's
// likely cause is probed for in the statement writing the incident (on
// PostgreSQL one round trip less for every incident opened without a
// recent change of its service); IncidentChanged links it when found.
func (h *linkHook) IncidentChangedIn(_ context.Context, ch incident.Change, w *incident.Writes) (bool, error) {
	inc := ch.Incident
	if ch.Kind != incident.ChangeCreated || inc == nil {
		return false, nil
	}
	if inc.Service == "" {
		return true, nil
	}
	args, _ := h.s.causeArgs(inc)
	w.Probe(`SELECT 1 FROM changes WHERE `+causeWhere, args...)
	return true, nil
}

// IncidentChanged implements incident.Hook: a new incident is linked to
// its likely cause (after a probe that found one, on PostgreSQL), and a
// linked incident's first resolution is recorded.
func (h *linkHook) IncidentChanged(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
	s, tl := h.s, h.tl
	inc := ch.Incident
	if inc == nil {
		return nil
	}
	switch ch.Kind {
	case incident.ChangeCreated:
		return s.link(ctx, tx, tl, inc)
	case incident.ChangeResolved:
		at := ch.Time
		if inc.ResolvedAt != nil {
			at = *inc.ResolvedAt
		}
		if _, err := tx.ExecContext(ctx, `UPDATE change_incidents SET resolved_at = $1 WHERE incident_id = $2 AND resolved_at IS NULL`, ms(at), inc.ID); err != nil {
			return fmt.Errorf("changes: record resolution of %s: %w", inc.ID, err)
		}
	}
	// A re-opened incident keeps its first resolution: the time to
	// restore is a histogram, read as counters, whose count must not go
	// down (sre_incident_time_to_resolve_seconds does the same).
	return nil
}

// causeWhere selects the changes that may be an incident's likely cause,
// with causeArgs: of its service ($1), started by its first alert ($2),
// not refused ($3), and in progress ($4) or finished at most the link
// window before its first alert ($5).
const causeWhere = `service = $1 AND started_at <= $2 AND outcome <> $3
		AND ((finished_at IS NULL AND outcome = $4) OR finished_at >= $5)`

// causeArgs returns causeWhere's arguments for inc, and the time of its
// first alert.
func (s *Service) causeArgs(inc *incident.Incident) ([]any, time.Time) {
	cfg, _ := s.config()
	at := inc.DetectedAt
	if at.IsZero() || at.After(inc.CreatedAt) {
		at = inc.CreatedAt
	}
	from := at.Add(-time.Duration(cfg.IncidentLinkWindow))
	return []any{inc.Service, ms(at), string(Refused), string(InProgress), ms(from)}, at
}

func (s *Service) link(ctx context.Context, tx *sql.Tx, tl incident.TimelineWriter, inc *incident.Incident) error {
	if inc.Service == "" {
		return nil
	}
	args, at := s.causeArgs(inc)
	c, err := scan(store.TxQueries(ctx, tx).QueryRowContext(ctx, `SELECT `+columns+` FROM changes
		WHERE `+causeWhere+`
		ORDER BY started_at DESC, id DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("changes: find the likely cause of %s: %w", inc.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO change_incidents (change_id, incident_id, service, opened_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (change_id, incident_id) DO NOTHING`, c.ID, inc.ID, inc.Service, ms(at)); err != nil {
		return fmt.Errorf("changes: link %s to change %d: %w", inc.ID, c.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE changes SET failed = 1 WHERE id = $1`, c.ID); err != nil {
		return fmt.Errorf("changes: mark change %d failed: %w", c.ID, err)
	}
	if tl != nil {
		if err := tl.AddTimeline(ctx, tx, incident.TimelineEntry{IncidentID: inc.ID, Time: inc.CreatedAt, Kind: TimelineKind, Actor: "sred",
			Message: LikelyCause(c, at), Data: map[string]any{"change_id": c.ID, "kind": string(c.Kind), "service": c.Service,
				"commit": c.Commit, "version": c.Version, "source": c.Source}}); err != nil {
			return fmt.Errorf("changes: timeline of %s: %w", inc.ID, err)
		}
	}
	s.logger.Info("Incident linked to a change", "incident", inc.ID, "change", c.ID, "service", c.Service)
	return nil
}

// LikelyCause describes a change as the likely cause of an incident
// whose first alert started at at.
func LikelyCause(c *Change, at time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "likely cause: %s change %d of %s", c.Kind, c.ID, c.Service)
	var what []string
	if c.Version != "" {
		what = append(what, "version "+c.Version)
	}
	if c.Commit != "" {
		what = append(what, "commit "+c.Commit)
	}
	if len(what) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(what, ", "))
	}
	if c.Actor != "" {
		fmt.Fprintf(&b, " by %s", c.Actor)
	}
	fmt.Fprintf(&b, " via %s", c.Source)
	if c.FinishedAt == nil || c.FinishedAt.After(at) {
		fmt.Fprintf(&b, ", in progress since %s before the first alert", at.Sub(c.StartedAt).Round(time.Second))
	} else {
		fmt.Fprintf(&b, ", %s %s before the first alert", c.Outcome, at.Sub(*c.FinishedAt).Round(time.Second))
	}
	if c.Description != "" {
		fmt.Fprintf(&b, ": %s", c.Description)
	}
	return b.String()
}
