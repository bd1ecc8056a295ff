// Package sla computes customer SLA reports: for each contracted service,
// the availability and latency achieved over exactly the requested range (a
// rolling period such as 30d, or a calendar month), compared with the
// contracted targets, with the violations and the service credits they
// earn. Figures come from the raw series each SLO's SLI reads, counted over
// exactly the range (rulegen.RangeExprs: exact to the scrape interval), per
// customer where the SLO is grouped by the customer's label; where the raw
// series hold nothing for the range they fall back to ratios of sums of the
// slo:sli_error_events:rate5m and slo:sli_total_events:rate5m recordings.
package sla

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/web"
)

// Statuses of one objective.
const (
	StatusMet    = "MET"
	StatusMissed = "MISSED"
	StatusNoData = "NO_DATA"
)

// Report is a customer's SLA report.
type Report struct {
	Customer string `json:"customer"`
	Name     string `json:"name"`
	// Period is "30d" for a rolling period or "2026-10" for a calendar month.
	Period string    `json:"period"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Partial is set for the current calendar month (it ends now).
	Partial  bool                     `json:"partial,omitempty"`
	Services map[string]ServiceReport `json:"services"`
	// Violations counts the objectives MISSED.
	Violations int `json:"violations"`
	// Credits is the service credit earned, in percent (the largest tier
	// reached by any service's availability).
	Credits float64 `json:"credits"`
}

// ServiceReport holds the objectives of one service.
type ServiceReport struct {
	Availability *Objective `json:"availability,omitempty"`
	Latency      *Objective `json:"latency,omitempty"`
}

// Objective is one contracted target and what was achieved.
type Objective struct {
	Target   string `json:"target"`   // "99.99%"
	Achieved string `json:"achieved"` // "99.995%", or "n/a" without data
	Status   string `json:"status"`   // MET, MISSED or NO_DATA
	SLO      string `json:"slo"`
	// Scope is "customer" when measured on the customer's own series, or
	// "service" when the SLO has no customer label (service-wide figure).
	Scope         string   `json:"scope"`
	TargetRatio   float64  `json:"target_ratio"`
	AchievedRatio *float64 `json:"achieved_ratio"`
	// Credit is the credit earned by this availability, in percent.
	Credit float64 `json:"credit,omitempty"`
	// Source is "raw" when the figure comes from the SLI's raw series over
	// exactly the range, "recordings" when it falls back to the 5m rate
	// recordings (the raw series have no data for the range); empty
	// without data.
	Source string `json:"source,omitempty"`
	// Coverage is the fraction of the range the SLO's data covers (from
	// its first 5m rate recording in the range); below 1 for an SLO younger
	// than the range, whose figure is over the covered part.
	Coverage *float64 `json:"coverage,omitempty"`
}

// SLOLookup returns a service's SLO, and whether it exists.
type SLOLookup func(service, slo string) (*slo.SLO, bool)

// Lookup builds an SLOLookup over budget objectives.
func Lookup(objs []budget.Objective) SLOLookup {
	return func(service, sloName string) (*slo.SLO, bool) {
		for i := range objs {
			if objs[i].Service == service && objs[i].SLO.Name == sloName {
				return &objs[i].SLO, true
			}
		}
		return nil, false
	}
}

// Check verifies that every contracted target names an SLO of the specs.
func (c *Config) Check(lookup SLOLookup) error {
	for _, cu := range c.Customers {
		for _, s := range cu.Services {
			for _, t := range []*Target{s.Availability, s.Latency} {
				if t == nil {
					continue
				}
				if _, ok := lookup(s.Service, t.SLO); !ok {
					return fmt.Errorf("sla: customer %q: service %q: SLO %q is not defined in the SLO specs (slos.spec_files)", cu.ID, s.Service, t.SLO)
				}
			}
		}
	}
	return nil
}

// Warnings returns a warning for every contracted target stricter than the
// objective of the SLO that measures it: the contract can then be missed
// while the SLO, its error budget and its burn-rate pages still read
// healthy, and nothing pages before the credits are owed. Targets whose
// SLO lookup does not know are Check's errors, not warnings.
func (c *Config) Warnings(lookup SLOLookup) []string {
	var out []string
	for _, cu := range c.Customers {
		for _, s := range cu.Services {
			for _, t := range s.targets() {
				if t.t == nil {
					continue
				}
				o, ok := lookup(s.Service, t.t.SLO)
				if !ok || t.t.Target <= o.Objective {
					continue
				}
				out = append(out, fmt.Sprintf("sla: customer %q: service %q: %s target %s%% is stricter than the objective of SLO %q (%s%%): the contract can be missed while the SLO's error budget and burn-rate alerts still read healthy; make the SLO at least as strict as the contract",
					cu.ID, s.Service, t.kind, percentText(t.t.Target), t.t.SLO, percentText(o.Objective)))
			}
		}
	}
	return out
}

// percentText is a percentage as written in the configuration (99.95).
func percentText(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

// ErrNotFound is returned for an unknown customer.
var ErrNotFound = errors.New("not found")

// ErrBadRange is returned for an invalid period or month.
var ErrBadRange = errors.New("invalid range")

// MinMonth is the earliest month of a report: an earlier month parameter
// (0001-01) is a 400 naming it, as is one that has not started.
var MinMonth = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Range is the time range of a report.
type Range struct {
	Label      string // "30d" or "2026-10"
	Start, End time.Time
	Partial    bool
}

// ParseRange reads the period or month parameter (at most one) at time now.
// Without either, the customer's period applies.
func ParseRange(period, month string, def time.Duration, now time.Time) (Range, error) {
	now = now.UTC().Truncate(time.Second)
	switch {
	case period != "" && month != "":
		return Range{}, fmt.Errorf("%w: give period or month, not both", ErrBadRange)
	case month != "":
		m, err := time.Parse("2006-01", month)
		if err != nil {
			return Range{}, fmt.Errorf("%w: month %s: want YYYY-MM", ErrBadRange, limits.Quote(month))
		}
		end := m.AddDate(0, 1, 0)
		if m.Before(MinMonth) {
			// 0001-01 was answered NO_DATA, as if the SLA had no data
			// for a month of a contract.
			return Range{}, fmt.Errorf("%w: month %s is before %s: want YYYY-MM from %s to %s", ErrBadRange,
				month, MinMonth.Format("2006-01"), MinMonth.Format("2006-01"), now.Format("2006-01"))
		}
		if !m.Before(now) {
			return Range{}, fmt.Errorf("%w: month %s has not started", ErrBadRange, month)
		}
		r := Range{Label: month, Start: m, End: end}
		if end.After(now) {
			r.End, r.Partial = now, true
		}
		return r, nil
	}
	d := def
	label := model.Duration(def).String()
	if period != "" {
		pd, err := web.ParseDuration(period)
		if err != nil {
			return Range{}, fmt.Errorf("%w: period %s: %v", ErrBadRange, limits.Quote(period), err)
		}
		d, label = time.Duration(pd), period
	}
	if d < time.Minute || d > maxRange {
		return Range{}, fmt.Errorf("%w: period must be between 1m and 366d, got %s", ErrBadRange, label)
	}
	return Range{Label: label, Start: now.Add(-d), End: now}, nil
}

// Querier runs instant queries (budget.Prom implements it).
type Querier interface {
	Instant(ctx context.Context, q string, at time.Time) (model.Vector, error)
}

// Compute builds the report of a customer over r.
func Compute(ctx context.Context, q Querier, lookup SLOLookup, cu *Customer, r Range) (*Report, error) {
	rep := &Report{Customer: cu.ID, Name: cu.Name, Period: r.Label, Start: r.Start, End: r.End, Partial: r.Partial, Services: map[string]ServiceReport{}}
	for _, s := range cu.Services {
		var sr ServiceReport
		for _, t := range []struct {
			t   *Target
			out **Objective
		}{{s.Availability, &sr.Availability}, {s.Latency, &sr.Latency}} {
			if t.t == nil {
				continue
			}
			o, ok := lookup(s.Service, t.t.SLO)
			if !ok {
				return nil, fmt.Errorf("service %q: SLO %q is not defined in the SLO specs", s.Service, t.t.SLO)
			}
			obj := &Objective{SLO: t.t.SLO, Target: Percent(t.t.Target / 100), TargetRatio: targetRatio(t.t.Target), Scope: "service"}
			var customer *labels.Matcher
			if slices.Contains(o.GroupBy, cu.Label) {
				obj.Scope = "customer"
				customer = labels.MustNewMatcher(labels.MatchEqual, cu.Label, cu.LabelValue)
			}
			achieved, source, err := achievedRatio(ctx, q, s.Service, o, customer, r)
			if err != nil {
				return nil, fmt.Errorf("SLA of %s, service %s: %w", cu.ID, s.Service, err)
			}
			obj.Source = source
			obj.AchievedRatio = achieved
			if achieved != nil {
				if obj.Coverage, err = coverage(ctx, q, s.Service, o, customer, r); err != nil {
					return nil, fmt.Errorf("SLA of %s, service %s: %w", cu.ID, s.Service, err)
				}
			}
			switch {
			case achieved == nil:
				obj.Achieved, obj.Status = "n/a", StatusNoData
			case roundPct(*achieved*100) >= t.t.Target:
				obj.Achieved, obj.Status = Percent(*achieved), StatusMet
			default:
				obj.Achieved, obj.Status = Percent(*achieved), StatusMissed
				rep.Violations++
			}
			*t.out = obj
		}
		if a := sr.Availability; a != nil && a.AchievedRatio != nil {
			a.Credit = credit(cu.Credits, *a.AchievedRatio)
			rep.Credits = math.Max(rep.Credits, a.Credit)
		}
		rep.Services[s.Service] = sr
	}
	return rep, nil
}

// credit returns the largest credit whose threshold the availability is below.
func credit(tiers []CreditTier, achieved float64) float64 {
	c := 0.0
	for _, t := range tiers {
		if roundPct(achieved*100) < t.Below {
			c = math.Max(c, t.Credit)
		}
	}
	return c
}

// Sources of an achieved figure.
const (
	// SourceRaw: computed from the raw series the SLI reads, over exactly
	// the range (exact to the scrape interval).
	SourceRaw = "raw"
	// SourceRecordings: computed from the 5m rate recordings because the
	// raw series have no data for the range (e.g. shorter raw retention);
	// exact to the 5m rate window at each bound.
	SourceRecordings = "recordings"
)

// achievedRatio is 1 - bad events / all events over exactly the range, from
// the SLI's raw series (rulegen.RangeExprs), for the customer when customer
// is not nil. Where the raw series give nothing, it falls back to the ratio
// of sums of the 5m rate recordings over the range. It returns nil without
// data, and the source of the figure.
func achievedRatio(ctx context.Context, q Querier, service string, o *slo.SLO, customer *labels.Matcher, r Range) (*float64, string, error) {
	by := ""
	if customer != nil {
		by = " by (" + customer.Name + ")"
	}
	errExpr, totalExpr, err := rulegen.RangeExprs(o, r.Start, r.End)
	if err != nil {
		return nil, "", fmt.Errorf("SLO %s: %w", o.Name, err)
	}
	raw := fmt.Sprintf("1 - sum%[1]s (%[2]s)\n/\n(sum%[1]s (%[3]s) > 0)", by, errExpr, totalExpr)
	v, err := pick(ctx, q, raw, customer, r.End)
	if err != nil || v != nil {
		return v, SourceRaw, err
	}

	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, service),
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelSLO, o.Name),
	}
	if customer != nil {
		ms = append(ms, customer)
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	sel := "{" + strings.Join(parts, ",") + "}"
	rng := model.Duration(r.End.Sub(r.Start)).String()
	at := strconv.FormatInt(r.End.Unix(), 10)
	rec := fmt.Sprintf("1 - sum(sum_over_time(%s%s[%s] @ %s)) / (sum(sum_over_time(%s%s[%s] @ %s)) > 0)",
		rulegen.ErrorEventsRate5m, sel, rng, at, rulegen.TotalEventsRate5m, sel, rng, at)
	v, err = pick(ctx, q, rec, nil, r.End)
	if err != nil || v != nil {
		return v, SourceRecordings, err
	}
	return nil, "", nil
}

// coverage is the fraction of r covered by the SLO's data: from its first
// 5m rate recording within r (which covers the 5 minutes before it) to the
// end of r.
func coverage(ctx context.Context, q Querier, service string, o *slo.SLO, customer *labels.Matcher, r Range) (*float64, error) {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, service),
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelSLO, o.Name),
	}
	if customer != nil {
		ms = append(ms, customer)
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	span := r.End.Sub(r.Start)
	expr := fmt.Sprintf("min(min_over_time(timestamp(%s{%s})[%s:1m] @ %d))", rulegen.TotalEventsRate5m, strings.Join(parts, ","),
		model.Duration(span), r.End.Unix())
	first, err := pick(ctx, q, expr, nil, r.End)
	if err != nil || first == nil || span <= 0 {
		return nil, err
	}
	c := math.Min(math.Max(float64(r.End.Unix())-*first+slo.BaseWindow.Seconds(), 0)/span.Seconds(), 1)
	return &c, nil
}

// pick runs an instant query and returns the finite value of the sample
// matching m (any sample when m is nil), or nil.
func pick(ctx context.Context, q Querier, expr string, m *labels.Matcher, at time.Time) (*float64, error) {
	vec, err := q.Instant(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	for _, smp := range vec {
		if m != nil && !m.Matches(string(smp.Metric[model.LabelName(m.Name)])) {
			continue
		}
		v := float64(smp.Value)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil
		}
		return &v, nil
	}
	return nil, nil
}

// targetRatio is a target percentage as a ratio without the float noise of
// the division (99.99 / 100 is 0.9998999999999999): 0.9999.
func targetRatio(pct float64) float64 { return math.Round(pct*1e9) / 1e11 }

// roundPct removes float noise from a percentage (to 1e-9 percent).
func roundPct(v float64) float64 { return math.Round(v*1e9) / 1e9 }

// Percent formats a ratio as a percentage with at most 4 decimals: 0.99995 -> "99.995%".
// It cuts the further decimals (after removing float noise, as roundPct)
// rather than rounding, so that a figure below a target or a credit bound
// is never shown as reaching it: 0.9998999 -> "99.9899%", not "99.99%".
func Percent(r float64) string {
	return strconv.FormatFloat(math.Floor(math.Round(r*1e11)/1e5)/1e4, 'f', -1, 64) + "%"
}

// ServiceNames returns the report's services in order.
func (r *Report) ServiceNames() []string {
	names := make([]string, 0, len(r.Services))
	for n := range r.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
