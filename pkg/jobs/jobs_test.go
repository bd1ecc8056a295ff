package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
			db, err := store.OpenPostgres(context.Background(), url)
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
		clock := jobs.NewManualClock(t0)
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Key: "a", Group: "inc1", RunAt: t0}))
		require.False(t, enqueue(t, db, jobs.New{Queue: "q", Key: "a", Group: "inc1", RunAt: t0}), "duplicate key must be ignored")
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Key: "b", Group: "inc1", RunAt: t0.Add(15 * time.Minute)}))
		require.True(t, enqueue(t, db, jobs.New{Queue: "q", Key: "c", Group: "inc2", RunAt: t0.Add(15 * time.Minute)}))
		require.True(t, enqueue(t, db, jobs.New{Queue: "other", Key: "a", RunAt: t0}))

		w := jobs.NewWorker(db, "q", recordHandler("w"), clock, nil, nil)
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
		clock := jobs.NewManualClock(t0)
		enqueue(t, db, jobs.New{Queue: "q", Key: "x", RunAt: t0})
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
		}, clock, nil, nil)
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
// cancelled while the handler runs) leaves the job due; a new process on a
// new connection runs it exactly once.
func TestRestart(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		db1 := open()
		clock := jobs.NewManualClock(t0)
		enqueue(t, db1, jobs.New{Queue: "q", Key: "step1", RunAt: t0.Add(15 * time.Minute)})

		ctx1, kill := context.WithCancel(context.Background())
		started := make(chan struct{})
		w1 := jobs.NewWorker(db1, "q", func(ctx context.Context, tx *sql.Tx, j jobs.Job) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO fired (key, worker) VALUES ($1, 'w1')`, j.Key); err != nil {
				return err
			}
			close(started)
			<-ctx.Done() // the process dies before committing
			return ctx.Err()
		}, clock, nil, nil)
		clock.Advance(15 * time.Minute)
		done := make(chan error)
		go func() { _, err := w1.RunDue(ctx1); done <- err }()
		<-started
		kill()
		require.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, db1.Close())

		db2 := open()
		w2 := jobs.NewWorker(db2, "q", recordHandler("w2"), clock, nil, nil)
		// PostgreSQL may take a moment to notice the dead connection and
		// release its row lock (SKIP LOCKED skips the row meanwhile): the
		// step runs on one of the next ticks.
		total := 0
		for deadline := time.Now().Add(5 * time.Second); total == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			n, err := w2.RunDue(context.Background())
			require.NoError(t, err)
			total += n
		}
		require.Equal(t, 1, total)
		n, err := w2.RunDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 0, n)
		require.Equal(t, map[string]int{"step1": 1}, fired(t, db2))
	})
}

// TestReplicas runs two workers on two connections pools at once: every job
// runs exactly once.
func TestReplicas(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		dbA, dbB := open(), open()
		clock := jobs.NewManualClock(t0)
		const n = 60
		for i := range n {
			enqueue(t, dbA, jobs.New{Queue: "q", Key: fmt.Sprintf("job%02d", i), RunAt: t0})
		}
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, db := range []*store.DB{dbA, dbB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := jobs.NewWorker(db, "q", recordHandler(fmt.Sprint(i)), clock, nil, nil)
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
