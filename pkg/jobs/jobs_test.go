package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var testMigrations = []store.Migration{{
	ID:     "jobstest/0001",
	SQLite: `CREATE TABLE fired (key TEXT NOT NULL, worker TEXT NOT NULL)`,
}}

// openers runs fn on both backends with a function that opens a new handle on
// the same database, as a restarted process or a second replica would.
func openers(t *testing.T, fn func(t *testing.T, open func() *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, func() *store.DB {
			db, err := store.OpenSQLite(context.Background(), dir)
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			require.NoError(t, db.Migrate(context.Background(), jobs.Migrations, testMigrations))
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := testutil.PostgresSchemaURL(t)
		fn(t, func() *store.DB {
			db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			require.NoError(t, db.Migrate(context.Background(), jobs.Migrations, testMigrations))
			return db
		})
	})
}

func recordHandler(name string) jobs.Handler {
	return func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, $2)`, j.Key, name)
		return err
	}
}

func fired(t *testing.T, db *store.DB) map[string]int {
	rows, err := db.Query(`SELECT key FROM fired`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		out[k]++
	}
	return out
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func enqueue(t *testing.T, db *store.DB, j jobs.New) bool {
	ok, err := jobs.Enqueue(context.Background(), db, t0, j)
	require.NoError(t, err)
	return ok
}

func TestDueOrderDedupCancel(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		clock := clock.NewManual(t0)
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "a", Group: "inc1", RunAt: t0}))
		require.False(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "a", Group: "inc1", RunAt: t0}), "duplicate key must be ignored")
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "b", Group: "inc1", RunAt: t0.Add(15 * time.Minute)}))
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "c", Group: "inc2", RunAt: t0.Add(15 * time.Minute)}))
		require.True(t, enqueue(t, db, jobs.New{Queue: "other", Kind: "test", Key: "a", RunAt: t0}))

		w := jobs.NewWorker(db, "q", recordHandler("w"), jobs.Options{Clock: clock})
		n, err := w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, map[string]int{"a": 1}, fired(t, db))

		clock.Advance(14*time.Minute + 59*time.Second)
		n, err = w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 0, n, "nothing is due one second early")

		cancelled, err := jobs.CancelGroup(ctx, db, clock.Now(), "q", "inc1")
		require.NoError(t, err)
		require.EqualValues(t, 1, cancelled)

		clock.Advance(time.Second)
		n, err = w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, map[string]int{"a": 1, "c": 1}, fired(t, db))
	})
}

func TestFailingHandlerRollsBackAndRetries(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		clock := clock.NewManual(t0)
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "x", RunAt: t0})
		calls := 0
		w := jobs.NewWorker(db, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			calls++
			if _, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'w')`, j.Key); err != nil {
				return err
			}
			if calls == 1 {
				return errors.New("boom")
			}
			return nil
		}, jobs.Options{Clock: clock})
		_, err := w.RunDue(ctx)
		require.NoError(t, err)
		require.Empty(t, fired(t, db), "the failed attempt's writes must roll back")
		var lastErr string
		var attempts int
		require.NoError(t, db.QueryRow(`SELECT last_error, attempts FROM jobs WHERE dedup_key = 'x'`).Scan(&lastErr, &attempts))
		require.Equal(t, "boom", lastErr)
		require.Equal(t, 1, attempts)

		clock.Advance(2 * time.Second)
		_, err = w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{"x": 1}, fired(t, db))
	})
}

