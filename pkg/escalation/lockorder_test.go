package escalation_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestLockOrderWithStatusChange: on PostgreSQL a status change (ack,
// investigate, resolve) locks the incident's row FOR UPDATE and then its
// escalation's state row; an escalation step must take them in the same
// order. It locked the state row first and then waited for the incident's
// row (its timeline entry's foreign key), so an escalate-now's step (or
// any level falling due) and an ack of the incident on another replica
// deadlocked (SQLSTATE 40P01, the ack answered 503). Here the incident's
// row is held FOR UPDATE as a status change holds it, the step runs until
// it waits, and the state row must then still be free for the status
// change to lock (NOWAIT: no timing involved).
func TestLockOrderWithStatusChange(t *testing.T) {
	url := testutil.PostgresSchemaURL(t)
	db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, m := range allMigrations {
		require.NoError(t, db.Migrate(context.Background(), m))
	}
	ctx := t.Context()
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	clk := clock.NewManual(t0)
	r := newRig(t, db, clk, escalationYAML, notifyConfig(t, sms, push, email, slack))
	id := r.open(t, "critical")
	r.tick(t)
	paged := len(r.paged(t, id))
	require.NoError(t, r.engine.EscalateNow(ctx, id, "lock order"))

	change, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer change.Rollback()
	var pid int
	require.NoError(t, change.QueryRow(`SELECT pg_backend_pid() FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&pid))

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.worker.RunDue(context.Background())
		done <- result{n, err}
	}()
	for blocked := 0; blocked == 0; {
		select {
		case res := <-done:
			t.Fatalf("the step did not wait for the incident's row: %d run, %v", res.n, res.err)
		default:
		}
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&blocked))
	}
	var state string
	err = change.QueryRow(`SELECT state FROM escalation_state WHERE incident_id = $1 FOR UPDATE NOWAIT`, id).Scan(&state)
	require.NoError(t, err, "the step holds the escalation's state row while it waits for the incident's row")
	require.NoError(t, change.Commit())
	res := <-done
	require.NoError(t, res.err)
	require.Equal(t, 1, res.n)
	r.tick(t)
	require.Greater(t, len(r.paged(t, id)), paged, "the escalated level is paged once the status change committed")
}
