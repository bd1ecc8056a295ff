package incident_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// holdWriter runs a write that holds the SQLite writer until the n writes
// queued by queue (in goroutines) are all waiting behind it, so that they
// share the writer's next transaction; then it lets go and waits for them.
func holdWriter(t *testing.T, svc *incident.Service, n int, queue func(wg *sync.WaitGroup)) {
	t.Helper()
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- svc.Write(ctx, func(context.Context, *sql.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	var wg sync.WaitGroup
	queue(&wg)
	for give := time.Now().Add(5 * time.Minute); incident.QueuedWrites(svc) < n; runtime.Gosched() {
		if time.Now().After(give) {
			t.Fatalf("only %d of %d writes queued behind the held writer", incident.QueuedWrites(svc), n)
		}
	}
	close(release)
	require.NoError(t, <-held)
	wg.Wait()
}

// TestBatchOfDeliveries: one failing delivery in the SQLite writer's
// batch, or a failing write of another kind, is rolled back alone (each
// write has a savepoint of its own): every other delivery of the batch is
// stored and answered, nothing of the failing ones is.
func TestBatchOfDeliveries(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	var (
		mu      sync.Mutex
		batches = map[string]map[int64]bool{} // delivery -> the writer transactions that ran it
	)
	hook := incident.HookFunc(func(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
		if nameOf(ctx) == "bad" && ch.Kind == incident.ChangeCreated {
			return errors.New("hook refused") // after the incident's rows were written
		}
		return nil
	})
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{hook} },
		events.NewBus(64, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Clock = clock.NewManual(epoch)
	t.Cleanup(func() { svc.Close() })
	incident.SetWriteHook(svc, func(ctx context.Context, batch int64) {
		if name := nameOf(ctx); name != "" {
			mu.Lock()
			if batches[name] == nil {
				batches[name] = map[int64]bool{}
			}
			batches[name][batch] = true
			mu.Unlock()
		}
	})
	stored := func(group string) (incidents, alerts int) {
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incidents WHERE group_key = $1`, group).Scan(&incidents))
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_alerts WHERE group_key = $1`, group).Scan(&alerts))
		return incidents, alerts
	}

	// Four good deliveries, a failing one and a failing write of another
	// kind in one transaction.
	names := []string{"good-0", "good-1", "bad", "good-2", "good-3"}
	errs := make([]error, len(names))
	var plainErr error
	refused := errors.New("refused")
	holdWriter(t, svc, len(names)+1, func(wg *sync.WaitGroup) {
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = svc.Ingest(named(ctx, name), notification(name, "api", "critical", epoch, "a", "b"))
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			plainErr = svc.Write(named(ctx, "plain"), func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO incident_seq (year, last) VALUES (1999, 7)`); err != nil {
					return err
				}
				return refused
			})
		}()
	})
	for i, name := range names {
		inc, alerts := stored(name)
		if name == "bad" {
			require.ErrorContains(t, errs[i], "hook refused")
			require.Equal(t, [2]int{0, 0}, [2]int{inc, alerts}, "nothing of the failing delivery is stored")
			continue
		}
		require.NoError(t, errs[i], name)
		require.Equal(t, [2]int{1, 2}, [2]int{inc, alerts}, name)
		require.Equal(t, batches["bad"], batches[name], "%s shared the failing delivery's transaction", name)
	}
	require.ErrorIs(t, plainErr, refused)
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_seq WHERE year = 1999`).Scan(&n))
	require.Zero(t, n, "the failing write's row is rolled back")
	require.Equal(t, batches["bad"], batches["plain"])
	require.Len(t, batches["bad"], 1)
	page, err := svc.List(ctx, incident.Filter{})
	require.NoError(t, err)
	require.Equal(t, 4, page.Total)
}

// TestWALStartsAgain: the WAL starts again from its beginning after
// RestartFrames frames even when every checkpoint of the checkpointer ends
// while the writer has a transaction open, as under load: every write
// below runs a PASSIVE checkpoint on another connection while its
// transaction is open. With the writer's connection never checkpointing
// itself, the WAL kept every frame written.
func TestWALStartsAgain(t *testing.T) {
	ctx := context.Background()
	db, svc := openFileService(t)
	_, err := db.ExecContext(ctx, `CREATE TABLE wal_test (b BLOB)`)
	require.NoError(t, err)

	walLength := func() int {
		var busy, log, done int
		require.NoError(t, db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done))
		return log
	}
	written := 0
	for written < 2*incident.RestartFrames {
		require.NoError(t, svc.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			// 100 rows of one page each.
			if _, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO wal_test SELECT randomblob(4000) FROM n`); err != nil {
				return err
			}
			walLength()
			return nil
		}))
		written += 100
	}
	require.Less(t, walLength(), incident.RestartFrames+200, "the WAL started again (%d frames written)", written)
}

// TestCheckpointsOffTheWriter: the writer's connection does not checkpoint
// the WAL on its commits (SQLite's automatic checkpoint would run inside
// the commit that crosses 1,000 frames, while the queued deliveries wait);
// the checkpointer does, asked every so many commits (about 1,000 WAL
// frames' worth, as SQLite's automatic checkpoint).
func TestCheckpointsOffTheWriter(t *testing.T) {
	ctx := context.Background()
	db, svc := openFileService(t)

	var auto int
	require.NoError(t, svc.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto)
	}))
	require.Equal(t, incident.RestartFrames, auto, "the writer's connection checkpoints only a long WAL itself")
	var other int
	require.NoError(t, db.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&other))
	require.Equal(t, 1000, other, "the other connections keep SQLite's default")

	require.Zero(t, incident.Checkpoints(svc))
	// One write at a time: a commit each (the first write above was one).
	for i := 1; i < incident.CheckpointFirst; i++ {
		g := fmt.Sprintf("g%d", i)
		_, err := svc.Ingest(ctx, notification(g, "api", "critical", epoch, g+"-a"))
		require.NoError(t, err)
	}
	for give := time.Now().Add(5 * time.Minute); incident.Checkpoints(svc) == 0; runtime.Gosched() {
		if time.Now().After(give) {
			t.Fatalf("no checkpoint after %d commits", incident.CheckpointFirst)
		}
	}
	// A one-alert delivery writes far fewer than 1,000/16 WAL frames: the
	// next checkpoint waits for more commits.
	require.Greater(t, incident.CheckpointEvery(svc), int64(incident.CheckpointFirst))
	t.Logf("checkpoint every %d commits", incident.CheckpointEvery(svc))
}

// openFileService opens an incident service on a migrated SQLite store in
// a file (the WAL tests need one; a memory database has no WAL), on a
// manual clock.
func openFileService(t *testing.T) (*store.DB, *incident.Service) {
	t.Helper()
	return openFileServiceWith(t, prometheus.NewRegistry())
}

// openFileServiceWith is openFileService with the service's metrics in reg.
func openFileServiceWith(t *testing.T, reg prometheus.Registerer) (*store.DB, *incident.Service) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, reg)
	require.NoError(t, err)
	svc.Clock = clock.NewManual(epoch)
	t.Cleanup(func() { svc.Close() })
	return db, svc
}

// TestWriterStartsNoGoroutinePerWrite: a batch of the SQLite writer
// starts no goroutine per delivery. Its statements run with contexts that
// cannot end: modernc's SQLite watches the context of a statement that can
// with a goroutine of its own (interruptOnDone: the SAVEPOINT and RELEASE
// around every write), and database/sql the rows of every query of a
// transaction (Rows.awaitDone), goroutines that the writer's goroutine, the
// bound of ingestion, created and scheduled (about 5 per delivery).
func TestWriterStartsNoGoroutinePerWrite(t *testing.T) {
	ctx := context.Background()
	_, svc := openFileService(t)
	const n = 40
	var (
		applied     int // the writer runs the writes one after another
		first, last uint64
	)
	incident.SetWriteHook(svc, func(ctx context.Context, _ int64) {
		if nameOf(ctx) == "" {
			return
		}
		if applied++; applied == 1 {
			first = testutil.GoroutinesCreated()
		} else if applied == n {
			last = testutil.GoroutinesCreated()
		}
	})
	errs := make([]error, n)
	holdWriter(t, svc, n, func(wg *sync.WaitGroup) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := fmt.Sprintf("g%d", i)
				_, errs[i] = svc.Ingest(named(ctx, g), notification(g, "api", "critical", epoch, g+"-a", g+"-b"))
			}()
		}
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, n, applied)
	page, err := svc.List(ctx, incident.Filter{})
	require.NoError(t, err)
	require.Equal(t, n, page.Total)
	require.LessOrEqual(t, last-first, uint64(4), "goroutines started while the writer applied %d deliveries", n-1)
}

// TestBatchOverLimit: a SQLite writer batch still running after BatchLimit
// stops before its next write; it is rolled back and every write of it
// fails, and the writer goes on with the next batch.
func TestBatchOverLimit(t *testing.T) {
	ctx := context.Background()
	db, svc := openFileService(t)
	now := clock.NewManual(epoch)
	incident.SetWriterNow(svc, now.Now)
	names := []string{"g0", "g1", "g2"}
	advanced := false
	incident.SetWriteHook(svc, func(ctx context.Context, _ int64) {
		if nameOf(ctx) != "" && !advanced { // the batch's first write
			advanced = true
			now.Advance(incident.BatchLimit + time.Second)
		}
	})
	errs := ingestHeld(t, svc, names)
	for i, err := range errs {
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s: %v", names[i], errs)
	}
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_alerts`).Scan(&n))
	require.Zero(t, n, "nothing of the batch is stored")

	_, err := svc.Ingest(ctx, notification("g3", "api", "critical", epoch, "g3-a"))
	require.NoError(t, err, "the next batch")
	page, err := svc.List(ctx, incident.Filter{})
	require.NoError(t, err)
	require.Equal(t, 1, page.Total)
}