// TestRestart: a worker that dies in the middle of a job (its context is
// cancelled while the handler runs, its connections closed) leaves the job
// running under its lease; a new process on a new connection runs it exactly
// once, when the lease expired and not before.
func TestRestart(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		db1 := open()
		clock := clock.NewManual(t0)
		enqueue(t, db1, jobs.New{Queue: "q", Kind: "test", Key: "step1", RunAt: t0.Add(15 * time.Minute)})

		ctx1, kill := context.WithCancel(context.Background())
		started := make(chan struct{})
		w1 := jobs.NewWorker(db1, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'w1')`, j.Key); err != nil {
				return err
			}
			close(started)
			<-ctx.Done() // the process dies before committing
			return ctx.Err()
		}, jobs.Options{Clock: clock, Lease: 30 * time.Second})
		clock.Advance(15 * time.Minute)
		done := make(chan error)
		go func() { _, err := w1.RunDue(ctx1); done <- err }()
		<-started
		kill()
		require.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, db1.Close())

		db2 := open()
		w2 := jobs.NewWorker(db2, "q", recordHandler("w2"), jobs.Options{Clock: clock, Lease: 30 * time.Second})
		clock.Advance(29 * time.Second)
		n, err := w2.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 0, n, "the job is leased to the dead worker until its lease expires")
		clock.Advance(time.Second)
		n, err = w2.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = w2.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 0, n)
		require.Equal(t, map[string]int{"step1": 1}, fired(t, db2))
		got, err := jobs.List(context.Background(), db2, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, jobs.StateDone, got[0].State)
		require.Equal(t, 2, got[0].Attempts, "the dead worker's claim counts as an attempt")
	})
}

// TestStalledWorkerLosesLease: a worker whose handler outlives its lease
// cannot complete the job any more: its writes roll back, the worker that
// claimed the job after the lease expired completes it, exactly once.
// PostgreSQL only: on SQLite the stalled handler's transaction holds the one
// write lock, so no other worker can claim anything meanwhile.
func TestStalledWorkerLosesLease(t *testing.T) {
	url := testutil.PostgresSchemaURL(t)
	open := func() *store.DB {
		db, err := store.OpenPostgres(context.Background(), url, store.PostgresOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Migrate(context.Background(), jobs.Migrations, testMigrations))
		return db
	}
	// A's write is a statement of its own, then one left in the completion
	// batch: either way it rolls back with the lost lease.
	for i, batched := range []bool{false, true} {
		ctx := context.Background()
		dbA, dbB := open(), open()
		if i > 0 {
			_, err := dbA.ExecContext(ctx, `DELETE FROM fired`)
			require.NoError(t, err)
		}
		clock := clock.NewManual(t0)
		enqueue(t, dbA, jobs.New{Queue: "q", Kind: "test", Key: fmt.Sprintf("slow-%d", i), RunAt: t0})
		inHandler, release := make(chan struct{}), make(chan struct{})
		wA := jobs.NewWorker(dbA, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			close(inHandler)
			<-release
			if batched {
				jobs.CompletionBatch(ctx).Add(`INSERT INTO fired (key, worker) VALUES ($1, 'A')`, j.Key)
				return nil
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'A')`, j.Key)
			return err
		}, jobs.Options{Clock: clock, Lease: time.Minute})
		wB := jobs.NewWorker(dbB, "q", recordHandler("B"), jobs.Options{Clock: clock, Lease: time.Minute})
		doneA := make(chan error, 1)
		go func() { _, err := wA.RunDue(ctx); doneA <- err }()
		<-inHandler
		clock.Advance(time.Minute)
		n, err := wB.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		close(release)
		require.NoError(t, <-doneA)
		require.Equal(t, map[string]int{fmt.Sprintf("slow-%d", i): 1}, fired(t, dbA))
		var worker string
		require.NoError(t, dbA.QueryRow(`SELECT worker FROM fired`).Scan(&worker))
		require.Equal(t, "B", worker)
	}
}

// TestCompletionBatch: a handler's writes left in the completion batch
// are made with the job's completion, on both backends; outside a worker
// there is no batch.
func TestCompletionBatch(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		require.Nil(t, jobs.CompletionBatch(ctx))
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "a", RunAt: t0})
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "b", RunAt: t0})
		w := jobs.NewWorker(db, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			b := jobs.CompletionBatch(ctx)
			require.NotNil(t, b)
			b.Add(`INSERT INTO fired (key, worker) VALUES ($1, $2)`, j.Key, "batched")
			b.Add(`INSERT INTO fired (key, worker) VALUES ($1, $2)`, j.Key+"-again", "batched")
			return nil
		}, jobs.Options{Clock: clock.NewManual(t0)})
		n, err := w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, map[string]int{"a": 1, "a-again": 1, "b": 1, "b-again": 1}, fired(t, db))
		done, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true, States: []string{"done"}})
		require.NoError(t, err)
		require.Len(t, done, 2)
	})
}

// TestLeaseAPI drives the claim/complete API the notification sender uses.
func TestLeaseAPI(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		enqueue(t, db, jobs.New{Queue: "q", Kind: "a", Key: "1", Group: "g", RunAt: t0})
		enqueue(t, db, jobs.New{Queue: "q", Kind: "b", Key: "2", Group: "g", RunAt: t0})
		_, err := jobs.Enqueue(ctx, db, t0, jobs.New{Queue: "q", Key: "3", RunAt: t0})
		require.ErrorContains(t, err, "kind")

		got, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "me", Now: t0, Lease: time.Minute, Limit: 10, ExcludeKinds: []jobs.Kind{"b"}})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, jobs.Kind("a"), got[0].Kind)
		require.Equal(t, t0.Add(time.Minute), got[0].LeaseUntil)
		require.ErrorIs(t, jobs.Complete(ctx, db, got[0].ID, "other", t0), jobs.ErrLeaseLost)
		require.NoError(t, jobs.Extend(ctx, db, got[0].ID, "me", t0.Add(2*time.Minute)))
		again, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "other", Now: t0.Add(90 * time.Second), Limit: 10})
		require.NoError(t, err)
		require.Len(t, again, 1, "the extended lease still holds; only kind b is claimed")
		require.Equal(t, jobs.Kind("b"), again[0].Kind)
		require.NoError(t, jobs.Retry(ctx, db, again[0].ID, "other", t0.Add(time.Hour), "503"))
		require.NoError(t, jobs.Complete(ctx, db, got[0].ID, "me", t0.Add(time.Minute)))

		n, err := jobs.Count(ctx, db, jobs.Filter{Queue: "q", Group: "g", States: []string{jobs.StatePending}})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		list, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true, Kind: "b"})
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "503", list[0].LastError)
		require.Equal(t, t0.Add(time.Hour), list[0].RunAt)
	})
}

