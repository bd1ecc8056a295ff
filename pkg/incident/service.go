package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/loglimit"
	"github.com/rootuip/sre/pkg/store"
)

// ErrNotFound is returned for an unknown incident ID.
var ErrNotFound = errors.New("incident not found")

// notFound is ErrNotFound naming id, cut at limits.MaxEchoBytes: the id of
// a request (a URL's path, a body) of thousands of characters never comes
// back whole in the answer.
func notFound(id string) error {
	return fmt.Errorf("%w: %s", ErrNotFound, limits.Cut(id))
}

// ErrGroupNotFound is returned for an alert group sred has not stored (a
// split naming an unknown group key): not "incident not found", since the
// incident is there.
var ErrGroupNotFound = errors.New("alert group not found")

// ErrInvalidTransition is matched (errors.Is) by every *TransitionError.
var ErrInvalidTransition = errors.New("invalid status transition")

// TransitionError rejects a lifecycle change; the API answers 409 with it.
type TransitionError struct {
	ID     string
	From   Status
	Action string
	Reason string
}

// Error implements error.
func (e *TransitionError) Error() string {
	return fmt.Sprintf("cannot %s incident %s: %s", e.Action, e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// Options tune the service; they come from the `incidents` and `global`
// sections of sred.yml and can change on reload (SetOptions).
type Options struct {
	// IDPrefix prefixes incident IDs ("INC").
	IDPrefix string
	// ServiceLabels are tried in order to name the service.
	ServiceLabels []string
	// SeverityLabel carries the severity; SeverityMap maps its lower-cased
	// values; DefaultSeverity applies otherwise.
	SeverityLabel   string
	SeverityMap     map[string]Severity
	DefaultSeverity Severity
	// AutoResolve resolves an incident when all its alerts have resolved.
	AutoResolve bool
	// AutoResolveAfter resolves an open incident whose group has had no
	// Alertmanager delivery for this long (0: off; see ResolveQuiet).
	AutoResolveAfter time.Duration
	// FlapWindow: firing again within this time of the resolution re-opens
	// the incident, flagged as flapping.
	FlapWindow time.Duration
	// FlapThreshold damps flapping: the re-opening (within FlapWindow)
	// that brings an incident's re-openings to this number, and every later
	// one, does not restart escalation at once but FlapWindow later, if the
	// incident is still open then (ChangeFlapping instead of
	// ChangeReopened). 0 never damps.
	FlapThreshold int
	// TitleTemplate and StatusUpdateTemplate are Go text/templates.
	TitleTemplate        string
	StatusUpdateTemplate string
	// ExternalURL is where users reach sred.
	ExternalURL string
	// WebhookLimits are the webhook.limits of sred.yml, the sizes the
	// alerts' label names and values, annotations and receivers were cut
	// to when they were delivered: an import refuses a line that carries
	// larger ones (limits.DefaultWebhook when zero).
	WebhookLimits limits.Webhook
}

// DefaultOptions are the options of an empty sred.yml.
func DefaultOptions() Options {
	return Options{
		IDPrefix:      "INC",
		ServiceLabels: []string{"service", "job"},
		SeverityLabel: "severity",
		SeverityMap: map[string]Severity{
			"critical": SeverityCritical, "page": SeverityCritical,
			"high": SeverityHigh, "error": SeverityHigh,
			"warning": SeverityMedium, "medium": SeverityMedium,
			"low": SeverityLow, "info": SeverityLow,
		},
		DefaultSeverity:      SeverityMedium,
		AutoResolve:          true,
		FlapWindow:           time.Hour,
		FlapThreshold:        2,
		TitleTemplate:        DefaultTitleTemplate,
		StatusUpdateTemplate: DefaultStatusUpdateTemplate,
	}
}

// Service stores incidents and applies their lifecycle. It is safe for
// concurrent use, and several Services (replicas) may share one PostgreSQL
// database: every decision is taken under database locks, not in memory.
type Service struct {
	// exportParts are the other subsystems' parts of exported incidents.
	exportParts []namedPart
	// importHooks run inside imports' transactions.
	importHooks []ImportHook
	// statusUpdateHooks run inside status updates' transactions.
	statusUpdateHooks []StatusUpdateHook
	// statusPage returns the status page's URL, the default link of
	// status updates (nil or "": none).
	statusPage func() string
	db         *store.DB
	hooks      func() []Hook
	bus        *events.Bus
	logger     *slog.Logger
	m          *metrics

	mu   sync.RWMutex
	opts Options

	// stmts caches prepared statements by SQL text (see prepared).
	stmts     sync.Map
	stmtCount atomic.Int64
	// preparing holds the statements being prepared in the background.
	preparing sync.Map
	// anon caches anonymous (SQLite texts with ? parameters).
	anon sync.Map

	// Deliveries answered as duplicates, by group key: when each group was
	// last delivered, written to alert_groups by FlushDeliveries.
	seenMu sync.Mutex
	seen   map[string]int64

	// corr is the correlation in force (SetCorrelation); nil: none.
	corr atomic.Pointer[Correlation]
	// live gives the entries TimelineView adds at read time
	// (SetLiveTimeline); nil: none.
	live atomic.Pointer[LiveTimeline]
	// liveLog holds back the log lines of a failing live timeline: any
	// viewer of an incident may read its timeline at will.
	liveLog *loglimit.Limiter
	// idAlloc allocates incident numbers on PostgreSQL (nextID).
	idAlloc idAllocator

	// sweepMu runs one sweep at a time in this process (see sweep).
	sweepMu sync.Mutex

	// w runs the SQLite writer (group commit, see Write) and the statement
	// preparer from NewService to Close.
	w *workers

	// writeHook, set by tests only (export_test.go), runs at the start
	// of every Write's function, inside its transaction: on SQLite in the
	// writer, with the number of the writer's transaction (batch), on
	// PostgreSQL with batch 0.
	writeHook func(ctx context.Context, batch int64)
	// episodeReads counts the duplicate checks that read a group's stored
	// episodes (duplicateOf; read by tests).
	episodeReads atomic.Int64
	// groups are the alert groups delivered since start (SQLite).
	groups seenGroups
	// insertTexts holds the texts of multi-row INSERTs (insertText).
	insertTexts sync.Map

	// Clock tells the time (clock.Real; tests set a clock.Manual before use).
	Clock clock.Clock
}

type metrics struct {
	deliveries       *prometheus.CounterVec
	alerts           *prometheus.CounterVec
	duplicates       prometheus.Counter
	outOfOrder       prometheus.Counter
	late             prometheus.Counter
	truncated        prometheus.Counter
	mixedServices    prometheus.Counter
	ingestDuration   prometheus.Histogram
	incidentsCreated *prometheus.CounterVec
	transitions      *prometheus.CounterVec

	// The SQLite writer's (writer.go): how many writes share a
	// transaction, how long its commits take, and how much of the time it
	// is busy (a rate near 1 is the writer saturated: ingestion cannot go
	// faster on this store).
	writerBatch  prometheus.Histogram
	writerCommit prometheus.Histogram
	writerBusy   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_webhook_deliveries_total",
			Help: "Webhook deliveries applied to the store (changed, duplicate, error).",
		}, []string{"outcome"}),
		alerts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_webhook_alerts_total",
			Help: "Alerts received, by what they did (new, resolved, updated, unchanged, out_of_order, late).",
		}, []string{"outcome"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_webhook_duplicate_deliveries_total",
			Help: "Deliveries that changed nothing (already stored).",
		}),
		outOfOrder: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_webhook_out_of_order_alerts_total",
			Help: "Firing alerts received after the same episode was stored as resolved.",
		}),
		late: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_webhook_late_alerts_total",
			Help: "Resolved alerts for an episode never seen firing and with no open incident.",
		}),
		truncated: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_webhook_truncated_alerts_total",
			Help: "Alerts Alertmanager left out of deliveries (truncatedAlerts).",
		}),
		mixedServices: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_webhook_mixed_service_groups_total",
			Help: "Deliveries whose group holds alerts of several services (the incident takes one service; include the service label in Alertmanager's group_by).",
		}),
		ingestDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_webhook_ingest_duration_seconds",
			Help:    "Time to apply one delivery to the store, commit included (the store latency of the hot path).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		incidentsCreated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_incidents_created_total",
			Help: "Incidents created by this process: opened by alerts, by hand (srectl incidents create, the console, POST /api/v1/incidents) or split out of another.",
		}, []string{"severity"}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_incident_transitions_total",
			Help: "Incident changes (created, updated, acknowledged, investigating, resolved, reopened, mitigated, postmortem_done, snoozed, flapping: a damped re-opening of a flapping incident).",
		}, []string{"kind"}),
		writerBatch: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_store_writer_batch_writes",
			Help:    "SQLite: writes (deliveries, timeline entries, ...) applied in one transaction of the store's writer (group commit: concurrent deliveries share a transaction and its fsync).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		writerCommit: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_store_writer_commit_duration_seconds",
			Help:    "SQLite: time of the writer's commits (the WAL's writes and its fsync).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		writerBusy: f.NewCounter(prometheus.CounterOpts{
			Name: "sre_store_writer_busy_seconds_total",
			Help: "SQLite: time the writer spent applying and committing transactions.",
		}),
	}
	// Every outcome is exported at zero from the start (docs/metrics.md):
	// the webhook-errors alert reads outcome="error" before any delivery.
	for _, outcome := range []string{"changed", "duplicate", "error"} {
		m.deliveries.WithLabelValues(outcome)
	}
	return m
}

