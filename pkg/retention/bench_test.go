package retention_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// seedIncidents generates n incidents resolved at base+i ms, each with its
// group, an alert episode, a link and two timeline entries, inside the
// database (ids from offset).
func seedIncidents(b *testing.B, db *store.DB, offset, n int, base int64) {
	b.Helper()
	seq := fmt.Sprintf(`WITH RECURSIVE seq(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM seq WHERE i < %d)`, offset, offset+n-1)
	if db.Dialect == store.Postgres {
		seq = fmt.Sprintf(`WITH seq(i) AS (SELECT generate_series(%d, %d))`, offset, offset+n-1)
	}
	at := fmt.Sprintf("(%d + i)", base)
	for _, q := range []string{
		`INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, resolved_at, updated_at)
			SELECT 'B-' || i, 'Old', 'api', 'critical', 'resolved', '{"alertname":"Old"}', 'g-' || i, ` + at + `, ` + at + `, ` + at + `, ` + at + ` FROM seq`,
		`INSERT INTO alert_groups (group_key, incident_id) SELECT 'g-' || i, 'B-' || i FROM seq`,
		`INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, first_seen_at, updated_at)
			SELECT 'g-' || i, 'fp', ` + at + `, 'B-' || i, 'resolved', ` + at + `, '{"alertname":"Old"}', '{}', ` + at + `, ` + at + ` FROM seq`,
		`INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at) SELECT 'B-' || i, 'g-' || i, 'api', '{}', 'opened', ` + at + ` FROM seq`,
		`INSERT INTO incident_timeline (incident_id, at, kind, actor, message) SELECT 'B-' || i, ` + at + `, 'created', 'am', 'opened' FROM seq`,
		`INSERT INTO incident_timeline (incident_id, at, kind, actor, message) SELECT 'B-' || i, ` + at + `, 'resolved', 'am', 'resolved' FROM seq`,
	} {
		if _, err := db.ExecContext(context.Background(), seq+" "+q); err != nil {
			b.Fatal(err)
		}
	}
	if db.Dialect == store.Postgres {
		if _, err := db.ExecContext(context.Background(), "ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompactBatch: one operation is one compaction batch of 100
// expired incidents (600 rows) in its own transaction, in a store that also
// holds 20,000 resolved incidents not yet expired (120,000 rows), so that
// what a batch costs with rows around shows. Compare with one webhook
// delivery (BenchmarkWebhook, pkg/receiver): on SQLite a batch holds the
// writer that long.
func BenchmarkCompactBatch(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			var db *store.DB
			var err error
			if backend == "sqlite" {
				db, err = store.OpenSQLite(ctx, b.TempDir())
			} else {
				db, err = store.OpenPostgres(ctx, tu.PostgresSchemaURL(b), store.PostgresOptions{})
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx, migrations()...); err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			const batch = 100
			seedIncidents(b, db, 0, 20000, now.UnixMilli())                               // kept
			seedIncidents(b, db, 20000, b.N*batch, now.Add(-30*24*time.Hour).UnixMilli()) // expired
			c, err := retention.New(db, retention.Options{Clock: clock.NewManual(now), Pause: func(context.Context, time.Duration) {}})
			if err != nil {
				b.Fatal(err)
			}
			conf := retention.Default()
			conf.ResolvedIncidents = model.Duration(24 * time.Hour)
			conf.FinishedJobs = 0
			conf.BatchSize = batch
			b.ResetTimer()
			out, err := c.Compact(ctx, conf)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if out["incidents"] != int64(b.N*batch) {
				b.Fatalf("deleted %d incidents, want %d", out["incidents"], b.N*batch)
			}
			var rows int64
			for _, n := range out {
				rows += n
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}
