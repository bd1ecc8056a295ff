package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/kube"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// Gate is the deploy gate (budget.Service) the Flagger pre-rollout hook asks.
type Gate interface {
	Gate(ctx context.Context, req budget.GateRequest) (*budget.Decision, error)
}

// Service serves the analyses of the configured specs over HTTP: the
// Argo Rollouts web metric provider endpoint and the Flagger webhooks.
type Service struct {
	ev     *Evaluator
	clock  clock.Clock
	logger *slog.Logger

	mu    sync.RWMutex
	specs map[string]*Spec
	gate  Gate

	// runs bounds the runs each client starts (Options.RunLimit).
	runs     *auth.FailureLimiter
	runLimit RunLimit
	// flights are the runs in progress, by runKey: an identical run
	// arriving meanwhile shares the answer.
	flightMu sync.Mutex
	flights  map[string]*flight
	// joined, when set (tests), is called when a run joins one in progress.
	joined func()
}

// flight is a run in progress; done is closed when res and err are set.
type flight struct {
	done chan struct{}
	res  Result
	err  error
}

// Options configure a Service.
type Options struct {
	Evaluator *Evaluator
	// Gate answers the Flagger pre-rollout hook (nil: the hook answers 503).
	Gate   Gate
	Clock  clock.Clock
	Logger *slog.Logger
	// RunLimit bounds the runs of each analysis a client starts (zero:
	// DefaultConfig's).
	RunLimit RunLimit
}

// NewService returns a service with no specs.
func NewService(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{ev: o.Evaluator, gate: o.Gate, clock: clock.OrReal(o.Clock), logger: o.Logger, specs: map[string]*Spec{}, flights: map[string]*flight{}}
	s.SetRunLimit(o.RunLimit)
	return s
}

// SetRunLimit replaces the limit of runs per client (on start and reload;
// the counts start over when it changes). Zero fields take the defaults.
func (s *Service) SetRunLimit(l RunLimit) {
	l = l.OrDefaults()
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if s.runs != nil && l == s.runLimit {
		return
	}
	s.runLimit = l
	s.runs = auth.NewFailureLimiter(auth.Limits{FailureBurst: l.Burst, FailureEvery: time.Duration(l.Every), Clock: s.clock})
}

// runKey identifies a run: the same spec (as loaded), target and time
// (empty: now) ask Prometheus the same queries.
func runKey(sp *Spec, t Target, at string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%p\x00%q\x00%q", sp, t.Service, at)
	for _, ls := range []map[string]string{t.Canary, t.Baseline} {
		names := make([]string, 0, len(ls))
		for k := range ls {
			names = append(names, k)
		}
		sort.Strings(names)
		b.WriteString("\x00")
		for _, k := range names {
			fmt.Fprintf(&b, "%q=%q,", k, ls[k])
		}
	}
	return b.String()
}

// LimitedError is the error of a client over its limit of runs
// (analysis.run_limit): answered 429 with Retry-After.
type LimitedError struct {
	Analysis   string
	RetryAfter int64
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many runs of analysis %s from this client: retry in %ds (analysis.run_limit; identical runs in progress are shared and not counted)", limits.Quote(e.Analysis), e.RetryAfter)
}

// run evaluates sp for t at at (explicit: the time the caller gave, ""
// for now). A run identical to one in progress waits for it and shares its
// answer, without querying Prometheus; any other counts against the limit
// of runs of the client (its address and principal) for sp, and one over
// it is refused with a *LimitedError.
func (s *Service) run(r *http.Request, sp *Spec, t Target, at time.Time, explicit string) (Result, error) {
	key := runKey(sp, t, explicit)
	s.flightMu.Lock()
	if f, ok := s.flights[key]; ok {
		s.flightMu.Unlock()
		if s.joined != nil {
			s.joined()
		}
		select {
		case <-f.done:
			return f.res, f.err
		case <-r.Context().Done():
			return Result{}, r.Context().Err()
		}
	}
	who := auth.ClientOf(r.RemoteAddr) + "\x00" + auth.ActorOf(r.Context(), "", "anonymous") + "\x00" + sp.Name
	if err := s.runs.Take(who); err != nil {
		s.flightMu.Unlock()
		var limited *auth.LimitedError
		if errors.As(err, &limited) {
			return Result{}, &LimitedError{Analysis: sp.Name, RetryAfter: limited.RetryAfterSeconds()}
		}
		return Result{}, err
	}
	f := &flight{done: make(chan struct{})}
	s.flights[key] = f
	s.flightMu.Unlock()
	// The run is shared: a caller that goes away does not cancel the
	// others' answer (each query is bounded by analysis.query_timeout).
	f.res, f.err = s.ev.Evaluate(context.WithoutCancel(r.Context()), sp, t, at)
	s.flightMu.Lock()
	delete(s.flights, key)
	s.flightMu.Unlock()
	close(f.done)
	return f.res, f.err
}

