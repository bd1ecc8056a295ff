package runbook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// processGone reports whether pid has exited (gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// A replica that lost its lease stops its run at its next heartbeat: when
// another replica took the run over (it found the lease expired, marked the
// run interrupted and released the lock) and when another run holds the
// target lock now. The step's process group is killed, the run ends as
// interrupted, counted as lease_lost, and this replica holds no lock.
func TestLeaseLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		// takeOver plays the other replica.
		takeOver func(t *testing.T, db *store.DB, run *Run)
		status   string
		reason   func(run *Run) string
		locks    []Lock
	}{
		{
			name: "run taken over",
			takeOver: func(t *testing.T, db *store.DB, run *Run) {
				ctx := context.Background()
				_, err := db.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, finished_at = $3, lease_until = 0 WHERE id = $4`,
					RunInterrupted, "interrupted by replica b", ms(time.Now()), run.ID)
				require.NoError(t, err)
				require.NoError(t, releaseLock(ctx, db, run.Target, run.ID))
			},
			reason: func(*Run) string { return "interrupted by replica b" },
		},
		{
			name: "lock taken",
			takeOver: func(t *testing.T, db *store.DB, run *Run) {
				ctx := context.Background()
				require.NoError(t, releaseLock(ctx, db, run.Target, run.ID))
				ok, err := acquireLock(ctx, db, run.Target, 999, "replica-b", time.Now(), time.Hour)
				require.NoError(t, err)
				require.True(t, ok)
			},
			reason: func(*Run) string {
				return "lease lost: the lock on target svc/api is held by another run during step 1; stopped, not repeated"
			},
			locks: []Lock{{Target: "svc/api", RunID: 999, Owner: "replica-b"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				out := filepath.Join(t.TempDir(), "pids")
				rb := mustParse(t, fmt.Sprintf(`
name: holder
matchers: ['alertname="X"']
target: svc/api
steps:
  - name: hold
    timeout: 1m
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: pidfile, RUNBOOK_OUT: %q}
  - name: after
    exec: {command: [/bin/true]}
`, helperCmd(), out))
				rec := &recorder{}
				e := newEngine(t, db, testConfig(), rec, rb)
				startEngine(t, e)
				trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
				var helper, sleeper int
				require.Eventually(t, func() bool {
					b, err := os.ReadFile(out)
					if err != nil {
						return false
					}
					_, err = fmt.Sscan(string(b), &helper, &sleeper)
					return err == nil
				}, 30*time.Second, 10*time.Millisecond)
				run := waitRun(t, e, "INC-1", RunRunning)

				begin := time.Now()
				tc.takeOver(t, db, run)
				e.Wait() // the run ends without the step's timeout
				require.Less(t, time.Since(begin), 10*time.Second)
				run = waitRun(t, e, "INC-1", RunInterrupted)
				require.Equal(t, tc.reason(run), run.Reason)

				hold := stepAudit(t, run, "hold")
				require.Equal(t, StepFailed, hold.Status)
				require.Equal(t, -1, *hold.ExitCode, "the process was killed")
				require.Contains(t, hold.Error, "killed: lease lost: ")
				require.Eventually(t, func() bool { return processGone(helper) && processGone(sleeper) },
					5*time.Second, 10*time.Millisecond, "processes %d and %d still alive", helper, sleeper)
				for _, a := range run.Audit {
					require.NotEqual(t, "after", a.StepName, "no step runs after the lease is lost")
				}
				require.Equal(t, 1.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("holder", "lease_lost")))
				require.Equal(t, 0.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("holder", RunInterrupted)))

				locks, err := e.Locks(context.Background())
				require.NoError(t, err)
				for i := range locks {
					locks[i].ExpiresAt = time.Time{}
				}
				want := tc.locks
				if want == nil {
					want = []Lock{}
				}
				require.Equal(t, want, locks, "this replica holds no lock")
			})
		})
	}
}