// TestRetention: finished jobs are deleted after the retention, pending and
// recent ones stay.
func TestRetention(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		clock := clock.NewManual(t0)
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "old", RunAt: t0})
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "later", RunAt: t0.Add(30 * 24 * time.Hour)})
		enqueue(t, db, jobs.New{Queue: "other", Kind: "test", Key: "old", RunAt: t0})
		for _, q := range []string{"q", "other"} {
			w := jobs.NewWorker(db, q, recordHandler("w"), jobs.Options{Clock: clock})
			_, err := w.RunDue(ctx)
			require.NoError(t, err)
		}
		w := jobs.NewWorker(db, "q", recordHandler("w"), jobs.Options{Clock: clock})
		clock.Advance(7*24*time.Hour - time.Millisecond)
		n, err := w.Prune(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "kept for 7 days by default")
		clock.Advance(time.Millisecond * 2)
		n, err = w.Prune(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		left, err := jobs.Count(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		require.Equal(t, 1, left, "the pending job stays")
		left, err = jobs.Count(ctx, db, jobs.Filter{Queue: "other", AllGroups: true})
		require.NoError(t, err)
		require.Equal(t, 1, left, "another queue's rows are its own worker's to prune")

		short := jobs.NewWorker(db, "other", recordHandler("w"), jobs.Options{Clock: clock, Retention: time.Hour})
		n, err = short.Prune(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
}

// TestReplicas runs two workers on two connections pools at once: every job
// runs exactly once.
func TestReplicas(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		dbA, dbB := open(), open()
		clock := clock.NewManual(t0)
		const n = 60
		for i := range n {
			enqueue(t, dbA, jobs.New{Queue: "q", Kind: "test", Key: fmt.Sprintf("job%02d", i), RunAt: t0})
		}
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, db := range []*store.DB{dbA, dbB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := jobs.NewWorker(db, "q", recordHandler(fmt.Sprint(i)), jobs.Options{Clock: clock})
				c, err := w.RunDue(context.Background())
				if err != nil {
					t.Error(err)
				}
				counts[i] = c
			}()
		}
		wg.Wait()
		require.Equal(t, n, counts[0]+counts[1])
		got := fired(t, dbA)
		require.Len(t, got, n)
		for k, c := range got {
			require.Equal(t, 1, c, "job %s ran %d times", k, c)
		}
	})
}

