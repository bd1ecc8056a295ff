package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/loglimit"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/slo"
	// sred reads the spec files srectl generates from: Sloth and OpenSLO
	// ones too.
	_ "github.com/rootuip/sre/pkg/slo/openslo"
	_ "github.com/rootuip/sre/pkg/slo/pyrra"
	_ "github.com/rootuip/sre/pkg/slo/sloth"
	"github.com/rootuip/sre/pkg/store"
)

// ErrNotFound is returned for an unknown service or SLO.
var ErrNotFound = errors.New("not found")

// EventStateChanged is the events.Bus type of a budget state change.
const EventStateChanged = "budget.state_changed"

// EventUpdated is published when a poll sees an SLO's remaining budget,
// burn rates or state change: the live values of the WebSocket stream.
const EventUpdated = "budget.updated"

// Options build a Service.
type Options struct {
	Logger     *slog.Logger
	DB         *store.DB
	Bus        *events.Bus
	Registerer prometheus.Registerer
	// Clock tells the time (clock.Real by default).
	Clock clock.Clock
	// Incidents, when set, receives the exhaustion of a budget: a CRITICAL
	// incident (exhaust.go).
	Incidents Incidents
	// OverrideLimits bound the wrong override tokens a client may present
	// (FailureBurst, FailureEvery, Clients of auth.Limits; the defaults
	// when zero; Clock when nil).
	OverrideLimits auth.Limits
	// OnOverrideRefused, when set, is called for every gate request whose
	// override token was refused (403, 429 or 503), with the status
	// answered: sred records it in the audit log.
	OnOverrideRefused func(r *http.Request, code int)
}

// Service holds the budgets of the configured SLOs: it answers the API and
// the gate with fresh queries, and its poller records state changes.
type Service struct {
	logger  *slog.Logger
	db      *store.DB
	bus     *events.Bus
	now     func() time.Time
	metrics *metrics
	// incidents turns exhaustion into incidents (nil: it does not).
	incidents Incidents
	// overrides limits the wrong override tokens of each client and
	// principal.
	overrides *auth.FailureLimiter
	// onOverrideRefused is Options.OnOverrideRefused.
	onOverrideRefused func(r *http.Request, code int)
	// gateLog holds back the warning of a gate answered without budgets
	// to one line a minute per service: any viewer may ask at will.
	gateLog *loglimit.Limiter
	// clock times the limit of gate requests.
	clock clock.Clock

	mu         sync.RWMutex
	cfg        Config
	objectives []Objective
	prom       *Prom
	promErr    error // why there is no client
	// tokens are the override tokens: inline, or files read at each use.
	tokens []secretfile.Source
	// changes and yellowQuota are the yellow state's change quota (SetChangeQuota).
	changes     ChangeCounter
	yellowQuota int
	// requests bounds the gate requests of each client and principal
	// (slos.gate.request_limit, requestLimit).
	requests     *auth.FailureLimiter
	requestLimit RequestLimit

	snapMu   sync.RWMutex
	snapshot []Status
	alerts   []AlertRule
	// pollFailure is why the last poll could not read the budgets (nil
	// once one succeeds).
	pollFailure *PollFailure
}

// PollFailure is a poll that could not read the error budgets: Prometheus
// unreachable or refusing a query, or no Prometheus configured.
type PollFailure struct {
	At  time.Time
	Err error
}

// A gate answered without budgets is logged at most once per gateLogEvery
// for each of up to gateLogServices services.
const (
	gateLogEvery    = time.Minute
	gateLogServices = 100
)

// New returns a Service without configuration (see Update).
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OverrideLimits.Clock == nil {
		o.OverrideLimits.Clock = o.Clock
	}
	s := &Service{logger: o.Logger, db: o.DB, bus: o.Bus, now: clock.OrReal(o.Clock).Now, cfg: DefaultConfig, promErr: ErrNoPrometheus, incidents: o.Incidents,
		overrides: auth.NewFailureLimiter(o.OverrideLimits), onOverrideRefused: o.OnOverrideRefused,
		gateLog: loglimit.New(o.Clock, gateLogEvery, gateLogServices), clock: clock.OrReal(o.Clock)}
	s.setRequestLimit(DefaultGateConfig.RequestLimit)
	s.metrics = newMetrics(s, o.Registerer)
	return s
}

