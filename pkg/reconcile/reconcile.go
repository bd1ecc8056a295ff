// Package reconcile keeps sred's incidents in step with Alertmanager.
//
// Webhook deliveries can miss resolves: a receiver with send_resolved: false
// never sends them, max_alerts truncation drops alerts from a delivery, and a
// delivery can be lost for good after Alertmanager gives up retrying. The
// Reconciler polls Alertmanager's API v2 (/api/v2/alerts) and resolves, through
// the incident service, every alert of an Alertmanager group that sred still
// holds as firing and Alertmanager no longer has. The Silencer creates silences in Alertmanager
// for acknowledged incidents and expires them on resolve. The Watchdog opens a
// CRITICAL "alerting pipeline broken" incident when the always-firing
// heartbeat alert stops arriving.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
)

// Actor names sred's reconciliation in timelines.
const Actor = "reconciler"

// Options tune the Reconciler.
type Options struct {
	// MissingPolls is how many successive polls an alert must be absent
	// from Alertmanager before sred resolves it (at least 1). Alertmanager
	// keeps alerts in memory only: right after it restarts, it has none
	// until Prometheus sends them again, and one empty answer must not
	// resolve every incident. Default 2.
	MissingPolls int
	// RestartGrace: a poll counts no alert as missing while Alertmanager
	// started less than this long ago (its /api/v2/status uptime). Prometheus
	// sends a firing alert again only every resend_delay (1m), at its next
	// rule evaluation after that: up to two minutes with a one-minute
	// evaluation interval, so two successive polls a minute apart may both
	// come before it. 0 turns the check off; sred uses DefaultRestartGrace.
	RestartGrace time.Duration
}

// DefaultRestartGrace is the RestartGrace sred uses: Prometheus's resend
// delay (1m) plus an evaluation interval of up to two minutes.
const DefaultRestartGrace = 3 * time.Minute

// Reconciler resolves the alerts Alertmanager no longer has.
type Reconciler struct {
	am       Alertmanager
	inc      *incident.Service
	watchdog *Watchdog
	logger   *slog.Logger
	opts     Options
	m        *metrics

	mu      sync.Mutex
	missing map[missingKey]missingSince
	// refiring counts the successive polls that found active in
	// Alertmanager an episode sred holds as resolved.
	refiring map[missingKey]int
	// skipped holds the episodes the last poll left out (skipOutOfRange): a
	// skipped alert is logged at the first poll that skips it only.
	skipped map[missingKey]bool

	// Clock tells the time (clock.Real; tests set a clock.Manual before use).
	Clock clock.Clock
}

type missingKey struct {
	fp     string
	starts int64
}

type missingSince struct {
	polls int
	first time.Time
}

type metrics struct {
	runs      *prometheus.CounterVec
	resolved  prometheus.Counter
	lastOK    prometheus.Gauge
	amAlerts  prometheus.Gauge
	skipped   prometheus.Gauge
	duration  prometheus.Histogram
	silences  *prometheus.CounterVec
	watchdogs *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_reconcile_runs_total",
			Help: "Polls of Alertmanager's /api/v2/alerts (success, error).",
		}, []string{"result"}),
		resolved: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_reconcile_resolved_alerts_total",
			Help: "Alerts resolved because Alertmanager no longer had them.",
		}),
		lastOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_reconcile_last_success_timestamp_seconds",
			Help: "Time of the last successful reconciliation poll.",
		}),
		amAlerts: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_reconcile_alertmanager_alerts",
			Help: "Alerts Alertmanager reported at the last successful poll.",
		}),
		skipped: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_reconcile_skipped_alerts",
			Help: "Alerts Alertmanager reported at the last poll that the poll left out: they start before 2000-01-01 or more than 24 hours after sred's clock, which the webhooks refuse.",
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_reconcile_duration_seconds",
			Help:    "Time taken by one reconciliation poll.",
			Buckets: prometheus.DefBuckets,
		}),
		silences: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_alertmanager_silence_operations_total",
			Help: "Silence operations on Alertmanager (create, expire; success, error).",
		}, []string{"operation", "result"}),
		watchdogs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_watchdog_heartbeats_total",
			Help: "Watchdog heartbeats seen (webhook, poll).",
		}, []string{"source"}),
	}
}

// Metrics are shared by the Reconciler, Silencer and Watchdog of one process.
type Metrics = metrics

// NewMetrics registers the package's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics { return newMetrics(reg) }