// TestWriterMetrics: the SQLite writer exports the writes of each of its
// transactions, the time of its commits and the time it was busy (on the
// writer's clock, a manual one here: each delivery of the batch takes a
// second of it, the commits none).
func TestWriterMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, svc := openFileServiceWith(t, reg)
	now := clock.NewManual(epoch)
	incident.SetWriterNow(svc, now.Now)
	incident.SetWriteHook(svc, func(ctx context.Context, _ int64) {
		if nameOf(ctx) != "" {
			now.Advance(time.Second)
		}
	})
	names := []string{"g0", "g1", "g2"}
	errs := ingestHeld(t, svc, names)
	for _, err := range errs {
		require.NoError(t, err)
	}

	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]*dto.Metric{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0]
	}
	// Two transactions: the holding write alone, then the three deliveries.
	batch := got["sre_store_writer_batch_writes"].GetHistogram()
	require.Equal(t, uint64(2), batch.GetSampleCount())
	require.Equal(t, 4.0, batch.GetSampleSum())
	commit := got["sre_store_writer_commit_duration_seconds"].GetHistogram()
	require.Equal(t, uint64(2), commit.GetSampleCount())
	require.Zero(t, commit.GetSampleSum())
	require.Equal(t, 3.0, got["sre_store_writer_busy_seconds_total"].GetCounter().GetValue())
}

// ingestHeld ingests a one-alert notification of each group of names, all
// queued behind a held writer (holdWriter) so that they share its next
// transaction, and returns their errors in order.
func ingestHeld(t *testing.T, svc *incident.Service, names []string) []error {
	t.Helper()
	ctx := context.Background()
	errs := make([]error, len(names))
	holdWriter(t, svc, len(names), func(wg *sync.WaitGroup) {
		for i, g := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = svc.Ingest(named(ctx, g), notification(g, "api", "critical", epoch, g+"-a"))
			}()
		}
	})
	return errs
}
