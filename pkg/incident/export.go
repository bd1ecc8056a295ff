package incident

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ExportRecord is one incident in the export format (JSON lines, one
// record a line): every column of the incident, its alert episodes (with
// their groups), its timeline and its alert groups' links.
type ExportRecord struct {
	Incident        Incident        `json:"incident"`
	ReopenCount     int             `json:"reopen_count,omitempty"`
	InvestigatingAt *time.Time      `json:"investigating_at,omitempty"`
	PostmortemAt    *time.Time      `json:"postmortem_at,omitempty"`
	Alerts          []ExportAlert   `json:"alerts"`
	Timeline        []TimelineEntry `json:"timeline"`
	Links           []Link          `json:"links"`
}

// ExportAlert is a stored alert episode.
type ExportAlert struct {
	GroupKey string `json:"group_key"`
	Alert
	FirstSeenAt time.Time `json:"first_seen_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Export writes the incidents created at or after since (all when zero),
// oldest first, as JSON lines to w.
func (s *Service) Export(ctx context.Context, since time.Time, w io.Writer) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM incidents WHERE created_at >= $1 ORDER BY created_at, id`, ms(since))
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("export: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	enc := json.NewEncoder(w)
	for i, id := range ids {
		rec, err := s.exportOne(ctx, id)
		if err != nil {
			return i, err
		}
		if err := enc.Encode(rec); err != nil {
			return i, fmt.Errorf("export %s: %w", id, err)
		}
	}
	return len(ids), nil
}

func (s *Service) exportOne(ctx context.Context, id string) (*ExportRecord, error) {
	r, err := scanIncident(s.db.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	out := &ExportRecord{Incident: r.Incident, ReopenCount: r.reopenCount, InvestigatingAt: r.investigatingAt, PostmortemAt: r.postmortemAt,
		Alerts: []ExportAlert{}}
	rows, err := s.db.QueryContext(ctx, `SELECT group_key, fingerprint, starts_at, ends_at, status, labels, annotations, generator_url,
		first_seen_at, updated_at FROM incident_alerts WHERE incident_id = $1 ORDER BY group_key, starts_at, fingerprint`, id)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	for rows.Next() {
		var a ExportAlert
		var starts, seen, updated int64
		var ends sql.NullInt64
		var labels, ann string
		if err := rows.Scan(&a.GroupKey, &a.Fingerprint, &starts, &ends, &a.Status, &labels, &ann, &a.GeneratorURL, &seen, &updated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("export %s: %w", id, err)
		}
		a.StartsAt, a.EndsAt, a.FirstSeenAt, a.UpdatedAt = fromMS(starts), fromNullMS(ends), fromMS(seen), fromMS(updated)
		_ = json.Unmarshal([]byte(labels), &a.Labels)
		_ = json.Unmarshal([]byte(ann), &a.Annotations)
		out.Alerts = append(out.Alerts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export %s: %w", id, err)
	}
	if out.Timeline, err = s.Timeline(ctx, id); err != nil {
		return nil, err
	}
	if out.Links, err = loadLinks(ctx, s.db, id); err != nil {
		return nil, err
	}
	out.Incident.Services, out.Incident.Links = nil, nil
	return out, nil
}

// ImportResult says what Import did.
type ImportResult struct {
	// Imported incidents were written; Skipped ones already existed.
	Imported int `json:"imported"`
	Skipped  int `json:"skipped"`
}

// Import reads JSON lines of ExportRecord and writes each incident that
// does not exist yet, with its alerts, timeline and links, in one
// transaction per incident (importing again skips what is there). The ID
// sequence moves past the imported IDs. A malformed line is an error naming
// its line number; the lines before it stay imported.
func (s *Service) Import(ctx context.Context, r io.Reader) (*ImportResult, error) {
	res := &ImportResult{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rec ExportRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return res, fmt.Errorf("import line %d: %w", line, err)
		}
		if rec.Incident.ID == "" {
			return res, fmt.Errorf("import line %d: incident.id is missing", line)
		}
		var imported bool
		err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			imported, err = s.importOne(ctx, tx, &rec)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("import line %d (%s): %w", line, rec.Incident.ID, err)
		}
		if imported {
			res.Imported++
		} else {
			res.Skipped++
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("import line %d: %w", line+1, err)
	}
	return res, nil
}

func (s *Service) importOne(ctx context.Context, tx *sql.Tx, rec *ExportRecord) (bool, error) {
	inc := &rec.Incident
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents WHERE id = $1`, inc.ID).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	urls := inc.RunbookURLs
	if urls == nil {
		urls = []string{}
	}
	flapping := 0
	if inc.Flapping {
		flapping = 1
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, title, service, severity, status, labels, group_key, receiver,
		runbook_urls, assignee, impact, flapping, reopen_count, mitigated_by, detected_at, created_at, acknowledged_at,
		investigating_at, resolved_at, recovered_at, postmortem_at, updated_at, snoozed_until, root_service, recovering_since, merged_into)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		inc.ID, inc.Title, inc.Service, string(inc.Severity), string(inc.Status), labelsJSON(nonNil(inc.Labels)), inc.GroupKey, inc.Receiver,
		mustJSON(urls), inc.Assignee, inc.Impact, flapping, rec.ReopenCount, inc.MitigatedBy, ms(inc.DetectedAt), ms(inc.CreatedAt),
		nullMS(inc.AcknowledgedAt), nullMS(rec.InvestigatingAt), nullMS(inc.ResolvedAt), nullMS(inc.RecoveredAt), nullMS(rec.PostmortemAt),
		ms(inc.UpdatedAt), nullMS(inc.SnoozedUntil), inc.RootService, nullMS(inc.RecoveringSince), inc.MergedInto); err != nil {
		return false, fmt.Errorf("insert incident: %w", err)
	}
	for _, a := range rec.Alerts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status,
			ends_at, labels, annotations, generator_url, first_seen_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (group_key, fingerprint, starts_at) DO NOTHING`,
			a.GroupKey, a.Fingerprint, ms(a.StartsAt), inc.ID, a.Status, nullMS(a.EndsAt), labelsJSON(nonNil(a.Labels)),
			labelsJSON(nonNil(a.Annotations)), a.GeneratorURL, ms(a.FirstSeenAt), ms(a.UpdatedAt)); err != nil {
			return false, fmt.Errorf("insert alert: %w", err)
		}
		// The group's current incident is its latest.
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_groups (group_key, incident_id) VALUES ($1, $2)
			ON CONFLICT (group_key) DO UPDATE SET incident_id = excluded.incident_id
			WHERE alert_groups.incident_id IS NULL
				OR (SELECT created_at FROM incidents WHERE id = alert_groups.incident_id) <= $3`,
			a.GroupKey, inc.ID, ms(inc.CreatedAt)); err != nil {
			return false, fmt.Errorf("record group: %w", err)
		}
	}
	for _, e := range rec.Timeline {
		data := "{}"
		if len(e.Data) > 0 {
			data = mustJSON(e.Data)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data)
			VALUES ($1, $2, $3, $4, $5, $6)`, inc.ID, ms(e.Time), e.Kind, e.Actor, e.Message, data); err != nil {
			return false, fmt.Errorf("insert timeline: %w", err)
		}
	}
	for i := range rec.Links {
		if err := s.insertLink(ctx, tx, inc.ID, &rec.Links[i]); err != nil {
			return false, err
		}
	}
	if year, seq, ok := idSequence(inc.ID); ok {
		q := `INSERT INTO incident_seq (year, last) VALUES ($1, $2)
			ON CONFLICT (year) DO UPDATE SET last = CASE WHEN incident_seq.last > excluded.last THEN incident_seq.last ELSE excluded.last END`
		if _, err := tx.ExecContext(ctx, q, year, seq); err != nil {
			return false, fmt.Errorf("move the ID sequence: %w", err)
		}
	}
	return true, nil
}

// idSequence parses PREFIX-YYYY-NNNN.
func idSequence(id string) (int, int64, bool) {
	parts := strings.Split(id, "-")
	if len(parts) < 3 {
		return 0, 0, false
	}
	year, err1 := strconv.Atoi(parts[len(parts)-2])
	seq, err2 := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return year, seq, true
}