// NewReconciler returns a Reconciler. watchdog may be nil; when set, polls
// that find the Watchdog alert in Alertmanager count as heartbeats.
func NewReconciler(am Alertmanager, inc *incident.Service, watchdog *Watchdog, opts Options, logger *slog.Logger, m *Metrics) *Reconciler {
	if opts.MissingPolls < 1 {
		opts.MissingPolls = 2
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{am: am, inc: inc, watchdog: watchdog, logger: logger, opts: opts, m: m,
		missing: map[missingKey]missingSince{}, refiring: map[missingKey]int{}, skipped: map[missingKey]bool{}, Clock: clock.Real{}}
}

// Result says what one poll did.
type Result struct {
	// AlertmanagerAlerts is how many alerts Alertmanager reported.
	AlertmanagerAlerts int
	// Checked is how many firing alerts of open incidents were compared.
	Checked int
	// Missing counts alerts absent from Alertmanager but not yet resolved
	// (absent for fewer than MissingPolls polls, or Alertmanager started
	// less than RestartGrace ago).
	Missing int
	// Resolved lists "incident/fingerprint" of the alerts resolved.
	Resolved []string
	// Revived lists "incident/fingerprint" of the resolved alerts that
	// fire again (revive): with the start they had, or with a new start
	// Alertmanager has not delivered.
	Revived []string
	// Heartbeat is true when the Watchdog alert was found.
	Heartbeat bool
	// Skipped lists the alerts of Alertmanager left out of the poll because
	// they start before receiver.MinStartsAt or more than
	// receiver.MaxAheadOfClock after sred's clock: their identity and the
	// reason, as the webhooks answer them.
	Skipped []string
}

// skipOutOfRange returns the alerts that start at or after
// receiver.MinStartsAt and at most receiver.MaxAheadOfClock after now: the
// webhooks refuse the others (400), and the poll, with no one to answer,
// leaves them out and logs them. Alertmanager takes the times Prometheus
// (or any client of its API) gives, so an alert starting in 1970 or in the
// year 9999 reaches it as it is: revived as a new episode, it would be
// stored with that start. An alert is logged at the first poll that
// skips it, not at every poll while Alertmanager keeps it;
// sre_reconcile_skipped_alerts counts those the last poll left out.
func (r *Reconciler) skipOutOfRange(alerts []Alert, now time.Time, res *Result) []Alert {
	kept := make([]Alert, 0, len(alerts))
	skipped := map[missingKey]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range alerts {
		err := receiver.BeforeMinStartsAt(a.StartsAt)
		if err == nil {
			err = receiver.AheadOfClock("firing", a.StartsAt, a.EndsAt, now)
		}
		if err != nil {
			res.Skipped = append(res.Skipped, describe(a.Labels)+": "+err.Error())
			k := missingKey{fp: a.Fingerprint, starts: a.StartsAt.UnixMilli()}
			if !r.skipped[k] {
				r.logger.Warn("Skipped an alert of Alertmanager", "alert", describe(a.Labels), "fingerprint", a.Fingerprint, "err", err)
			}
			skipped[k] = true
			continue
		}
		kept = append(kept, a)
	}
	r.skipped = skipped
	r.m.skipped.Set(float64(len(skipped)))
	return kept
}

// IsAlertmanagerGroup reports whether a group key came from Alertmanager:
// its group keys start with the root route's key "{}". The alerts sred
// raises itself (the Watchdog's, an exhausted error budget's) use other
// keys and are never reconciled against Alertmanager, whichever incident
// they are on.
func IsAlertmanagerGroup(groupKey string) bool { return strings.HasPrefix(groupKey, "{}") }

// Reconcile polls Alertmanager once and resolves what it no longer has.
// If Alertmanager cannot be reached, nothing is resolved.
func (r *Reconciler) Reconcile(ctx context.Context) (*Result, error) {
	start := time.Now()
	res, err := r.reconcile(ctx)
	r.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		r.m.runs.WithLabelValues("error").Inc()
		return res, err
	}
	r.m.runs.WithLabelValues("success").Inc()
	r.m.lastOK.Set(float64(r.Clock.Now().Unix()))
	return res, nil
}

