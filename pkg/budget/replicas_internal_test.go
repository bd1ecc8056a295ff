package budget

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestBudgetStateOfTwoReplicas (PostgreSQL): two sred replicas sharing one
// database poll the same SLO at once and record its state. The test holds
// the state table (SHARE: reads and row locks pass, writes wait) until
// both replicas are waiting on a lock, so that both have read the stored
// state before either writes. The first state of an SLO, which has no row
// to lock yet, is still one event of the timeline, from one replica, and
// so is a change of state (the stored row is locked while compared): the
// exhaustion incident follows the event, and a budget already exhausted
// at the first poll is a transition too.
func TestBudgetStateOfTwoReplicas(t *testing.T) {
	ctx := context.Background()
	a, b, nameA, nameB := testutil.PostgresReplicas(t, "sred-budget", Migrations)
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

	// atOnce records st on both replicas while the table is held and
	// returns the events they recorded.
	atOnce := func(st Status) []*Event {
		t.Helper()
		holder, err := a.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = holder.ExecContext(ctx, `LOCK TABLE budget_states IN SHARE MODE`)
		require.NoError(t, err)
		type result struct {
			ev  *Event
			err error
		}
		done := make(chan result, 2)
		for _, db := range []*store.DB{a, b} {
			go func() { ev, err := recordState(ctx, db, st, now); done <- result{ev, err} }()
		}
		for waiting := 0; waiting < 2; {
			select {
			case r := <-done:
				holder.Rollback() //nolint:errcheck
				t.Fatalf("a replica recorded the state while the table was held: %+v, %v", r.ev, r.err)
			default:
			}
			require.NoError(t, a.QueryRowContext(ctx, `SELECT count(DISTINCT application_name) FROM pg_stat_activity
WHERE application_name IN ($1, $2) AND wait_event_type = 'Lock'`, nameA, nameB).Scan(&waiting))
		}
		require.NoError(t, holder.Rollback())
		var evs []*Event
		for range 2 {
			r := <-done
			require.NoError(t, r.err)
			if r.ev != nil {
				evs = append(evs, r.ev)
			}
		}
		return evs
	}
	st := Status{Service: "web", SLO: "availability", State: slo.BudgetExhausted, Budget: Budget{RemainingRatio: ptr(-0.1)}}

	evs := atOnce(st)
	require.Len(t, evs, 1, "the first state recorded at once on two replicas is one event")
	require.Equal(t, StateUnknown, evs[0].From)
	require.Equal(t, slo.BudgetExhausted, evs[0].To)

	now = now.Add(time.Minute)
	st.State, st.Budget.RemainingRatio = slo.BudgetGreen, ptr(0.5)
	evs = atOnce(st)
	require.Len(t, evs, 1, "a change of state recorded at once on two replicas is one event")
	require.Equal(t, slo.BudgetExhausted, evs[0].From)
	require.Equal(t, now.Add(-time.Minute), evs[0].prevSince)

	stored, err := ListEvents(ctx, a, "web", "", 10)
	require.NoError(t, err)
	require.Len(t, stored, 2)
}