// Metrics are the service's ingest counters, exposed for tests.
type Metrics struct {
	Duplicates, OutOfOrder, Late prometheus.Counter
}

// Metrics returns the service's ingest counters.
func (s *Service) Metrics() Metrics {
	return Metrics{Duplicates: s.m.duplicates, OutOfOrder: s.m.outOfOrder, Late: s.m.late}
}

// NewService returns the incident service and starts its goroutines (the
// SQLite writer and the statement preparer); Close stops them. hooks is called on every change
// to get the hooks to run inside the change's transaction (it may be nil);
// events are published on bus after commit; metrics register on reg.
func NewService(db *store.DB, opts Options, hooks func() []Hook, bus *events.Bus, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if hooks == nil {
		hooks = func() []Hook { return nil }
	}
	s := &Service{
		db: db, hooks: hooks, bus: bus, logger: logger, m: newMetrics(reg),
		opts: opts, Clock: clock.Real{},
	}
	s.liveLog = loglimit.New(clock.Func(func() time.Time { return s.Clock.Now() }), liveLogEvery, 1)
	s.startWorkers()
	return s, nil
}

func checkOptions(o *Options) error {
	if o.IDPrefix == "" {
		o.IDPrefix = "INC"
	}
	if len(o.ServiceLabels) == 0 {
		o.ServiceLabels = []string{"service", "job"}
	}
	if o.SeverityLabel == "" {
		o.SeverityLabel = "severity"
	}
	if o.DefaultSeverity == "" {
		o.DefaultSeverity = SeverityMedium
	}
	if o.TitleTemplate == "" {
		o.TitleTemplate = DefaultTitleTemplate
	}
	if o.WebhookLimits == (limits.Webhook{}) {
		o.WebhookLimits = limits.DefaultWebhook
	}
	if o.StatusUpdateTemplate == "" {
		o.StatusUpdateTemplate = DefaultStatusUpdateTemplate
	}
	m := make(map[string]Severity, len(o.SeverityMap))
	for k, v := range o.SeverityMap {
		m[strings.ToLower(k)] = v
	}
	o.SeverityMap = m
	if err := CheckTitleTemplate(o.TitleTemplate); err != nil {
		return fmt.Errorf("title template: %w", err)
	}
	if err := CheckStatusUpdateTemplate(o.StatusUpdateTemplate); err != nil {
		return fmt.Errorf("status update template: %w", err)
	}
	return nil
}

