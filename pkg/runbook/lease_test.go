package runbook

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// processGone reports whether pid has exited (gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// takeJob plays another replica that claimed the job of run after its
// lease expired: the job is leased to replica-b now.
func takeJob(t *testing.T, db *store.DB, run *Run) {
	t.Helper()
	res, err := db.ExecContext(context.Background(), `UPDATE jobs SET lease_owner = 'replica-b', lease_until = $1 WHERE queue = $2 AND dedup_key = $3`,
		ms(time.Now().Add(time.Hour)), Queue, runKey(run.ID))
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// A replica that lost its lease stops its run at its next cycle: when
// another replica claimed the run's job (its lease expired) to resume it,
// and when another run holds the target lock now. The step's process group
// is killed and the run counted as lease_lost. A run whose job was taken is
// left open to the replica that resumes it (it keeps the target lock, which
// belongs to the run); a run whose target lock was taken ends as interrupted
// and its job is done.
func TestLeaseLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		// takeOver plays the other replica.
		takeOver func(t *testing.T, db *store.DB, run *Run)
		status   string
		reason   func(run *Run) string
		locks    func(run *Run) []Lock
		job      string
	}{
		{
			name:     "job taken over",
			takeOver: takeJob,
			status:   RunRunning,
			reason:   func(*Run) string { return "" },
			locks:    func(run *Run) []Lock { return []Lock{{Target: "svc/api", RunID: run.ID, Owner: run.Owner}} },
			job:      jobs.StateRunning,
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
			status: RunInterrupted,
			reason: func(*Run) string {
				return "lease lost: the lock on target svc/api is held by another run during step 1; stopped, not repeated"
			},
			locks: func(*Run) []Lock { return []Lock{{Target: "svc/api", RunID: 999, Owner: "replica-b"}} },
			job:   jobs.StateDone,
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
				require.Less(t, time.Since(begin), 30*time.Second)
				run = waitRun(t, e, "INC-1", tc.status)
				require.Equal(t, tc.reason(run), run.Reason)
				js, err := jobs.List(context.Background(), db, jobs.Filter{Queue: Queue, AllGroups: true})
				require.NoError(t, err)
				require.Len(t, js, 1)
				require.Equal(t, tc.job, js[0].State)

				hold := stepAudit(t, run, "hold")
				require.Equal(t, StepFailed, hold.Status)
				require.Equal(t, -1, *hold.ExitCode, "the process was killed")
				require.Contains(t, hold.Error, "killed: lease lost: ")
				require.Eventually(t, func() bool { return processGone(helper) && processGone(sleeper) },
					30*time.Second, 10*time.Millisecond, "processes %d and %d still alive", helper, sleeper)
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
				require.Equal(t, tc.locks(run), locks)
			})
		})
	}
}

// A failure renewing one run's lease does not stop the renewal of the
// others, and one that lost its lease is stopped. A database trigger
// refuses the renewal of the first run's job.
func TestRenewalGoesOnAfterError(t *testing.T) {
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
			_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON jobs
				WHEN NEW.dedup_key = '%s' AND NEW.lease_until > 0 BEGIN SELECT RAISE(ABORT, 'renewal refused'); END`, runKey(runA.ID)))
			require.NoError(t, err)
		} else {
			_, err := db.ExecContext(ctx, `CREATE FUNCTION refuse_renewal() RETURNS trigger AS $$
				BEGIN RAISE EXCEPTION 'renewal refused'; END $$ LANGUAGE plpgsql`)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER refuse_renewal BEFORE UPDATE OF lease_until ON jobs
				FOR EACH ROW WHEN (NEW.dedup_key = '%s' AND NEW.lease_until > 0) EXECUTE FUNCTION refuse_renewal()`, runKey(runA.ID)))
			require.NoError(t, err)
		}
		// Another replica takes the second run over.
		takeJob(t, db, runB)

		err := e.Cycle(ctx)
		require.ErrorContains(t, err, fmt.Sprintf("renew lease of run %d: ", runA.ID))
		require.ErrorContains(t, err, "renewal refused")
		require.Eventually(t, func() bool { return processGone(pids["second"][0]) && processGone(pids["second"][1]) },
			60*time.Second, 10*time.Millisecond, "the second run's processes were killed")
		require.Eventually(t, func() bool {
			return testutil.ToFloat64(e.metrics.executions.WithLabelValues("second", "lease_lost")) == 1
		}, 60*time.Second, 10*time.Millisecond)
		require.False(t, processGone(pids["first"][0]), "the first run goes on")
		require.Equal(t, RunRunning, waitRun(t, e, "INC-A", RunRunning).Status)

		// Once renewals work again, the first run is cancelled normally.
		_, err = db.ExecContext(ctx, `DROP TRIGGER refuse_renewal`+map[bool]string{true: ` ON jobs`}[db.Dialect == store.Postgres])
		require.NoError(t, err)
		_, err = e.Cancel(ctx, runA.ID, "alice", "done")
		require.NoError(t, err)
		require.NoError(t, e.Cycle(ctx))
		e.Wait()
		require.Equal(t, "done", waitRun(t, e, "INC-A", RunCancelled).Reason)
		require.True(t, processGone(pids["first"][0]))
	})
}