// setRequestLimit replaces the limit of gate requests per client (the
// counts start over when it changes). Zero fields take the defaults.
// Called with s.mu held, or before s is shared.
func (s *Service) setRequestLimit(l RequestLimit) {
	l = l.OrDefaults()
	if s.requests != nil && l == s.requestLimit {
		return
	}
	s.requestLimit = l
	s.requests = auth.NewFailureLimiter(auth.Limits{FailureBurst: l.Burst, FailureEvery: time.Duration(l.Every), Clock: s.clock})
}

// takeRequest counts a gate request of client against
// slos.gate.request_limit: beyond it, a *RequestLimitedError.
func (s *Service) takeRequest(client string) error {
	s.mu.RLock()
	requests := s.requests
	s.mu.RUnlock()
	err := requests.Take(client)
	var limited *auth.LimitedError
	if errors.As(err, &limited) {
		return &RequestLimitedError{RetryAfter: limited.RetryAfterSeconds()}
	}
	return err
}

// RequestLimitedError is the error of a client over its limit of gate
// requests (slos.gate.request_limit): answered 429 with Retry-After.
type RequestLimitedError struct {
	RetryAfter int64 // seconds
}

func (e *RequestLimitedError) Error() string {
	return fmt.Sprintf("too many deploy gate requests from this client: retry in %ds (slos.gate.request_limit)", e.RetryAfter)
}