// SetOptions replaces the options (on config reload).
func (s *Service) SetOptions(o Options) error {
	if err := checkOptions(&o); err != nil {
		return err
	}
	s.mu.Lock()
	s.opts = o
	s.mu.Unlock()
	return nil
}

// Options returns the options in force.
func (s *Service) Options() Options {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.opts
}

// DB returns the store the service writes to.
func (s *Service) DB() *store.DB { return s.db }

func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Millisecond) }

// ms converts a time to unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// pending collects what a transaction did, to publish after commit.
type pending struct {
	events  []events.Event
	kinds   []ChangeKind
	changed []*Incident
}

func (p *pending) find(id string) *Incident {
	for i := len(p.changed) - 1; i >= 0; i-- {
		if p.changed[i].ID == id {
			return p.changed[i]
		}
	}
	return nil
}

// change runs the hooks for ch inside tx, records its timeline entry, and
// queues its event.
func (s *Service) change(ctx context.Context, tx *sql.Tx, p *pending, ch Change, entry *TimelineEntry) error {
	if entry != nil {
		if err := s.addTimeline(ctx, tx, *entry); err != nil {
			return err
		}
	}
	if err := s.changeGroups(ctx, tx, &ch); err != nil {
		return err
	}
	return s.changed(ctx, tx, p, ch, s.hooks())
}