func (r *Reconciler) reconcile(ctx context.Context) (*Result, error) {
	now := r.Clock.Now().UTC()
	alerts, err := r.am.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{AlertmanagerAlerts: len(alerts)}
	r.m.amAlerts.Set(float64(len(alerts)))
	alerts = r.skipOutOfRange(alerts, now, res)
	active := make(map[string][]int64, len(alerts))
	for _, a := range alerts {
		active[a.Fingerprint] = append(active[a.Fingerprint], a.StartsAt.UnixMilli())
		if r.watchdog != nil && r.watchdog.IsHeartbeat(a.Labels) {
			res.Heartbeat = true
		}
	}
	if res.Heartbeat {
		if err := r.watchdog.Heartbeat(ctx, now, "poll"); err != nil {
			r.logger.Error("Record Watchdog heartbeat", "err", err)
		}
	}

	// Each alert is reconciled by its own group, not its incident's: an
	// incident holds the groups correlation attached to it, and only the
	// groups Alertmanager delivered are Alertmanager's to resolve.
	stored, err := r.inc.OpenFiringAlerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list firing alerts of open incidents: %w", err)
	}
	// Alertmanager that restarted a moment ago lacks the alerts Prometheus
	// has not sent it again yet: their absence proves nothing.
	absent := 0
	for _, a := range stored {
		if IsAlertmanagerGroup(a.GroupKey) && !hasStart(active[a.Fingerprint], a.StartsAt.UnixMilli()) {
			absent++
		}
	}
	restarted := false
	if st, ok := r.am.(starter); ok && absent > 0 && r.opts.RestartGrace > 0 {
		started, err := st.Started(ctx)
		if err != nil {
			return nil, err
		}
		restarted = now.Sub(started) < r.opts.RestartGrace
	}
	var todo []*due
	seen := map[missingKey]bool{}
	r.mu.Lock()
	for _, a := range stored {
		if !IsAlertmanagerGroup(a.GroupKey) {
			continue
		}
		res.Checked++
		k := missingKey{a.Fingerprint, a.StartsAt.UnixMilli()}
		seen[k] = true
		if hasStart(active[a.Fingerprint], k.starts) {
			delete(r.missing, k)
			continue
		}
		if restarted {
			// Counted from the first poll after the grace.
			delete(r.missing, k)
			res.Missing++
			continue
		}
		ms := r.missing[k]
		ms.polls++
		if ms.first.IsZero() {
			ms.first = now
		}
		r.missing[k] = ms
		if ms.polls < r.opts.MissingPolls {
			res.Missing++
			continue
		}
		// stored is ordered by incident.
		if len(todo) == 0 || todo[len(todo)-1].incidentID != a.IncidentID {
			todo = append(todo, &due{incidentID: a.IncidentID})
		}
		todo[len(todo)-1].alerts = append(todo[len(todo)-1].alerts, a)
	}
	for k := range r.missing {
		if !seen[k] {
			delete(r.missing, k)
		}
	}
	r.mu.Unlock()

	for _, d := range todo {
		resolved, err := r.resolve(ctx, d.incidentID, d.alerts, now)
		if err != nil {
			return res, err
		}
		r.mu.Lock()
		for _, a := range d.alerts {
			delete(r.missing, missingKey{a.Fingerprint, a.StartsAt.UnixMilli()})
		}
		for _, a := range resolved {
			res.Resolved = append(res.Resolved, d.incidentID+"/"+a.Fingerprint)
		}
		r.mu.Unlock()
		r.m.resolved.Add(float64(len(resolved)))
	}
	if err := r.revive(ctx, alerts, seen, now, res); err != nil {
		return res, err
	}
	return res, nil
}

// ReviveLookback is how long after an alert episode ended the reconciler
// still revives it when Alertmanager holds it active again.
const ReviveLookback = 24 * time.Hour