// SetSpecs installs the specs (on start and reload).
func (s *Service) SetSpecs(specs []*Spec) {
	m := make(map[string]*Spec, len(specs))
	for _, sp := range specs {
		m[sp.Name] = sp
	}
	s.mu.Lock()
	s.specs = m
	s.mu.Unlock()
}

// Spec returns the spec named name.
func (s *Service) Spec(name string) (*Spec, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sp, ok := s.specs[name]
	return sp, ok
}

// Specs returns the specs sorted by name.
func (s *Service) Specs() []*Spec {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Spec, 0, len(s.specs))
	for _, sp := range s.specs {
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Flagger webhook routes.
const (
	FlaggerPreRollout       = "/api/v1/analysis/flagger/pre-rollout"
	FlaggerConfirmPromotion = "/api/v1/analysis/flagger/confirm-promotion"
	FlaggerRollback         = "/api/v1/analysis/flagger/rollback"
)

// Register mounts the routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/analysis", s.handleList)
	mux.HandleFunc("GET /api/v1/analysis/{name}", s.handleGet)
	mux.HandleFunc("GET /api/v1/analysis/{name}/run", s.handleRun)
	mux.HandleFunc("POST /api/v1/analysis/{name}/run", s.handleRun)
	mux.HandleFunc("POST "+FlaggerPreRollout, s.handlePreRollout)
	mux.HandleFunc("POST "+FlaggerConfirmPromotion, s.handleConfirmPromotion)
	mux.HandleFunc("POST "+FlaggerRollback, s.handleRollback)
}

// SpecView is a spec as the API shows it: every check it runs.
type SpecView struct {
	Name        string  `json:"name"`
	Service     string  `json:"service"`
	Description string  `json:"description,omitempty"`
	File        string  `json:"file,omitempty"`
	Interval    string  `json:"interval"`
	MinRequests float64 `json:"minRequests"`
	Checks      []Check `json:"checks"`
}

// view shows sp to the principal of ctx (the file it was loaded from
// through auth.FilePath).
func view(ctx context.Context, sp *Spec) SpecView {
	return SpecView{Name: sp.Name, Service: sp.Service, Description: sp.Description, File: auth.FilePath(ctx, sp.File),
		Interval: sp.Interval.String(), MinRequests: sp.MinRequests, Checks: sp.AllChecks()}
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	// It takes no parameter: ?name=api was ignored and every analysis
	// listed.
	if err := web.CheckParams(r.URL.Query()); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	out := []SpecView{}
	for _, sp := range s.Specs() {
		out = append(out, view(r.Context(), sp))
	}
	web.JSON(w, http.StatusOK, out)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	if err := web.CheckParams(r.URL.Query()); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	sp, ok := s.Spec(r.PathValue("name"))
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("no analysis named %s", limits.Quote(r.PathValue("name"))))
		return
	}
	web.JSON(w, http.StatusOK, view(r.Context(), sp))
}

// RunRequest is the body of POST /api/v1/analysis/{name}/run (the Argo
// Rollouts web provider's jsonBody). GET takes the same as parameters:
// service, canary and baseline as k=v,k=v lists, time.
type RunRequest struct {
	Service  string            `json:"service,omitempty"`
	Canary   map[string]string `json:"canary"`
	Baseline map[string]string `json:"baseline,omitempty"`
	// Time is when to evaluate (RFC 3339 or Unix seconds); now by default.
	Time string `json:"time,omitempty"`
}

