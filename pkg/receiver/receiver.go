// Package receiver accepts Alertmanager webhook deliveries
// (POST /api/v1/webhook/alertmanager) and applies them to the incident store.
//
// The payload type is this package's own struct, checked against payloads
// recorded from a real Alertmanager (testdata/); importing Alertmanager's
// notify/webhook package would pull in most of Alertmanager.
//
// A delivery is answered 200 only after it is committed; bad input gets a
// 4xx naming the problem (Alertmanager does not retry 4xx) and changes
// nothing; a store failure gets 503 so that Alertmanager retries.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/web"
)

// Path is where Alertmanager posts.
const Path = "/api/v1/webhook/alertmanager"

// Message is the body Alertmanager's webhook integration posts (version 4).
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// SupportedVersion is the webhook payload version understood.
const SupportedVersion = "4"

// Validate checks a message and says what is wrong with it.
func (m *Message) Validate() error {
	if m.Version == "" {
		return errors.New(`missing "version"`)
	}
	if m.Version != SupportedVersion {
		return fmt.Errorf("unsupported payload version %s (want %q)", limits.Quote(m.Version), SupportedVersion)
	}
	if m.GroupKey == "" {
		return errors.New(`missing "groupKey"`)
	}
	if p := incident.ReservedGroupPrefix(m.GroupKey); p != "" {
		return fmt.Errorf(`"groupKey" starts with %q, which sred keeps for the incidents it opens itself`, p)
	}
	if m.Status != "firing" && m.Status != "resolved" {
		return fmt.Errorf(`invalid "status" %s (want firing or resolved)`, limits.Quote(m.Status))
	}
	if m.Receiver == "" {
		return errors.New(`missing "receiver"`)
	}
	if len(m.Alerts) == 0 {
		return errors.New(`missing "alerts": a notification carries at least one alert`)
	}
	for i, a := range m.Alerts {
		if err := a.validate(); err != nil {
			return fmt.Errorf("alerts[%d]: %w", i, err)
		}
	}
	if err := m.sameFingerprints(); err != nil {
		return err
	}
	if err := validLabels(m.GroupLabels); err != nil {
		return fmt.Errorf("groupLabels: %w", err)
	}
	if err := validLabels(m.CommonLabels); err != nil {
		return fmt.Errorf("commonLabels: %w", err)
	}
	// Times outside the years 1 to 9999 UTC, NUL bytes and invalid UTF-8:
	// neither JSON nor both backends represent them.
	return limits.Check(m)
}

