package runbook

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// runLeaseLost is the result of a run stopped on this replica because
// another replica claimed it after its lease expired.
const runLeaseLost = "lease_lost"

// runDryRun is the result of a dry run that went through.
const runDryRun = "dry_run"

// executionResults are the final results sre_runbook_executions_total
// counts, each exported at zero for every loaded runbook.
var executionResults = []string{RunSucceeded, RunFailed, RunCancelled, RunInterrupted, runLeaseLost, RunRateLimited, RunEscalated, RunSkipped, RunRejected, runDryRun}

type metrics struct {
	executions   *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	stepDuration *prometheus.HistogramVec
	steps        *prometheus.CounterVec
	killSwitch   prometheus.Gauge
	active       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, e *Engine) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		executions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_runbook_executions_total",
			Help: "Runbook runs by final result (succeeded, failed, cancelled, interrupted, lease_lost, rate_limited, escalated, skipped, rejected, dry_run).",
		}, []string{"runbook", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sre_runbook_execution_duration_seconds",
			Help:    "Duration of runbook runs, from their start to their end (finished_at - started_at), observed by the replica that ended them: a run resumed after its replica died counts from its first start.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"runbook"}),
		stepDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sre_runbook_step_duration_seconds",
			Help:    "Duration of runbook steps.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900},
		}, []string{"runbook", "type"}),
		steps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_runbook_steps_total",
			Help: "Runbook steps by type and status (ok, failed, timeout, dry_run).",
		}, []string{"runbook", "type", "status"}),
		killSwitch: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_runbook_kill_switch_enabled",
			Help: "1 while the runbook kill switch is engaged.",
		}),
		active: f.NewGauge(prometheus.GaugeOpts{
			Name: "sre_runbook_runs_active",
			Help: "Runbook runs executing on this replica.",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sre_runbook_loaded",
		Help: "Number of runbooks loaded.",
	}, func() float64 { return float64(len(e.Runbooks())) })
	return m
}
