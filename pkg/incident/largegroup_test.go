package incident_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// largeGroup is a notification of group g with n alerts, all firing or all
// resolved.
func largeGroup(g string, n int, status string, started time.Time) incident.Notification {
	out := incident.Notification{
		Receiver: "sred", Status: status, GroupKey: g,
		GroupLabels:  map[string]string{"alertname": "NodeDown"},
		CommonLabels: map[string]string{"alertname": "NodeDown", "service": "fleet", "severity": "critical"},
		Alerts:       make([]incident.NotifiedAlert, n),
	}
	for i := range n {
		a := incident.NotifiedAlert{
			Status:      status,
			Labels:      map[string]string{"alertname": "NodeDown", "service": "fleet", "severity": "critical", "instance": fmt.Sprintf("node-%05d:9100", i)},
			Annotations: map[string]string{"summary": "node down"},
			StartsAt:    started, Fingerprint: fmt.Sprintf("%016x", i),
		}
		if status == "resolved" {
			a.EndsAt = started.Add(10 * time.Minute)
		}
		out.Alerts[i] = a
	}
	return out
}

func largeService(t testing.TB, db *store.DB) *incident.Service {
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Now = func() time.Time { return clock }
	t.Cleanup(func() { svc.Close() })
	return svc
}

// TestLargeGroupResolve fires a 20,000-alert group and resolves it whole,
// on both backends: every alert is stored resolved and the incident
// resolves; while the large resolve runs, a one-alert delivery of another
// group completes too (it is not refused nor lost behind it).
func TestLargeGroupResolve(t *testing.T) {
	const n = 20000
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := largeService(t, db)
		started := clock.Add(-time.Hour)
		res, err := svc.Ingest(ctx, largeGroup("big", n, "firing", started))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]

		var wg sync.WaitGroup
		var small *incident.IngestResult
		var smallErr error
		wg.Go(func() {
			small, smallErr = svc.Ingest(ctx, largeGroup("small", 1, "firing", started))
		})
		res, err = svc.Ingest(ctx, largeGroup("big", n, "resolved", started))
		wg.Wait()
		require.NoError(t, err)
		require.Equal(t, n, res.Alerts["resolved"])
		require.NoError(t, smallErr)
		require.Len(t, small.Created, 1)

		var resolved int
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM incident_alerts WHERE group_key = 'big' AND status = 'resolved' AND ends_at = $1`,
			started.Add(10*time.Minute).UnixMilli()).Scan(&resolved))
		require.Equal(t, n, resolved)
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)

		// The same resolve again is a duplicate and changes nothing.
		res, err = svc.Ingest(ctx, largeGroup("big", n, "resolved", started))
		require.NoError(t, err)
		require.True(t, res.Duplicate)
	})
}

// BenchmarkResolveLargeGroup resolves a 20,000-alert group in one delivery
// (the group is fired again, untimed, before each resolve).
func BenchmarkResolveLargeGroup(b *testing.B) {
	const n = 20000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var db *store.DB
			var err error
			if backend == "sqlite" {
				db, err = store.OpenSQLite(context.Background(), b.TempDir())
			} else {
				db, err = store.OpenPostgres(context.Background(), testutil.PostgresSchemaURL(b))
			}
			require.NoError(b, err)
			b.Cleanup(func() { db.Close() })
			require.NoError(b, db.Migrate(context.Background(), incident.Migrations))
			svc := largeService(b, db)
			ctx := context.Background()
			var worst time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				started := clock.Add(-time.Duration(b.N-i) * time.Hour)
				_, err := svc.Ingest(ctx, largeGroup("big", n, "firing", started))
				require.NoError(b, err)
				b.StartTimer()
				// A one-alert delivery of another group sent while the
				// large group resolves: its latency is reported.
				var wg sync.WaitGroup
				wg.Go(func() {
					t0 := time.Now()
					_, err := svc.Ingest(ctx, largeGroup(fmt.Sprintf("small-%d", i), 1, "firing", started))
					if d := time.Since(t0); d > worst {
						worst = d
					}
					if err != nil {
						b.Error(err)
					}
				})
				res, err := svc.Ingest(ctx, largeGroup("big", n, "resolved", started))
				wg.Wait()
				require.NoError(b, err)
				require.Equal(b, n, res.Alerts["resolved"])
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
			b.ReportMetric(worst.Seconds(), "max-small-delivery-s")
		})
	}
}
