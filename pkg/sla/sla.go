// Package sla computes customer SLA reports: for each contracted service,
// the availability and latency achieved over exactly the requested range (a
// rolling period such as 30d, or a calendar month), from the SLO recording
// rules in Prometheus, compared with the contracted targets, with the
// violations and the service credits they earn. Figures are ratios of sums
// of the slo:sli_error_events:rate5m and slo:sli_total_events:rate5m
// recordings over the range, per customer where the SLO is grouped by the
// customer's label.
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
	"github.com/rootuip/sre/pkg/rulegen"
)

// Statuses of one objective.
const (
	StatusMet    = "MET"
	StatusMissed = "MISSED"
	StatusNoData = "NO_DATA"
)

// Report is a customer's SLA report, in the guide's shape.
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
}

// SLOLookup returns the groupBy labels of a service's SLO, and whether it exists.
type SLOLookup func(service, slo string) (groupBy []string, ok bool)

// Lookup builds an SLOLookup over budget objectives.
func Lookup(objs []budget.Objective) SLOLookup {
	return func(service, sloName string) ([]string, bool) {
		for _, o := range objs {
			if o.Service == service && o.SLO.Name == sloName {
				return o.SLO.GroupBy, true
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

// ErrNotFound is returned for an unknown customer.
var ErrNotFound = errors.New("not found")

// ErrBadRange is returned for an invalid period or month.
var ErrBadRange = errors.New("invalid range")

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
			return Range{}, fmt.Errorf("%w: month %q: want YYYY-MM", ErrBadRange, month)
		}
		end := m.AddDate(0, 1, 0)
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
		pd, err := model.ParseDuration(period)
		if err != nil {
			return Range{}, fmt.Errorf("%w: period %q: %v", ErrBadRange, period, err)
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
			groupBy, ok := lookup(s.Service, t.t.SLO)
			if !ok {
				return nil, fmt.Errorf("service %q: SLO %q is not defined in the SLO specs", s.Service, t.t.SLO)
			}
			obj := &Objective{SLO: t.t.SLO, Target: Percent(t.t.Target / 100), TargetRatio: t.t.Target / 100, Scope: "service"}
			var extra []*labels.Matcher
			if slices.Contains(groupBy, cu.Label) {
				obj.Scope = "customer"
				extra = append(extra, labels.MustNewMatcher(labels.MatchEqual, cu.Label, cu.LabelValue))
			}
			achieved, err := achievedRatio(ctx, q, s.Service, t.t.SLO, extra, r)
			if err != nil {
				return nil, fmt.Errorf("SLA of %s, service %s: %w", cu.ID, s.Service, err)
			}
			obj.AchievedRatio = achieved
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

// achievedRatio is 1 - sum of bad events / sum of all events over exactly
// the range, from the 5m rate recordings evaluated at its end.
func achievedRatio(ctx context.Context, q Querier, service, sloName string, extra []*labels.Matcher, r Range) (*float64, error) {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, service),
		labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelSLO, sloName),
	}
	ms = append(ms, extra...)
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	sel := "{" + strings.Join(parts, ",") + "}"
	rng := model.Duration(r.End.Sub(r.Start)).String()
	at := strconv.FormatInt(r.End.Unix(), 10)
	expr := fmt.Sprintf("1 - sum(sum_over_time(%s%s[%s] @ %s)) / (sum(sum_over_time(%s%s[%s] @ %s)) > 0)",
		rulegen.ErrorEventsRate5m, sel, rng, at, rulegen.TotalEventsRate5m, sel, rng, at)
	vec, err := q.Instant(ctx, expr, r.End)
	if err != nil {
		return nil, err
	}
	if len(vec) == 0 {
		return nil, nil
	}
	v := float64(vec[0].Value)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, nil
	}
	return &v, nil
}

// roundPct removes float noise from a percentage (to 1e-9 percent).
func roundPct(v float64) float64 { return math.Round(v*1e9) / 1e9 }

// Percent formats a ratio as a percentage with at most 4 decimals: 0.99995 -> "99.995%".
func Percent(r float64) string {
	return strconv.FormatFloat(math.Round(r*100*1e4)/1e4, 'f', -1, 64) + "%"
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