// changeGroups completes ch.Groups as Change documents it: a change of an
// open incident's status or severity concerns every alert group on it (its
// links), which the change's own groups join; an incident without links
// (opened by hand, or before links were recorded) is its own group. A
// change of a closed incident concerns none.
func (s *Service) changeGroups(ctx context.Context, tx *sql.Tx, ch *Change) error {
	inc := ch.Incident
	if !inc.Status.Open() {
		ch.Groups = nil
		return nil
	}
	switch ch.Kind {
	case ChangeCreated:
		if len(ch.Groups) > 0 {
			return nil
		}
	case ChangeAcknowledged, ChangeInvestigating, ChangeReopened, ChangeFlapping, ChangeSeverityRaised, ChangeSeverityLowered:
	default:
		return nil
	}
	links, err := loadLinks(ctx, tx, inc.ID)
	if err != nil {
		return err
	}
	groups := slices.Clip(ch.Groups)
	for _, l := range links {
		if !slices.ContainsFunc(groups, func(g AlertGroup) bool { return g.GroupKey == l.GroupKey }) {
			groups = append(groups, AlertGroup{GroupKey: l.GroupKey, Labels: nonNil(l.Labels)})
		}
	}
	if len(groups) == 0 {
		groups = []AlertGroup{{GroupKey: inc.GroupKey, Labels: nonNil(inc.Labels)}}
	}
	ch.Groups = groups
	return nil
}

