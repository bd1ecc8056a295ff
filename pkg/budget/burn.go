package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
)

// ErrUnknownSLO is returned for a service/SLO that no spec file defines.
var ErrUnknownSLO = errors.New("unknown SLO")

// WindowBurn is the current burn rate over the short window of one
// burn-rate tier of an SLO, against the factor the tier alerts at.
type WindowBurn struct {
	// Tier is the burn_tier label of the tier's alert (page, ticket, ...).
	Tier     string        `json:"tier"`
	Severity string        `json:"severity"`
	Short    time.Duration `json:"short_window"`
	// Threshold is the tier's burn-rate factor.
	Threshold float64 `json:"threshold"`
	// Burn is the highest burn rate over the short window among the
	// series that match (nil when Prometheus has none: no data yet).
	Burn *float64 `json:"burn,omitempty"`
}

// Under reports whether the short window is known and below its threshold.
func (w WindowBurn) Under() bool { return w.Burn != nil && *w.Burn < w.Threshold }

// String is "page 5m 0.4x < 14.4x".
func (w WindowBurn) String() string {
	b := "no data"
	if w.Burn != nil {
		b = BurnFactor(*w.Burn) + "x"
	}
	op := ">="
	if w.Under() {
		op = "<"
	} else if w.Burn == nil {
		op = "vs"
	}
	return fmt.Sprintf("%s %s %s %s %gx", w.Tier, model.Duration(w.Short), b, op, w.Threshold)
}

// CurrentBurn returns, for every burn-rate tier of service/sloName, the
// burn rate over the tier's short window at time at, read from the
// generated recording rules. match restricts the series to those whose
// labels equal its values (the groupBy labels of an incident), for the
// labels the SLO groups by.
func (s *Service) CurrentBurn(ctx context.Context, service, sloName string, match map[string]string, at time.Time) ([]WindowBurn, error) {
	_, _, prom, perr := s.state()
	if prom == nil {
		if perr != nil {
			return nil, perr
		}
		return nil, ErrNoPrometheus
	}
	objs := s.find(service, sloName)
	if len(objs) == 0 || sloName == "" {
		return nil, fmt.Errorf("%w %s/%s", ErrUnknownSLO, service, sloName)
	}
	return currentBurn(ctx, prom, objs[0], match, at)
}

func currentBurn(ctx context.Context, prom *Prom, o Objective, match map[string]string, at time.Time) ([]WindowBurn, error) {
	sp := o.SLO
	sp.Period = model.Duration(o.Period())
	sel := selector(o.Service, o.SLO.Name)
	cache := map[time.Duration]model.Vector{}
	var out []WindowBurn
	for _, w := range sp.Windows() {
		if w.Short == 0 || w.BurnRate <= 0 {
			continue
		}
		vec, ok := cache[w.Short]
		if !ok {
			var err error
			if vec, err = prom.Instant(ctx, BurnRateRecord(w.Short)+sel, at); err != nil {
				return nil, err
			}
			cache[w.Short] = vec
		}
		wb := WindowBurn{Tier: w.Name, Severity: w.Severity, Short: w.Short, Threshold: w.BurnRate}
		for _, smp := range vec {
			if !matches(smp.Metric, o.SLO.GroupBy, match) {
				continue
			}
			v := float64(smp.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if wb.Burn == nil || v > *wb.Burn {
				wb.Burn = &v
			}
		}
		out = append(out, wb)
	}
	return out, nil
}

// matches reports whether m has the values of match for every groupBy label
// that match names.
func matches(m model.Metric, groupBy []string, match map[string]string) bool {
	for _, l := range groupBy {
		want, ok := match[l]
		if !ok {
			continue
		}
		if string(m[model.LabelName(l)]) != want {
			return false
		}
	}
	return true
}

// Recovered reports whether every short window is known and under its
// threshold (false when there is none).
func Recovered(ws []WindowBurn) bool {
	for _, w := range ws {
		if !w.Under() {
			return false
		}
	}
	return len(ws) > 0
}