// TestWorkerThroughWriter: with Options.Write set to the incident service's
// Write, each job's handler with its completion and a failure's record run
// through it, and on SQLite the worker's claims too (inside the single
// writer's batches: the handler is inside a Write; on PostgreSQL a claim
// is a statement without a transaction), with the same outcome as in
// transactions of the worker's own: a failing handler's writes roll back
// and the job is retried.
func TestWorkerThroughWriter(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		require.NoError(t, db.Migrate(ctx, incident.Migrations))
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		t.Cleanup(func() { svc.Close() })
		clock := clock.NewManual(t0)
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "x", RunAt: t0})
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "y", RunAt: t0})
		var writes atomic.Int64
		calls := map[string]int{}
		w := jobs.NewWorker(db, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			calls[j.Key]++
			if db.Dialect == store.SQLite {
				// Inside the writer's batch: another Write would wait for itself.
				require.ErrorContains(t, svc.Write(ctx, func(context.Context, *sql.Tx) error { return nil }), "inside a Write")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'w')`, j.Key); err != nil {
				return err
			}
			if j.Key == "y" && calls[j.Key] == 1 {
				return errors.New("boom")
			}
			return nil
		}, jobs.Options{Clock: clock, Write: func(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
			writes.Add(1)
			return svc.Write(ctx, fn)
		}})
		n, err := w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, map[string]int{"x": 1}, fired(t, db), "the failed attempt's writes must roll back")
		// Claim x and y together, run x, run y, record y's retry, the empty
		// claim (one claim per job before ClaimBatch: 6); the claims not
		// through the writer on PostgreSQL.
		want := 5
		if db.Dialect == store.Postgres {
			want = 3
		}
		require.EqualValues(t, want, writes.Load())
		var lastErr, state string
		require.NoError(t, db.QueryRow(`SELECT last_error, state FROM jobs WHERE dedup_key = 'y'`).Scan(&lastErr, &state))
		require.Equal(t, "boom", lastErr)
		require.Equal(t, jobs.StatePending, state)

		clock.Advance(2 * time.Second)
		n, err = w.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, map[string]int{"x": 1, "y": 1}, fired(t, db))
		require.NoError(t, db.QueryRow(`SELECT state FROM jobs WHERE dedup_key = 'y'`).Scan(&state))
		require.Equal(t, jobs.StateDone, state)
	})
}

// TestWorkerReleasesUnrun: jobs claimed together but not run (the context
// was cancelled while the first ran, so its transaction rolled back and it
// keeps its lease, as before) go back to pending at once, their attempt not
// counted, and the next RunDue runs them.
func TestWorkerReleasesUnrun(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		db := open()
		clock := clock.NewManual(t0)
		for _, k := range []string{"a", "b", "c"} {
			enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: k, RunAt: t0})
		}
		ctx, cancel := context.WithCancel(context.Background())
		var ran []string
		w := jobs.NewWorker(db, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			ran = append(ran, j.Key)
			cancel() // stop after this job
			return nil
		}, jobs.Options{Clock: clock})
		n, err := w.RunDue(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, n)
		require.Equal(t, []string{"a"}, ran)
		rows, err := db.Query(`SELECT dedup_key, state, attempts, lease_owner FROM jobs WHERE dedup_key IN ('b', 'c') ORDER BY dedup_key`)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var key, state, owner string
			var attempts int
			require.NoError(t, rows.Scan(&key, &state, &attempts, &owner))
			require.Equal(t, jobs.StatePending, state, key)
			require.Zero(t, attempts, key)
			require.Empty(t, owner, key)
		}
		require.NoError(t, rows.Err())

		n, err = w.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, []string{"a", "b", "c"}, ran)
	})
}

// TestWorkerClaimAbandoned: a Write that returns before its function ran
// (its ctx ended, as incident.Service.Write does while the writer may still
// run it) leaves the claim's result unread: RunDue returns the error and
// reads nothing the writer goroutine may still be writing (the race
// detector caught the read at sred's shutdown). The claimed job's lease
// expires and a later claim runs it.
func TestWorkerClaimAbandoned(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		db := open()
		clk := clock.NewManual(t0)
		enqueue(t, db, jobs.New{Queue: "q", Kind: "test", Key: "a", RunAt: t0})
		var wg sync.WaitGroup
		var ran []string
		w := jobs.NewWorker(db, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			ran = append(ran, j.Key)
			return nil
		}, jobs.Options{Clock: clk, Write: func(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
			if ctx.Err() != nil {
				// The writer runs it later, unsynchronised with the caller.
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = db.InTx(context.Background(), func(tx *sql.Tx) error { return fn(context.Background(), tx) })
				}()
				return ctx.Err()
			}
			return db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
		}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n, err := w.RunDue(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, n)
		wg.Wait()
		require.Empty(t, ran)

		clk.Advance(jobs.DefaultLease + time.Second)
		n, err = w.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, []string{"a"}, ran)
	})
}

// TestEnqueueAll: the jobs EnqueueAll writes in one statement are the rows
// Enqueue writes one by one; keys already stored, or repeated in the batch,
// are dropped and not counted; a batch larger than one statement's rows is
// written whole.
func TestEnqueueAll(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		type payload struct {
			N int `json:"n"`
		}
		mk := func(queue string, i int) jobs.New {
			return jobs.New{Queue: queue, Kind: jobs.Kind(fmt.Sprintf("kind%d", i%3)), Key: fmt.Sprintf("k%d", i),
				Group: fmt.Sprintf("inc%d", i%2), RunAt: t0.Add(time.Duration(i) * time.Second), Payload: payload{N: i}}
		}
		for i := range 3 {
			require.True(t, enqueue(t, db, mk("one", i)))
		}
		n, err := jobs.EnqueueAll(ctx, db, t0, []jobs.New{mk("all", 0), mk("all", 1), mk("all", 2)})
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		one, err := jobs.List(ctx, db, jobs.Filter{Queue: "one", AllGroups: true})
		require.NoError(t, err)
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "all", AllGroups: true})
		require.NoError(t, err)
		require.Len(t, all, 3)
		for i := range one {
			a, b := one[i], all[i]
			require.Equal(t, []any{a.Kind, a.Key, a.Group, a.RunAt, string(a.Payload), a.State, a.CreatedAt},
				[]any{b.Kind, b.Key, b.Group, b.RunAt, string(b.Payload), b.State, b.CreatedAt}, "job %d", i)
		}

		// k1 is stored, k7 repeated: 2 new of 4.
		n, err = jobs.EnqueueAll(ctx, db, t0, []jobs.New{mk("all", 1), mk("all", 7), mk("all", 8), mk("all", 7)})
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		count, err := jobs.Count(ctx, db, jobs.Filter{Queue: "all", AllGroups: true})
		require.NoError(t, err)
		require.Equal(t, 5, count)

		// More rows than one statement takes.
		var many []jobs.New
		for i := range 1203 {
			many = append(many, mk("many", i))
		}
		n, err = jobs.EnqueueAll(ctx, db, t0, many)
		require.NoError(t, err)
		require.EqualValues(t, 1203, n)
		count, err = jobs.Count(ctx, db, jobs.Filter{Queue: "many", AllGroups: true})
		require.NoError(t, err)
		require.Equal(t, 1203, count)

		_, err = jobs.EnqueueAll(ctx, db, t0, []jobs.New{mk("bad", 1), {Queue: "bad", Kind: "x"}})
		require.ErrorContains(t, err, "queue, kind and key are required")
	})
}

// TestConcurrentLanes: with Concurrency, the jobs of different groups of a
// claim run side by side (on PostgreSQL three handlers wait for each other:
// one after another they would never finish; SQLite's transactions take
// its one write lock at BEGIN, so there they run one at a time, as the
// writes of one batch do through incident.Service.Write), while the jobs of
// one group, and those without a group, run one after another in their
// order.
func TestConcurrentLanes(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		meet := "meet"
		if db.Dialect == store.SQLite {
			meet = "alone"
		}
		for i, g := range []string{"g1", "g2", "g3"} {
			require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: jobs.Kind(meet), Key: "meet-" + g, Group: g, RunAt: t0.Add(time.Duration(i) * time.Millisecond)}))
		}
		for i := range 4 {
			require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "seq", Key: fmt.Sprintf("g4-%d", i), Group: "g4", RunAt: t0.Add(time.Duration(10+i) * time.Millisecond)}))
			require.True(t, enqueue(t, db, jobs.New{Queue: "q", Kind: "seq", Key: fmt.Sprintf("none-%d", i), RunAt: t0.Add(time.Duration(20+i) * time.Millisecond)}))
		}
		var (
			mu       sync.Mutex
			met      = make(chan struct{})
			arrived  int
			inFlight = map[string]int{}
			overlap  []string
			order    = map[string][]string{}
		)
		h := func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			mu.Lock()
			switch j.Kind {
			case "alone":
				mu.Unlock()
			case "meet":
				arrived++
				if arrived == 3 {
					close(met)
				}
				mu.Unlock()
				select {
				case <-met:
				case <-ctx.Done():
					return ctx.Err()
				}
			default:
				inFlight[j.Group]++
				if inFlight[j.Group] > 1 {
					overlap = append(overlap, j.Key)
				}
				order[j.Group] = append(order[j.Group], j.Key)
				mu.Unlock()
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'w')`, j.Key)
			mu.Lock()
			if j.Kind == "seq" {
				inFlight[j.Group]--
			}
			mu.Unlock()
			return err
		}
		// A bound for a broken worker only: the three handlers meet at once
		// when they run side by side.
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		w := jobs.NewWorker(db, "q", h, jobs.Options{Clock: clock.NewManual(t0.Add(time.Second)), Concurrency: 4, ClaimBatch: 16})
		n, err := w.RunDue(rctx)
		require.NoError(t, err, "the handlers of three groups did not run side by side")
		require.Equal(t, 11, n)
		require.Len(t, fired(t, db), 11)
		require.Empty(t, overlap, "jobs of one group ran side by side")
		require.Equal(t, []string{"g4-0", "g4-1", "g4-2", "g4-3"}, order["g4"])
		require.Equal(t, []string{"none-0", "none-1", "none-2", "none-3"}, order[""])
	})
}

