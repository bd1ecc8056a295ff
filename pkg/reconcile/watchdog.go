package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// WatchdogGroupPrefix starts the group key of the incidents the Watchdog
// opens; it is not an Alertmanager group key, so the Reconciler leaves
// these incidents alone.
const WatchdogGroupPrefix = incident.InternalGroupPrefix + "watchdog/"

// PipelineBrokenAlertname names the alert of a Watchdog incident.
const PipelineBrokenAlertname = "AlertingPipelineBroken"

// WatchdogOptions configure the Watchdog.
type WatchdogOptions struct {
	// Alertname of the heartbeat alert ("Watchdog"); empty disables it.
	Alertname string
	// Timeout after the last heartbeat before the pipeline counts as broken.
	Timeout time.Duration
}

// Watchdog watches the always-firing heartbeat alert. Heartbeats come from
// webhook deliveries (Observe) and from Reconciler polls that find the alert
// in Alertmanager. When none has been seen for Timeout, Check opens a
// CRITICAL "alerting pipeline broken" incident through the incident service;
// the next heartbeat resolves it.
//
// State lives in the store (reconcile_watchdog), so restarts and replicas
// share it; the incident's alert episode starts at last heartbeat + Timeout,
// a value every replica computes alike, so two replicas detecting the same
// gap open one incident.
type Watchdog struct {
	db     *store.DB
	inc    *incident.Service
	logger *slog.Logger
	m      *Metrics
	opts   atomic.Pointer[WatchdogOptions]

	// Clock tells the time (clock.Real; tests set a clock.Manual before use).
	Clock clock.Clock
}

// NewWatchdog returns a Watchdog.
func NewWatchdog(db *store.DB, inc *incident.Service, opts WatchdogOptions, logger *slog.Logger, m *Metrics) *Watchdog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watchdog{db: db, inc: inc, logger: logger, m: m, Clock: clock.Real{}}
	w.SetOptions(opts)
	return w
}

// SetOptions replaces the options (on config reload). While the watchdog
// is enabled, sre_watchdog_heartbeats_total is exported from the start, at
// zero before the first heartbeat, so that an alert on its increase fires
// when no heartbeat ever arrived; while it is disabled the counter has no
// series, so that the alert does not fire on an install without it.
func (w *Watchdog) SetOptions(o WatchdogOptions) {
	w.opts.Store(&o)
	if w.m == nil {
		return
	}
	if o.Alertname == "" {
		w.m.watchdogs.Reset()
		return
	}
	for _, source := range heartbeatSources {
		w.m.watchdogs.WithLabelValues(source)
	}
}

// heartbeatSources are where a heartbeat is seen: a webhook delivery or a
// poll of Alertmanager's alerts.
var heartbeatSources = []string{"webhook", "poll"}

// Options returns the options in force.
func (w *Watchdog) Options() WatchdogOptions { return *w.opts.Load() }

// IsHeartbeat reports whether labels are those of the heartbeat alert.
func (w *Watchdog) IsHeartbeat(labels map[string]string) bool {
	o := w.opts.Load()
	return o.Alertname != "" && labels["alertname"] == o.Alertname
}

// Observe records a heartbeat if a firing heartbeat alert is among alerts
// (from a webhook delivery) and reports whether one was.
func (w *Watchdog) Observe(ctx context.Context, alerts []incident.NotifiedAlert) (bool, error) {
	for _, a := range alerts {
		if a.Status == "firing" && w.IsHeartbeat(a.Labels) {
			return true, w.Heartbeat(ctx, w.Clock.Now(), "webhook")
		}
	}
	return false, nil
}

type watchdogState struct {
	lastSeen     int64
	outageStarts sql.NullInt64
	incidentID   string
}

