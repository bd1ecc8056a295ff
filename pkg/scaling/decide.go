package scaling

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Sample is one value of a policy's metric.
type Sample struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// State is what Decide knows of the target.
type State struct {
	// Instances is the instance count the target runs (as last set).
	Instances int `json:"instances"`
	// LastAction is when the last scaling action was taken (zero: never).
	LastAction time.Time `json:"last_action"`
}

// Decision is what Decide concluded at Time.
type Decision struct {
	Time    time.Time `json:"time"`
	Policy  string    `json:"policy"`
	Service string    `json:"service"`
	// Direction is up, down or none.
	Direction string `json:"direction"`
	From      int    `json:"from"`
	To        int    `json:"to"`
	// Value is the metric at Time (NoData: there was none).
	Value  float64 `json:"value"`
	NoData bool    `json:"no_data,omitempty"`
	// Window are the samples the decision looked at.
	Window []Sample `json:"window,omitempty"`
	// Held is the direction a cooldown held back ("" when none).
	Held   string `json:"held,omitempty"`
	Reason string `json:"reason"`
	// Floor is the lower bound in force (min_instances or a schedule's).
	Floor int `json:"floor"`
}

// Acts reports whether the decision changes the instance count.
func (d Decision) Acts() bool { return d.Direction != None }

// Tolerance is the HPA's: a target_value policy changes nothing while the
// ratio of the metric to its target is within this much of 1.
const Tolerance = 0.1

// Decide is the policy's decision at now for a target in state st, given
// the metric's samples (those in the longest stabilization window up to now
// are used; the latest, at most one interval old, is the current value).
// It is pure: the live controller and the backtest call it alike.
func Decide(p *Policy, st State, samples []Sample, now time.Time) Decision {
	d := Decision{Time: now, Policy: p.Name, Service: p.Service, Direction: None, From: st.Instances, To: st.Instances}
	floor, floorWhy := p.MinInstances, "min_instances"
	for i := range p.Schedules {
		if s := &p.Schedules[i]; s.Active(now) && s.MinInstances > floor {
			floor, floorWhy = s.MinInstances, "schedule "+s.Name
		}
	}
	d.Floor = floor
	interval := time.Duration(p.Interval)
	var window []Sample
	for _, s := range samples {
		// NaN (0/0 of a ratio without traffic) and infinities are no
		// value to scale on: the sample is missing.
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		if !s.Time.After(now) && !s.Time.Before(now.Add(-p.Window())) {
			window = append(window, s)
		}
	}
	d.Window = window
	if n := len(window); n == 0 || now.Sub(window[n-1].Time) >= interval {
		d.NoData = true
	} else {
		d.Value = window[n-1].Value
	}

	cur := st.Instances
	// Bounds first: they are not metric decisions and wait for no cooldown.
	if cur < floor {
		d.To, d.Direction = floor, Up
		d.Reason = fmt.Sprintf("%d instances are below the floor of %d (%s)", cur, floor, floorWhy)
		return d
	}
	if cur > p.MaxInstances {
		d.To, d.Direction = p.MaxInstances, Down
		d.Reason = fmt.Sprintf("%d instances are above max_instances %d", cur, p.MaxInstances)
		return d
	}
	if d.NoData {
		d.Reason = fmt.Sprintf("no data for the metric at %s: holding %d instances", now.UTC().Format(time.RFC3339), cur)
		return d
	}

	want, why := p.recommend(cur, window, now)
	want = min(max(want, floor), p.MaxInstances)
	switch {
	case want > cur:
		d.Direction = Up
	case want < cur:
		d.Direction = Down
	default:
		d.Reason = why
		if why == "" {
			d.Reason = p.steadyReason(cur)
		} else if cur == p.MaxInstances && strings.HasPrefix(why, "up:") {
			d.Reason = fmt.Sprintf("at max_instances %d (%s)", cur, strings.TrimPrefix(why, "up: "))
		} else if cur == floor && strings.HasPrefix(why, "down:") {
			d.Reason = fmt.Sprintf("at the floor of %d, %s (%s)", cur, floorWhy, strings.TrimPrefix(why, "down: "))
		}
		return d
	}
	why = strings.TrimPrefix(strings.TrimPrefix(why, "up: "), "down: ")
	cooldown := time.Duration(p.ScaleUp.Cooldown)
	if d.Direction == Down {
		cooldown = time.Duration(p.ScaleDown.Cooldown)
	}
	if !st.LastAction.IsZero() && now.Sub(st.LastAction) < cooldown {
		d.Held, d.Direction = d.Direction, None
		d.Reason = fmt.Sprintf("cooldown: would scale %s %d -> %d (%s), but the last action was %s ago (%s cooldown %s)",
			d.Held, cur, want, why, now.Sub(st.LastAction), d.Held, cooldown)
		return d
	}
	d.To = want
	d.Reason = fmt.Sprintf("%s: %d -> %d", why, cur, want)
	return d
}

func (p *Policy) metricName() string {
	if p.Metric.Type == MetricPromQL {
		return "value"
	}
	return p.Metric.Type
}