// Update installs a configuration: the SLOs from the spec files, the
// Prometheus client (nil with promErr saying why) and the override tokens.
// The token files are not read here but at each gate request with a token
// (checkOverride), so a rotated token is in force without a reload; a
// file that cannot be read then is logged and matches nothing. Update
// returns no error today.
func (s *Service) Update(cfg Config, specs []*slo.Spec, prom *Prom, promErr error) error {
	var tokens []secretfile.Source
	for _, t := range cfg.Gate.OverrideTokens {
		tokens = append(tokens, secretfile.Inline(string(t)))
	}
	for _, f := range cfg.Gate.OverrideTokenFiles {
		tokens = append(tokens, secretfile.FromFile(f))
	}
	if prom == nil && promErr == nil {
		promErr = ErrNoPrometheus
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.objectives, s.prom, s.promErr, s.tokens = cfg, Objectives(specs), prom, promErr, tokens
	s.setRequestLimit(cfg.Gate.RequestLimit)
	return nil
}

// LoadSpecs loads the spec files and directories named in the config.
// resolve turns a configured path into a real one (relative to the config file).
func LoadSpecs(cfg Config, resolve func(string) string) ([]*slo.Spec, error) {
	if len(cfg.SpecFiles) == 0 {
		return nil, nil
	}
	paths := make([]string, len(cfg.SpecFiles))
	for i, p := range cfg.SpecFiles {
		paths[i] = resolve(p)
	}
	specs, err := slo.LoadFiles(paths...)
	if err != nil {
		return nil, fmt.Errorf("slos: spec_files: %w", err)
	}
	return specs, nil
}

func (s *Service) state() (Config, []Objective, *Prom, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg, s.objectives, s.prom, s.promErr
}

// Objectives returns the configured SLOs.
func (s *Service) Objectives() []Objective {
	_, objs, _, _ := s.state()
	return objs
}

func (s *Service) evaluate(ctx context.Context, objs []Objective, at time.Time) ([]Status, error) {
	_, _, prom, perr := s.state()
	if prom == nil {
		return nil, perr
	}
	ev := &Evaluator{Prom: prom}
	var out []Status
	for _, o := range objs {
		sts, err := ev.Evaluate(ctx, o, at)
		if err != nil {
			return nil, fmt.Errorf("error budget of %s: %w", o.Key(), err)
		}
		out = append(out, sts...)
	}
	return out, nil
}

// Statuses computes the budget of every SLO at time at (now when zero).
func (s *Service) Statuses(ctx context.Context, at time.Time) ([]Status, error) {
	if at.IsZero() {
		at = s.now()
	}
	return s.evaluate(ctx, s.Objectives(), at)
}

// find returns the objectives of a service (and SLO, when not empty).
func (s *Service) find(service, sloName string) []Objective {
	var out []Objective
	for _, o := range s.Objectives() {
		if o.Service == service && (sloName == "" || o.SLO.Name == sloName) {
			out = append(out, o)
		}
	}
	return out
}

// Detail is the budget of one SLO with its chart history and state timeline.
type Detail struct {
	Statuses []Status `json:"statuses"`
	Windows  []string `json:"windows"`
	// History holds the remaining budget and the forecast window's burn rate
	// over the history range, per group.
	History []History `json:"history"`
	// Events are the recorded state changes, newest first.
	Events []Event `json:"events"`
}

// History is a time series for charts.
type History struct {
	Metric string            `json:"metric"` // remaining_ratio | burn_rate
	Window string            `json:"window,omitempty"`
	Group  map[string]string `json:"group,omitempty"`
	Points [][2]float64      `json:"points"` // [unix seconds, value]
}

// Detail returns the budget of one SLO at time at (now when zero).
func (s *Service) Detail(ctx context.Context, service, sloName string, at time.Time) (*Detail, error) {
	objs := s.find(service, sloName)
	if len(objs) == 0 {
		return nil, fmt.Errorf("SLO %s of service %s: %w", limits.Quote(sloName), limits.Quote(service), ErrNotFound)
	}
	o := objs[0]
	if at.IsZero() {
		at = s.now()
	}
	sts, err := s.evaluate(ctx, objs, at)
	if err != nil {
		return nil, err
	}
	cfg, _, prom, _ := s.state()
	d := &Detail{Statuses: sts, History: []History{}, Events: []Event{}}
	for _, w := range o.Windows() {
		d.Windows = append(d.Windows, model.Duration(w).String())
	}
	r := v1.Range{Start: at.Add(-time.Duration(cfg.HistoryRange)), End: at, Step: time.Duration(cfg.HistoryStep)}
	sel := selector(o.Service, o.SLO.Name)
	fw := o.forecastWindow()
	for _, h := range []struct{ metric, window, query string }{
		{"remaining_ratio", "", BudgetRemainingRecord + sel},
		{"burn_rate", model.Duration(fw).String(), BurnRateRecord(fw) + sel},
	} {
		m, err := prom.Range(ctx, h.query, r)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", o.Key(), err)
		}
		for _, ss := range m {
			hh := History{Metric: h.metric, Window: h.window, Points: [][2]float64{}}
			for _, l := range o.SLO.GroupBy {
				if v, ok := ss.Metric[model.LabelName(l)]; ok {
					if hh.Group == nil {
						hh.Group = map[string]string{}
					}
					hh.Group[l] = string(v)
				}
			}
			for _, p := range ss.Values {
				if f := finite(float64(p.Value)); f != nil {
					hh.Points = append(hh.Points, [2]float64{float64(p.Timestamp) / 1000, *f})
				}
			}
			d.History = append(d.History, hh)
		}
	}
	if s.db != nil {
		evs, err := ListEvents(ctx, s.db, service, sloName, 100)
		if err != nil {
			return nil, err
		}
		d.Events = evs
	}
	return d, nil
}

