// Package budget computes the error budgets of the SLOs that `srectl generate`
// compiles, from the recording rules it generates, as held by a real
// Prometheus: the SLI achieved over the period, the budget total, consumed
// and remaining (as a ratio, in minutes and, for event SLIs, in events), the
// burn rate over every alert window, a forecast of exhaustion, and the policy
// state (green, yellow, red, exhausted). It also runs the poller that records
// state changes and answers the deploy gate.
package budget

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// StateUnknown is the state of an SLO without data (no traffic recorded yet).
const StateUnknown slo.BudgetState = "unknown"

// stateRank orders states from best to worst.
func stateRank(s slo.BudgetState) int {
	switch s {
	case slo.BudgetGreen:
		return 1
	case slo.BudgetYellow:
		return 2
	case slo.BudgetRed:
		return 3
	case slo.BudgetExhausted:
		return 4
	}
	return 0
}

// States lists the policy states, best first.
var States = []slo.BudgetState{slo.BudgetGreen, slo.BudgetYellow, slo.BudgetRed, slo.BudgetExhausted, StateUnknown}

// Objective is one SLO of one service, as loaded from a spec file.
type Objective struct {
	Service string
	SLO     slo.SLO
}

// Key returns "service/slo".
func (o Objective) Key() string { return o.Service + "/" + o.SLO.Name }

// Period returns the compliance period (the spec default when unset).
func (o Objective) Period() time.Duration {
	if o.SLO.Period == 0 {
		return time.Duration(slo.DefaultPeriod)
	}
	return time.Duration(o.SLO.Period)
}

// PeriodName is the period as the spec spells it ("7d", not "1w").
func (o Objective) PeriodName() string {
	if o.SLO.Period == 0 {
		return model.Duration(slo.DefaultPeriod).String()
	}
	return o.SLO.PeriodName()
}

// Policy returns the budget policy (slo.DefaultBudgetPolicy when the spec sets none).
func (o Objective) Policy() slo.BudgetPolicy {
	p := o.SLO.BudgetPolicy
	if p == (slo.BudgetPolicy{}) {
		return slo.DefaultBudgetPolicy
	}
	return p
}

// Windows returns the windows with a burn-rate recording (the alert
// windows and 5m), shortest first.
func (o Objective) Windows() []time.Duration {
	s := o.SLO
	s.Period = model.Duration(o.Period())
	return rulegen.Windows(&s)
}

// forecastWindow is the window whose burn rate is "the current burn": the
// long window of the fastest page tier (1h for a 30d SLO), else the shortest
// window.
func (o Objective) forecastWindow() time.Duration {
	s := o.SLO
	s.Period = model.Duration(o.Period())
	for _, w := range s.Windows() {
		if w.Severity == slo.SeverityPage {
			return w.Long
		}
	}
	if ws := o.Windows(); len(ws) > 0 {
		return ws[0]
	}
	return slo.BaseWindow
}

