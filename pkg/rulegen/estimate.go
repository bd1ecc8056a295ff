package rulegen

import (
	"time"

	"github.com/rootuip/sre/pkg/slo"
)

// Estimate is the cost and cardinality of one SLO's rules.
type Estimate struct {
	RecordingRules int
	AlertingRules  int
	// SeriesPerGroup is the number of series the recording rules write for
	// each value of the SLO's groupBy labels (one group when ungrouped).
	SeriesPerGroup int
	// SamplesPerEval is the number of recorded samples the rules read per
	// evaluation and group, at a 1m evaluation interval (the raw series are
	// read only by the two 5m rate rules).
	SamplesPerEval int
}

// Add sums estimates.
func (e *Estimate) Add(o Estimate) {
	e.RecordingRules += o.RecordingRules
	e.AlertingRules += o.AlertingRules
	e.SeriesPerGroup += o.SeriesPerGroup
	e.SamplesPerEval += o.SamplesPerEval
}

// EstimateSLO estimates the rules GenerateSLO writes for o.
func EstimateSLO(o *slo.SLO) Estimate {
	ws := Windows(o)
	var e Estimate
	// 2 rates, a ratio per window, the period ratio, a burn rate per
	// window, budget remaining, objective, budget, period, info.
	e.RecordingRules = 2 + len(ws) + 1 + len(ws) + 1 + 4
	e.SeriesPerGroup = e.RecordingRules
	e.AlertingRules = len(o.Windows())
	if !o.Alerting.Budget.Disabled {
		e.AlertingRules++
	}
	perMin := func(d time.Duration) int { return int(d / time.Minute) }
	for _, w := range ws {
		if w == slo.BaseWindow {
			e.SamplesPerEval += 2
			continue
		}
		e.SamplesPerEval += 2 * perMin(w)
	}
	e.SamplesPerEval += 2 * perMin(o.PeriodDuration())
	if o.Alerting.MinEvents > 0 {
		for _, w := range o.Windows() {
			e.SamplesPerEval += perMin(w.Long)
		}
	}
	return e
}
