package rollout

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/store"
)

type metrics struct {
	finished *prometheus.CounterVec
	analyses *prometheus.CounterVec
	actions  *prometheus.CounterVec
}

// finalStates are the result label values of sre_rollout_finished_total.
var finalStates = []string{StateSucceeded, StateRolledBack, StateAborted, StateDenied, StateRefused, StateFailed}

func newMetrics(reg prometheus.Registerer, db *store.DB) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		finished: f.NewCounterVec(prometheus.CounterOpts{Name: "sre_rollout_finished_total",
			Help: "Rollouts finished by this process, by strategy (canary, blue_green) and final state (succeeded, rolled_back, aborted, denied by the deploy gate, refused by the target lock, failed: the rollback itself failed)."}, []string{"strategy", "result"}),
		analyses: f.NewCounterVec(prometheus.CounterOpts{Name: "sre_rollout_analyses_total",
			Help: "Rollout stage analyses, by verdict (pass, fail: rolled back, or held and analysed again when only no-data policies failed, each analysis counted; inconclusive: paused for a human, which includes a canary with no traffic and an analysis that could not run)."}, []string{"verdict"}),
		actions: f.NewCounterVec(prometheus.CounterOpts{Name: "sre_rollout_actions_total",
			Help: "Actions run through the runbook engine's actuators: stage (set a weight, deploy, health, switch, retire) or rollback, by status (ok, failed, timeout)."}, []string{"action", "status"}),
	}
	for _, st := range []string{StrategyCanary, StrategyBlueGreen} {
		for _, r := range finalStates {
			m.finished.WithLabelValues(st, r)
		}
	}
	for _, v := range []string{VerdictPass, VerdictFail, VerdictInconclusive} {
		m.analyses.WithLabelValues(v)
	}
	for _, a := range []string{"stage", "rollback"} {
		for _, s := range []string{"ok", "failed", "timeout"} {
			m.actions.WithLabelValues(a, s)
		}
	}
	reg.MustRegister(&activeCollector{db: db, desc: prometheus.NewDesc("sre_rollout_active",
		"Rollouts running or paused on the store (all replicas), read at scrape time.", []string{"state"}, nil)})
	return m
}

// activeCollector reads the active rollouts from the store at scrape time.
type activeCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func (c *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *activeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]float64{StateRunning: 0, StatePaused: 0}
	rows, err := c.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM rollouts WHERE state IN ('running', 'paused') GROUP BY state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  float64
		)
		if err := rows.Scan(&st, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		counts[st] = n
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, st)
	}
}
