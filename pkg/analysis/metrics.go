package analysis

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxMetricServices is how many services the run counters name; the runs
// of any other service count under service="other". The service of a run
// is the caller's to choose (a viewer's), so it must not grow the series
// without bound.
const MaxMetricServices = 100

// OtherService is the service label of the runs beyond MaxMetricServices.
const OtherService = "other"

// Metrics count analysis runs.
type Metrics struct {
	runs   *prometheus.CounterVec
	checks *prometheus.CounterVec

	mu       sync.Mutex
	services map[string]bool
}

// NewMetrics registers sre_analysis_runs_total and
// sre_analysis_check_results_total with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_analysis_runs_total",
			Help: "Rollout analysis runs, by verdict: pass (promote), fail (roll back), inconclusive (pause for a human: too little canary traffic, or a check's no-data policy or p-value band said so).",
		}, []string{"service", "verdict"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_analysis_check_results_total",
			Help: "Rollout analysis check outcomes, by service, check (error-rate, latency, health, slo-burn-rate and the custom checks) and verdict.",
		}, []string{"service", "check", "verdict"}),
		services: map[string]bool{},
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
	svc := m.service(r.Service)
	m.runs.WithLabelValues(svc, string(r.Verdict)).Inc()
	for _, c := range r.Checks {
		m.checks.WithLabelValues(svc, c.Name, string(c.Verdict)).Inc()
	}
}

// service is the label of a run's service: itself for the first
// MaxMetricServices services seen, "other" after.
func (m *Metrics) service(s string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.services[s] {
		return s
	}
	if len(m.services) >= MaxMetricServices {
		return OtherService
	}
	m.services[s] = true
	return s
}