// changeIn is change for an incident the pending statement w writes (a
// new one): the hooks that can (BatchHook) add their writes to w, which
// then runs, before the other hooks run theirs.
func (s *Service) changeIn(ctx context.Context, tx *sql.Tx, p *pending, ch Change, w *deferredWrite) error {
	var hw Writes
	hooks := s.hooks()
	// after[i]: hooks[i].IncidentChanged runs once w has run; prober[j]:
	// the hook of probe j, whose IncidentChanged then runs if it found a row.
	after := make([]bool, len(hooks))
	var prober []int
	for i, h := range hooks {
		bh, ok := h.(BatchHook)
		if !ok {
			after[i] = true
			continue
		}
		n := len(hw.probes)
		done, err := bh.IncidentChangedIn(ctx, ch, &hw)
		if err != nil {
			return fmt.Errorf("incident %s: hook for %s: %w", ch.Incident.ID, ch.Kind, err)
		}
		for range hw.probes[n:] {
			prober = append(prober, i)
		}
		after[i] = !done
	}
	for _, e := range hw.Timeline {
		if e.Kind == "" || e.Time.IsZero() {
			return fmt.Errorf("incident %s: timeline entry without kind or time", ch.Incident.ID)
		}
	}
	w.writes, w.args = hw.AppendTo(w.writes, w.args)
	w.tl = append(w.tl, hw.Timeline...)
	for _, pr := range hw.probes {
		w.probes = append(w.probes, store.ShiftPlaceholders(pr.query, len(w.args)))
		w.args = append(w.args, pr.args...)
	}
	found, err := w.execProbes(ctx, s, tx)
	if err != nil {
		return err // named after the group by ingestWrite
	}
	for j, ok := range found {
		if ok {
			after[prober[j]] = true
		}
	}
	rest := make([]Hook, 0, len(hooks))
	for i, h := range hooks {
		if after[i] {
			rest = append(rest, h)
		}
	}
	return s.changed(ctx, tx, p, ch, rest)
}

// changed runs hooks for ch and records its event.
func (s *Service) changed(ctx context.Context, tx *sql.Tx, p *pending, ch Change, hooks []Hook) error {
	for _, h := range hooks {
		if err := h.IncidentChanged(ctx, tx, ch); err != nil {
			return fmt.Errorf("incident %s: hook for %s: %w", ch.Incident.ID, ch.Kind, err)
		}
	}
	inc := ch.Incident
	p.kinds = append(p.kinds, ch.Kind)
	p.changed = append(p.changed, inc)
	p.events = append(p.events, events.Event{
		Type:       "incident." + string(ch.Kind),
		Time:       ch.Time,
		Service:    inc.Service,
		IncidentID: inc.ID,
		Data: map[string]any{
			"title": inc.Title, "severity": inc.Severity, "status": inc.Status,
			"previous_status": ch.Prev, "actor": ch.Actor, "flapping": inc.Flapping,
		},
	})
	return nil
}

func (s *Service) publish(p *pending) {
	for _, k := range p.kinds {
		s.m.transitions.WithLabelValues(string(k)).Inc()
	}
	for _, ev := range p.events {
		s.bus.Publish(ev)
	}
}

// AddTimeline appends an entry to an incident's timeline, inside tx when tx
// is not nil. It implements TimelineWriter; the entry's ID is ignored, a
// zero Time means now, and an unknown incident gives ErrNotFound.
func (s *Service) AddTimeline(ctx context.Context, tx *sql.Tx, e TimelineEntry) error {
	if tx != nil {
		return s.addTimeline(ctx, tx, e)
	}
	// Through the writer: on SQLite the entries that notifications, runbooks
	// and reconciliation record join the deliveries' transactions instead of
	// each taking the write lock and an fsync of its own.
	err := s.Write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.addTimeline(ctx, tx, e) })
	if err == nil {
		s.PublishTimeline(e)
	}
	return err
}

// PublishTimeline announces on the event bus (the live stream) an entry
// that AddTimeline wrote in a caller's transaction, once that has
// committed; AddTimeline without a transaction announces its own.
func (s *Service) PublishTimeline(e TimelineEntry) {
	s.bus.Publish(events.Event{Type: "incident.timeline", Time: e.Time, IncidentID: e.IncidentID,
		Data: map[string]any{"kind": e.Kind, "actor": e.Actor, "message": e.Message}})
}

