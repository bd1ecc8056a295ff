package change_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// replica is one sred replica's deploy gate and change records on db.
type replica struct {
	budgets *budget.Service
	changes *change.Service
}

func newReplica(t *testing.T, db *store.DB, clk clock.Clock, prom *budget.Prom, specs []*slo.Spec) replica {
	t.Helper()
	require.NoError(t, db.Migrate(context.Background(), budget.Migrations, change.Migrations))
	b := budget.New(budget.Options{DB: db, Clock: clk, Registerer: prometheus.NewRegistry()})
	require.NoError(t, b.Update(budget.DefaultConfig, specs, prom, nil))
	return replica{budgets: b, changes: change.New(change.Options{DB: db, Clock: clk, Gate: b})}
}

// submitAll submits a normal change of search on each replica of on, at
// once, and returns how many the gate allowed (the others refused).
func submitAll(t *testing.T, on []replica, round int, whileRunning func(done <-chan error)) (allowed int) {
	t.Helper()
	done := make(chan error, len(on))
	for i, r := range on {
		go func() {
			_, err := r.changes.Submit(context.Background(), change.Change{Service: "search", Actor: fmt.Sprintf("ci-%d-%d", round, i)}, change.GateInput{})
			done <- err
		}()
	}
	if whileRunning != nil {
		whileRunning(done)
	}
	for range on {
		err := <-done
		var refused *change.RefusedError
		switch {
		case err == nil:
			allowed++
		case errors.As(err, &refused):
			require.Contains(t, err.Error(), "its quota while yellow")
		default:
			require.NoError(t, err)
		}
	}
	return allowed
}

// checkQuota checks, after round k at a quota of k, that k changes of
// search were recorded as allowed in all and that no slot of the quota is
// left over: every allowed change consumed its own.
func checkQuota(t *testing.T, db *store.DB, r replica, k int, end time.Time) {
	t.Helper()
	ctx := context.Background()
	list, err := r.changes.List(ctx, change.Query{Service: "search", Limit: change.MaxLimit})
	require.NoError(t, err)
	shipped := 0
	for _, c := range list {
		if c.Outcome != change.Refused {
			shipped++
		}
	}
	require.Equal(t, k, shipped, "changes recorded as allowed after round %d at a quota of %d", k, k)
	n, err := r.changes.CountChanges(ctx, "search", end.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, k, n, "the quota's count after round %d", k)
	var slots int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM change_quota_slots`).Scan(&slots))
	require.Zero(t, slots, "slots left over after round %d", k)
}

// countBarrier is a replica's change records as the gate's counter, each
// count held until every request of the round has counted: the requests
// all count before any records its change, as they may when they arrive
// at once.
type countBarrier struct {
	*change.Service
	b *barrier
}

type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	<-b.all
}

func (c countBarrier) CountChanges(ctx context.Context, service string, since time.Time) (int, error) {
	n, err := c.Service.CountChanges(ctx, service, since)
	c.b.wait()
	return n, err
}

func (c countBarrier) ReserveChange(ctx context.Context, service string, since time.Time, quota int) (int, int64, error) {
	n, slot, err := c.Service.ReserveChange(ctx, service, since, quota)
	c.b.wait()
	return n, slot, err
}

// TestYellowQuotaOfConcurrentChanges: the deploy gate's yellow quota
// holds for changes recorded at once (POST /api/v1/changes), on two sred
// replicas on one PostgreSQL database and on two handles of one SQLite
// database. At a quota of k with k-1 changes recorded, three changes
// submitted at once are one allowed and two refused, round after round:
// each gate counts the changes and takes the slot its change consumes in
// one decision of the database, so none of them counts before another's
// allowed change.
func TestYellowQuotaOfConcurrentChanges(t *testing.T) {
	prom, specs, end := budgettest.StartYellow(t)
	const rounds = 4

	// PostgreSQL: the test holds the changes table (SHARE: reads pass,
	// inserts wait) until the three requests wait on a lock, so that each
	// has gone as far as it can before any change is recorded.
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clk := clock.NewManual(end)
		dbA, dbB, nameA, nameB := testutil.PostgresReplicas(t, "sred-quota")
		a, b := newReplica(t, dbA, clk, prom, specs), newReplica(t, dbB, clk, prom, specs)
		for k := 1; k <= rounds; k++ {
			a.budgets.SetChangeQuota(a.changes, k)
			b.budgets.SetChangeQuota(b.changes, k)
			holder, err := dbA.BeginTx(ctx, nil)
			require.NoError(t, err)
			_, err = holder.ExecContext(ctx, `LOCK TABLE changes IN SHARE MODE`)
			require.NoError(t, err)
			allowed := submitAll(t, []replica{a, a, b}, k, func(done <-chan error) {
				for waiting := 0; waiting < 3; {
					select {
					case err := <-done:
						holder.Rollback() //nolint:errcheck
						t.Fatalf("a change was recorded while the table was held: %v", err)
					default:
					}
					require.NoError(t, dbA.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE application_name IN ($1, $2) AND wait_event_type = 'Lock'`, nameA, nameB).Scan(&waiting))
				}
				require.NoError(t, holder.Rollback())
			})
			require.Equal(t, 1, allowed, "changes allowed at once in round %d at a quota of %d with %d recorded", k, k, k-1)
			checkQuota(t, dbA, b, k, end)
		}
	})

	// SQLite: every request's count is held until the three have counted.
	t.Run("sqlite", func(t *testing.T) {
		ctx := context.Background()
		dir := t.TempDir()
		clk := clock.NewManual(end)
		open := func() *store.DB {
			db, err := store.OpenSQLite(ctx, dir)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			return db
		}
		dbA, dbB := open(), open()
		a, b := newReplica(t, dbA, clk, prom, specs), newReplica(t, dbB, clk, prom, specs)
		for k := 1; k <= rounds; k++ {
			bar := newBarrier(3)
			a.budgets.SetChangeQuota(countBarrier{a.changes, bar}, k)
			b.budgets.SetChangeQuota(countBarrier{b.changes, bar}, k)
			allowed := submitAll(t, []replica{a, a, b}, k, nil)
			require.Equal(t, 1, allowed, "changes allowed at once in round %d at a quota of %d with %d recorded", k, k, k-1)
			checkQuota(t, dbB, a, k, end)
		}
	})
}

