package escalation_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// lockOrderRig opens a fresh PostgreSQL schema with every migration and
// sets up bob's pages on it (newPageRig).
func lockOrderRig(t *testing.T, s pageSetup) (*store.DB, *rig, string) {
	t.Helper()
	db := testutil.MigratedPostgres(t, allMigrations...)
	r, _, id := newPageRig(t, db, s)
	return db, r, id
}

// waitBlocked waits until a connection of db waits for a lock that the
// backend pid holds; the test fails with what if done answers first.
func waitBlocked[T any](t *testing.T, db *store.DB, pid int, done <-chan T, what string) {
	t.Helper()
	for blocked := 0; blocked == 0; {
		select {
		case res := <-done:
			t.Fatalf("%s: %+v", what, res)
		default:
		}
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&blocked))
	}
}

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
	db, r, id := lockOrderRig(t, pageSetup{policy: escalationYAML, severity: "critical"})
	ctx := t.Context()
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
	waitBlocked(t, db, pid, done, "the step did not wait for the incident's row")
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

// TestLockOrderOfPageOutcomeWithAck: on PostgreSQL the write of a page's
// outcome (notify.Sender) must take the incident's row before the page's
// job row, as an acknowledgement does: it locks the incident FOR UPDATE
// and then withdraws the incident's pages (notify.Withdraw, their job
// rows). The write moved the job row first (delivered) and then waited for
// the incident's row (its timeline entry's foreign key), so a page
// delivered while its incident was acknowledged deadlocked with the
// acknowledgement (SQLSTATE 40P01: the ack or the outcome failed). Here
// bob is paged by PagerDuty and push; PagerDuty's send is held on the
// wire, push's is delivered while the incident's row is held FOR UPDATE
// as the acknowledgement holds it; once the outcome's write waits, the
// job rows must still be free (NOWAIT: no timing involved) and the
// acknowledgement's withdrawal goes through.
func TestLockOrderOfPageOutcomeWithAck(t *testing.T) {
	pd, logs := newHoldSink(t), &logSink{}
	db, r, id := lockOrderRig(t, pageSetup{policy: pagerDutyYAML, severity: "critical", pagerDuty: pd.URL, logs: logs, held: true})
	ctx := t.Context()

	change, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer change.Rollback()
	var pid int
	require.NoError(t, change.QueryRow(`SELECT pg_backend_pid() FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&pid))

	done := make(chan error, 1)
	go func() {
		_, err := r.sender.DeliverDue(context.Background())
		done <- err
	}()
	<-pd.arrived
	waitBlocked(t, db, pid, done, "the outcome's write did not wait for the incident's row")
	rows, err := change.Query(`SELECT id FROM jobs WHERE queue = $1 AND grp = $2 FOR UPDATE NOWAIT`, notify.Queue, id)
	require.NoError(t, err, "the outcome's write holds a job row while it waits for the incident's row")
	for rows.Next() {
	}
	require.NoError(t, rows.Err(), "the outcome's write holds a job row while it waits for the incident's row")
	require.NoError(t, rows.Close())
	withdrawn, sending, _, err := notify.Withdraw(ctx, change, r.clock.Now(), id, false)
	require.NoError(t, err)
	require.Equal(t, int64(0), withdrawn)
	require.Equal(t, int64(2), sending, "both pages' sends had begun")
	require.NoError(t, change.Commit())
	pd.Release()
	require.NoError(t, <-done)

	require.Empty(t, logs.at(slog.LevelError))
	recs, err := notify.List(ctx, db, id)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"bob/push": notify.StateDelivered, "/pagerduty": notify.StateDelivered}, byRecipient(recs, notify.EventTrigger), "PagerDuty pages the service, no user")
	require.Len(t, r.timeline(t, id, "Notification (trigger) sent by push to bob"), 1)
}

// TestAckRunAgainAfterDeadlock: an acknowledgement whose transaction
// PostgreSQL rolled back to break a deadlock (SQLSTATE 40P01) is run again,
// not refused (the API answered 503). Another transaction holds
// the escalation's state row; the acknowledgement locks the incident's
// row, adds its timeline entry and waits for the state row; that
// transaction then inserts a timeline entry (of another incident) with
// the id of the acknowledgement's, and so waits for the acknowledgement
// to end: a deadlock, which the acknowledgement (waiting first, the
// other's deadlock_timeout raised) is the one to detect and lose. Once it
// is rolled back, the other transaction's insert goes through and needs
// nothing the run again takes (its id is a new one): had that
// transaction asked for the incident's row instead, the run again could
// lock that row before it (woken by the rollback) did, and deadlock with
// it again.
func TestAckRunAgainAfterDeadlock(t *testing.T) {
	db, r, id := lockOrderRig(t, pageSetup{policy: escalationYAML, severity: "critical"})
	ctx := t.Context()
	elsewhere := r.open(t, "warning")

	other, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer other.Rollback()
	_, err = other.Exec(`SET LOCAL deadlock_timeout = '1h'`)
	require.NoError(t, err)
	var pid int
	require.NoError(t, other.QueryRow(`SELECT pg_backend_pid() FROM escalation_state WHERE incident_id = $1 FOR UPDATE`, id).Scan(&pid))

	done := make(chan error, 1)
	go func() {
		_, err := r.svc.Acknowledge(context.Background(), id, "bob")
		done <- err
	}()
	waitBlocked(t, db, pid, done, "the acknowledgement did not wait for the state row")
	var entry int64
	require.NoError(t, db.QueryRow(`SELECT last_value FROM incident_timeline_id_seq`).Scan(&entry))
	_, err = other.Exec(`INSERT INTO incident_timeline (id, incident_id, at, kind, actor, message) VALUES ($1, $2, 0, 'note', 'test', 'deadlock')`, entry, elsewhere)
	require.NoError(t, err)
	require.NoError(t, other.Rollback())
	require.NoError(t, <-done, "the acknowledgement is run again after the deadlock")
	st, err := r.engine.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, escalation.StateAcknowledged, st.State)
	require.Len(t, r.timeline(t, id, "Escalation stopped: acknowledged by bob"), 1)
}

// TestEngineActionsRunAgainAfterDeadlock: the engine's own actions asked
// from outside a transaction, Acknowledge (an acknowledge link on an
// incident already acknowledged) and EscalateNow, are run again when
// PostgreSQL rolled their transaction back to break a deadlock (SQLSTATE
// 40P01), as a status change is (TestAckRunAgainAfterDeadlock). Another
// transaction holds the escalation's state row; the action locks the
// incident's row (FOR KEY SHARE) and waits for the state row; that
// transaction then asks for the incident's row FOR UPDATE: a deadlock,
// which the action (waiting first, the other's deadlock_timeout raised)
// is the one to detect and lose.
func TestEngineActionsRunAgainAfterDeadlock(t *testing.T) {
	db := testutil.MigratedPostgres(t, allMigrations...)
	ctx := t.Context()
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	r := newRig(t, db, clock.NewManual(t0), escalationYAML, notifyConfig(t, sms, push, email, slack))

	// deadlocked runs action while another transaction holds the state
	// row of id and then asks for the incident's row; the action must
	// succeed on its second run.
	deadlocked := func(t *testing.T, id string, action func() error) {
		t.Helper()
		other, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer other.Rollback()
		_, err = other.Exec(`SET LOCAL deadlock_timeout = '1h'`)
		require.NoError(t, err)
		var pid int
		require.NoError(t, other.QueryRow(`SELECT pg_backend_pid() FROM escalation_state WHERE incident_id = $1 FOR UPDATE`, id).Scan(&pid))
		// The run again waits for the other transaction's end: started
		// at once, it could take the incident's row before the other
		// transaction (woken by the rollback) did, and deadlock again.
		committed := make(chan struct{})
		first := r.writes.Load() + 1
		r.beforeWrite = func(n int64) {
			if n > first {
				<-committed
			}
		}
		defer func() { r.beforeWrite = nil }()
		done := make(chan error, 1)
		go func() { done <- action() }()
		waitBlocked(t, db, pid, done, "the action did not wait for the state row")
		var got string
		require.NoError(t, other.QueryRow(`SELECT id FROM incidents WHERE id = $1 FOR UPDATE`, id).Scan(&got))
		require.NoError(t, other.Commit())
		close(committed)
		require.NoError(t, <-done, "the action is run again after the deadlock")
		require.Equal(t, first+1, r.writes.Load(), "the action ran twice")
	}

	t.Run("acknowledge", func(t *testing.T) {
		id := r.open(t, "critical", "instance", "ack")
		r.tick(t)
		deadlocked(t, id, func() error { return r.engine.Acknowledge(context.Background(), id, "bob") })
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateAcknowledged, st.State)
		require.Len(t, r.timeline(t, id, "Escalation stopped: acknowledged by bob"), 1)
	})
	t.Run("escalate now", func(t *testing.T) {
		id := r.open(t, "critical", "instance", "escalate")
		r.tick(t)
		paged := len(r.paged(t, id))
		deadlocked(t, id, func() error { return r.engine.EscalateNow(context.Background(), id, "deadlock") })
		r.tick(t)
		require.Greater(t, len(r.paged(t, id)), paged, "the next level is paged")
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 1, st.Level)
	})
}
