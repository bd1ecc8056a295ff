package reconcile

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// SilenceOptions configure the Silencer.
type SilenceOptions struct {
	// Enabled creates silences when incidents are acknowledged.
	Enabled bool
	// OnSnooze creates silences, ending with the snooze, when incidents
	// are snoozed.
	OnSnooze bool
	// ExpireOnResolve expires them when the incident resolves; otherwise
	// they run until their end. Default true.
	ExpireOnResolve bool
	// Duration of each silence (default 24h). Silences are not renewed: an
	// incident still open after that notifies again.
	Duration time.Duration
	// ExternalURL links from the silence comment to the incident.
	ExternalURL string
}

// DefaultSilenceOptions are the options with silences enabled.
func DefaultSilenceOptions() SilenceOptions {
	return SilenceOptions{Enabled: true, OnSnooze: true, ExpireOnResolve: true, Duration: 24 * time.Hour}
}

// Silencer silences an acknowledged or snoozed incident's alerts in
// Alertmanager and expires the silences when the incident resolves.
//
// It works in two steps, as every subsystem acting on the outside world:
// its Hook records a request inside the incident's transaction, and Sync
// (run by a worker) carries requests out against Alertmanager, recording
// each silence ID in reconcile_silences and in the incident's timeline.
type Silencer struct {
	db     *store.DB
	am     Alertmanager
	inc    *incident.Service
	logger *slog.Logger
	m      *Metrics
	opts   atomic.Pointer[SilenceOptions]

	// Clock tells the time (clock.Real; tests set a clock.Manual before use).
	Clock clock.Clock
}

// NewSilencer returns a Silencer.
func NewSilencer(db *store.DB, am Alertmanager, inc *incident.Service, opts SilenceOptions, logger *slog.Logger, m *Metrics) *Silencer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Silencer{db: db, am: am, inc: inc, logger: logger, m: m, Clock: clock.Real{}}
	s.SetOptions(opts)
	return s
}

// SetOptions replaces the options (on config reload).
func (s *Silencer) SetOptions(o SilenceOptions) {
	if o.Duration <= 0 {
		o.Duration = 24 * time.Hour
	}
	s.opts.Store(&o)
}

// IncidentChanged implements incident.Hook: acknowledging an incident (or
// starting to investigate a triggered one) requests silences; snoozing it
// requests silences that end with the snooze; alerts joining an
// acknowledged incident are silenced too; resolving it requests expiry.
func (s *Silencer) IncidentChanged(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
	o := s.opts.Load()
	id := ch.Incident.ID
	now := ch.Time.UnixMilli()
	request := func(until int64, reason string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO reconcile_silence_requests (incident_id, want, actor, version, updated_at, until_ms, reason)
			VALUES ($1, 1, $2, 1, $3, $4, $5)
			ON CONFLICT (incident_id) DO UPDATE SET want = 1, actor = $2,
				version = reconcile_silence_requests.version + 1, updated_at = $3, until_ms = $4, reason = $5`,
			id, ch.Actor, now, until, reason)
		if err != nil {
			return fmt.Errorf("request silences: %w", err)
		}
		return nil
	}
	switch {
	case ch.Kind == incident.ChangeSnoozed:
		if !o.OnSnooze || ch.Incident.SnoozedUntil == nil {
			return nil
		}
		return request(ch.Incident.SnoozedUntil.UnixMilli(), "snooze")
	case ch.Kind == incident.ChangeAcknowledged,
		ch.Kind == incident.ChangeInvestigating && ch.Prev == incident.StatusTriggered:
		if !o.Enabled {
			return nil
		}
		return request(0, "ack")
	case ch.Kind == incident.ChangeUpdated &&
		(ch.Incident.Status == incident.StatusAcknowledged || ch.Incident.Status == incident.StatusInvestigating):
		// New alerts may have joined: have the worker silence them too.
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_silence_requests SET version = version + 1, updated_at = $2
			WHERE incident_id = $1 AND want = 1`, id, now); err != nil {
			return fmt.Errorf("request silences: %w", err)
		}
	case ch.Kind == incident.ChangeResolved && o.ExpireOnResolve:
		// Only incidents that had silences requested have anything to expire.
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_silence_requests SET want = 0, actor = $2,
			version = version + 1, updated_at = $3 WHERE incident_id = $1`, id, ch.Actor, now); err != nil {
			return fmt.Errorf("request silence expiry: %w", err)
		}
	}
	return nil
}

type silenceRequest struct {
	incidentID string
	want       bool
	actor      string
	version    int64
	attempts   int
	until      int64 // unix ms; 0: the configured duration
	reason     string
}

// Sync carries out every due request and returns how many it completed.
// A request that fails is retried later with backoff; its error is returned
// after the other requests were tried.
func (s *Silencer) Sync(ctx context.Context) (int, error) {
	var errs []error
	n := 0
	for {
		req, ok, err := s.claim(ctx)
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		if err := s.apply(ctx, req); err != nil {
			errs = append(errs, err)
			s.fail(ctx, req, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// claim leases one due request for a minute. The lease is taken with a
// conditional UPDATE, so on PostgreSQL two replicas never take the same one.
func (s *Silencer) claim(ctx context.Context) (silenceRequest, bool, error) {
	now := s.Clock.Now().UnixMilli()
	var r silenceRequest
	var want int
	err := s.db.QueryRowContext(ctx, `UPDATE reconcile_silence_requests SET lease_until = $2
		WHERE incident_id = (SELECT incident_id FROM reconcile_silence_requests
			WHERE done_version < version AND lease_until <= $1 ORDER BY updated_at, incident_id LIMIT 1)
		AND done_version < version AND lease_until <= $1
		RETURNING incident_id, want, actor, version, attempts, until_ms, reason`, now, now+time.Minute.Milliseconds()).
		Scan(&r.incidentID, &want, &r.actor, &r.version, &r.attempts, &r.until, &r.reason)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("claim silence request: %w", err)
	}
	r.want = want == 1
	return r, true, nil
}

func (s *Silencer) fail(ctx context.Context, r silenceRequest, cause error) {
	backoff := time.Duration(1<<min(r.attempts, 8)) * time.Second
	if backoff > 5*time.Minute {
		backoff = 5 * time.Minute
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE reconcile_silence_requests SET lease_until = $2, attempts = attempts + 1,
		last_error = $3 WHERE incident_id = $1`, r.incidentID, s.Clock.Now().Add(backoff).UnixMilli(), cause.Error()); err != nil {
		s.logger.Error("Record silence request failure", "incident", r.incidentID, "err", err)
	}
	s.logger.Warn("Silence request failed", "incident", r.incidentID, "err", cause, "retry_in", backoff)
}

