package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/rulegen"
)

// Verdict is the outcome of an analysis or of one check.
type Verdict string

// Verdicts.
const (
	// Pass: promote the canary.
	Pass Verdict = "pass"
	// Fail: roll the canary back.
	Fail Verdict = "fail"
	// Inconclusive: pause the rollout for a human.
	Inconclusive Verdict = "inconclusive"
)

// worse returns the worse of two verdicts (fail > inconclusive > pass).
func worse(a, b Verdict) Verdict {
	rank := map[Verdict]int{Pass: 0, Inconclusive: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Querier runs PromQL queries (budget.Prom is one).
type Querier interface {
	Instant(ctx context.Context, q string, at time.Time) (model.Vector, error)
	Range(ctx context.Context, q string, r v1.Range) (model.Matrix, error)
}

// ErrNoQuerier is returned when the evaluator has no Prometheus.
var ErrNoQuerier = errors.New("no Prometheus configured (set prometheus.url in sred.yml)")

// Target names what an analysis compares: the label sets selecting the
// canary's and the baseline's series.
type Target struct {
	// Service whose SLO burn rate is checked; the spec's service by default.
	Service string `json:"service"`
	// Canary and Baseline are label sets, e.g. {job: checkout, track: canary}.
	// Canary is required; Baseline is required by compare and mannWhitney checks.
	Canary   map[string]string `json:"canary"`
	Baseline map[string]string `json:"baseline,omitempty"`
	// Window, when longer than the spec's interval, replaces it as
	// {{.Interval}} (whole seconds): the stage runner judges a whole
	// stage, from its start.
	Window time.Duration `json:"-"`
}

// TargetError says that the target of an evaluation is incomplete or
// invalid (the API answers 400).
type TargetError struct{ Msg string }

func (e *TargetError) Error() string { return "target: " + e.Msg }

// Result is the verdict of one analysis run.
type Result struct {
	Analysis string    `json:"analysis"`
	Service  string    `json:"service"`
	Time     time.Time `json:"time"`
	Verdict  Verdict   `json:"verdict"`
	// Pass is Verdict == pass, for a successCondition that reads a boolean.
	Pass bool `json:"pass"`
	// Reason summarises the checks that did not pass.
	Reason string `json:"reason"`
	// Requests is what the canary served over the interval (0 without data).
	Requests    float64       `json:"requests"`
	MinRequests float64       `json:"minRequests"`
	Checks      []CheckResult `json:"checks"`
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name    string    `json:"name"`
	Type    CheckType `json:"type"`
	Verdict Verdict   `json:"verdict"`
	// Value is what was compared with the threshold: the canary's value
	// (threshold), canary/baseline (compare), the burn rate (burnRate) or
	// the p-value (mannWhitney). Absent without data or when infinite.
	Value    *float64 `json:"value,omitempty"`
	Canary   *float64 `json:"canary,omitempty"`
	Baseline *float64 `json:"baseline,omitempty"`
	// Threshold describes the passing range, e.g. "<= 0.05".
	Threshold string `json:"threshold"`
	Reason    string `json:"reason"`
	// Query is the canary's rendered query.
	Query string `json:"query,omitempty"`
	// NoData is true when the no-data policy decided.
	NoData bool `json:"noData,omitempty"`
}

// Evaluator runs analyses against Prometheus.
type Evaluator struct {
	mu      sync.RWMutex
	q       Querier
	metrics *Metrics
}

// NewEvaluator returns an evaluator querying q; m (optional) counts runs.
func NewEvaluator(q Querier, m *Metrics) *Evaluator {
	return &Evaluator{q: q, metrics: m}
}

// SetQuerier replaces the Prometheus queried (on reload).
func (e *Evaluator) SetQuerier(q Querier) {
	e.mu.Lock()
	e.q = q
	e.mu.Unlock()
}

func (e *Evaluator) querier() Querier {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.q
}

// serviceRE is what a service name may hold (the SLO specs' rule; its
// length is bounded by MaxServiceBytes).
var serviceRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// MaxServiceBytes is the longest service an analysis reads: the longest
// service name of an SLO spec (pkg/slo), whose burn-rate recordings the
// checks query. A longer one can have no SLO, so its run could only end
// with "no data"; it is refused instead.
const MaxServiceBytes = 63

// Selector renders a label set as PromQL matchers without braces, sorted
// by name, values quoted: job="checkout",track="canary".
func Selector(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for k := range ls {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, labels.MustNewMatcher(labels.MatchEqual, k, ls[k]).String())
	}
	return strings.Join(parts, ",")
}

func validLabels(side string, ls map[string]string) error {
	// An empty value matches the series WITHOUT the label in PromQL
	// (app=""): the analysis would judge other series than the target's,
	// and could pass on none at all.
	if name, ok := emptyLabel(ls); ok {
		return fmt.Errorf("%s label %s has an empty value, which selects the series without that label: give the value of the %s's series", side, limits.Cut(name), side)
	}
	for k := range ls {
		if !model.LabelName(k).IsValidLegacy() {
			return fmt.Errorf("%s label name %s is not a valid Prometheus label name", side, limits.Quote(k))
		}
		// __name__ would contradict the query's own metric name (Prometheus
		// refuses the query); names starting with __ are Prometheus' own.
		if strings.HasPrefix(k, "__") {
			return fmt.Errorf("%s label name %s is reserved (names starting with __ are Prometheus' own)", side, limits.Quote(k))
		}
	}
	return nil
}

// Evaluate runs every check of spec for target at time at. It returns an
// error when the target is incomplete or Prometheus cannot answer; a check
// whose query returns nothing is decided by its no-data policy.
func (e *Evaluator) Evaluate(ctx context.Context, spec *Spec, t Target, at time.Time) (Result, error) {
	q := e.querier()
	if q == nil {
		return Result{}, ErrNoQuerier
	}
	if t.Service == "" {
		t.Service = spec.Service
	}
	// Query templates may write {{.Service}} inside a quoted matcher
	// value: a caller's service is a name, never PromQL.
	if !serviceRE.MatchString(t.Service) {
		return Result{}, &TargetError{fmt.Sprintf("service %s is not a service name (a letter or digit, then letters, digits, '_', '.', '-')", limits.Quote(t.Service))}
	}
	if len(t.Service) > MaxServiceBytes {
		return Result{}, &TargetError{fmt.Sprintf("service %s is longer than %d bytes, the longest service name an SLO may have: no SLO has its data", limits.Quote(t.Service), MaxServiceBytes)}
	}
	if len(t.Canary) == 0 {
		return Result{}, &TargetError{"canary labels are required (the label set selecting the canary's series)"}
	}
	if err := validLabels("canary", t.Canary); err != nil {
		return Result{}, &TargetError{err.Error()}
	}
	if err := validLabels("baseline", t.Baseline); err != nil {
		return Result{}, &TargetError{err.Error()}
	}
	for _, c := range spec.all {
		if (c.Type == Compare || c.Type == MannWhitney) && len(t.Baseline) == 0 {
			return Result{}, &TargetError{fmt.Sprintf("check %q compares with the baseline: baseline labels are required", c.Name)}
		}
	}
	r := evalRun{q: q, spec: spec, target: t, at: at, data: QueryData{
		Service: t.Service, Canary: Selector(t.Canary), Baseline: Selector(t.Baseline),
		Interval: model.Duration(window(spec, t)).String(),
	}}
	res := Result{Analysis: spec.Name, Service: t.Service, Time: at, Verdict: Pass, MinRequests: spec.MinRequests}

	reqQ, err := r.render(spec.Queries.Requests, r.data.Canary)
	if err != nil {
		return Result{}, fmt.Errorf("queries.requests: %w", err)
	}
	v, ok, err := r.instant(ctx, reqQ)
	if err != nil {
		return Result{}, err
	}
	if ok && !math.IsInf(v, 0) {
		res.Requests = v
	}
	var reasons []string
	if res.Requests < spec.MinRequests {
		res.Verdict = Inconclusive
		reasons = append(reasons, fmt.Sprintf("canary served %s requests over %s, fewer than the %s required: not promoted", num(res.Requests), r.data.Interval, num(spec.MinRequests)))
	}
	for _, c := range spec.all {
		cr, err := r.check(ctx, c, res.Requests)
		if err != nil {
			return Result{}, fmt.Errorf("check %q: %w", c.Name, err)
		}
		res.Checks = append(res.Checks, cr)
		res.Verdict = worse(res.Verdict, cr.Verdict)
		if cr.Verdict != Pass {
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", c.Name, cr.Verdict, cr.Reason))
		}
	}
	res.Pass = res.Verdict == Pass
	if len(reasons) == 0 {
		res.Reason = fmt.Sprintf("all %d checks passed", len(res.Checks))
	} else {
		res.Reason = strings.Join(reasons, "; ")
	}
	e.metrics.observe(res)
	return res, nil
}

// window is the range of the queries: the spec's interval, or the
// target's longer window in whole seconds.
func window(spec *Spec, t Target) time.Duration {
	w := time.Duration(spec.Interval)
	if t.Window.Truncate(time.Second) > w {
		w = t.Window.Truncate(time.Second)
	}
	return w
}

type evalRun struct {
	q      Querier
	spec   *Spec
	target Target
	at     time.Time
	data   QueryData
}

func (r *evalRun) render(tmpl, selector string) (string, error) {
	t, err := parseTemplate("query", tmpl)
	if err != nil {
		return "", fmt.Errorf("query template: %w", err)
	}
	return r.query(Check{tmpl: t}, selector)
}

// instant runs q and returns its single value; ok is false without data
// (no series, or NaN).
func (r *evalRun) instant(ctx context.Context, q string) (float64, bool, error) {
	vec, err := r.q.Instant(ctx, q, r.at)
	if err != nil {
		return 0, false, err
	}
	switch len(vec) {
	case 0:
		return 0, false, nil
	case 1:
		v := float64(vec[0].Value)
		return v, !math.IsNaN(v), nil
	}
	return 0, false, fmt.Errorf("query %s returned %d series; aggregate it to one (e.g. sum(...) or max(...))", q, len(vec))
}

func (r *evalRun) check(ctx context.Context, c Check, requests float64) (CheckResult, error) {
	cr := CheckResult{Name: c.Name, Type: c.Type, Threshold: threshold(c)}
	minReq := r.spec.MinRequests
	if c.MinRequests != nil {
		minReq = *c.MinRequests
	}
	var err error
	switch c.Type {
	case Threshold:
		err = r.threshold(ctx, c, &cr)
	case Compare:
		err = r.compare(ctx, c, &cr)
	case BurnRate:
		err = r.burnRate(ctx, c, &cr)
	case MannWhitney:
		err = r.mannWhitney(ctx, c, &cr)
	default:
		err = fmt.Errorf("unknown check type %q", c.Type)
	}
	if err != nil {
		return cr, err
	}
	switch {
	case requests >= minReq:
	case cr.Verdict != Fail:
		cr.Verdict = Inconclusive
		cr.Reason = fmt.Sprintf("canary served %s requests, fewer than the %s this check needs (%s)", num(requests), num(minReq), cr.Reason)
	case cr.Value == nil && !cr.NoData:
		// It failed on an infinite value: below the traffic floor, a
		// division by the canary's own traffic (CPU per request of an
		// idle canary), no more evidence than a NaN. A finite failure
		// (a down canary) and a noData policy of fail still fail.
		cr.Verdict = Inconclusive
		cr.Reason = fmt.Sprintf("canary served %s requests, fewer than the %s this check needs, and its value is infinite (%s)", num(requests), num(minReq), cr.Reason)
	}
	return cr, nil
}

func (r *evalRun) query(c Check, selector string) (string, error) {
	var b limitedBuffer
	d := r.data
	d.Selector = selector
	if err := c.tmpl.Execute(&b, d); err != nil {
		if errors.Is(err, errQueryTooLong) {
			// The spec rendered within the bound when it loaded: the
			// caller's labels made it longer.
			return "", &TargetError{fmt.Sprintf("the canary and baseline labels make a query longer than %d bytes", maxQueryBytes)}
		}
		return "", fmt.Errorf("render query: %w", err)
	}
	return b.String(), nil
}

func (r *evalRun) noData(c Check, cr *CheckResult, what string) {
	cr.NoData = true
	cr.Verdict = c.NoData.Verdict()
	cr.Reason = fmt.Sprintf("no data (%s); noData policy: %s", what, c.NoData)
}

func (r *evalRun) threshold(ctx context.Context, c Check, cr *CheckResult) error {
	q, err := r.query(c, r.data.Canary)
	if err != nil {
		return err
	}
	cr.Query = q
	v, ok, err := r.instant(ctx, q)
	if err != nil {
		return err
	}
	if !ok {
		r.noData(c, cr, "the canary's query returned nothing")
		return nil
	}
	cr.Canary, cr.Value = finite(v), finite(v)
	judge(c.Min, c.Max, v, "canary value", cr)
	return nil
}

func (r *evalRun) burnRate(ctx context.Context, c Check, cr *CheckResult) error {
	m := labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, r.target.Service)
	q := fmt.Sprintf("max(%s{%s})", rulegen.BurnRateRecord(time.Duration(c.Window)), m.String())
	cr.Query = q
	v, ok, err := r.instant(ctx, q)
	if err != nil {
		return err
	}
	if !ok {
		r.noData(c, cr, fmt.Sprintf("no %s recording for service %q: no SLO, or its rules are not loaded", rulegen.BurnRateRecord(time.Duration(c.Window)), r.target.Service))
		return nil
	}
	cr.Value = finite(v)
	judge(c.Min, c.Max, v, "SLO burn rate over "+rulegen.WindowName(time.Duration(c.Window)), cr)
	return nil
}