// Limit applies the size limits l to m (see limits.Webhook): it refuses
// long label names and too many labels, and truncates long values and
// large groups. It returns how many values each limit cut (nil when none
// was). It allocates nothing for a delivery within the limits.
func (m *Message) Limit(l limits.Webhook) (map[string]int, error) {
	var cut map[string]int
	names := func(field string, i int, ls map[string]string) error {
		if i >= 0 {
			field = fmt.Sprintf("alerts[%d].labels", i)
		}
		if len(ls) > l.MaxLabelsPerAlert {
			return fmt.Errorf("%s: %d labels, more than webhook.limits.max_labels_per_alert (%d)", field, len(ls), l.MaxLabelsPerAlert)
		}
		for k := range ls {
			if len(k) > l.MaxLabelNameBytes {
				return fmt.Errorf("%s: label name %s is longer than webhook.limits.max_label_name_bytes (%d)", field, limits.Quote(k), l.MaxLabelNameBytes)
			}
		}
		return nil
	}
	// tooLong reports whether ls breaks a names limit, without building
	// the field's name that only an error needs.
	tooLong := func(ls map[string]string) bool {
		if len(ls) > l.MaxLabelsPerAlert {
			return true
		}
		for k := range ls {
			if len(k) > l.MaxLabelNameBytes {
				return true
			}
		}
		return false
	}
	add := func(limit string, n int) {
		if cut == nil {
			cut = map[string]int{}
		}
		cut[limit] += n
	}
	values := func(set map[string]string, max int, limit string) {
		for k, v := range set {
			if t, ok := limits.Truncate(v, max); ok {
				set[k] = t
				add(limit, 1)
			}
		}
	}
	for i := range m.Alerts {
		if tooLong(m.Alerts[i].Labels) {
			return nil, names("", i, m.Alerts[i].Labels)
		}
	}
	if tooLong(m.GroupLabels) {
		return nil, names("groupLabels", -1, m.GroupLabels)
	}
	if tooLong(m.CommonLabels) {
		return nil, names("commonLabels", -1, m.CommonLabels)
	}
	if n := len(m.Alerts); n > l.MaxAlertsPerGroup {
		m.TruncatedAlerts += uint64(n - l.MaxAlertsPerGroup)
		m.Alerts = m.Alerts[:l.MaxAlertsPerGroup]
		add("alerts_per_group", n-l.MaxAlertsPerGroup)
	}
	for i := range m.Alerts {
		a := &m.Alerts[i]
		values(a.Labels, l.MaxLabelValueBytes, "label_value")
		values(a.Annotations, l.MaxAnnotationValueBytes, "annotation_value")
		if t, ok := limits.Truncate(a.GeneratorURL, l.MaxAnnotationValueBytes); ok {
			a.GeneratorURL = t
			add("annotation_value", 1)
		}
	}
	values(m.GroupLabels, l.MaxLabelValueBytes, "label_value")
	values(m.CommonLabels, l.MaxLabelValueBytes, "label_value")
	values(m.CommonAnnotations, l.MaxAnnotationValueBytes, "annotation_value")
	// The receiver's name is stored with every incident of the group and
	// answered in every incident list: cut as a label value.
	if t, ok := limits.Truncate(m.Receiver, l.MaxLabelValueBytes); ok {
		m.Receiver = t
		add("receiver", 1)
	}
	if k, ok := limits.GroupKey(m.GroupKey); ok {
		m.GroupKey = k
		add("group_key", 1)
	}
	return cut, nil
}

func (a *Alert) validate() error {
	if a.Status != "firing" && a.Status != "resolved" {
		return fmt.Errorf(`invalid "status" %s (want firing or resolved)`, limits.Quote(a.Status))
	}
	if a.Fingerprint == "" {
		return errors.New(`missing "fingerprint"`)
	}
	if len(a.Fingerprint) > 64 {
		return fmt.Errorf(`"fingerprint" longer than 64 characters`)
	}
	if a.StartsAt.IsZero() {
		return errors.New(`missing "startsAt"`)
	}
	if len(a.Labels) == 0 {
		return errors.New(`missing "labels"`)
	}
	if err := validLabels(a.Labels); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if a.Status == "resolved" && !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
		return fmt.Errorf(`"endsAt" %s is before "startsAt" %s`, a.EndsAt.Format(time.RFC3339), a.StartsAt.Format(time.RFC3339))
	}
	return nil
}

// pairwiseFingerprints is the number of alerts up to which
// sameFingerprints compares every pair rather than building a map: a
// usual delivery allocates nothing for the check.
const pairwiseFingerprints = 64

