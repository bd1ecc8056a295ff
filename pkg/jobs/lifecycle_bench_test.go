package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// BenchmarkLifecycle is one job's life as an escalation step and the
// messages of its page live it, on a SQLite store holding 20,000 finished
// jobs (as a store does between retention runs): enqueued, claimed and
// completed, each in a transaction of its own. It reports the bytes SQLite
// wrote to its WAL per job (the pages the index writes dirtied).
func BenchmarkLifecycle(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, jobs.Migrations); err != nil {
		b.Fatal(err)
	}
	// Everything on one connection, which does not checkpoint during the
	// run: the WAL's growth is what the run wrote.
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1e9, 0)
	const finished = 20000
	for i := 0; i < finished; i += 500 {
		js := make([]jobs.New, 0, 500)
		for k := i; k < i+500; k++ {
			js = append(js, jobs.New{Queue: "notify", Kind: "sms", Key: fmt.Sprintf("old/%d", k), Group: fmt.Sprintf("INC-%d", k/4), RunAt: now})
		}
		if _, err := jobs.EnqueueAll(ctx, conn, now, js); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := conn.ExecContext(ctx, `UPDATE jobs SET state = 'done', finished_at = run_at`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	wal := func() int64 {
		var pages int64
		// The WAL's frames so far (log, checkpointed) without checkpointing.
		var busy, ckpt int64
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &pages, &ckpt); err != nil {
			b.Fatal(err)
		}
		return pages
	}
	start := wal()
	b.ResetTimer()
	for i := range b.N {
		if _, err := jobs.Enqueue(ctx, conn, now, jobs.New{Queue: "notify", Kind: "sms", Key: fmt.Sprintf("new/%d", i), Group: fmt.Sprintf("NEW-%d", i/4), RunAt: now}); err != nil {
			b.Fatal(err)
		}
		js, err := jobs.ClaimIn(ctx, conn, store.SQLite, jobs.ClaimOptions{Queue: "notify", Owner: "w", Now: now, Limit: 1})
		if err != nil || len(js) != 1 {
			b.Fatal(len(js), err)
		}
		if err := jobs.Complete(ctx, conn, js[0].ID, "w", now); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(wal()-start)/float64(b.N), "wal-frames/job")
}