// Gate answers a deploy-gate request and records the decision.
func (s *Service) Gate(ctx context.Context, req GateRequest) (*Decision, error) {
	if req.Change == "" {
		req.Change = ChangeNormal
	}
	if req.Change != ChangeNormal && req.Change != ChangeCritical {
		return nil, fmt.Errorf("%w: change must be %q or %q, got %s", ErrBadRequest, ChangeNormal, ChangeCritical, limits.Quote(req.Change))
	}
	objs := s.find(req.Service, "")
	if len(objs) == 0 {
		return nil, fmt.Errorf("service %s has no SLO: %w", limits.Quote(req.Service), ErrNotFound)
	}
	if req.RateClient != "" {
		// Before the token files are read and Prometheus is queried;
		// refused at debug level, so that looping on the limit does not
		// flood the log.
		if err := s.takeRequest(req.RateClient); err != nil {
			s.logger.Debug("deploy gate request refused", "service", req.Service, "actor", req.Actor, "err", err)
			return nil, err
		}
	}
	cfg, _, _, _ := s.state()
	s.mu.RLock()
	tokens := s.tokens
	s.mu.RUnlock()
	if req.OverrideToken != "" {
		// A wrong token counts against the client (and principal) that
		// sent it: beyond the limit every token it sends is refused
		// unchecked (429), so that tokens cannot be guessed at will.
		_, err := s.overrides.Check(req.Client, func() (bool, error) {
			err := s.checkOverride(tokens, req.OverrideToken)
			return err == nil, err
		})
		if err != nil {
			level := slog.LevelWarn
			var limited *auth.LimitedError
			if errors.As(err, &limited) {
				// Refused unchecked: logged at debug, so that looping on
				// the limit does not flood the log either.
				level = slog.LevelDebug
			}
			s.logger.Log(ctx, level, "deploy gate override refused", "service", req.Service, "actor", req.Actor, "client", req.Client, "err", err)
			return nil, err
		}
		if strings.TrimSpace(req.OverrideReason) == "" {
			return nil, fmt.Errorf("%w: an emergency override needs a reason", ErrBadRequest)
		}
	}
	now := s.now()
	sts, err := s.evaluate(ctx, objs, now)
	var d Decision
	if err != nil {
		d = Decision{Service: req.Service, Change: req.Change, State: StateUnknown, PrometheusError: err.Error()}
		d.Allowed = cfg.Gate.OnPrometheusError == FailAllow
		mode := "closed"
		if d.Allowed {
			mode = "open"
		}
		d.Reason = fmt.Sprintf("cannot read error budgets, gate fails %s (%s): %v", mode, cfg.Gate.OnPrometheusError, err)
		if ok, held := s.gateLog.Allow(req.Service); ok {
			s.logger.Warn("deploy gate without budgets", "service", req.Service, "allowed", d.Allowed, "err", err, "not_logged", held)
		}
	} else {
		d = decide(cfg.Gate, req, sts)
		if err := s.applyQuota(ctx, &d, req, now); err != nil {
			return nil, err
		}
	}
	d.Time = now.UTC()
	d.Actor, d.Subject = req.Actor, req.Subject
	if req.OverrideToken != "" {
		d.Override = true
		d.OverrideReason = req.OverrideReason
		if !d.Allowed {
			d.Reason = "emergency override: " + d.Reason
		}
		d.Allowed = true
	}
	d.finish()
	added := true
	if s.db != nil {
		var err error
		if added, err = recordDecision(ctx, s.db, &d); err != nil {
			return nil, err
		}
	}
	s.metrics.gateDecisions.WithLabelValues(d.Answer, d.Change, fmt.Sprint(d.Override)).Inc()
	// A repeat counted in the last row is not announced again: the event
	// stream follows the recorded decisions, one a minute per caller while
	// the answer holds.
	if s.bus != nil && added {
		s.bus.Publish(events.Event{Type: "budget.gate_decision", Time: d.Time, Service: d.Service, Data: map[string]any{
			"change": d.Change, "decision": d.Answer, "state": string(d.State), "reason": d.Reason, "override": d.Override, "actor": d.Actor,
			"subject": d.Subject,
		}})
	}
	return &d, nil
}

// ErrBadRequest marks invalid gate requests (answered 400).
var ErrBadRequest = errors.New("bad request")

// ErrBadOverrideToken is returned when an override token matches no configured token.
var ErrBadOverrideToken = errors.New("invalid emergency override token")

// ErrOverrideTokenUnavailable is returned when an override token matches
// none of the configured tokens that could be read, and a token file could
// not be read (or holds no valid token): sred's log names the file.
var ErrOverrideTokenUnavailable = errors.New("emergency override token cannot be checked: an override token file cannot be read (slos.gate.override_token_files; see sred's log)")