// TestFilterGroups: List and Count select one group's jobs, or every
// group's when asked for by AllGroups; a filter of no group (an empty
// Group, an incident ID not filled in) is refused rather than read as
// every group, and one of both is refused too.
func TestFilterGroups(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		for _, j := range []jobs.New{
			{Queue: "q", Kind: "test", Key: "a1", Group: "inc1", RunAt: t0},
			{Queue: "q", Kind: "test", Key: "a2", Group: "inc1", RunAt: t0},
			{Queue: "q", Kind: "test", Key: "b1", Group: "inc2", RunAt: t0},
			{Queue: "q", Kind: "test", Key: "none", RunAt: t0},
		} {
			require.True(t, enqueue(t, db, j))
		}
		for _, tc := range []struct {
			name    string
			filter  jobs.Filter
			want    []string
			wantErr bool
		}{
			{"one group", jobs.Filter{Queue: "q", Group: "inc1"}, []string{"a1", "a2"}, false},
			{"another group", jobs.Filter{Queue: "q", Group: "inc2"}, []string{"b1"}, false},
			{"every group", jobs.Filter{Queue: "q", AllGroups: true}, []string{"a1", "a2", "b1", "none"}, false},
			{"no group", jobs.Filter{Queue: "q"}, nil, true},
			{"no group, a kind", jobs.Filter{Queue: "q", Kind: "test", States: []string{jobs.StatePending}}, nil, true},
			{"a group and every group", jobs.Filter{Queue: "q", Group: "inc1", AllGroups: true}, nil, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				list, err := jobs.List(ctx, db, tc.filter)
				n, cerr := jobs.Count(ctx, db, tc.filter)
				if tc.wantErr {
					require.Error(t, err)
					require.Empty(t, list)
					require.Error(t, cerr)
					if tc.filter.Group == "" {
						require.ErrorIs(t, err, jobs.ErrNoGroup)
						require.ErrorIs(t, cerr, jobs.ErrNoGroup)
					}
					return
				}
				require.NoError(t, err)
				require.NoError(t, cerr)
				var keys []string
				for _, j := range list {
					keys = append(keys, j.Key)
				}
				require.ElementsMatch(t, tc.want, keys)
				require.Equal(t, len(tc.want), n)
			})
		}
	})
}

