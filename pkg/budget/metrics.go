package budget

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	pollSuccess   prometheus.Gauge
	pollDuration  prometheus.Histogram
	lastPoll      prometheus.Gauge
	stateChanges  *prometheus.CounterVec
	gateDecisions *prometheus.CounterVec
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry() // not exported anywhere
	}
	f := promauto.With(reg)
	m := &metrics{
		pollSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_slo_budget_poll_success",
			Help: "Whether the last computation of the budgets from Prometheus succeeded.",
		}),
		pollDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_slo_budget_poll_duration_seconds",
			Help:    "Time taken to compute every budget from Prometheus.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		lastPoll: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_slo_budget_last_poll_success_timestamp_seconds",
			Help: "Time of the last successful computation of the budgets.",
		}),
		stateChanges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_slo_budget_state_changes_total",
			Help: "Error-budget policy state changes, by the state entered (green, yellow, red, exhausted; unknown is not a change).",
		}, []string{"service", "slo", "state"}),
		gateDecisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_gate_decisions_total",
			Help: "Deploy-gate answers by decision (allow, deny), change kind (normal, critical) and emergency override (true, false).",
		}, []string{"decision", "change", "override"}),
	}
	// Every answer is exported at zero from the start (docs/metrics.md).
	for _, decision := range []string{"allow", "deny"} {
		for _, change := range []string{ChangeNormal, ChangeCritical} {
			for _, override := range []string{"false", "true"} {
				m.gateDecisions.WithLabelValues(decision, change, override)
			}
		}
	}
	reg.MustRegister(&collector{s: s})
	return m
}

// collector re-exports the last poll's budgets. The values are what the
// generated recording rules hold (slo:error_budget_remaining:ratio,
// slo:burn_rate:ratio_rate<window>, slo:sli_error:ratio_period) plus what
// sred derives from them (policy state, forecast).
type collector struct{ s *Service }

var (
	labelsSLO     = []string{"service", "slo", "group"}
	descRemaining = prometheus.NewDesc("sre_slo_error_budget_remaining_ratio", "Share of the error budget remaining over the SLO period (1 untouched, 0 exhausted, below 0 overspent): re-export of slo:error_budget_remaining:ratio.", labelsSLO, nil)
	descConsumed  = prometheus.NewDesc("sre_slo_error_budget_consumed_ratio", "Share of the error budget consumed over the SLO period: 1 - remaining.", labelsSLO, nil)
	descSLI       = prometheus.NewDesc("sre_slo_sli_achieved_ratio", "SLI achieved over the SLO period: 1 - slo:sli_error:ratio_period.", labelsSLO, nil)
	descObjective = prometheus.NewDesc("sre_slo_objective_ratio", "Objective of the SLO as a ratio.", labelsSLO, nil)
	descBurn      = prometheus.NewDesc("sre_slo_burn_rate", "Burn rate over an alert window: re-export of slo:burn_rate:ratio_rate<window> (windows of the SLO's alerts, e.g. 5m, 30m, 1h, 2h, 6h, 1d, 3d for a 30d SLO).", append(labelsSLO, "window"), nil)
	descState     = prometheus.NewDesc("sre_slo_budget_policy_state", "1 for the policy state in force (green, yellow, red, exhausted, unknown = no data), 0 for the others; computed with the SLO's own budgetPolicy thresholds.", append(labelsSLO, "state"), nil)
	descCoverage  = prometheus.NewDesc("sre_slo_data_coverage_ratio", "Fraction of the SLO period its data covers (1 once the recordings are as old as the period); the budget of a younger SLO is over the covered part, not extrapolated.", labelsSLO, nil)
	descForecast  = prometheus.NewDesc("sre_slo_error_budget_exhaustion_seconds", "Forecast time until the budget runs out at the current burn rate (absent when it does not).", labelsSLO, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRemaining, descConsumed, descSLI, descObjective, descBurn, descState, descForecast, descCoverage} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Snapshot() {
		lv := []string{st.Service, st.SLO, st.GroupString()}
		ch <- prometheus.MustNewConstMetric(descObjective, prometheus.GaugeValue, st.Objective, lv...)
		if r := st.Budget.RemainingRatio; r != nil {
			ch <- prometheus.MustNewConstMetric(descRemaining, prometheus.GaugeValue, *r, lv...)
			ch <- prometheus.MustNewConstMetric(descConsumed, prometheus.GaugeValue, *st.Budget.ConsumedRatio, lv...)
		}
		if v := st.SLIAchieved; v != nil {
			ch <- prometheus.MustNewConstMetric(descSLI, prometheus.GaugeValue, *v, lv...)
		}
		if v := st.Coverage; v != nil {
			ch <- prometheus.MustNewConstMetric(descCoverage, prometheus.GaugeValue, *v, lv...)
		}
		for _, b := range st.BurnRates {
			if b.Rate != nil {
				ch <- prometheus.MustNewConstMetric(descBurn, prometheus.GaugeValue, *b.Rate, append(lv, b.Window)...)
			}
		}
		for _, s := range States {
			v := 0.0
			if s == st.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, append(lv, string(s))...)
		}
		if f := st.Forecast.SecondsLeft; f != nil {
			ch <- prometheus.MustNewConstMetric(descForecast, prometheus.GaugeValue, *f, lv...)
		}
	}
}