// ParseLabels reads a k=v,k=v label list. A value may be quoted as in
// PromQL, with its escapes (strconv.Unquote): k="a,b", k="say \"hi\"",
// k="C:\\dir". The list may be braced as a Prometheus selector of
// equality matchers: {k="v",k2="w"}.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("label list %s: want a closing } after the labels", limits.Quote(s))
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("label list %s: want name=value pairs separated by commas", limits.Quote(s))
		}
		var v string
		rest = strings.TrimLeft(rest, " ")
		if strings.HasPrefix(rest, `"`) {
			end := closingQuote(rest)
			if end < 0 {
				return nil, fmt.Errorf("label %s: unterminated quoted value", limits.Cut(k))
			}
			var err error
			if v, err = strconv.Unquote(rest[:end+1]); err != nil {
				return nil, fmt.Errorf("label %s: quoted value %s has an invalid escape: want PromQL's (\\\" for a quote, \\\\ for a backslash)",
					limits.Cut(k), limits.Cut(rest[:end+1]))
			}
			rest = strings.TrimLeft(rest[end+1:], " ")
			if rest != "" && rest[0] != ',' {
				return nil, fmt.Errorf("label %s: want a comma after the quoted value", limits.Cut(k))
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			// The comma is cut here: rest is not copied to put it back
			// (a copy per label made a list of 1 MiB take minutes).
			v, rest, _ = strings.Cut(rest, ",")
			v = strings.TrimSpace(v)
			if strings.Contains(v, `"`) {
				// track=~"canary" read as the value ~"canary", which
				// selects no series.
				return nil, fmt.Errorf("label %s: value %s holds a quote: quote the whole value (k=\"v\"); only = is taken, not =~ or !=",
					limits.Cut(k), limits.Quote(v))
			}
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %s given twice", limits.Cut(k))
		}
		out[k] = v
		s = strings.TrimLeftFunc(rest, unicode.IsSpace)
	}
	return out, nil
}

// closingQuote returns the index of the quote that closes the quoted value
// s starts with, past the quotes a backslash escapes, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func (s *Service) handleRun(w http.ResponseWriter, r *http.Request) {
	sp, ok := s.Spec(r.PathValue("name"))
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("no analysis named %s", limits.Quote(r.PathValue("name"))))
		return
	}
	var req RunRequest
	if r.Method == http.MethodPost {
		// The run is the JSON body: a parameter in the URL (?service=, as
		// GET takes it) was ignored, and the spec's service or the body's
		// canary judged instead of the one the URL names.
		if err := web.CheckParams(r.URL.Query()); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("%w: POST takes service, canary, baseline and time in its JSON body", err))
			return
		}
		if err := web.DecodeJSON(w, r, &req); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	} else {
		// r.URL.Query() drops a pair it cannot read (a ';', a bad %
		// escape: canary=pod=50%): the run was refused for want of the
		// canary labels the URL gave.
		q, err := web.ReadQuery(r)
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		for k := range q {
			if k != "service" && k != "canary" && k != "baseline" && k != "time" {
				web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("unknown parameter %s (want service, canary, baseline or time)", limits.Quote(k)))
				return
			}
			if len(q[k]) > 1 {
				web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("parameter %s given %d times: give it once", limits.Quote(k), len(q[k])))
				return
			}
		}
		req.Service, req.Time = q.Get("service"), q.Get("time")
		if req.Canary, err = ParseLabels(q.Get("canary")); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("canary: %w", err))
			return
		}
		if req.Baseline, err = ParseLabels(q.Get("baseline")); err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("baseline: %w", err))
			return
		}
	}
	at, explicit := s.clock.Now(), ""
	if req.Time != "" {
		// 0 and -1 parse (Unix seconds) but would evaluate every check
		// at 1970, where no series has a sample: limits.ParseTime
		// refuses them, not answered with an analysis of nothing.
		t, err := limits.ParseTime("time", req.Time)
		if err != nil {
			web.Error(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		// Prometheus answers a time in the future with no samples: each
		// check's noData policy decided, and a noData: pass check
		// promoted a canary nobody measured.
		if now := s.clock.Now(); t.After(now.Add(MaxRunAhead)) {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("time: %s is after sred's clock (%s) by more than %s: a run in the future evaluates its checks on no data",
				limits.Quote(req.Time), now.UTC().Format(time.RFC3339), MaxRunAhead))
			return
		}
		at, explicit = t, t.UTC().Format(time.RFC3339Nano)
	}
	res, err := s.run(r, sp, Target{Service: req.Service, Canary: req.Canary, Baseline: req.Baseline}, at, explicit)
	if err != nil {
		writeErr(w, err)
		return
	}
	// Debug: any viewer may run analyses, Flagger and Argo Rollouts at
	// every interval; sre_analysis_runs_total counts them.
	s.logger.Debug("Analysis run", "analysis", sp.Name, "service", res.Service, "verdict", res.Verdict, "reason", res.Reason)
	// Always 200 with the result: the caller's successCondition reads
	// the verdict (Argo Rollouts counts a non-2xx answer as an error).
	web.JSON(w, http.StatusOK, res)
}