// TestCancelDuringAttempt: CancelIDs cancels a pending job and a running
// one whose attempt was not begun (counted cancelled: their worker can
// neither start nor complete them), and a running one past Start without
// withdrawing its attempt (counted started): its worker may still
// complete it (CompleteAttempt: done), not retry it. A new claim of a
// job starts it afresh.
func TestCancelDuringAttempt(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		for _, key := range []string{"a", "b", "c", "d"} {
			_, err := jobs.Enqueue(ctx, db, now, jobs.New{Queue: "q", Kind: "k", Key: key, RunAt: now})
			require.NoError(t, err)
		}
		js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w", Now: now, Limit: 3})
		require.NoError(t, err)
		require.Len(t, js, 3)
		id := map[string]int64{}
		for _, j := range js {
			id[j.Key] = j.ID
		}
		for _, key := range []string{"a", "b"} {
			ok, err := jobs.Start(ctx, db, id[key], "w", now)
			require.NoError(t, err)
			require.True(t, ok)
		}
		ok, err := jobs.Start(ctx, db, id["c"], "other", now)
		require.NoError(t, err)
		require.False(t, ok, "not leased to other")

		var d int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT id FROM jobs WHERE dedup_key = 'd'`).Scan(&d))
		c, err := jobs.CancelIDs(ctx, db, now, []int64{id["a"], id["b"], id["c"], d})
		require.NoError(t, err)
		require.Equal(t, [2]int64{2, 2}, [2]int64{c.Cancelled(), c.Underway}, "c and d withdrawn, a and b being attempted")

		ok, err = jobs.Start(ctx, db, id["c"], "w", now)
		require.NoError(t, err)
		require.False(t, ok, "c was cancelled before its attempt")
		_, err = jobs.CompleteAttempt(ctx, db, id["c"], "w", now)
		require.ErrorIs(t, err, jobs.ErrLeaseLost)
		late, err := jobs.CompleteAttempt(ctx, db, id["a"], "w", now)
		require.NoError(t, err, "a's attempt happened")
		require.False(t, late, "a's lease lasts")
		require.ErrorIs(t, jobs.Retry(ctx, db, id["b"], "w", now, "503"), jobs.ErrLeaseLost, "b is not retried")
		require.ErrorIs(t, jobs.Complete(ctx, db, id["b"], "w", now), jobs.ErrLeaseLost, "Complete is for running jobs alone")
		states := map[string]string{}
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			states[j.Key] = j.State
		}
		require.Equal(t, map[string]string{"a": jobs.StateDone, "b": jobs.StateCancelled, "c": jobs.StateCancelled, "d": jobs.StateCancelled}, states)

		// A job claimed again (its lease expired) is not begun until its
		// new worker starts it.
		_, err = jobs.Enqueue(ctx, db, now, jobs.New{Queue: "q", Kind: "k", Key: "e", RunAt: now})
		require.NoError(t, err)
		js, err = jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w", Now: now, Lease: time.Minute})
		require.NoError(t, err)
		require.Len(t, js, 1)
		ok, err = jobs.Start(ctx, db, js[0].ID, "w", now)
		require.NoError(t, err)
		require.True(t, ok)
		later := now.Add(2 * time.Minute)
		js, err = jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w2", Now: later})
		require.NoError(t, err)
		require.Len(t, js, 1)
		c, err = jobs.CancelIDs(ctx, db, later, []int64{js[0].ID})
		require.NoError(t, err)
		require.Equal(t, [2]int64{1, 0}, [2]int64{c.Cancelled(), c.Underway})
	})
}

// TestCancelIDsKinds: CancelIDs tells what it cancelled by what had
// become of each job's attempt, from its own statement: a pending job and
// a running one not past Start (NotBegun), one past Start whose worker's
// lease ended (Ended: over, its outcome unknown) and one past Start whose
// lease lasts (Underway); a job done already, or not there, is neither
// cancelled nor counted.
func TestCancelIDsKinds(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		id := startedJobs(t, db, clk, "ended")
		claim := func(lease time.Duration, keys ...string) {
			t.Helper()
			for _, key := range keys {
				_, err := jobs.Enqueue(ctx, db, clk.Now(), jobs.New{Queue: "q", Kind: "k", Key: key, RunAt: clk.Now()})
				require.NoError(t, err)
			}
			js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w", Now: clk.Now(), Lease: lease, Limit: len(keys)})
			require.NoError(t, err)
			require.Len(t, js, len(keys))
			for _, j := range js {
				id[j.Key] = j.ID
			}
		}
		claim(10*time.Minute, "underway", "unbegun", "done")
		for _, key := range []string{"underway", "done"} {
			ok, err := jobs.Start(ctx, db, id[key], "w", clk.Now())
			require.NoError(t, err)
			require.True(t, ok)
		}
		_, err := jobs.CompleteAttempt(ctx, db, id["done"], "w", clk.Now())
		require.NoError(t, err)
		_, err = jobs.Enqueue(ctx, db, clk.Now(), jobs.New{Queue: "q", Kind: "k", Key: "pending", RunAt: clk.Now().Add(time.Hour)})
		require.NoError(t, err)
		var pending int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT id FROM jobs WHERE dedup_key = 'pending'`).Scan(&pending))
		clk.Advance(2 * time.Minute) // the first lease (a minute) ended

		c, err := jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["ended"], id["underway"], id["unbegun"], id["done"], pending, 1_000_000})
		require.NoError(t, err)
		require.Equal(t, jobs.Cancellation{NotBegun: 2, Ended: 1, Underway: 1}, c)
		require.EqualValues(t, 3, c.Cancelled())
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		states := map[string]string{}
		for _, j := range all {
			states[j.Key] = j.State
		}
		require.Equal(t, map[string]string{"ended": jobs.StateCancelled, "underway": jobs.StateCancelled, "unbegun": jobs.StateCancelled,
			"done": jobs.StateDone, "pending": jobs.StateCancelled}, states)

		c, err = jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["ended"], pending})
		require.NoError(t, err)
		require.Equal(t, jobs.Cancellation{}, c, "cancelled already")
	})
}