// Objectives flattens specs into objectives, sorted by service then SLO.
func Objectives(specs []*slo.Spec) []Objective {
	var out []Objective
	for _, sp := range specs {
		for _, s := range sp.SLOs {
			out = append(out, Objective{Service: sp.Service, SLO: s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// Status is the error budget of one SLO (one group of it, for SLOs with
// groupBy labels) at one time.
type Status struct {
	Service string `json:"service"`
	SLO     string `json:"slo"`
	// Group holds the values of the SLO's groupBy labels (e.g. customer).
	Group     map[string]string `json:"group,omitempty"`
	Objective float64           `json:"objective"` // ratio, e.g. 0.9999
	Period    string            `json:"period"`
	SLIKind   string            `json:"sli_kind"`
	Time      time.Time         `json:"time"`
	// SLIAchieved is 1 - the error ratio over the period (nil without data):
	// over the data that exists when the SLO is younger than its period.
	SLIAchieved *float64 `json:"sli_achieved"`
	// Coverage is the fraction of the period the data covers (1 once the
	// SLO's recordings are as old as its period; nil without data). Every
	// figure is over the covered part: nothing is extrapolated.
	Coverage  *float64        `json:"coverage"`
	Budget    Budget          `json:"budget"`
	BurnRates []BurnRate      `json:"burn_rates"`
	Forecast  Forecast        `json:"forecast"`
	State     slo.BudgetState `json:"state"`
	Policy    Thresholds      `json:"policy"`
}

// GroupString renders the group as `customer="acme"` ("" for an ungrouped SLO).
func (s Status) GroupString() string { return groupString(s.Group) }

// Name is how messages name the SLO (and group): "api/availability",
// "api/latency{region=\"eu\"}".
func (s Status) Name() string {
	name := s.Service + "/" + s.SLO
	if g := s.GroupString(); g != "" {
		name += "{" + g + "}"
	}
	return name
}

func groupString(g map[string]string) string {
	if len(g) == 0 {
		return ""
	}
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, g[k])
	}
	return strings.Join(parts, ",")
}

// Thresholds are the policy thresholds in percent of budget remaining.
type Thresholds struct {
	Green     float64 `json:"green"`
	Yellow    float64 `json:"yellow"`
	Exhausted float64 `json:"exhausted"`
}

// Budget is the error budget over the period. Ratios are shares of the
// budget; minutes are outage-equivalent minutes of the part of the period
// the data covers (the budget ratio times the covered minutes; the whole
// period without data), so a young SLO's consumed minutes are its errors'
// outage equivalent; events are given for event-based SLIs (events and
// latency).
type Budget struct {
	// Total is the error budget as a ratio of events or time (1 - objective).
	Total            float64  `json:"total"`
	ConsumedRatio    *float64 `json:"consumed_ratio"`
	RemainingRatio   *float64 `json:"remaining_ratio"`
	TotalMinutes     float64  `json:"total_minutes"`
	ConsumedMinutes  *float64 `json:"consumed_minutes"`
	RemainingMinutes *float64 `json:"remaining_minutes"`
	// Events over the covered part of the period (event-based SLIs only):
	// the events that happened, not an extrapolation to the whole period.
	TotalEvents        *float64 `json:"total_events,omitempty"`
	BadEvents          *float64 `json:"bad_events,omitempty"`
	AllowedBadEvents   *float64 `json:"allowed_bad_events,omitempty"`
	RemainingBadEvents *float64 `json:"remaining_bad_events,omitempty"`
}

// BurnRate is the burn rate over one alert window (nil without traffic).
type BurnRate struct {
	Window string   `json:"window"`
	Rate   *float64 `json:"rate"`
}

// Forecast says when the budget runs out if the current burn continues.
type Forecast struct {
	// Window is the window of the burn rate used ("current burn").
	Window   string   `json:"window"`
	BurnRate *float64 `json:"burn_rate"`
	// ExhaustedAt is nil when the budget does not run out at this burn
	// (burn rate 0) or is already exhausted.
	ExhaustedAt *time.Time `json:"exhausted_at,omitempty"`
	// SecondsLeft is the time until exhaustion (0 when already exhausted).
	SecondsLeft *float64 `json:"seconds_left,omitempty"`
	Message     string   `json:"message"`
}

// sample is what Prometheus holds for one group.
type sample struct {
	group       map[string]string
	ratioPeriod *float64
	remaining   *float64
	burn        map[time.Duration]*float64
	avgErr      *float64
	avgTotal    *float64
	// first is the unix time of the first 5m rate sample in the period.
	first *float64
}

// compute turns the samples of one group into a Status.
func compute(o Objective, at time.Time, s *sample) Status {
	period := o.Period()
	pol := o.Policy()
	budget := o.SLO.ErrorBudget()
	st := Status{
		Service:   o.Service,
		SLO:       o.SLO.Name,
		Group:     s.group,
		Objective: o.SLO.ObjectiveRatio(),
		Period:    o.PeriodName(),
		SLIKind:   o.SLO.SLI.Kind(),
		Time:      at.UTC(),
		Policy:    Thresholds{Green: pol.Green, Yellow: pol.Yellow, Exhausted: pol.Exhausted},
	}
	covered := period.Seconds()
	switch {
	case s.first != nil:
		// The first 5m rate sample covers the five minutes before it.
		covered = math.Min(math.Max(float64(at.Unix())-*s.first+slo.BaseWindow.Seconds(), 0), period.Seconds())
		st.Coverage = ptr(round(covered / period.Seconds()))
	case s.avgTotal != nil:
		// Events recorded, but no first sample at the coverage query's 1m
		// steps: the data is younger than a minute, and covers the first
		// sample's five minutes (not the whole period).
		covered = math.Min(slo.BaseWindow.Seconds(), period.Seconds())
		st.Coverage = ptr(round(covered / period.Seconds()))
	}
	// The minutes are those of the covered part of the period, as the
	// ratios are: a young SLO's consumed minutes are its errors' outage
	// equivalent, not its error ratio over the whole period.
	minutes := covered / 60
	st.Budget.Total = budget
	st.Budget.TotalMinutes = round(budget * minutes)
	if s.ratioPeriod != nil {
		st.SLIAchieved = ptr(1 - *s.ratioPeriod)
	}
	remaining := s.remaining
	if remaining == nil && s.ratioPeriod != nil && budget > 0 {
		remaining = ptr(1 - *s.ratioPeriod/budget)
	}
	if remaining != nil {
		st.Budget.RemainingRatio = ptr(round(*remaining))
		st.Budget.ConsumedRatio = ptr(round(1 - *remaining))
		st.Budget.RemainingMinutes = ptr(round(*remaining * budget * minutes))
		st.Budget.ConsumedMinutes = ptr(round((1 - *remaining) * budget * minutes))
		st.State = pol.State(*remaining)
	} else {
		st.State = StateUnknown
	}
	if kind := o.SLO.SLI.Kind(); (kind == slo.KindEvents || kind == slo.KindLatency) && s.avgTotal != nil {
		total := *s.avgTotal * covered
		st.Budget.TotalEvents = ptr(round(total))
		st.Budget.AllowedBadEvents = ptr(round(budget * total))
		if s.avgErr != nil {
			bad := *s.avgErr * covered
			st.Budget.BadEvents = ptr(round(bad))
			st.Budget.RemainingBadEvents = ptr(round(budget*total - bad))
		}
	}
	for _, w := range o.Windows() {
		st.BurnRates = append(st.BurnRates, BurnRate{Window: model.Duration(w).String(), Rate: s.burn[w]})
	}
	fw := o.forecastWindow()
	st.Forecast = forecast(at, period, time.Duration(covered*float64(time.Second)), fw, remaining, s.burn[fw])
	return st
}

// forecast: at burn rate B the budget drains at B/period of its total per
// second, so a remaining share R lasts R x period / B. A young SLO's share R
// is over the C seconds its data covers, and its budget grows with them: it
// lasts R x C / (B - 1) when that ends before the data covers the period;
// otherwise the share left when it does, R', lasts R' x period / B more.
// Errors leaving the window are ignored.
func forecast(at time.Time, period, covered, window time.Duration, remaining, burn *float64) Forecast {
	f := Forecast{Window: model.Duration(window).String(), BurnRate: burn}
	switch {
	case remaining == nil:
		f.Message = "no data"
	case *remaining <= 0:
		f.SecondsLeft = ptr(0)
		f.Message = "budget exhausted"
	case burn == nil:
		f.Message = "no traffic over " + f.Window
	case *burn <= 0:
		f.Message = "not burning over " + f.Window
	default:
		secs := secondsLeft(*remaining, *burn, covered.Seconds(), period.Seconds())
		f.SecondsLeft = ptr(round(secs))
		t := at.Add(time.Duration(secs * float64(time.Second))).UTC().Truncate(time.Second)
		f.ExhaustedAt = &t
		f.Message = fmt.Sprintf("exhausted in %s at the burn rate over %s", model.Duration(time.Duration(secs)*time.Second).String(), f.Window)
	}
	return f
}

// secondsLeft is the time until a remaining share r over c covered seconds
// of a period of p seconds reaches 0 at burn rate b (> 0).
func secondsLeft(r, b, c, p float64) float64 {
	if c <= 0 || c >= p {
		return r * p / b
	}
	if b > 1 {
		if t := r * c / (b - 1); c+t <= p {
			return t
		}
	}
	// Budget consumed over the period once covered: (1-r) x c of the
	// covered time and b x (p-c) more.
	rp := 1 - ((1-r)*c+b*(p-c))/p
	return (p - c) + rp*p/b
}

func ptr(v float64) *float64 { return &v }

// round removes float noise beyond 12 significant decimals.
func round(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	mag := math.Pow(10, 12-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*mag) / mag
}

// Evaluator computes budgets from Prometheus.
type Evaluator struct {
	Prom *Prom
}

// Evaluate returns the status of every group of one objective at time at.
func (e *Evaluator) Evaluate(ctx context.Context, o Objective, at time.Time) ([]Status, error) {
	sel := selector(o.Service, o.SLO.Name)
	groups := map[string]*sample{}
	var order []string
	get := func(m model.Metric) *sample {
		g := map[string]string{}
		for _, l := range o.SLO.GroupBy {
			if v, ok := m[model.LabelName(l)]; ok {
				g[l] = string(v)
			}
		}
		k := groupString(g)
		s, ok := groups[k]
		if !ok {
			if len(g) == 0 {
				g = nil
			}
			s = &sample{group: g, burn: map[time.Duration]*float64{}}
			groups[k] = s
			order = append(order, k)
		}
		return s
	}
	set := func(q string, f func(s *sample, v *float64)) error {
		vec, err := e.Prom.Instant(ctx, q, at)
		if err != nil {
			return err
		}
		for _, smp := range vec {
			f(get(smp.Metric), finite(float64(smp.Value)))
		}
		return nil
	}
	if err := set(ErrorRatioPeriodRecord+sel, func(s *sample, v *float64) { s.ratioPeriod = v }); err != nil {
		return nil, err
	}
	if err := set(BudgetRemainingRecord+sel, func(s *sample, v *float64) { s.remaining = v }); err != nil {
		return nil, err
	}
	windows := o.Windows()
	byName := map[string]time.Duration{}
	var names []string
	for _, w := range windows {
		n := BurnRateRecord(w)
		byName[n] = w
		names = append(names, regexpQuote(n))
	}
	if len(names) > 0 {
		q := fmt.Sprintf(`{__name__=~"%s",%s}`, strings.Join(names, "|"), sel[1:len(sel)-1])
		vec, err := e.Prom.Instant(ctx, q, at)
		if err != nil {
			return nil, err
		}
		for _, smp := range vec {
			if w, ok := byName[string(smp.Metric[model.MetricNameLabel])]; ok {
				get(smp.Metric).burn[w] = finite(float64(smp.Value))
			}
		}
	}
	rng := model.Duration(o.Period()).String()
	if err := set(fmt.Sprintf("avg_over_time(%s%s[%s])", TotalEventsRecord, sel, rng), func(s *sample, v *float64) { s.avgTotal = v }); err != nil {
		return nil, err
	}
	if err := set(fmt.Sprintf("avg_over_time(%s%s[%s])", ErrorEventsRecord, sel, rng), func(s *sample, v *float64) { s.avgErr = v }); err != nil {
		return nil, err
	}
	if err := set(CoverageStartQuery(o.Service, o.SLO.Name, o.Period()), func(s *sample, v *float64) { s.first = v }); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		// No series at all: one status without data, so the SLO is listed.
		order = append(order, "")
		groups[""] = &sample{burn: map[time.Duration]*float64{}}
	}
	sort.Strings(order)
	out := make([]Status, 0, len(order))
	for _, k := range order {
		out = append(out, compute(o, at, groups[k]))
	}
	return out, nil
}

// CoverageStartQuery is the PromQL of the time of the first 5m rate sample
// of an SLO within its period (to the minute): how much of the period the
// data covers.
func CoverageStartQuery(service, sloName string, period time.Duration) string {
	return fmt.Sprintf("min_over_time(timestamp(%s%s)[%s:1m])", TotalEventsRecord, selector(service, sloName), model.Duration(period))
}

// finite drops NaN and infinities (no traffic), which JSON cannot carry.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Worst returns the worst state among statuses (unknown only if all are unknown).
func Worst(sts []Status) (slo.BudgetState, *Status) {
	var (
		worst slo.BudgetState = StateUnknown
		which *Status
	)
	for i := range sts {
		if stateRank(sts[i].State) > stateRank(worst) {
			worst, which = sts[i].State, &sts[i]
		}
	}
	return worst, which
}