// sameFingerprints refuses two alerts of the delivery with one fingerprint
// and different labels. Alertmanager's fingerprint is the hash of an
// alert's labels, so such a delivery is not Alertmanager's, and the
// incident service, which takes the alerts of one fingerprint and start
// for copies of one alert, would keep one and drop the others unsaid.
func (m *Message) sameFingerprints() error {
	differ := func(i, j int) error {
		a, b := &m.Alerts[i], &m.Alerts[j]
		if maps.Equal(a.Labels, b.Labels) {
			return nil
		}
		return fmt.Errorf(`alerts[%d]: "fingerprint" %q is also that of alerts[%d], whose labels differ (an alert's fingerprint identifies its labels)`, j, b.Fingerprint, i)
	}
	if len(m.Alerts) <= pairwiseFingerprints {
		for j := 1; j < len(m.Alerts); j++ {
			for i := range j {
				if m.Alerts[i].Fingerprint == m.Alerts[j].Fingerprint {
					if err := differ(i, j); err != nil {
						return err
					}
					break
				}
			}
		}
		return nil
	}
	first := make(map[string]int, len(m.Alerts))
	for j := range m.Alerts {
		i, ok := first[m.Alerts[j].Fingerprint]
		if !ok {
			first[m.Alerts[j].Fingerprint] = j
			continue
		}
		if err := differ(i, j); err != nil {
			return err
		}
	}
	return nil
}

func validLabels(ls map[string]string) error {
	for k := range ls {
		if !model.LabelName(k).IsValid() {
			return fmt.Errorf("invalid label name %s", limits.Quote(k))
		}
	}
	return nil
}

// Notification converts the message for the incident service.
func (m *Message) Notification() incident.Notification {
	n := incident.Notification{
		Receiver: m.Receiver, Status: m.Status, GroupKey: m.GroupKey,
		GroupLabels: m.GroupLabels, CommonLabels: m.CommonLabels, CommonAnnotations: m.CommonAnnotations,
		ExternalURL: m.ExternalURL, TruncatedAlerts: int(min(m.TruncatedAlerts, 1<<31)),
	}
	n.Alerts = make([]incident.NotifiedAlert, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		ends := a.EndsAt
		if ends.Year() <= 1 {
			ends = time.Time{}
		}
		n.Alerts = append(n.Alerts, incident.NotifiedAlert{
			Status: a.Status, Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, EndsAt: ends, GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint,
		})
	}
	return n
}

// Ingester applies notifications; *incident.Service implements it.
type Ingester interface {
	Ingest(ctx context.Context, n incident.Notification) (*incident.IngestResult, error)
}

// Heartbeats recognises the always-firing heartbeat (Watchdog) alert and
// records its arrival; *reconcile.Watchdog implements it. Heartbeat alerts
// are kept out of incidents.
type Heartbeats interface {
	// IsHeartbeat reports whether labels are those of the heartbeat alert.
	IsHeartbeat(labels map[string]string) bool
	// Observe records a heartbeat if a firing heartbeat alert is among
	// alerts, and reports whether one was.
	Observe(ctx context.Context, alerts []incident.NotifiedAlert) (bool, error)
}

// Options configure the handler; they can change on reload.
type Options struct {
	// BearerToken, when set, is required as "Authorization: Bearer
	// <token>"; a token file is read at each delivery.
	BearerToken secretfile.Source
	// MaxBodyBytes bounds a delivery's body.
	MaxBodyBytes int64
	// Limits bound label, annotation and group sizes (the zero value:
	// limits.DefaultWebhook).
	Limits limits.Webhook
}

// Handler serves the webhook endpoint.
type Handler struct {
	ing    Ingester
	logger *slog.Logger

	mu   sync.RWMutex
	opts Options
	hb   Heartbeats

	requests *prometheus.CounterVec
	limited  *prometheus.CounterVec
	// ok counts the 200 answers, looked up once rather than per delivery.
	ok prometheus.Counter

	// Clock tells the time deliveries are checked against (clock.Real;
	// tests set a clock.Manual before use).
	Clock clock.Clock
}

// MaxAheadOfClock is how far after sred's clock an alert's startsAt, or a
// resolved alert's endsAt, may be. Prometheus sets them from its own
// clock, so a later time means one of the clocks is wrong, or the
// delivery is not Alertmanager's (startsAt 9999-12-31): stored, it would be
// the incident's detection time and poison the incident duration
// histograms (sre_incident_time_to_recover_seconds) for good.
const MaxAheadOfClock = 24 * time.Hour