// AddTimelineTo adds the write of e to b, to run with the batch's other
// writes (store.Batch): in one statement on PostgreSQL. Unlike
// AddTimeline's, the write does not look for the incident (a batch's
// writes see nothing another of them writes, so it would miss an
// incident inserted in the same batch): the foreign key checks that it
// exists once the batch has run, and the batch fails when it does not.
// e must have its Time and Kind.
func (s *Service) AddTimelineTo(b *store.Batch, e TimelineEntry) error {
	if e.Kind == "" {
		return errors.New("timeline entry without kind")
	}
	if e.Time.IsZero() {
		return errors.New("timeline entry without time")
	}
	b.Add(insertTimelineSQL+"($1, $2, $3, $4, $5, $6)", timelineRow(e)...)
	return nil
}

// addTimeline writes one timeline entry, only if its incident exists.
func (s *Service) addTimeline(ctx context.Context, tx *sql.Tx, e TimelineEntry) error {
	return s.addTimelineID(ctx, tx, &e)
}

// addTimelineID is addTimeline setting e.ID to the stored entry's (a note's
// answer carries it) and e.Time to now when unset.
func (s *Service) addTimelineID(ctx context.Context, tx *sql.Tx, e *TimelineEntry) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Kind == "" {
		return errors.New("timeline entry without kind")
	}
	data := "{}"
	if len(e.Data) > 0 {
		data = mustJSON(e.Data)
	}
	// One statement: the entry is written only if its incident exists.
	// Through queryRow: on the SQLite writer's connection, whose contexts
	// cannot end, database/sql starts no goroutine for the row.
	err := s.queryRow(ctx, tx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1) RETURNING id`,
		e.IncidentID, ms(e.Time), e.Kind, e.Actor, e.Message, data).Scan(&e.ID)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("add timeline to %s: %w", e.IncidentID, err)
	}
	return nil
}

// Timeline returns an incident's timeline, oldest first.
func (s *Service) Timeline(ctx context.Context, id string) ([]TimelineEntry, error) {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM incidents WHERE id = $1`, id).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, kind, actor, message, data FROM incident_timeline
		WHERE incident_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	defer rows.Close()
	out := []TimelineEntry{}
	for rows.Next() {
		e := TimelineEntry{IncidentID: id}
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Actor, &e.Message, &data); err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", id, err)
		}
		e.Time = fromMS(at)
		if data != "" && data != "{}" {
			_ = json.Unmarshal([]byte(data), &e.Data)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LiveTimeline returns timeline entries of an incident that are not
// stored but describe its state at read time (its pages held back by a
// paused notification channel, say): their ID is 0. It must not write.
type LiveTimeline func(ctx context.Context, incidentID string) ([]TimelineEntry, error)

// SetLiveTimeline sets the entries TimelineView adds to the stored ones
// (nil: none).
func (s *Service) SetLiveTimeline(f LiveTimeline) {
	if f == nil {
		s.live.Store(nil)
		return
	}
	s.live.Store(&f)
}

// liveLogEvery is how often a failing live timeline is logged: the first
// failure at once, then at most once per interval.
const liveLogEvery = time.Minute

// TimelineView is an incident's timeline as the API and the console show
// it: the stored entries (Timeline), then those of SetLiveTimeline's
// function, dated when they are read and not stored. When that function
// fails, the stored entries are shown alone (nothing said queued) and the
// failure is logged, at most once per liveLogEvery. The status page,
// post-mortems and exports read Timeline, the stored entries only.
func (s *Service) TimelineView(ctx context.Context, id string) ([]TimelineEntry, error) {
	out, err := s.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	f := s.live.Load()
	if f == nil {
		return out, nil
	}
	live, err := (*f)(ctx, id)
	if err != nil {
		s.logLiveError(id, err)
		return out, nil
	}
	return append(out, live...), nil
}

// logLiveError logs the failure of the live timeline of incident id, if
// the limiter lets it through.
func (s *Service) logLiveError(id string, err error) {
	if ok, held := s.liveLog.Allow("live"); ok {
		s.logger.Warn("timeline shown without its read-time entries", "incident", id, "err", err, "not_logged", held)
	}
}

// maxStmts bounds the prepared-statement cache (multi-row INSERTs have one
// text per row count).
const maxStmts = 256

// prepared returns tx's handle (the database's when tx is nil) of the statement q, prepared once per
// connection and reused: SQLite otherwise parses every statement each time.
// It returns nil when the cache is full or preparing fails (the caller then
// runs q directly).
func (s *Service) prepared(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	inTx := func(st *sql.Stmt) *sql.Stmt {
		if tx == nil {
			return st
		}
		return tx.StmtContext(ctx, st)
	}
	if v, ok := s.stmts.Load(q); ok {
		return inTx(v.(*sql.Stmt))
	}
	if s.stmtCount.Load() >= maxStmts {
		return nil
	}
	if tx != nil {
		// Preparing on the database takes a second connection from the
		// pool while tx holds the write lock: if the other connections are
		// all waiting for that lock (busy_timeout), neither side can move
		// until one of them times out. Run q unprepared this time, and
		// prepare it for later outside the transaction.
		if _, busy := s.preparing.LoadOrStore(q, true); !busy {
			select {
			case s.w.prep <- q: // runPreparer
			default: // the preparer is behind: try again on a later run
				s.preparing.Delete(q)
			}
		}
		return nil
	}
	return s.prepare(ctx, q)
}

// prepare prepares q on the database and caches it; nil if it fails.
func (s *Service) prepare(ctx context.Context, q string) *sql.Stmt {
	st, err := s.db.PrepareContext(ctx, s.anonymous(q))
	if err != nil {
		return nil
	}
	if v, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		st = v.(*sql.Stmt)
	} else {
		s.stmtCount.Add(1)
	}
	return st
}