// Poll computes every budget once, records state changes (timeline table,
// event bus, metrics) and keeps the result for the metrics collector.
func (s *Service) Poll(ctx context.Context) error {
	start := s.now()
	sts, err := s.Statuses(ctx, start)
	s.metrics.pollDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.pollSuccess.Set(0)
		if ctx.Err() == nil {
			s.snapMu.Lock()
			s.pollFailure = &PollFailure{At: start, Err: err}
			s.snapMu.Unlock()
		}
		return err
	}
	s.metrics.pollSuccess.Set(1)
	s.metrics.lastPoll.Set(float64(start.UnixMilli()) / 1000)
	s.snapMu.Lock()
	prev := s.snapshot
	s.snapshot = sts
	s.pollFailure = nil
	s.snapMu.Unlock()
	s.publishValues(prev, sts, start)
	s.pollAlerts(ctx, start)
	if s.db == nil {
		return nil
	}
	for _, st := range sts {
		if st.State == StateUnknown {
			continue // no data is not a transition
		}
		ev, err := recordState(ctx, s.db, st, start)
		if err != nil {
			return err
		}
		if ev == nil {
			s.settleExhausted(ctx, st)
			continue
		}
		s.metrics.stateChanges.WithLabelValues(st.Service, st.SLO, string(ev.To)).Inc()
		s.logger.Info("error budget state changed", "service", st.Service, "slo", st.SLO, "group", ev.Group, "from", ev.From, "to", ev.To)
		if s.bus != nil {
			s.bus.Publish(events.Event{Type: EventStateChanged, Time: ev.Time, Service: st.Service, Data: map[string]any{
				"slo": st.SLO, "group": ev.Group, "from": string(ev.From), "to": string(ev.To),
				"remaining_ratio": nullFloat(ev.Remaining), "message": ev.Message,
			}})
		}
		s.transition(ctx, st, ev, ev.prevSince)
	}
	return nil
}

// publishValues publishes a budget.updated event for every SLO (group)
// whose state, remaining budget or burn rates differ from the last poll.
func (s *Service) publishValues(prev, sts []Status, now time.Time) {
	if s.bus == nil {
		return
	}
	key := func(st Status) string { return st.Service + "\x00" + st.SLO + "\x00" + st.GroupString() }
	old := make(map[string]Status, len(prev))
	for _, st := range prev {
		old[key(st)] = st
	}
	for _, st := range sts {
		rates := make(map[string]any, len(st.BurnRates))
		for _, br := range st.BurnRates {
			rates[br.Window] = nullFloat(br.Rate)
		}
		o, ok := old[key(st)]
		if ok && o.State == st.State && sameFloat(o.Budget.RemainingRatio, st.Budget.RemainingRatio) && sameRates(o.BurnRates, st.BurnRates) {
			continue
		}
		if st.State == StateUnknown && (!ok || o.State == StateUnknown) {
			continue // still no data: nothing to tell
		}
		data := map[string]any{"slo": st.SLO, "state": string(st.State), "remaining_ratio": nullFloat(st.Budget.RemainingRatio),
			"remaining_text": RemainingPercent(st.Budget.RemainingRatio, 2), "covered": st.CoveredText(), "sli_achieved": nullFloat(st.SLIAchieved), "burn_rates": rates}
		if g := st.GroupString(); g != "" {
			data["group"] = g
		}
		s.bus.Publish(events.Event{Type: EventUpdated, Time: now, Service: st.Service, Data: data})
	}
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameRates(a, b []BurnRate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Window != b[i].Window || !sameFloat(a[i].Rate, b[i].Rate) {
			return false
		}
	}
	return true
}

// Run polls every poll_interval until ctx ends. Errors are logged and
// counted, never fatal: Prometheus may come back.
func (s *Service) Run(ctx context.Context) error {
	for {
		switch err := s.Poll(ctx); {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, ErrNoPrometheus):
			s.logger.Debug("poll error budgets", "err", err)
		default:
			s.logger.Warn("poll error budgets", "err", err)
		}
		cfg, _, _, _ := s.state()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(cfg.PollInterval)):
		}
	}
}

// LastPollFailure returns why the last poll could not read the budgets,
// nil when it succeeded or before the first poll. Snapshot keeps the
// statuses of the last poll that succeeded meanwhile.
func (s *Service) LastPollFailure() *PollFailure {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	return s.pollFailure
}

// Snapshot returns the statuses of the last successful poll.
func (s *Service) Snapshot() []Status {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	return s.snapshot
}