// TestAbandonAttempt: a job cancelled during its attempt (CancelIDs after
// Start) reads as an attempt underway until its worker records the
// outcome; AbandonAttempt records that it failed: the job stays
// cancelled with the error, is no longer leased, and its attempt is over.
// It does nothing to a running job, nor to one cancelled before Start.
func TestAbandonAttempt(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		for _, key := range []string{"a", "b", "c"} {
			_, err := jobs.Enqueue(ctx, db, now, jobs.New{Queue: "q", Kind: "k", Key: key, RunAt: now})
			require.NoError(t, err)
		}
		js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w", Now: now, Limit: 3})
		require.NoError(t, err)
		require.Len(t, js, 3)
		id := map[string]int64{}
		for _, j := range js {
			id[j.Key] = j.ID
		}
		underway := func() map[string]bool {
			all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
			require.NoError(t, err)
			out := map[string]bool{}
			for _, j := range all {
				out[j.Key] = j.AttemptUnderway(now)
			}
			return out
		}
		require.Equal(t, map[string]bool{"a": false, "b": false, "c": false}, underway(), "claimed, not begun")
		for _, key := range []string{"a", "b"} {
			ok, err := jobs.Start(ctx, db, id[key], "w", now)
			require.NoError(t, err)
			require.True(t, ok)
		}
		require.Equal(t, map[string]bool{"a": true, "b": true, "c": false}, underway())
		_, err = jobs.CancelIDs(ctx, db, now, []int64{id["a"], id["c"]})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"a": true, "b": true, "c": false}, underway(), "a was cancelled during its attempt")

		for _, key := range []string{"b", "c"} {
			ok, err := jobs.AbandonAttempt(ctx, db, id[key], "w", "503")
			require.NoError(t, err)
			require.False(t, ok, "%s was not cancelled during its attempt", key)
		}
		ok, err := jobs.AbandonAttempt(ctx, db, id["a"], "other", "503")
		require.NoError(t, err)
		require.False(t, ok, "not leased to other")
		ok, err = jobs.AbandonAttempt(ctx, db, id["a"], "w", "503")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, map[string]bool{"a": false, "b": true, "c": false}, underway(), "a's attempt is over")
		_, err = jobs.CompleteAttempt(ctx, db, id["a"], "w", now)
		require.ErrorIs(t, err, jobs.ErrLeaseLost, "a's outcome is recorded")
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			if j.Key == "a" {
				require.Equal(t, jobs.StateCancelled, j.State)
				require.Equal(t, "503", j.LastError)
				require.Empty(t, j.Owner)
			}
		}
	})
}

// startedJobs enqueues a job of queue q for each key, claims them all for
// worker w with a lease of a minute and begins their attempts (Start), at
// clk's time, and returns their IDs by key.
func startedJobs(t *testing.T, db *store.DB, clk *clock.Manual, keys ...string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	for _, key := range keys {
		_, err := jobs.Enqueue(ctx, db, clk.Now(), jobs.New{Queue: "q", Kind: "k", Key: key, RunAt: clk.Now()})
		require.NoError(t, err)
	}
	js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w", Now: clk.Now(), Lease: time.Minute, Limit: len(keys)})
	require.NoError(t, err)
	require.Len(t, js, len(keys))
	id := map[string]int64{}
	for _, j := range js {
		id[j.Key] = j.ID
		ok, err := jobs.Start(ctx, db, j.ID, "w", clk.Now())
		require.NoError(t, err)
		require.True(t, ok)
	}
	return id
}

// TestAttemptOverWhenLeaseEnds: an attempt begun (Start) whose worker
// never reports back (it died) is underway while the worker's lease
// lasts, cancelled during it (CancelIDs) or not, and over once the lease
// has ended: it no longer reads as one that may still succeed. A job
// cancelled after its worker's lease ended is cancelled as one whose
// attempt had not begun, and keeps its worker: should that worker,
// stalled, report the attempt's success after all, the success is
// recorded, late (it used to find the lease lost and leave the job
// cancelled).
func TestAttemptOverWhenLeaseEnds(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		id := startedJobs(t, db, clk, "a", "b", "c")
		leaseEnd := clk.Now().Add(time.Minute)
		underway := func(at time.Time) map[string]bool {
			all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
			require.NoError(t, err)
			out := map[string]bool{}
			for _, j := range all {
				out[j.Key] = j.AttemptUnderway(at)
			}
			return out
		}
		clk.Advance(30 * time.Second)
		c, err := jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["a"]})
		require.NoError(t, err)
		require.Equal(t, [2]int64{0, 1}, [2]int64{c.Cancelled(), c.Underway}, "a is being attempted")
		require.Equal(t, map[string]bool{"a": true, "b": true, "c": true}, underway(clk.Now()))
		require.Equal(t, map[string]bool{"a": true, "b": true, "c": true}, underway(leaseEnd.Add(-time.Millisecond)),
			"underway until the lease's end")
		require.Equal(t, map[string]bool{"a": false, "b": false, "c": false}, underway(leaseEnd), "the worker's lease ended")

		clk.Set(leaseEnd)
		c, err = jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["b"]})
		require.NoError(t, err)
		require.Equal(t, [2]int64{1, 0}, [2]int64{c.Cancelled(), c.Underway}, "b's attempt is over: cancelled as not begun")
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			if j.Key == "b" {
				require.Equal(t, jobs.StateCancelled, j.State)
				require.Equal(t, "w", j.Owner, "b's worker keeps it, for the attempt's outcome")
				require.False(t, j.AttemptUnderway(clk.Now()), "b's attempt is over")
			}
		}
		_, err = jobs.CompleteAttempt(ctx, db, id["b"], "w2", clk.Now())
		require.ErrorIs(t, err, jobs.ErrLeaseLost, "another worker's")
		late, err := jobs.CompleteAttempt(ctx, db, id["b"], "w", clk.Now())
		require.NoError(t, err, "b's stalled worker reports its success")
		require.True(t, late)
		_, err = jobs.CompleteAttempt(ctx, db, id["b"], "w", clk.Now())
		require.ErrorIs(t, err, jobs.ErrLeaseLost, "recorded once")
		// c, not cancelled, is claimed again: its new attempt has not begun.
		js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "w2", Now: clk.Now(), Lease: time.Minute})
		require.NoError(t, err)
		require.Len(t, js, 1)
		require.Equal(t, "c", js[0].Key)
		require.False(t, js[0].AttemptUnderway(clk.Now()))
	})
}