func (r *evalRun) compare(ctx context.Context, c Check, cr *CheckResult) error {
	cq, err := r.query(c, r.data.Canary)
	if err != nil {
		return err
	}
	bq, err := r.query(c, r.data.Baseline)
	if err != nil {
		return err
	}
	cr.Query = cq
	cv, cok, err := r.instant(ctx, cq)
	if err != nil {
		return err
	}
	bv, bok, err := r.instant(ctx, bq)
	if err != nil {
		return err
	}
	if cok {
		cr.Canary = finite(cv)
	}
	if bok {
		cr.Baseline = finite(bv)
	}
	switch {
	case !cok && !bok:
		r.noData(c, cr, "neither canary nor baseline query returned data")
		return nil
	case !cok:
		r.noData(c, cr, "the canary's query returned nothing")
		return nil
	case !bok:
		r.noData(c, cr, "the baseline's query returned nothing")
		return nil
	}
	var ratio float64
	switch {
	case bv == cv:
		ratio = 1
	case bv == 0:
		ratio = math.Inf(sign(cv))
	default:
		ratio = cv / bv
	}
	cr.Value = finite(ratio)
	if math.Abs(cv-bv) <= c.Tolerance {
		cr.Verdict = Pass
		cr.Reason = fmt.Sprintf("canary %s and baseline %s differ by at most the tolerance %s", num(cv), num(bv), num(c.Tolerance))
		return nil
	}
	judge(c.MinRatio, c.MaxRatio, ratio, fmt.Sprintf("canary/baseline (%s/%s)", num(cv), num(bv)), cr)
	return nil
}