// revive re-opens the alert episodes sred holds as resolved that
// Alertmanager holds active (not silenced nor inhibited) with the same
// start, in MissingPolls successive polls. Prometheus sends a firing alert
// again with the start it had: when it stopped sending for longer than the
// alert's validity (4 x resend_delay: a restart, failing rule
// evaluations), Alertmanager resolved the alert and told sred, and its
// firing deliveries afterwards, with the same start, are taken for late
// ones (out of order). Alertmanager's state decides instead. open holds
// the episodes of open incidents seen firing in this poll.
func (r *Reconciler) revive(ctx context.Context, alerts []Alert, open map[missingKey]bool, now time.Time, res *Result) error {
	active := map[missingKey]Alert{}
	var fps []string
	for _, a := range alerts {
		k := missingKey{a.Fingerprint, a.StartsAt.UnixMilli()}
		if _, dup := active[k]; a.State != "active" || open[k] || dup {
			continue
		}
		active[k] = a
		fps = append(fps, a.Fingerprint)
	}
	var stored []incident.FiringAlert
	if len(fps) > 0 {
		var err error
		if stored, err = r.inc.ResolvedAlerts(ctx, now.Add(-ReviveLookback), fps); err != nil {
			return err
		}
	}
	var due []incident.FiringAlert
	// The latest resolved episode of each fingerprint, and the episodes
	// stored resolved: an active episode of Alertmanager that is neither
	// is a new one (fresh), which Alertmanager may never deliver (below).
	latest := map[string]incident.FiringAlert{}
	known := map[missingKey]bool{}
	for _, a := range stored {
		if !IsAlertmanagerGroup(a.GroupKey) {
			continue
		}
		known[missingKey{a.Fingerprint, a.StartsAt.UnixMilli()}] = true
		if l, ok := latest[a.Fingerprint]; !ok || a.StartsAt.After(l.StartsAt) {
			latest[a.Fingerprint] = a
		}
	}
	var fresh []incident.FiringAlert
	r.mu.Lock()
	seen := map[missingKey]bool{}
	for _, a := range stored {
		k := missingKey{a.Fingerprint, a.StartsAt.UnixMilli()}
		if _, ok := active[k]; !ok || !IsAlertmanagerGroup(a.GroupKey) {
			continue
		}
		seen[k] = true
		r.refiring[k]++
		if r.refiring[k] >= r.opts.MissingPolls {
			due = append(due, a)
		}
	}
	// An alert that resolved and fired again between two flushes of its
	// group: Alertmanager notifies a group only when the fingerprints it
	// has firing change (or every repeat_interval), so it sends neither
	// the resolve nor the new episode. When sred resolved the old episode
	// (a poll missed it), the new one, with a later start, comes from
	// Alertmanager's state as a firing notification of the old episode's
	// group: the incident re-opens (flapping) as with a delivery.
	for k, am := range active {
		l, ok := latest[k.fp]
		if !ok || known[k] || k.starts <= l.StartsAt.UnixMilli() {
			continue
		}
		seen[k] = true
		r.refiring[k]++
		if r.refiring[k] >= r.opts.MissingPolls {
			fresh = append(fresh, incident.FiringAlert{GroupKey: l.GroupKey, IncidentID: l.IncidentID,
				Fingerprint: k.fp, StartsAt: am.StartsAt, Labels: am.Labels})
		}
	}
	sort.Slice(fresh, func(i, j int) bool {
		if fresh[i].GroupKey != fresh[j].GroupKey {
			return fresh[i].GroupKey < fresh[j].GroupKey
		}
		return fresh[i].Fingerprint < fresh[j].Fingerprint
	})
	for k := range r.refiring {
		if !seen[k] {
			delete(r.refiring, k)
		}
	}
	r.mu.Unlock()
	if err := r.refire(ctx, due, true, now, res); err != nil {
		return err
	}
	return r.refire(ctx, fresh, false, now, res)
}

// refire applies episodes Alertmanager has firing as firing notifications
// of their groups (as) ordered by group: the stored episodes sent again
// with their start (revive) or new episodes (not revive).
func (r *Reconciler) refire(ctx context.Context, due []incident.FiringAlert, revive bool, now time.Time, res *Result) error {
	for i := 0; i < len(due); {
		j := i + 1
		for j < len(due) && due[j].GroupKey == due[i].GroupKey {
			j++
		}
		group := due[i:j]
		n := incident.Notification{Status: "firing", GroupKey: group[0].GroupKey, CommonLabels: commonLabels(group), Actor: Actor, Revive: revive}
		for _, a := range group {
			n.Alerts = append(n.Alerts, incident.NotifiedAlert{Status: "firing", Labels: a.Labels, StartsAt: a.StartsAt, Fingerprint: a.Fingerprint})
		}
		got, err := r.inc.Ingest(ctx, n)
		if err != nil {
			return fmt.Errorf("revive alerts of group %s: %w", n.GroupKey, err)
		}
		names := make([]string, 0, len(group))
		for _, a := range group {
			names = append(names, describe(a.Labels))
		}
		sort.Strings(names)
		msg := fmt.Sprintf("Alertmanager has %s firing again that sred held as resolved (sent again with the same start): %s",
			english.Count(len(group), "alert", "alerts"), strings.Join(names, "; "))
		if !revive {
			msg = fmt.Sprintf("Alertmanager has %s firing again with a new start that it has not delivered: %s",
				english.Count(len(group), "alert", "alerts"), strings.Join(names, "; "))
		}
		for _, id := range got.Incidents {
			if got.Duplicate {
				break // stored meanwhile (a delivery): nothing happened
			}
			if err := r.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
				IncidentID: id, Time: now, Kind: "reconcile", Actor: Actor, Message: msg,
			}); err != nil {
				return fmt.Errorf("record revival in %s: %w", id, err)
			}
		}
		r.mu.Lock()
		for _, a := range group {
			delete(r.refiring, missingKey{a.Fingerprint, a.StartsAt.UnixMilli()})
			id := a.IncidentID
			if !revive && len(got.Incidents) > 0 {
				id = got.Incidents[0] // a new episode's incident
			}
			if !got.Duplicate {
				res.Revived = append(res.Revived, id+"/"+a.Fingerprint)
			}
		}
		r.mu.Unlock()
		if !got.Duplicate {
			r.logger.Info("Revived alerts Alertmanager has firing again", "group", n.GroupKey, "alerts", len(group), "new_start", !revive)
		}
		i = j
	}
	return nil
}