// inWindow returns the samples of the last d, and whether they cover it
// (the oldest is at most one interval after its start).
func (p *Policy) inWindow(window []Sample, now time.Time, d time.Duration) ([]Sample, bool) {
	start := now.Add(-d)
	var out []Sample
	for _, s := range window {
		if !s.Time.Before(start) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, out[0].Time.Sub(start) < time.Duration(p.Interval)
}

// recommend is the instance count the metric asks for, and why ("up: ..."
// or "down: ..." when a direction's condition held, else a reason or "").
func (p *Policy) recommend(cur int, window []Sample, now time.Time) (int, string) {
	m := p.metricName()
	v := window[len(window)-1].Value
	upW, upCovered := p.inWindow(window, now, time.Duration(p.ScaleUp.Stabilization))
	downW, downCovered := p.inWindow(window, now, time.Duration(p.ScaleDown.Stabilization))
	over := func(ss []Sample, t *float64) bool {
		for _, s := range ss {
			if t != nil && !(s.Value > *t) {
				return false
			}
		}
		return true
	}
	under := func(ss []Sample, t *float64) bool {
		for _, s := range ss {
			if t != nil && !(s.Value < *t) {
				return false
			}
		}
		return true
	}
	held := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return " for " + d.String()
	}
	if p.TargetValue == 0 {
		up, down := *p.ScaleUp.Threshold, *p.ScaleDown.Threshold
		switch {
		case v > up && upCovered && over(upW, &up):
			return cur + p.ScaleUp.Step, fmt.Sprintf("up: %s %s > %g%s", m, fmtV(v), up, held(time.Duration(p.ScaleUp.Stabilization)))
		case v > up:
			return cur, fmt.Sprintf("%s %s > %g, but not for the whole %s stabilization window (%s)", m, fmtV(v), up, time.Duration(p.ScaleUp.Stabilization), fmtSamples(upW))
		case v < down && downCovered && under(downW, &down):
			return cur - p.ScaleDown.Step, fmt.Sprintf("down: %s %s < %g%s", m, fmtV(v), down, held(time.Duration(p.ScaleDown.Stabilization)))
		case v < down:
			return cur, fmt.Sprintf("%s %s < %g, but not for the whole %s stabilization window (%s)", m, fmtV(v), down, time.Duration(p.ScaleDown.Stabilization), fmtSamples(downW))
		}
		return cur, ""
	}
	// Proportional, as the HPA: the most conservative recommendation of
	// each direction's window.
	base := max(cur, 1)
	rec := func(x float64) int {
		if math.Abs(x/p.TargetValue-1) <= Tolerance {
			return cur
		}
		// Clamped before the conversion, which overflows (a huge value
		// would become a negative count and scale down).
		return int(min(max(math.Ceil(float64(base)*x/p.TargetValue), 0), float64(p.MaxInstances)+1))
	}
	if upCovered && over(upW, p.ScaleUp.Threshold) {
		lo := math.MaxInt
		for _, s := range upW {
			lo = min(lo, rec(s.Value))
		}
		if lo > cur {
			if p.ScaleUp.Step > 0 {
				lo = min(lo, cur+p.ScaleUp.Step)
			}
			return lo, fmt.Sprintf("up: %s %s, target %g%s", m, fmtV(v), p.TargetValue, thr(">", p.ScaleUp.Threshold, held(time.Duration(p.ScaleUp.Stabilization))))
		}
	}
	if downCovered && under(downW, p.ScaleDown.Threshold) {
		hi := 0
		for _, s := range downW {
			hi = max(hi, rec(s.Value))
		}
		if hi < cur {
			if p.ScaleDown.Step > 0 {
				hi = max(hi, cur-p.ScaleDown.Step)
			}
			return hi, fmt.Sprintf("down: %s %s, target %g%s", m, fmtV(v), p.TargetValue, thr("<", p.ScaleDown.Threshold, held(time.Duration(p.ScaleDown.Stabilization))))
		}
	}
	if t := p.ScaleUp.Threshold; t != nil && v > *t {
		return cur, fmt.Sprintf("%s %s > %g, but not for the whole %s stabilization window (%s)", m, fmtV(v), *t, time.Duration(p.ScaleUp.Stabilization), fmtSamples(upW))
	}
	return cur, ""
}

func thr(op string, t *float64, held string) string {
	if t == nil {
		return held
	}
	return fmt.Sprintf(", %s %g%s", op, *t, held)
}

func (p *Policy) steadyReason(cur int) string {
	m := p.metricName()
	if p.TargetValue == 0 {
		return fmt.Sprintf("%s between %g and %g: %d instances", m, *p.ScaleDown.Threshold, *p.ScaleUp.Threshold, cur)
	}
	return fmt.Sprintf("%s near target %g: %d instances", m, p.TargetValue, cur)
}

func fmtV(v float64) string { return fmt.Sprintf("%.4g", v) }

func fmtSamples(ss []Sample) string {
	parts := make([]string, 0, len(ss))
	for _, s := range ss {
		parts = append(parts, fmtV(s.Value))
	}
	return strings.Join(parts, ", ")
}
