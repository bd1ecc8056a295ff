package analysis

import "github.com/prometheus/client_golang/prometheus"

// Metrics count analysis runs.
type Metrics struct {
	runs   *prometheus.CounterVec
	checks *prometheus.CounterVec
}

// NewMetrics registers sre_analysis_runs_total and
// sre_analysis_check_results_total with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_analysis_runs_total",
			Help: "Rollout analysis runs, by service and verdict (pass, fail, inconclusive).",
		}, []string{"service", "verdict"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_analysis_check_results_total",
			Help: "Rollout analysis check outcomes, by service, check and verdict.",
		}, []string{"service", "check", "verdict"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.checks)
	}
	return m
}

func (m *Metrics) observe(r Result) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(r.Service, string(r.Verdict)).Inc()
	for _, c := range r.Checks {
		m.checks.WithLabelValues(r.Service, c.Name, string(c.Verdict)).Inc()
	}
}