// hasStart reports whether Alertmanager holds the episode starting at
// starts (unix ms). A different startsAt for the same fingerprint is a
// newer episode: the stored one ended.
func hasStart(starts []int64, want int64) bool {
	for _, s := range starts {
		if s == want {
			return true
		}
	}
	return false
}

// due are the alerts of an incident Alertmanager no longer has, ordered by
// group.
type due struct {
	incidentID string
	alerts     []incident.FiringAlert
}

// resolve feeds Alertmanager's verdict to the incident service as a
// resolved notification of each alert's own group, so that the same
// idempotent path as webhook deliveries applies it (alert episodes resolved,
// recovery time set, the incident resolved when all its alerts have and
// auto_resolve is on), then records why in the incident's timeline.
// It returns the alerts it resolved: not those of a group whose resolve
// changed nothing, because another replica's poll or a delivery of the
// resolve stored it after this poll read the firing alerts.
func (r *Reconciler) resolve(ctx context.Context, incidentID string, alerts []incident.FiringAlert, now time.Time) ([]incident.FiringAlert, error) {
	var resolved []incident.FiringAlert
	for i := 0; i < len(alerts); {
		j := i + 1
		for j < len(alerts) && alerts[j].GroupKey == alerts[i].GroupKey {
			j++
		}
		group := alerts[i:j]
		// Actor: the change is the reconciler's, in the timeline and for
		// the group's last Alertmanager delivery (left as it was).
		n := incident.Notification{Status: "resolved", GroupKey: group[0].GroupKey, CommonLabels: commonLabels(group), Actor: Actor}
		for _, a := range group {
			// The alert ended at some time between the last poll that saw
			// it and the first that did not; sred records the poll time.
			n.Alerts = append(n.Alerts, incident.NotifiedAlert{
				Status: "resolved", Labels: a.Labels, StartsAt: a.StartsAt, EndsAt: now, Fingerprint: a.Fingerprint,
			})
		}
		got, err := r.inc.Ingest(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("resolve missing alerts of %s (group %s): %w", incidentID, n.GroupKey, err)
		}
		if !got.Duplicate {
			resolved = append(resolved, group...)
		}
		i = j
	}
	if len(resolved) == 0 {
		return nil, nil
	}
	alerts = resolved
	names := make([]string, 0, len(alerts))
	fps := make([]string, 0, len(alerts))
	for _, a := range alerts {
		names = append(names, describe(a.Labels))
		fps = append(fps, a.Fingerprint)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("Alertmanager no longer has %s sred held as firing (resolve not received): %s",
		english.Count(len(alerts), "alert", "alerts"), strings.Join(names, "; "))
	if err := r.inc.AddTimeline(ctx, nil, incident.TimelineEntry{
		IncidentID: incidentID, Time: now, Kind: "reconcile", Actor: Actor, Message: msg,
		Data: map[string]any{"fingerprints": fps},
	}); err != nil {
		return nil, fmt.Errorf("record reconciliation of %s: %w", incidentID, err)
	}
	r.logger.Info("Resolved alerts missing from Alertmanager", "incident", incidentID, "alerts", len(alerts))
	return resolved, nil
}

// commonLabels returns the labels every alert of as has, with the same
// value (as Alertmanager's commonLabels).
func commonLabels(as []incident.FiringAlert) map[string]string {
	out := map[string]string{}
	for k, v := range as[0].Labels {
		out[k] = v
	}
	for _, a := range as[1:] {
		for k, v := range out {
			if a.Labels[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// Run polls every interval until ctx ends. Poll errors are logged, not fatal.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("Reconcile with Alertmanager", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// describe renders an alert's identity as alertname{k="v", ...}.
func describe(labels map[string]string) string {
	var b strings.Builder
	b.WriteString(labels["alertname"])
	var parts []string
	for _, k := range sortedKeys(labels) {
		if k == "alertname" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	if len(parts) > 0 {
		b.WriteString("{" + strings.Join(parts, ", ") + "}")
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
