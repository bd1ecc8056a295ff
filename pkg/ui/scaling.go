package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/rootuip/sre/pkg/scaling"
)

// Scaling is what the scaling page needs from the scaling controller.
type Scaling interface {
	Statuses(ctx context.Context) ([]scaling.PolicyStatus, error)
	Decisions(ctx context.Context, policy string, since time.Time, limit int) ([]scaling.Record, error)
	Backtest(ctx context.Context, name, from, to string) (scaling.BacktestResult, int, error)
}

type scalingData struct {
	Disabled  bool
	Policies  []scaling.PolicyStatus
	Decisions []scaling.Record
	// The backtest form and its result.
	Policy, From, To string
	Backtest         *scaling.BacktestResult
	BacktestError    string
	MetricChart      chart
	InstancesChart   chart
}

// scalingPage serves GET /scaling: the policies with the state of their
// targets, the last actions, and a backtest of one policy (?policy=,
// ?from=, ?to=) graphed as the SLO charts are: the metric with its
// thresholds, and the instance count over time.
func (u *UI) scalingPage(w http.ResponseWriter, r *http.Request) {
	var d scalingData
	if u.src.Scaling == nil {
		d.Disabled = true
		u.render(w, r, http.StatusOK, "scaling.html", "Scaling", "scaling", d)
		return
	}
	ps, err := u.src.Scaling.Statuses(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d.Policies = ps
	if d.Decisions, err = u.src.Scaling.Decisions(r.Context(), "", time.Time{}, 50); err != nil {
		u.fail(w, r, err)
		return
	}
	d.Decisions = scaling.RecordsFor(r.Context(), d.Decisions)
	q := r.URL.Query()
	d.Policy, d.From, d.To = q.Get("policy"), q.Get("from"), q.Get("to")
	if d.From == "" {
		d.From = "6h"
	}
	if d.To == "" {
		d.To = "now"
	}
	if d.Policy == "" && len(ps) > 0 {
		d.Policy = ps[0].Name
	}
	if d.Policy != "" {
		bt, _, err := u.src.Scaling.Backtest(r.Context(), d.Policy, d.From, d.To)
		if err != nil {
			d.BacktestError = u.errText(r, err)
		} else {
			d.Backtest = &bt
			d.MetricChart = chart{Title: "Metric of " + bt.Policy}
			d.InstancesChart = chart{Title: "Instances of " + bt.Policy}
			for _, p := range bt.Points {
				t := float64(p.Time.Unix())
				if !p.NoData {
					d.MetricChart.Points = append(d.MetricChart.Points, [2]float64{t, p.Value})
				}
				d.InstancesChart.Points = append(d.InstancesChart.Points, [2]float64{t, float64(p.Instances)})
			}
			d.MetricChart.Lines = append(d.MetricChart.Lines, hline{Value: bt.UpThreshold, Label: "scale up"})
			if bt.DownThreshold != nil {
				d.MetricChart.Lines = append(d.MetricChart.Lines, hline{Value: *bt.DownThreshold, Label: "scale down"})
			}
			for _, p := range ps {
				if p.Name == bt.Policy {
					d.InstancesChart.Lines = []hline{{Value: float64(p.MinInstances), Label: "min"}, {Value: float64(p.MaxInstances), Label: "max"}}
				}
			}
		}
	}
	u.render(w, r, http.StatusOK, "scaling.html", "Scaling", "scaling", d)
}