// TestYellowQuotaSlotExpires: a slot of the quota that no recorded change
// consumed (sred stopped between the gate's answer and the record) counts
// in the quota for change.QuotaSlotTTL, then no more; a question to the
// gate (GET /api/v1/gate) counts the slots and takes none.
func TestYellowQuotaSlotExpires(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{change.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(t0)
		c := change.New(change.Options{DB: db, Clock: clk})
		since := t0.Add(-24 * time.Hour)
		n, slot, err := c.ReserveChange(ctx, "search", since, 1)
		require.NoError(t, err)
		require.Zero(t, n)
		require.NotZero(t, slot)
		n, err = c.CountChanges(ctx, "search", since)
		require.NoError(t, err)
		require.Equal(t, 1, n, "a slot taken counts")
		n, slot, err = c.ReserveChange(ctx, "search", since, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Zero(t, slot, "the quota is used by the slot")
		n, err = c.CountChanges(ctx, "other", since)
		require.NoError(t, err)
		require.Zero(t, n, "slots are per service")

		clk.Advance(change.QuotaSlotTTL)
		n, err = c.CountChanges(ctx, "search", since)
		require.NoError(t, err)
		require.Zero(t, n, "an expired slot no longer counts")
		n, slot, err = c.ReserveChange(ctx, "search", since, 1)
		require.NoError(t, err)
		require.Zero(t, n)
		require.NotZero(t, slot)
	})
}

// TestSubmitFinishedIsNotGated: a change recorded after the fact (its
// finished_at given, not after now) shipped already; the gate cannot stop
// it, so it is recorded with the outcome it gives and the decision
// skipped, where it was recorded as refused while the gate denied (a
// history replayed with the budget yellow and its quota used). A change
// that has not finished is still gated.
func TestSubmitFinishedIsNotGated(t *testing.T) {
	prom, specs, end := budgettest.StartYellow(t)
	testutil.Backends(t, nil, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(end)
		r := newReplica(t, db, clk, prom, specs)
		r.budgets.SetChangeQuota(r.changes, 1)
		first, err := r.changes.Submit(ctx, change.Change{Service: "search", Actor: "ci"}, change.GateInput{})
		require.NoError(t, err)
		require.Equal(t, "allow", first.Gate.Decision)

		// The quota is used: a change about to ship is refused.
		_, err = r.changes.Submit(ctx, change.Change{Service: "search", Actor: "ci"}, change.GateInput{})
		var refused *change.RefusedError
		require.ErrorAs(t, err, &refused)

		// Past deployments replayed: recorded as they finished.
		for i, o := range []change.Outcome{change.Succeeded, change.Failed} {
			started := end.Add(-time.Duration(10-i) * time.Hour)
			c, err := r.changes.Submit(ctx, change.Change{Service: "search", Actor: "import", Outcome: o,
				StartedAt: started, FinishedAt: tp(started.Add(10 * time.Minute))}, change.GateInput{})
			require.NoError(t, err, "change finished at %s", started.Add(10*time.Minute))
			require.Equal(t, o, c.Outcome)
			require.Equal(t, "skipped", c.Gate.Decision)
			require.Equal(t, fmt.Sprintf("finished at %s, before it was recorded: not gated", started.Add(10*time.Minute).Format(time.RFC3339)), c.Gate.Reason)
		}
		// One that finishes now, said so, also shipped already.
		c, err := r.changes.Submit(ctx, change.Change{Service: "search", Actor: "ci", FinishedAt: tp(end)}, change.GateInput{})
		require.NoError(t, err)
		require.Equal(t, change.Succeeded, c.Outcome)
		require.Equal(t, "skipped", c.Gate.Decision)

		// One that says it finishes later is no record of the past: gated.
		_, err = r.changes.Submit(ctx, change.Change{Service: "search", Actor: "ci", FinishedAt: tp(end.Add(time.Minute))}, change.GateInput{})
		require.ErrorAs(t, err, &refused)
	})
}
