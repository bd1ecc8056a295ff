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
	"github.com/prometheus/common/model"
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
				// In one statement, as acquireLock takes over an expired lock:
				// the heartbeat cannot renew it in between.
				res, err := db.ExecContext(context.Background(), `UPDATE runbook_locks SET run_id = $1, owner = $2, expires_at = $3
					WHERE target = $4 AND run_id = $5`, 999, "replica-b", ms(time.Now().Add(time.Hour)), run.Target, run.ID)
				require.NoError(t, err)
				n, err := res.RowsAffected()
				require.NoError(t, err)
				require.Equal(t, int64(1), n)
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

// A failure renewing one run's lease does not stop the heartbeat: the
// other runs are still renewed, and one that lost its lease is stopped.
// A database trigger refuses the renewal of the first run.
func TestHeartbeatGoesOnAfterError(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		src := `
name: %s
matchers: ['alertname="%s"']
steps:
  - name: hold
    timeout: 1m
    exec:
      command: [%q]
      env: {RUNBOOK_HELPER: pidfile, RUNBOOK_OUT: %q}
`
		first := mustParse(t, fmt.Sprintf(src, "first", "A", helperCmd(), filepath.Join(dir, "first")))
		second := mustParse(t, fmt.Sprintf(src, "second", "B", helperCmd(), filepath.Join(dir, "second")))
		cfg := testConfig()
		cfg.LeaseDuration = model.Duration(time.Minute) // only the test's cycles renew
		e := newEngine(t, db, cfg, &recorder{}, first, second)
		trigger(t, db, e, newIncident("INC-A", map[string]string{"alertname": "A"}), incident.ChangeCreated)
		trigger(t, db, e, newIncident("INC-B", map[string]string{"alertname": "B"}), incident.ChangeCreated)
		require.NoError(t, e.Cycle(ctx))
		pids := map[string][2]int{}
		for _, name := range []string{"first", "second"} {
			require.Eventually(t, func() bool {
				var p [2]int
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err == nil {
					_, err = fmt.Sscan(string(b), &p[0], &p[1])
				}
				pids[name] = p
				return err == nil
			}, 30*time.Second, 10*time.Millisecond)
		}
		runA := waitRun(t, e, "INC-A", RunRunning)
		runB := waitRun(t, e, "INC-B", RunRunning)
		require.Less(t, runA.ID, runB.ID, "the failing run is renewed first")

		if db.Dialect == store.SQLite {
			_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON runbook_runs
				WHEN NEW.id = %d AND NEW.lease_until > 0 BEGIN SELECT RAISE(ABORT, 'renewal refused'); END`, runA.ID))
			require.NoError(t, err)
		} else {
			_, err := db.ExecContext(ctx, `CREATE FUNCTION refuse_renewal() RETURNS trigger AS $$
				BEGIN RAISE EXCEPTION 'renewal refused'; END $$ LANGUAGE plpgsql`)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON runbook_runs
				FOR EACH ROW WHEN (NEW.id = %d AND NEW.lease_until > 0) EXECUTE FUNCTION refuse_renewal()`, runA.ID))
			require.NoError(t, err)
		}
		// Another replica takes the second run over.
		_, err := db.ExecContext(ctx, `UPDATE runbook_runs SET status = $1, reason = $2, lease_until = 0 WHERE id = $3`,
			RunInterrupted, "interrupted by replica b", runB.ID)
		require.NoError(t, err)
		require.NoError(t, releaseLock(ctx, db, runB.Target, runB.ID))

		err = e.Cycle(ctx)
		require.ErrorContains(t, err, fmt.Sprintf("renew lease of run %d: ", runA.ID))
		require.ErrorContains(t, err, "renewal refused")
		require.Eventually(t, func() bool { return processGone(pids["second"][0]) && processGone(pids["second"][1]) },
			10*time.Second, 10*time.Millisecond, "the second run's processes were killed")
		require.Eventually(t, func() bool {
			return testutil.ToFloat64(e.metrics.executions.WithLabelValues("second", "lease_lost")) == 1
		}, 10*time.Second, 10*time.Millisecond)
		require.False(t, processGone(pids["first"][0]), "the first run goes on")
		require.Equal(t, RunRunning, waitRun(t, e, "INC-A", RunRunning).Status)

		// Once renewals work again, the first run is cancelled normally.
		_, err = db.ExecContext(ctx, `DROP TRIGGER refuse_renewal`+map[bool]string{true: ` ON runbook_runs`}[db.Dialect == store.Postgres])
		require.NoError(t, err)
		_, err = e.Cancel(ctx, runA.ID, "alice", "done")
		require.NoError(t, err)
		require.NoError(t, e.Cycle(ctx))
		e.Wait()
		require.Equal(t, "done", waitRun(t, e, "INC-A", RunCancelled).Reason)
		require.True(t, processGone(pids["first"][0]))
	})
}
