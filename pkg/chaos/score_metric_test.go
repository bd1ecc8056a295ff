package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// sre_chaos_resilience_score is the score of each experiment's last scored
// run, whichever replica ran it: two replicas (two registries on one store)
// export the same value, the last run's, not each its own last run (where
// max across replicas showed the older, better score), and a run closed
// without a score leaves the last score in place.
func TestResilienceScoreFromStore(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		j := journal{db}
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		finish := func(id, experiment, owner, status string, score *float64, at time.Time) {
			t.Helper()
			info := &RunInfo{ID: id, Experiment: experiment, Service: "api", Environment: "staging", Actor: "alice",
				Status: StatusRunning, Started: at.Add(-time.Minute)}
			if err := j.insertRun(ctx, info, []byte(`{}`), owner, at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := j.finishRun(ctx, id, owner, status, "", score, "", "{}", at); err != nil {
				t.Fatal(err)
			}
		}
		high, low, other := 90.0, 40.0, 75.0
		finish("chx-1", "pod-kill", "r1", StatusSucceeded, &high, t0)
		finish("chx-2", "pod-kill", "r2", StatusFailed, &low, t0.Add(time.Hour))
		finish("chx-3", "pod-kill", "r1", StatusAborted, nil, t0.Add(2*time.Hour))
		finish("chx-4", "latency", "r1", StatusSucceeded, &other, t0.Add(30*time.Minute))

		want := `
# HELP sre_chaos_resilience_score Resilience score (0-100) of the last scored run of each experiment, whichever replica ran it.
# TYPE sre_chaos_resilience_score gauge
sre_chaos_resilience_score{experiment="latency",service="api"} 75
sre_chaos_resilience_score{experiment="pod-kill",service="api"} 40
`
		for _, replica := range []string{"r1", "r2"} {
			reg := prometheus.NewPedanticRegistry()
			newMetrics(reg, db)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sre_chaos_resilience_score"); err != nil {
				t.Errorf("replica %s: %v", replica, err)
			}
		}
	})
}

// sre_chaos_fault_active names the experiment and the fault, never the
// run: every run of an experiment sets the same series while its faults
// are injected (no new series per run in Prometheus), and the series goes
// away when they are reverted.
func TestFaultActiveSeriesPerExperiment(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		const active = `
# HELP sre_chaos_fault_active 1 while a chaos fault is injected.
# TYPE sre_chaos_fault_active gauge
sre_chaos_fault_active{driver="stress",experiment="api-latency",fault="b",service="api",type="cpu-stress"} 1
sre_chaos_fault_active{driver="toxiproxy",experiment="api-latency",fault="a",service="api",type="latency"} 1
`
		for run := 1; run <= 2; run++ {
			if _, err := h.s.Start(context.Background(), load(t, testExp), "alice"); err != nil {
				t.Fatal(err)
			}
			for range 6 { // half of the 1m duration: the faults are injected
				h.tick(t, 5*time.Second)
			}
			h.blocked(t)
			if err := testutil.GatherAndCompare(h.reg, strings.NewReader(active), "sre_chaos_fault_active"); err != nil {
				t.Errorf("run %d, faults injected: %v", run, err)
			}
			h.drain(t, 5*time.Second)
			if n, err := testutil.GatherAndCount(h.reg, "sre_chaos_fault_active"); err != nil || n != 0 {
				t.Errorf("run %d, faults reverted: %d series (%v), want none", run, n, err)
			}
		}
	})
}