// AheadOfClock returns an error when an alert of the given status starts,
// or a resolved one ends, more than MaxAheadOfClock after now. Every way
// an alert of Alertmanager reaches sred checks it: the main webhook, the
// Watchdog webhook (both answer 400) and the polls of Alertmanager's
// alerts (pkg/reconcile skips the alert and logs it).
func AheadOfClock(status string, startsAt, endsAt, now time.Time) error {
	field, t := "startsAt", startsAt
	if status == "resolved" && endsAt.After(t) {
		field, t = "endsAt", endsAt
	}
	if t.After(now.Add(MaxAheadOfClock)) {
		return fmt.Errorf(`%q %s is more than 24 hours after sred's clock (%s): the clock of Prometheus or of sred is wrong`,
			field, t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// MinStartsAt is the earliest startsAt sred takes: Prometheus did not exist
// before it, so an earlier start (1970-01-01, a client's zero time) means
// the clock of Prometheus is wrong or the delivery is not Alertmanager's.
// Stored, it would be the incident's start and add decades to the
// detection histogram (sre_incident_detection_seconds) for good.
var MinStartsAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BeforeMinStartsAt returns an error when startsAt is before MinStartsAt.
// Every way an alert of Alertmanager reaches sred checks it, as
// AheadOfClock. An endsAt is not checked: Alertmanager sends
// 0001-01-01T00:00:00Z for a firing alert's unset end.
func BeforeMinStartsAt(startsAt time.Time) error {
	if startsAt.Before(MinStartsAt) {
		return fmt.Errorf(`"startsAt" %s is before %s, earlier than any Prometheus: the clock of Prometheus is wrong`,
			startsAt.UTC().Format(time.RFC3339), MinStartsAt.Format(time.RFC3339))
	}
	return nil
}

// CheckTimes refuses an alert that starts before MinStartsAt
// (BeforeMinStartsAt), or that starts, or a resolved alert that ends, more
// than MaxAheadOfClock after now (AheadOfClock), naming the alert.
func (m *Message) CheckTimes(now time.Time) error {
	for i := range m.Alerts {
		a := &m.Alerts[i]
		if err := BeforeMinStartsAt(a.StartsAt); err != nil {
			return fmt.Errorf("alerts[%d]: %w", i, err)
		}
		if err := AheadOfClock(a.Status, a.StartsAt, a.EndsAt, now); err != nil {
			return fmt.Errorf("alerts[%d]: %w", i, err)
		}
	}
	return nil
}

// SetHeartbeats makes the handler recognise heartbeat alerts in every
// delivery (nil: none are).
func (h *Handler) SetHeartbeats(hb Heartbeats) {
	h.mu.Lock()
	h.hb = hb
	h.mu.Unlock()
}

// NewHandler returns the webhook handler.
func NewHandler(ing Ingester, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		ing: ing, logger: logger, opts: opts, Clock: clock.Real{},
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "sre_webhook_requests_total",
			Help: "Requests to the Alertmanager webhook endpoint, by HTTP status code (e.g. 200, 400, 413).",
		}, []string{"code"}),
		limited: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "sre_webhook_limited_total",
			Help: "Values of deliveries cut by webhook.limits: label_value, annotation_value (values truncated), alerts_per_group (alerts left out), group_key (a group key over 1,024 bytes stored as its head and digest), receiver (a receiver name over max_label_value_bytes, cut as a label value).",
		}, []string{"limit"}),
	}
	// The answers of a healthy and of a failing store are exported at zero
	// from the start (docs/metrics.md): an error-rate alert has its
	// denominator and a 5xx series before the first request.
	for _, code := range []int{http.StatusOK, http.StatusBadRequest, http.StatusServiceUnavailable} {
		h.requests.WithLabelValues(strconv.Itoa(code))
	}
	h.ok = h.requests.WithLabelValues("200")
	return h
}