func (w *Watchdog) lockState(ctx context.Context, tx *sql.Tx, name string, now time.Time) (watchdogState, error) {
	var st watchdogState
	if _, err := tx.ExecContext(ctx, `INSERT INTO reconcile_watchdog (alertname, last_seen, source) VALUES ($1, $2, 'start')
		ON CONFLICT (alertname) DO NOTHING`, name, now.UnixMilli()); err != nil {
		return st, fmt.Errorf("watchdog state: %w", err)
	}
	q := `SELECT last_seen, outage_starts, incident_id FROM reconcile_watchdog WHERE alertname = $1`
	if w.db.Dialect == store.Postgres {
		q += ` FOR UPDATE`
	}
	if err := tx.QueryRowContext(ctx, q, name).Scan(&st.lastSeen, &st.outageStarts, &st.incidentID); err != nil {
		return st, fmt.Errorf("watchdog state: %w", err)
	}
	return st, nil
}

// Heartbeat records that the heartbeat alert was seen at t (by source:
// "webhook" or "poll") and resolves the open Watchdog incident, if any.
func (w *Watchdog) Heartbeat(ctx context.Context, t time.Time, source string) error {
	o := w.opts.Load()
	if o.Alertname == "" {
		return nil
	}
	t = t.UTC()
	var st watchdogState
	err := w.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if st, err = w.lockState(ctx, tx, o.Alertname, t); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE reconcile_watchdog SET last_seen = $2, source = $3 WHERE alertname = $1 AND last_seen <= $2`,
			o.Alertname, t.UnixMilli(), source)
		return err
	})
	if err != nil {
		return fmt.Errorf("record watchdog heartbeat: %w", err)
	}
	w.m.watchdogs.WithLabelValues(source).Inc()
	if !st.outageStarts.Valid || t.UnixMilli() < st.outageStarts.Int64 {
		return nil
	}
	// The pipeline works again: resolve the outage's alert episode, which
	// resolves the incident (the same path as any resolved alert).
	start := time.UnixMilli(st.outageStarts.Int64).UTC()
	n := w.notification(o, start, "resolved", t)
	res, err := w.inc.Ingest(ctx, n)
	if err != nil {
		return fmt.Errorf("resolve watchdog incident: %w", err)
	}
	// Replicas (and Alertmanager peers) deliver the same heartbeat at
	// once: each may have read the outage before the first cleared it
	// below. The resolve is applied once, under the group's lock; only the
	// call whose resolve changed the incident records the return.
	for _, id := range res.Incidents {
		if !res.Duplicate {
			if err := w.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
				IncidentID: id, Time: t, Kind: "watchdog", Actor: "watchdog",
				Message: fmt.Sprintf("%s heartbeat received again (%s) after a gap since %s", o.Alertname, source,
					time.UnixMilli(st.lastSeen).UTC().Format(time.RFC3339)),
			}); err != nil {
				return err
			}
		}
		// With auto_resolve off, resolved alerts leave an incident open:
		// the Watchdog incident is sred's own, so close it explicitly.
		inc, err := w.inc.Get(ctx, id)
		if err != nil {
			return err
		}
		if inc.Status.Open() {
			if _, err := w.inc.Resolve(ctx, id, "watchdog", o.Alertname+" heartbeat is back"); err != nil {
				var te *incident.TransitionError
				if !errors.As(err, &te) {
					return err
				}
			}
		}
	}
	if _, err := w.db.ExecContext(ctx, `UPDATE reconcile_watchdog SET outage_starts = NULL, incident_id = ''
		WHERE alertname = $1 AND outage_starts = $2`, o.Alertname, st.outageStarts.Int64); err != nil {
		return fmt.Errorf("record watchdog recovery: %w", err)
	}
	if !res.Duplicate {
		w.logger.Info("Watchdog heartbeat is back", "alertname", o.Alertname, "source", source)
	}
	return nil
}

// Check opens the Watchdog incident when no heartbeat was seen for Timeout.
// It returns the incident's ID while the pipeline counts as broken, "" when
// it is healthy. Sred's own start counts as a heartbeat, so a heartbeat that
// never arrives at all is caught Timeout after the first Check.
func (w *Watchdog) Check(ctx context.Context) (string, error) {
	o := w.opts.Load()
	if o.Alertname == "" || o.Timeout <= 0 {
		return "", nil
	}
	now := w.Clock.Now().UTC()
	var st watchdogState
	err := w.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if st, err = w.lockState(ctx, tx, o.Alertname, now); err != nil {
			return err
		}
		if st.outageStarts.Valid {
			return nil
		}
		deadline := st.lastSeen + o.Timeout.Milliseconds()
		if now.UnixMilli() < deadline {
			return nil
		}
		st.outageStarts = sql.NullInt64{Int64: deadline, Valid: true}
		_, err = tx.ExecContext(ctx, `UPDATE reconcile_watchdog SET outage_starts = $2 WHERE alertname = $1`, o.Alertname, deadline)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("watchdog check: %w", err)
	}
	if !st.outageStarts.Valid {
		return "", nil
	}
	if st.incidentID != "" {
		return st.incidentID, nil
	}
	// Open (or find, if another replica or an earlier attempt did) the
	// incident: the notification is the same every time, so this is
	// idempotent.
	start := time.UnixMilli(st.outageStarts.Int64).UTC()
	res, err := w.inc.Ingest(ctx, w.notification(o, start, "firing", time.Time{}))
	if err != nil {
		return "", fmt.Errorf("open watchdog incident: %w", err)
	}
	if len(res.Incidents) == 0 {
		return "", errors.New("open watchdog incident: the incident service attached the alert to no incident")
	}
	id := res.Incidents[0]
	if _, err := w.db.ExecContext(ctx, `UPDATE reconcile_watchdog SET incident_id = $2 WHERE alertname = $1 AND outage_starts = $3`,
		o.Alertname, id, st.outageStarts.Int64); err != nil {
		return "", fmt.Errorf("record watchdog incident: %w", err)
	}
	if len(res.Created) > 0 {
		if err := w.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
			IncidentID: id, Time: now, Kind: "watchdog", Actor: "watchdog",
			Message: fmt.Sprintf("no %s heartbeat since %s (timeout %s): the alerting pipeline (Prometheus -> Alertmanager -> sred) is broken",
				o.Alertname, time.UnixMilli(st.lastSeen).UTC().Format(time.RFC3339), model.Duration(o.Timeout)),
		}); err != nil {
			return id, err
		}
		w.logger.Error("Alerting pipeline broken: Watchdog heartbeat missing", "alertname", o.Alertname, "incident", id)
	}
	return id, nil
}

// notification is the synthetic Alertmanager-style notification of the
// Watchdog incident's single alert.
func (w *Watchdog) notification(o *WatchdogOptions, start time.Time, status string, ends time.Time) incident.Notification {
	opts := w.inc.Options()
	labels := map[string]string{
		"alertname":        PipelineBrokenAlertname,
		"watchdog":         o.Alertname,
		opts.SeverityLabel: criticalValue(opts),
	}
	if len(opts.ServiceLabels) > 0 {
		labels[opts.ServiceLabels[0]] = "alerting-pipeline"
	}
	ann := map[string]string{
		"summary": "Alerting pipeline broken: no " + o.Alertname + " heartbeat for " + model.Duration(o.Timeout).String(),
		"description": "The always-firing " + o.Alertname + " alert has not reached sred. Alerts may not be " +
			"delivered: check Prometheus, its connection to Alertmanager, and Alertmanager's route to sred.",
	}
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return incident.Notification{
		Receiver: "sred", Status: status, GroupKey: WatchdogGroupPrefix + o.Alertname,
		GroupLabels:  map[string]string{"alertname": PipelineBrokenAlertname},
		CommonLabels: labels, CommonAnnotations: ann,
		Alerts: []incident.NotifiedAlert{{
			Status: status, Labels: labels, Annotations: ann, StartsAt: start, EndsAt: ends,
			Fingerprint: ls.Fingerprint().String(),
		}},
	}
}

// criticalValue returns a severity label value that maps to CRITICAL.
func criticalValue(opts incident.Options) string {
	keys := make([]string, 0, len(opts.SeverityMap))
	for k, v := range opts.SeverityMap {
		if v == incident.SeverityCritical {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "critical" {
			return k
		}
	}
	if len(keys) > 0 {
		return keys[0]
	}
	return "critical"
}

// Run checks every interval until ctx ends.
func (w *Watchdog) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.logger.Error("Watchdog check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