func (r *evalRun) mannWhitney(ctx context.Context, c Check, cr *CheckResult) error {
	cq, err := r.query(c, r.data.Canary)
	if err != nil {
		return err
	}
	bq, err := r.query(c, r.data.Baseline)
	if err != nil {
		return err
	}
	cr.Query = cq
	rng := v1.Range{Start: r.at.Add(-time.Duration(c.Lookback)), End: r.at, Step: time.Duration(c.Step)}
	xs, err := r.samples(ctx, cq, rng)
	if err != nil {
		return err
	}
	ys, err := r.samples(ctx, bq, rng)
	if err != nil {
		return err
	}
	if len(xs) < c.MinSamples || len(ys) < c.MinSamples {
		r.noData(c, cr, fmt.Sprintf("%d canary and %d baseline samples, fewer than the %d each side needs", len(xs), len(ys), c.MinSamples))
		return nil
	}
	cm, bm := median(xs), median(ys)
	cr.Canary, cr.Baseline = fptr(cm), fptr(bm)
	alt := map[Direction]Alternative{Increase: Greater, Decrease: Less, Either: TwoSided}[c.Direction]
	u := MannWhitneyU(xs, ys, alt)
	cr.Value = fptr(u.P)
	desc := fmt.Sprintf("Mann-Whitney U=%s over %d canary and %d baseline samples (medians %s and %s), p=%s", num(u.U), len(xs), len(ys), num(cm), num(bm), num(u.P))
	switch {
	case u.P < c.FailPValue:
		cr.Verdict = Fail
		cr.Reason = fmt.Sprintf("%s < %s: the canary is worse (%s)", desc, num(c.FailPValue), c.Direction)
	case u.P < c.InconclusivePValue:
		cr.Verdict = Inconclusive
		cr.Reason = fmt.Sprintf("%s is in the inconclusive band [%s, %s)", desc, num(c.FailPValue), num(c.InconclusivePValue))
	default:
		cr.Verdict = Pass
		cr.Reason = fmt.Sprintf("%s >= %s: no significant %s", desc, num(c.InconclusivePValue), c.Direction)
	}
	return nil
}