// anonymous rewrites q's $1..$N parameters to ? on SQLite when they appear
// once each and in order (see placeholders); otherwise it returns q.
func (s *Service) anonymous(q string) string {
	if s.db.Dialect != store.SQLite || !strings.Contains(q, "$") {
		return q
	}
	if v, ok := s.anon.Load(q); ok {
		return v.(string)
	}
	var sb strings.Builder
	next := 1
	out := q
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			sb.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(q[i+1 : j]); err != nil || n != next {
			sb.Reset()
			break
		}
		next++
		sb.WriteByte('?')
		i = j - 1
	}
	if sb.Len() > 0 {
		out = sb.String()
	}
	s.anon.Store(q, out)
	return out
}

// exec, query and queryRow run q in tx (on the database when tx is nil)
// through its prepared form. In a SQLite transaction (the writer's above
// all) that is the connection's own statement cache (store): q runs as
// text and the connection runs it prepared, without the *sql.Stmt that
// tx.StmtContext allocates, and registers on the transaction, per call.
func (s *Service) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if tx != nil && s.db.Dialect == store.SQLite {
		return tx.ExecContext(ctx, s.anonymous(q), args...)
	}
	if st := s.prepared(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *Service) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if tx != nil && s.db.Dialect == store.SQLite {
		if c := writerConn(ctx, tx); c != nil {
			return c.QueryContext(ctx, s.anonymous(q), args...)
		}
		return tx.QueryContext(ctx, s.anonymous(q), args...)
	}
	if st := s.prepared(ctx, tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if tx == nil {
		return s.db.QueryContext(ctx, q, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

func (s *Service) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if tx != nil && s.db.Dialect == store.SQLite {
		if c := writerConn(ctx, tx); c != nil {
			return c.QueryRowContext(ctx, s.anonymous(q), args...)
		}
		return tx.QueryRowContext(ctx, s.anonymous(q), args...)
	}
	if st := s.prepared(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// PublicUpdates are the public status updates of one incident: the latest
// ones, newest first, and how many it has in all.
type PublicUpdates struct {
	// Latest are the newest public status updates (kind "status_update",
	// data "public": true, with a "public_message"), newest first.
	Latest []TimelineEntry
	// Total counts the incident's public status updates, Latest included.
	Total int
}

// publicTrue is true of a timeline entry whose data has "public": true,
// blanks (space, tab, line feed, carriage return) taken out; the same SQL
// on SQLite and PostgreSQL.
const publicTrue = `REPLACE(REPLACE(REPLACE(REPLACE(data, ' ', ''), '` + "\t" + `', ''), '` + "\n" + `', ''), '` + "\r" + `', '') LIKE '%"public":true%'`

// publicUpdatesChunk bounds the incident IDs of one PublicStatusUpdates
// query (its placeholders).
const publicUpdatesChunk = 500

// publicUpdatesQuery selects the status updates of n incidents ($1 to $n)
// that may be public, newest first per incident.
func publicUpdatesQuery(n int) string {
	// The LIKE keeps the entries whose "public" key may be true, however
	// the JSON is spaced (an import keeps it as given; the blanks are
	// taken out first): inside a JSON string every quote is escaped, so a
	// message quoting it does not match. It is a first sieve, not the
	// rule: a "public": true nested in another object, a key given twice,
	// a missing message, or (SQLite's LIKE ignores case) "PUBLIC" pass it.
	// publicStatusUpdates decodes every row it keeps and holds both the
	// updates shown and their count to publicUpdate. The rows are read
	// through incident_timeline_status_updates: the incidents' status
	// updates alone (at most MaxStatusUpdates each).
	return `SELECT incident_id, id, at, data FROM incident_timeline
	WHERE incident_id IN (` + store.Placeholders(1, n) + `) AND kind = 'status_update'
		AND ` + publicTrue + `
	ORDER BY incident_id, at DESC, id DESC`
}

// publicUpdate decodes a status update's data and says whether it is a
// public one: "public" is true and "public_message" a string that is not
// empty, as encoding/json reads them (a key given twice: the last one).
func publicUpdate(data string) (map[string]any, bool) {
	var m map[string]any
	if json.Unmarshal([]byte(data), &m) != nil {
		return nil, false
	}
	pub, _ := m["public"].(bool)
	msg, _ := m["public_message"].(string)
	return m, pub && msg != ""
}

// PublicStatusUpdates returns, per incident of ids that has any, its latest
// public status updates (at most latest) and their count, in one query per
// publicUpdatesChunk incidents that reads only their status updates: not
// the incidents' whole timelines (alerts, notes), which the status page
// does not show. Rows are read newest first (time, then entry ID); an
// entry that is not a public update (publicUpdate) is left out of Latest
// and of Total alike, wherever it is among the incident's updates.
func (s *Service) PublicStatusUpdates(ctx context.Context, ids []string, latest int) (map[string]PublicUpdates, error) {
	out := map[string]PublicUpdates{}
	if latest <= 0 {
		return out, nil
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), publicUpdatesChunk)]
		ids = ids[len(chunk):]
		if err := s.publicStatusUpdates(ctx, chunk, latest, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) publicStatusUpdates(ctx context.Context, ids []string, latest int, out map[string]PublicUpdates) error {
	rows, err := s.db.QueryContext(ctx, publicUpdatesQuery(len(ids)), store.Args(ids)...)
	if err != nil {
		return fmt.Errorf("public status updates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e TimelineEntry
		var at int64
		var data string
		if err := rows.Scan(&e.IncidentID, &e.ID, &at, &data); err != nil {
			return fmt.Errorf("public status updates: %w", err)
		}
		m, ok := publicUpdate(data)
		if !ok {
			continue
		}
		pu := out[e.IncidentID]
		pu.Total++
		if len(pu.Latest) < latest {
			e.Kind, e.Time, e.Data = "status_update", fromMS(at), m
			pu.Latest = append(pu.Latest, e)
		}
		out[e.IncidentID] = pu
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("public status updates: %w", err)
	}
	return nil
}