// MaxRunAhead is how far after sred's clock a run's time may be: the skew
// between the caller's clock and sred's. A later time is a 400 naming it.
const MaxRunAhead = 5 * time.Minute

// MinRunTime is the earliest time a run evaluates at: an earlier time
// (time=0, time=-1) is a 400 naming it.
var MinRunTime = limits.MinParamTime

func writeErr(w http.ResponseWriter, err error) {
	var (
		limited     *LimitedError
		gateLimited *budget.RequestLimitedError
	)
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.FormatInt(limited.RetryAfter, 10))
		web.Error(w, http.StatusTooManyRequests, "too_many_requests", err)
	case errors.As(err, &gateLimited):
		w.Header().Set("Retry-After", strconv.FormatInt(gateLimited.RetryAfter, 10))
		web.Error(w, http.StatusTooManyRequests, "too_many_requests", err)
	case errors.Is(err, ErrNoQuerier), errors.Is(err, budget.ErrNoPrometheus), budget.IsUnavailable(err):
		web.Error(w, http.StatusServiceUnavailable, "unavailable", err)
	case errors.Is(err, budget.ErrNotFound):
		web.Error(w, http.StatusNotFound, "not_found", err)
	case errors.As(err, new(*TargetError)), errors.Is(err, budget.ErrBadRequest):
		web.Error(w, http.StatusBadRequest, "bad_data", err)
	default:
		web.Error(w, http.StatusInternalServerError, "internal", err)
	}
}

// FlaggerPayload is the body of a Flagger webhook (Flagger's
// CanaryWebhookPayload).
type FlaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Metadata keys sred reads from a Flagger webhook.
const (
	// MetaAnalysis names the analysis spec (the canary's name by default).
	MetaAnalysis = "analysis"
	// MetaService names the service (the spec's service by default; for the
	// pre-rollout gate, the canary's name when there is no spec).
	MetaService = "service"
	// MetaCanary and MetaBaseline are k=v,k=v label lists.
	MetaCanary   = "canary"
	MetaBaseline = "baseline"
	// MetaChange is the gate's change kind: normal (default) or critical.
	MetaChange = "change"
)

// metaKeys are the metadata keys the Flagger hooks take (each hook reads
// those it needs; a Canary may give its hooks the same metadata).
var metaKeys = []string{MetaAnalysis, MetaService, MetaCanary, MetaBaseline, MetaChange}

// checkMetadata refuses a metadata key sred does not read: Flagger posts
// the Canary's metadata as it is written, and a misspelt key (anaylsis,
// basline) was ignored, its default taken: the spec named after the
// canary, the spec's service, no baseline.
func checkMetadata(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(metaKeys, k) {
			return fmt.Errorf("metadata key %s is not one sred reads (want %s)", limits.Quote(k), strings.Join(metaKeys, ", "))
		}
	}
	return nil
}

// FlaggerAnswer is what the Flagger hooks answer (Flagger logs the body
// of a non-2xx answer in its events).
type FlaggerAnswer struct {
	// Hook is pre-rollout, confirm-promotion or rollback.
	Hook     string           `json:"hook"`
	Canary   string           `json:"canary"`
	Message  string           `json:"message"`
	Decision *budget.Decision `json:"decision,omitempty"`
	Result   *Result          `json:"result,omitempty"`
}