func (s *Silencer) apply(ctx context.Context, r silenceRequest) error {
	var err error
	if r.want {
		err = s.silence(ctx, r)
	} else {
		err = s.expire(ctx, r)
	}
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE reconcile_silence_requests SET done_version = $2, lease_until = 0,
		attempts = 0, last_error = '' WHERE incident_id = $1`, r.incidentID, r.version); err != nil {
		return fmt.Errorf("complete silence request for %s: %w", r.incidentID, err)
	}
	return nil
}

// silence creates a silence for every firing alert of the incident that has
// none yet.
func (s *Silencer) silence(ctx context.Context, r silenceRequest) error {
	inc, err := s.inc.Get(ctx, r.incidentID)
	if err != nil {
		return err
	}
	if !inc.Status.Open() {
		return nil // resolved meanwhile: the resolve request expires what exists
	}
	// have: the latest end of each alert's active silences.
	have := map[string]int64{}
	rows, err := s.db.QueryContext(ctx, `SELECT fingerprint, ends_at FROM reconcile_silences WHERE incident_id = $1 AND state = 'active'`, r.incidentID)
	if err != nil {
		return fmt.Errorf("silences of %s: %w", r.incidentID, err)
	}
	for rows.Next() {
		var fp string
		var ends int64
		if err := rows.Scan(&fp, &ends); err != nil {
			rows.Close()
			return fmt.Errorf("silences of %s: %w", r.incidentID, err)
		}
		have[fp] = max(have[fp], ends)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("silences of %s: %w", r.incidentID, err)
	}
	o := s.opts.Load()
	for _, a := range inc.Alerts {
		if a.Status != "firing" || len(a.Labels) == 0 {
			continue
		}
		now := s.Clock.Now().UTC()
		ends := now.Add(o.Duration)
		verb := "acknowledged"
		if r.until > 0 {
			// A snooze: a silence must cover it to its end.
			ends, verb = time.UnixMilli(r.until).UTC(), "snoozed"
			if !ends.After(now) || have[a.Fingerprint] >= r.until {
				continue
			}
		} else if _, ok := have[a.Fingerprint]; ok {
			continue
		}
		comment := fmt.Sprintf("sred: incident %s %s by %s: %s", inc.ID, verb, r.actor, inc.Title)
		if o.ExternalURL != "" {
			comment += " (" + o.ExternalURL + "/api/v1/incidents/" + inc.ID + ")"
		}
		sil := Silence{Matchers: a.Labels, StartsAt: now, EndsAt: ends, CreatedBy: "sred/" + r.actor, Comment: comment}
		id, err := s.am.CreateSilence(ctx, sil)
		if err != nil {
			s.m.silences.WithLabelValues("create", "error").Inc()
			return fmt.Errorf("silence alert %s of %s: %w", a.Fingerprint, inc.ID, err)
		}
		s.m.silences.WithLabelValues("create", "success").Inc()
		matchers, _ := json.Marshal(a.Labels)
		if _, err := s.db.ExecContext(ctx, `INSERT INTO reconcile_silences (silence_id, incident_id, fingerprint, matchers,
			state, created_by, created_at, ends_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7)`,
			id, inc.ID, a.Fingerprint, string(matchers), sil.CreatedBy, now.UnixMilli(), sil.EndsAt.UnixMilli()); err != nil {
			return fmt.Errorf("record silence %s of %s: %w", id, inc.ID, err)
		}
		have[a.Fingerprint] = sil.EndsAt.UnixMilli()
		if err := s.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
			IncidentID: inc.ID, Time: now, Kind: "silence", Actor: Actor,
			Message: fmt.Sprintf("silence %s created in Alertmanager for %s until %s", id, describe(a.Labels), sil.EndsAt.Format(time.RFC3339)),
			Data:    map[string]any{"silence_id": id, "fingerprint": a.Fingerprint, "action": "create"},
		}); err != nil {
			return err
		}
	}
	return nil
}

// expire expires every active silence of the incident.
func (s *Silencer) expire(ctx context.Context, r silenceRequest) error {
	ids, err := s.active(ctx, r.incidentID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.am.ExpireSilence(ctx, id); err != nil {
			s.m.silences.WithLabelValues("expire", "error").Inc()
			return err
		}
		s.m.silences.WithLabelValues("expire", "success").Inc()
		now := s.Clock.Now().UTC()
		if _, err := s.db.ExecContext(ctx, `UPDATE reconcile_silences SET state = 'expired', expired_at = $2 WHERE silence_id = $1`,
			id, now.UnixMilli()); err != nil {
			return fmt.Errorf("record expiry of silence %s: %w", id, err)
		}
		if err := s.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
			IncidentID: r.incidentID, Time: now, Kind: "silence", Actor: Actor,
			Message: fmt.Sprintf("silence %s expired in Alertmanager: incident resolved", id),
			Data:    map[string]any{"silence_id": id, "action": "expire"},
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Silencer) active(ctx context.Context, incidentID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT silence_id FROM reconcile_silences WHERE incident_id = $1 AND state = 'active'
		ORDER BY created_at, silence_id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("silences of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("silences of %s: %w", incidentID, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// SilenceRecord is one silence sred created.
type SilenceRecord struct {
	ID          string            `json:"id"`
	IncidentID  string            `json:"incident_id"`
	Fingerprint string            `json:"fingerprint"`
	Matchers    map[string]string `json:"matchers"`
	State       string            `json:"state"` // active | expired
	CreatedBy   string            `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
	EndsAt      time.Time         `json:"ends_at"`
	ExpiredAt   *time.Time        `json:"expired_at,omitempty"`
}

// Silences lists the silences sred created for an incident, oldest first.
func (s *Silencer) Silences(ctx context.Context, incidentID string) ([]SilenceRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT silence_id, incident_id, fingerprint, matchers, state, created_by,
		created_at, ends_at, expired_at FROM reconcile_silences WHERE incident_id = $1 ORDER BY created_at, silence_id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("silences of %s: %w", incidentID, err)
	}
	defer rows.Close()
	out := []SilenceRecord{}
	for rows.Next() {
		var r SilenceRecord
		var matchers string
		var created, ends int64
		var expired sql.NullInt64
		if err := rows.Scan(&r.ID, &r.IncidentID, &r.Fingerprint, &matchers, &r.State, &r.CreatedBy, &created, &ends, &expired); err != nil {
			return nil, fmt.Errorf("silences of %s: %w", incidentID, err)
		}
		_ = json.Unmarshal([]byte(matchers), &r.Matchers)
		r.CreatedAt = time.UnixMilli(created).UTC()
		r.EndsAt = time.UnixMilli(ends).UTC()
		if expired.Valid {
			t := time.UnixMilli(expired.Int64).UTC()
			r.ExpiredAt = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Run syncs every interval until ctx ends.
func (s *Silencer) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("Sync silences with Alertmanager", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