// pausingWriter writes in a transaction of its own and, once armed, stops
// the goroutine of the first write after which run is no longer in
// progress (the run's end, written by finish) until released: the run has
// ended and released its job and lock, and is still active on the engine.
type pausingWriter struct {
	db       *store.DB
	run      atomic.Int64
	paused   chan struct{}
	released chan struct{}
	stopped  atomic.Bool
}

func (w *pausingWriter) Write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := w.db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) }); err != nil {
		return err
	}
	id := w.run.Load()
	if id == 0 {
		return nil
	}
	var status string
	if err := w.db.QueryRowContext(ctx, `SELECT status FROM runbook_runs WHERE id = $1`, id).Scan(&status); err != nil {
		return err
	}
	if status != RunRunning && status != RunWaitingApproval && status != RunPending {
		// Only the first such write waits (a later one, the renewal's,
		// goes on).
		if w.stopped.CompareAndSwap(false, true) {
			close(w.paused)
			<-w.released
		}
	}
	return nil
}

// A run that ends on this replica completes its job and releases its
// target lock in one transaction, and stays active until its goroutine
// returns: a cycle's renewal in between finds the job no longer leased
// and used to cancel the finished run with a lease lost cause, logged as
// stopped while another replica resumes it (and, before the run's result
// was decided with its status, counted as lease_lost). The renewal leaves
// a run that is ending alone.
func TestRenewalAfterRunEnded(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rb := mustParse(t, `
name: quick
matchers: ['alertname="X"']
target: svc/api
steps: [{name: one, exec: {command: [/bin/true]}}]
`)
		cfg := testConfig()
		cfg.LeaseDuration = model.Duration(time.Minute) // only the test's cycles renew
		set, err := NewSet(cfg, rb)
		require.NoError(t, err)
		w := &pausingWriter{db: db, paused: make(chan struct{}), released: make(chan struct{})}
		rec := &recorder{}
		e, err := New(Options{DB: db, Incidents: rec, Writer: w, Escalator: rec, Notifier: rec,
			Registerer: prometheus.NewRegistry(), Clock: clock.NewManual(time.Now())}, cfg, set)
		require.NoError(t, err)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunPending)
		w.run.Store(run.ID)

		require.NoError(t, e.Cycle(ctx)) // claims and starts the run
		var causes []error
		var mu sync.Mutex
		e.activeMu.Lock()
		a := e.active[run.ID]
		require.NotNil(t, a, "the run started")
		orig := a.cancel
		a.cancel = func(cause error) {
			mu.Lock()
			causes = append(causes, cause)
			mu.Unlock()
			orig(cause)
		}
		e.activeMu.Unlock()

		<-w.paused // the run ended: its job completed, its lock released
		e.activeMu.Lock()
		_, active := e.active[run.ID]
		e.activeMu.Unlock()
		require.True(t, active, "the run is still active on the engine")
		require.NoError(t, e.Cycle(ctx))
		close(w.released)
		e.Wait()

		mu.Lock()
		require.Empty(t, causes, "the renewal cancelled a run that had ended")
		mu.Unlock()
		run = waitRun(t, e, "INC-1", RunSucceeded)
		require.Equal(t, e.Owner(), run.Owner)
		require.Equal(t, 1.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("quick", RunSucceeded)))
		require.Equal(t, 0.0, testutil.ToFloat64(e.metrics.executions.WithLabelValues("quick", runLeaseLost)))
		locks, err := e.Locks(ctx)
		require.NoError(t, err)
		require.Empty(t, locks)
		js, err := jobs.List(ctx, db, jobs.Filter{Queue: Queue, AllGroups: true})
		require.NoError(t, err)
		require.Len(t, js, 1)
		require.Equal(t, jobs.StateDone, js[0].State)
	})
}