func readFlagger(w http.ResponseWriter, r *http.Request) (FlaggerPayload, bool) {
	var p FlaggerPayload
	// The hook's settings are its metadata: a parameter in the URL
	// (?analysis=) was ignored.
	if err := web.CheckParams(r.URL.Query()); err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger webhook: %w: the hook reads its settings from the webhook's metadata", err))
		return p, false
	}
	b, err := web.ReadBody(w, r)
	if err == nil {
		// Not strict: Flagger may add fields to its payload; a key
		// given twice or in another case is refused all the same.
		err = web.UnmarshalLenient(b, &p)
	}
	if err == nil {
		for _, f := range []struct{ field, v string }{{"name", p.Name}, {"namespace", p.Namespace}} {
			if strings.TrimSpace(f.v) == "" {
				err = fmt.Errorf("%s of the canary is required (Flagger's webhook payload)", f.field)
				break
			}
		}
	}
	// They name the canary in the recorded gate decision: no text that
	// could pass for more of the record.
	if err == nil {
		err = kube.CheckObject("canary", "name", p.Name, "namespace", p.Namespace)
	}
	if err == nil {
		err = limits.Check(&p)
	}
	if err == nil {
		err = checkMetadata(p.Metadata)
	}
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger webhook: %w", err))
		return p, false
	}
	return p, true
}

// handlePreRollout asks the deploy gate: 200 lets Flagger route traffic to
// the canary, 403 holds it (Flagger rolls back after its threshold of
// failed hooks). The decision is recorded with the authenticated principal
// as its actor ("flagger" without one) and the canary as its subject.
func (s *Service) handlePreRollout(w http.ResponseWriter, r *http.Request) {
	p, ok := readFlagger(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	gate := s.gate
	s.mu.RUnlock()
	if gate == nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", errors.New("no deploy gate (configure slos in sred.yml)"))
		return
	}
	svc := p.Metadata[MetaService]
	if svc == "" {
		name := p.Metadata[MetaAnalysis]
		if name == "" {
			name = p.Name
		}
		if sp, ok := s.Spec(name); ok {
			svc = sp.Service
		} else {
			svc = p.Name
		}
	}
	// The actor is who called (Flagger's credentials), not what the body
	// says; the canary it names is the decision's subject.
	// Its requests count against the gate's limit of the client
	// (slos.gate.request_limit), with those of GET /api/v1/gate.
	d, err := gate.Gate(r.Context(), budget.GateRequest{Service: svc, Change: p.Metadata[MetaChange],
		Actor: auth.ActorOf(r.Context(), "", "flagger"), Subject: "flagger canary " + p.Namespace + "/" + p.Name,
		RateClient: budget.OverrideClient(r)})
	if err != nil {
		writeErr(w, err)
		return
	}
	d = budget.DecisionFor(r.Context(), d)
	ans := FlaggerAnswer{Hook: "pre-rollout", Canary: p.Namespace + "/" + p.Name, Decision: d, Message: d.Reason}
	code := http.StatusOK
	if !d.Allowed {
		code = http.StatusForbidden
	}
	flaggerAnswer(w, code, ans)
}

// flaggerRun evaluates the canary of a Flagger webhook.
func (s *Service) flaggerRun(w http.ResponseWriter, r *http.Request, hook string) (*Result, FlaggerPayload, bool) {
	p, ok := readFlagger(w, r)
	if !ok {
		return nil, p, false
	}
	name := p.Metadata[MetaAnalysis]
	if name == "" {
		name = p.Name
	}
	sp, ok := s.Spec(name)
	if !ok {
		web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("flagger %s hook of %s/%s: no analysis named %s (set metadata.analysis)", hook, p.Namespace, p.Name, limits.Quote(name)))
		return nil, p, false
	}
	canary, err := ParseLabels(p.Metadata[MetaCanary])
	if err == nil && len(canary) == 0 {
		err = errors.New("metadata.canary is required: the labels of the canary's series, e.g. app=podinfo,track=canary")
	}
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger %s hook: canary: %w", hook, err))
		return nil, p, false
	}
	baseline, err := ParseLabels(p.Metadata[MetaBaseline])
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger %s hook: baseline: %w", hook, err))
		return nil, p, false
	}
	// An empty value matches the series WITHOUT the label: the analysis
	// would judge other series than the canary's (an unset variable in the
	// Canary's metadata, app={{ .name }}).
	for _, side := range []struct {
		key string
		ls  map[string]string
	}{{MetaCanary, canary}, {MetaBaseline, baseline}} {
		if name, ok := emptyLabel(side.ls); ok {
			web.Error(w, http.StatusBadRequest, "bad_data", fmt.Errorf("flagger %s hook: metadata.%s: label %s has an empty value, which selects the series without that label: give the value of the %s's series",
				hook, side.key, limits.Cut(name), side.key))
			return nil, p, false
		}
	}
	res, err := s.run(r, sp, Target{Service: p.Metadata[MetaService], Canary: canary, Baseline: baseline}, s.clock.Now(), "")
	if err != nil {
		writeErr(w, err)
		return nil, p, false
	}
	s.logger.Debug("Analysis run", "analysis", sp.Name, "hook", hook, "canary", p.Namespace+"/"+p.Name, "verdict", res.Verdict, "reason", res.Reason)
	return &res, p, true
}