// SetOptions replaces the options (on config reload).
func (h *Handler) SetOptions(o Options) {
	h.mu.Lock()
	h.opts = o
	h.mu.Unlock()
}

func (h *Handler) options() (Options, Heartbeats) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.opts, h.hb
}

func (h *Handler) fail(w http.ResponseWriter, code int, typ string, err error) {
	h.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	web.Error(w, code, typ, err)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	opts, hb := h.options()
	msg, rerr := DecodeRequest(w, r, opts.BearerToken, opts.MaxBodyBytes)
	if rerr != nil {
		if rerr.Cause != nil {
			h.logger.Error("Check webhook delivery", "err", rerr.Cause)
		}
		h.fail(w, rerr.Code, rerr.Type, rerr)
		return
	}
	if err := msg.CheckTimes(h.Clock.Now()); err != nil {
		h.fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid webhook payload: %w", err))
		return
	}
	lim := opts.Limits
	if lim == (limits.Webhook{}) {
		lim = limits.DefaultWebhook
	}
	cut, err := msg.Limit(lim)
	if err != nil {
		h.fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("invalid webhook payload: %w", err))
		return
	}
	for limit, n := range cut {
		h.limited.WithLabelValues(limit).Add(float64(n))
	}
	n := msg.Notification()
	beats := 0
	if hb != nil {
		var err error
		if n, beats, err = splitHeartbeats(r.Context(), hb, n); err != nil {
			h.logger.Error("Record heartbeat", "group_key", msg.GroupKey, "err", err)
			h.fail(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("record the heartbeat: %w", err))
			return
		}
		if len(n.Alerts) == 0 {
			// Only heartbeats: they never become incidents.
			h.ok.Inc()
			web.JSON(w, http.StatusOK, &incident.IngestResult{Incidents: []string{}, Alerts: map[string]int{"heartbeat": beats}})
			return
		}
	}
	res, err := h.ing.Ingest(r.Context(), n)
	if err != nil {
		h.logger.Error("Apply webhook delivery", "group_key", msg.GroupKey, "err", err)
		h.fail(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("store the delivery: %w", err))
		return
	}
	if beats > 0 {
		res.Alerts["heartbeat"] = beats
	}
	h.ok.Inc()
	web.JSON(w, http.StatusOK, res)
}

// splitHeartbeats records the heartbeat if n carries one and returns n
// without its heartbeat alerts, and how many it had. When some were taken
// out, the group's status and common labels and annotations are computed
// again from the remaining alerts, as Alertmanager would have for a group
// without them.
func splitHeartbeats(ctx context.Context, hb Heartbeats, n incident.Notification) (incident.Notification, int, error) {
	if !slices.ContainsFunc(n.Alerts, func(a incident.NotifiedAlert) bool { return hb.IsHeartbeat(a.Labels) }) {
		return n, 0, nil // the usual case: nothing to split
	}
	var beats, rest []incident.NotifiedAlert
	for _, a := range n.Alerts {
		if hb.IsHeartbeat(a.Labels) {
			beats = append(beats, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(beats) == 0 {
		return n, 0, nil
	}
	if _, err := hb.Observe(ctx, beats); err != nil {
		return n, 0, err
	}
	n.Alerts = rest
	if len(rest) > 0 {
		n.Status = "resolved"
		ls := make([]map[string]string, len(rest))
		as := make([]map[string]string, len(rest))
		for i, a := range rest {
			if a.Status == "firing" {
				n.Status = "firing"
			}
			ls[i], as[i] = a.Labels, a.Annotations
		}
		n.CommonLabels, n.CommonAnnotations = common(ls), common(as)
	}
	return n, len(beats), nil
}

// common returns the pairs every set has.
func common(sets []map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range sets[0] {
		all := true
		for _, s := range sets[1:] {
			if w, ok := s[k]; !ok || w != v {
				all = false
				break
			}
		}
		if all {
			out[k] = v
		}
	}
	return out
}
