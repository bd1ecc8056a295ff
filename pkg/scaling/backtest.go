package scaling

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// RangeQuerier is the part of the Prometheus API the controller and the
// backtest use.
type RangeQuerier interface {
	QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// lookback is how many intervals before from the samples start: enough to
// cover the longest stabilization window.
func (p *Policy) lookback() time.Duration {
	iv := time.Duration(p.Interval)
	n := (p.Window() + iv - 1) / iv
	return n * iv
}

// Fetch reads the policy's metric from from-window to to, one sample per
// interval: what Decide needs for every evaluation in [from, to]. The live
// controller calls it with from = to = now, the backtest with its range;
// both see the same grid when from is an evaluation time.
func Fetch(ctx context.Context, prom RangeQuerier, p *Policy, from, to time.Time) ([]Sample, error) {
	if prom == nil {
		return nil, errors.New("no Prometheus is configured (set prometheus.url)")
	}
	r := v1.Range{Start: from.Add(-p.lookback()), End: to, Step: time.Duration(p.Interval)}
	v, _, _, err := prom.QueryRange(ctx, p.Query(), r)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", p.Query(), err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %s: want a range vector, got %s", p.Query(), v.Type())
	}
	switch len(m) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("query %s returns %d series: the metric must be one series (aggregate it, e.g. avg(...))", p.Query(), len(m))
	}
	out := make([]Sample, 0, len(m[0].Values))
	for _, s := range m[0].Values {
		out = append(out, Sample{Time: s.Timestamp.Time().UTC(), Value: float64(s.Value)})
	}
	return out, nil
}

// Point is the backtest's state at one evaluation.
type Point struct {
	Time      time.Time `json:"time"`
	Value     float64   `json:"value"`
	NoData    bool      `json:"no_data,omitempty"`
	Instances int       `json:"instances"`
}

// BacktestResult is what a policy would have done over a range.
type BacktestResult struct {
	Policy  string    `json:"policy"`
	Service string    `json:"service"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Interval is the evaluation interval (seconds in JSON).
	Interval Seconds `json:"interval_seconds"`
	// Decisions are the actions and the decisions a cooldown held back.
	Decisions []Decision `json:"decisions"`
	// Points are the metric and the instance count at every evaluation.
	Points  []Point `json:"points"`
	Actions int     `json:"actions"`
	Ups     int     `json:"ups"`
	Downs   int     `json:"downs"`
	Held    int     `json:"held_by_cooldown"`
	// NoData counts the evaluations without a value (the query returned
	// nothing): all of them when the query is wrong for the range.
	NoData  int `json:"evaluations_without_data"`
	MinSeen int `json:"min_instances_seen"`
	MaxSeen int `json:"max_instances_seen"`
	// UpThreshold is scale_up.threshold (target_value without one);
	// DownThreshold is scale_down.threshold when there is one.
	UpThreshold   float64  `json:"up_threshold"`
	DownThreshold *float64 `json:"down_threshold,omitempty"`
	// AboveUp and BelowDown are how long the metric was past them.
	AboveUp   Seconds `json:"above_up_seconds"`
	BelowDown Seconds `json:"below_down_seconds"`
	// LongerCooldown is the cooldown of the second replay, LongerActions
	// how many actions it took, SavedByLongerCooldown the difference.
	LongerCooldown        Seconds `json:"longer_cooldown_seconds"`
	LongerActions         int     `json:"longer_cooldown_actions"`
	SavedByLongerCooldown int     `json:"saved_by_longer_cooldown"`
}

// Seconds is a duration written as seconds in JSON.
type Seconds time.Duration

// MarshalJSON implements json.Marshaler.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%g", time.Duration(s).Seconds())), nil
}

// String is the duration.
func (s Seconds) String() string { return time.Duration(s).String() }

// Backtest replays p over [from, to] (evaluations every interval from
// from) on samples (from Fetch), starting with initial instances and no
// recent action. It also replays it with a longer cooldown (twice the
// longest, at least one interval more) to say how many actions that saves.
func Backtest(p *Policy, samples []Sample, from, to time.Time, initial int) BacktestResult {
	r := replay(p, samples, from, to, initial)
	longer := *p
	cd := max(time.Duration(p.ScaleUp.Cooldown), time.Duration(p.ScaleDown.Cooldown))
	c := max(2*cd, cd+time.Duration(p.Interval))
	longer.ScaleUp.Cooldown, longer.ScaleDown.Cooldown = model.Duration(c), model.Duration(c)
	l := replay(&longer, samples, from, to, initial)
	r.LongerCooldown, r.LongerActions = Seconds(c), l.Actions
	r.SavedByLongerCooldown = r.Actions - l.Actions
	return r
}

func replay(p *Policy, samples []Sample, from, to time.Time, initial int) BacktestResult {
	iv := time.Duration(p.Interval)
	r := BacktestResult{Policy: p.Name, Service: p.Service, From: from, To: to, Interval: Seconds(iv), MinSeen: initial, MaxSeen: initial}
	if p.ScaleUp.Threshold != nil {
		r.UpThreshold = *p.ScaleUp.Threshold
	} else {
		r.UpThreshold = p.TargetValue
	}
	r.DownThreshold = p.ScaleDown.Threshold
	st := State{Instances: initial}
	lo := 0
	for now := from; !now.After(to); now = now.Add(iv) {
		// The samples Decide may use: up to now, from its window's start.
		for lo < len(samples) && samples[lo].Time.Before(now.Add(-p.lookback())) {
			lo++
		}
		hi := lo
		for hi < len(samples) && !samples[hi].Time.After(now) {
			hi++
		}
		d := Decide(p, st, samples[lo:hi], now)
		if d.Acts() {
			st = State{Instances: d.To, LastAction: now}
			r.Actions++
			if d.Direction == Up {
				r.Ups++
			} else {
				r.Downs++
			}
		}
		if d.Acts() || d.Held != "" {
			if d.Held != "" {
				r.Held++
			}
			d.Window = nil
			r.Decisions = append(r.Decisions, d)
		}
		r.MinSeen, r.MaxSeen = min(r.MinSeen, st.Instances), max(r.MaxSeen, st.Instances)
		r.Points = append(r.Points, Point{Time: now, Value: d.Value, NoData: d.NoData, Instances: st.Instances})
		if d.NoData {
			r.NoData++
		} else {
			if d.Value > r.UpThreshold {
				r.AboveUp += Seconds(iv)
			}
			if r.DownThreshold != nil && d.Value < *r.DownThreshold {
				r.BelowDown += Seconds(iv)
			}
		}
	}
	return r
}

// RunBacktest fetches the policy's metric from Prometheus over [from, to]
// (from aligned down to the interval) and replays the policy on it.
func RunBacktest(ctx context.Context, prom RangeQuerier, p *Policy, from, to time.Time, initial int) (BacktestResult, error) {
	from = from.Truncate(time.Duration(p.Interval))
	samples, err := Fetch(ctx, prom, p, from, to)
	if err != nil {
		return BacktestResult{}, err
	}
	return Backtest(p, samples, from, to, initial), nil
}