// emptyLabel returns the first name (sorted) of ls with an empty value.
func emptyLabel(ls map[string]string) (string, bool) {
	var names []string
	for k, v := range ls {
		if v == "" {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return names[0], true
}

// flaggerAnswer writes a Flagger hook's answer: in the success envelope
// when it lets Flagger go on (2xx), else in the error envelope with
// errorType "refused", its message as the error and the answer as data,
// as a refused chaos run is written: Flagger reads the status code alone,
// and logs the body in its events, where a 403 or 412 that read
// "status": "success" looked like a success.
func flaggerAnswer(w http.ResponseWriter, code int, ans FlaggerAnswer) {
	if code < 300 {
		web.JSON(w, code, ans)
		return
	}
	envelope.ErrorData(w, code, "refused", ans.Message, ans)
}

// handleConfirmPromotion answers 200 when the analysis passes (Flagger
// promotes) and 412 otherwise (Flagger holds the promotion and asks again).
func (s *Service) handleConfirmPromotion(w http.ResponseWriter, r *http.Request) {
	res, p, ok := s.flaggerRun(w, r, "confirm-promotion")
	if !ok {
		return
	}
	ans := FlaggerAnswer{Hook: "confirm-promotion", Canary: p.Namespace + "/" + p.Name, Result: res}
	code := http.StatusOK
	if res.Verdict == Pass {
		ans.Message = "analysis passed: promote"
	} else {
		code = http.StatusPreconditionFailed
		ans.Message = fmt.Sprintf("analysis %s: promotion held: %s", res.Verdict, res.Reason)
	}
	flaggerAnswer(w, code, ans)
}

// handleRollback answers 200 when a check failed on measured data
// (Flagger stops the analysis and rolls the canary back) and 412 otherwise
// (no rollback). A fail that comes only from no-data policies (a canary
// Prometheus has not scraped yet fails a health check with noData: fail)
// is no evidence against the canary: Flagger asks this hook from the first
// interval on, and would roll back every new canary.
func (s *Service) handleRollback(w http.ResponseWriter, r *http.Request) {
	res, p, ok := s.flaggerRun(w, r, "rollback")
	if !ok {
		return
	}
	ans := FlaggerAnswer{Hook: "rollback", Canary: p.Namespace + "/" + p.Name, Result: res}
	code := http.StatusPreconditionFailed
	noData := noDataFailures(res)
	switch {
	case res.Verdict == Fail && len(noData) < failures(res):
		code = http.StatusOK
		ans.Message = "analysis failed: roll back: " + res.Reason
	case res.Verdict == Fail:
		ans.Message = fmt.Sprintf("no data yet for %s (the canary's series are not in Prometheus): no rollback: %s", strings.Join(noData, ", "), res.Reason)
	default:
		ans.Message = fmt.Sprintf("analysis %s: no rollback", res.Verdict)
	}
	flaggerAnswer(w, code, ans)
}

// failures counts the checks of res that failed.
func failures(res *Result) int {
	n := 0
	for _, c := range res.Checks {
		if c.Verdict == Fail {
			n++
		}
	}
	return n
}

// noDataFailures names the checks of res that failed by their no-data
// policy, not on a measured value.
func noDataFailures(res *Result) []string {
	var out []string
	for _, c := range res.Checks {
		if c.Verdict == Fail && c.NoData {
			out = append(out, c.Name)
		}
	}
	return out
}

// SetGate replaces the deploy gate.
func (s *Service) SetGate(g Gate) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

// Evaluator returns the evaluator the service runs analyses with.
func (s *Service) Evaluator() *Evaluator { return s.ev }