func (r *evalRun) samples(ctx context.Context, q string, rng v1.Range) ([]float64, error) {
	m, err := r.q.Range(ctx, q, rng)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, s := range m {
		for _, p := range s.Values {
			if v := float64(p.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// judge sets the verdict of a value against optional bounds.
func judge(lo, hi *float64, v float64, what string, cr *CheckResult) {
	switch {
	case math.IsNaN(v):
		// No bound holds or fails for NaN (+Inf/-Inf of a compare): no
		// evidence either way, never a pass.
		cr.Verdict = Inconclusive
		cr.Reason = fmt.Sprintf("%s is not a number", what)
	case hi != nil && v > *hi:
		cr.Verdict = Fail
		cr.Reason = fmt.Sprintf("%s %s > %s", what, num(v), num(*hi))
	case lo != nil && v < *lo:
		cr.Verdict = Fail
		cr.Reason = fmt.Sprintf("%s %s < %s", what, num(v), num(*lo))
	default:
		cr.Verdict = Pass
		cr.Reason = fmt.Sprintf("%s %s within %s", what, num(v), threshBounds(lo, hi))
	}
}

func threshold(c Check) string {
	switch c.Type {
	case Compare:
		s := "canary/baseline " + threshBounds(c.MinRatio, c.MaxRatio)
		if c.Tolerance > 0 {
			s += " or |canary-baseline| <= " + num(c.Tolerance)
		}
		return s
	case MannWhitney:
		return fmt.Sprintf("p >= %s (fail below %s)", num(c.InconclusivePValue), num(c.FailPValue))
	}
	return threshBounds(c.Min, c.Max)
}

func threshBounds(lo, hi *float64) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("[%s, %s]", num(*lo), num(*hi))
	case hi != nil:
		return "<= " + num(*hi)
	case lo != nil:
		return ">= " + num(*lo)
	}
	return "any"
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func fptr(v float64) *float64 { return &v }

// finite is fptr of a finite value, nil for an infinite one (a
// histogram_quantile in the +Inf bucket), which JSON cannot carry: the
// reason still names it.
func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

func sign(v float64) int {
	if v < 0 {
		return -1
	}
	return 1
}
