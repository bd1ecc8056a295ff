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
			Help: "Whether the last computation of the error budgets from Prometheus succeeded (1) or not (0).",
		}),
		pollDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "sre_slo_budget_poll_duration_seconds",
			Help:    "Time taken to compute every error budget from Prometheus.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		lastPoll: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_slo_budget_last_poll_success_timestamp_seconds",
			Help: "Time of the last successful computation of the error budgets.",
		}),
		stateChanges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_slo_budget_state_changes_total",
			Help: "Error-budget policy state changes recorded, by the state entered.",
		}, []string{"service", "slo", "state"}),
		gateDecisions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_gate_decisions_total",
			Help: "Deploy-gate answers, by decision, change kind and whether an emergency override was used.",
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
	descRemaining = prometheus.NewDesc("sre_slo_error_budget_remaining_ratio", "Share of the error budget remaining over the SLO period (1 untouched, 0 exhausted, negative overspent); re-exports slo:error_budget_remaining:ratio.", labelsSLO, nil)
	descConsumed  = prometheus.NewDesc("sre_slo_error_budget_consumed_ratio", "Share of the error budget consumed over the SLO period (1 - remaining).", labelsSLO, nil)
	descSLI       = prometheus.NewDesc("sre_slo_sli_achieved_ratio", "SLI achieved over the SLO period (1 - slo:sli_error:ratio_period).", labelsSLO, nil)
	descObjective = prometheus.NewDesc("sre_slo_objective_ratio", "Objective of the SLO as a ratio.", labelsSLO, nil)
	descBurn      = prometheus.NewDesc("sre_slo_burn_rate", "Burn rate over an alert window; re-exports slo:burn_rate:ratio_rate<window>.", append(labelsSLO, "window"), nil)
	descState     = prometheus.NewDesc("sre_slo_budget_policy_state", "Error-budget policy state: 1 for the current state (green, yellow, red, exhausted, unknown), 0 for the others.", append(labelsSLO, "state"), nil)
	descCoverage  = prometheus.NewDesc("sre_slo_data_coverage_ratio", "Fraction of the SLO period its data covers (1 once the recordings are as old as the period): budgets of younger SLOs are over the covered part.", labelsSLO, nil)
	descForecast  = prometheus.NewDesc("sre_slo_error_budget_exhaustion_seconds", "Forecast time until the error budget runs out at the current burn rate (absent when it does not run out).", labelsSLO, nil)
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