// TestCompleteAttemptAfterLease: CompleteAttempt tells a completion that
// comes after the worker's lease ended, of a job cancelled during its
// attempt, from one in time: that attempt read as over without an
// outcome (Job.AttemptUnderway) until the completion, which records it
// done all the same (it happened) and reports it late. A running job's
// completion, or a cancelled one's within the lease, is not late.
func TestCompleteAttemptAfterLease(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		id := startedJobs(t, db, clk, "running", "in-time", "late")
		leaseEnd := clk.Now().Add(time.Minute)
		clk.Advance(30 * time.Second)
		c, err := jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["in-time"], id["late"]})
		require.NoError(t, err)
		require.EqualValues(t, 2, c.Underway)

		lates := map[string]bool{}
		complete := func(key string, at time.Time) {
			late, err := jobs.CompleteAttempt(ctx, db, id[key], "w", at)
			require.NoError(t, err, key)
			lates[key] = late
		}
		complete("in-time", leaseEnd.Add(-time.Millisecond))
		clk.Set(leaseEnd)
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			if j.Key == "late" {
				require.False(t, j.AttemptUnderway(clk.Now()), "its lease ended without an outcome")
			}
		}
		complete("late", clk.Now())
		complete("running", clk.Now())
		require.Equal(t, map[string]bool{"running": false, "in-time": false, "late": true}, lates)

		states := map[string]string{}
		all, err = jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			states[j.Key] = j.State
		}
		require.Equal(t, map[string]string{"running": jobs.StateDone, "in-time": jobs.StateDone, "late": jobs.StateDone}, states)
		_, err = jobs.CompleteAttempt(ctx, db, id["late"], "w", clk.Now())
		require.ErrorIs(t, err, jobs.ErrLeaseLost, "recorded once")
	})
}

// TestStartGivesBackUnattemptedClaims: a claim whose lease ends before
// Start (its worker died, or Start failed) attempted nothing: the claim
// that takes the job again counts it in Unattempted, also when that one
// puts it back unattempted (Postpone), and Start gives those attempts
// back. An attempt begun (Start) counts; one whose Start was written
// though its worker never learnt it (Unstart) does not, and a job
// cancelled as begun meanwhile has its attempt over.
func TestStartGivesBackUnattemptedClaims(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
		keys := []string{"died", "postponed", "unstarted", "cancelled", "sent"}
		for _, key := range keys {
			_, err := jobs.Enqueue(ctx, db, clk.Now(), jobs.New{Queue: "q", Kind: "k", Key: key, RunAt: clk.Now()})
			require.NoError(t, err)
		}
		id := map[string]int64{}
		claim := func(owner string) map[string]jobs.Job {
			js, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: owner, Now: clk.Now(), Lease: time.Minute, Limit: 10})
			require.NoError(t, err)
			out := map[string]jobs.Job{}
			for _, j := range js {
				id[j.Key] = j.ID
				out[j.Key] = j
			}
			return out
		}
		start := func(key, owner string) {
			ok, err := jobs.Start(ctx, db, id[key], owner, clk.Now())
			require.NoError(t, err)
			require.True(t, ok, key)
		}
		attempts := func() map[string]int {
			all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
			require.NoError(t, err)
			out := map[string]int{}
			for _, j := range all {
				out[j.Key] = j.Attempts
			}
			return out
		}
		require.Len(t, claim("w1"), 5)
		for _, key := range []string{"unstarted", "cancelled", "sent"} {
			start(key, "w1")
		}
		require.NoError(t, jobs.Unstart(ctx, db, id["unstarted"], "w1", "start: connection reset"))
		c, err := jobs.CancelIDs(ctx, db, clk.Now(), []int64{id["cancelled"]})
		require.NoError(t, err)
		require.EqualValues(t, 1, c.Underway, "taken for begun")
		require.NoError(t, jobs.Unstart(ctx, db, id["cancelled"], "w1", "start: connection reset"))
		all, err := jobs.List(ctx, db, jobs.Filter{Queue: "q", AllGroups: true})
		require.NoError(t, err)
		for _, j := range all {
			if j.Key == "cancelled" {
				require.Equal(t, jobs.StateCancelled, j.State)
				require.Equal(t, "start: connection reset", j.LastError)
				require.False(t, j.AttemptUnderway(clk.Now()), "its attempt never began, and w1's lease lasts")
			}
		}

		clk.Advance(time.Minute) // w1's lease ends
		got := claim("w2")
		require.Len(t, got, 4)
		unattempted := map[string]int{}
		for key, j := range got {
			unattempted[key] = j.Unattempted
		}
		require.Equal(t, map[string]int{"died": 1, "postponed": 1, "unstarted": 1, "sent": 0}, unattempted)
		require.NoError(t, jobs.Postpone(ctx, db, id["postponed"], "w2", clk.Now()))
		got = claim("w3")
		require.Len(t, got, 1)
		require.Equal(t, 1, got["postponed"].Unattempted, "kept while put back unattempted")
		start("died", "w2")
		start("unstarted", "w2")
		start("sent", "w2")
		start("postponed", "w3")
		require.Equal(t, map[string]int{"died": 1, "postponed": 1, "unstarted": 1, "cancelled": 1, "sent": 2}, attempts())
	})
}
