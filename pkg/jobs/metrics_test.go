package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// TestMetrics: the queue's series exist from the start (zero), pending and
// lag follow the table, and a job given up counts in failed_total by kind.
func TestMetrics(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		clock := clock.NewManual(t0)
		reg := prometheus.NewRegistry()
		w := jobs.NewWorker(db, "q", func(context.Context, *sql.Tx, jobs.Job) error { return errors.New("boom") },
			jobs.Options{Clock: clock, Registerer: reg, Kinds: []jobs.Kind{"step", "handoff"}, MaxAttempts: 2})
		want := func(s string) {
			t.Helper()
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(s),
				"sre_jobs_pending", "sre_jobs_oldest_due_seconds", "sre_jobs_failed_total"))
		}
		header := `# HELP sre_jobs_failed_total Jobs given up after their last attempt, by kind (escalation: step, ack_timeout, handoff, reminder; notify: the channel; runbook: runbook.run).
# TYPE sre_jobs_failed_total counter
`
		gauges := func(pending, lag string) string {
			return `# HELP sre_jobs_oldest_due_seconds How long the oldest due job has waited past its due time (a running job counts only once its lease expired); 0 when none is overdue.
# TYPE sre_jobs_oldest_due_seconds gauge
sre_jobs_oldest_due_seconds{queue="q"} ` + lag + `
# HELP sre_jobs_pending Jobs of the queue (escalation, notify, runbook, recovery) waiting to run or running, due or not.
# TYPE sre_jobs_pending gauge
sre_jobs_pending{queue="q"} ` + pending + `
`
		}
		want(header + `sre_jobs_failed_total{kind="handoff",queue="q"} 0
sre_jobs_failed_total{kind="step",queue="q"} 0
` + gauges("0", "0"))

		enqueue(t, db, jobs.New{Queue: "q", Kind: "step", Key: "a", RunAt: t0.Add(time.Minute)})
		enqueue(t, db, jobs.New{Queue: "q", Kind: "step", Key: "b", RunAt: t0.Add(time.Hour)})
		want(header + `sre_jobs_failed_total{kind="handoff",queue="q"} 0
sre_jobs_failed_total{kind="step",queue="q"} 0
` + gauges("2", "0"))
		clock.Advance(91 * time.Second)
		want(header + `sre_jobs_failed_total{kind="handoff",queue="q"} 0
sre_jobs_failed_total{kind="step",queue="q"} 0
` + gauges("2", "31"))

		_, err := w.RunDue(ctx) // attempt 1 fails, retried in 2s
		require.NoError(t, err)
		clock.Advance(2 * time.Second)
		_, err = w.RunDue(ctx) // attempt 2 fails: given up
		require.NoError(t, err)
		want(header + `sre_jobs_failed_total{kind="handoff",queue="q"} 0
sre_jobs_failed_total{kind="step",queue="q"} 1
` + gauges("1", "0"))
	})
}
