//go:build unix

package incident_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// BenchmarkIngestNewGroups is what `make bench-http` sends, in-process:
// concurrent deliveries (32 goroutines) of new 10-alert groups, services
// taking turns, two of them known to the correlation graph (their groups
// join an open incident) and two not (each group opens an incident), on a
// SQLite store on disk (group commit, durable). Besides ns/op it reports
// the process's CPU (user + system, from getrusage) per delivery, which
// depends far less than wall time on what else runs on the machine.
func BenchmarkIngestNewGroups(b *testing.B) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	require.NoError(b, db.Migrate(ctx, incident.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
	require.NoError(b, err)
	b.Cleanup(func() { svc.Close() })
	svc.SetCorrelation(&incident.Correlation{Window: 24 * time.Hour,
		DependsOn: map[string]map[string][]string{"db": {}, "api": {"db": {"api", "db"}}, "checkout": {"api": {"checkout", "api"}, "db": {"checkout", "db"}}}})
	services := []string{"api", "checkout", "payments", "search"}
	started := time.Now().Add(-time.Minute)
	var seq atomic.Int64
	delivery := func() incident.Notification {
		i := seq.Add(1)
		n := largeGroup(fmt.Sprintf("{}:{alertname=\"HighErrorRate\", group=\"%d\"}", i), 10, "firing", started)
		svc := services[i%int64(len(services))]
		n.CommonLabels["service"] = svc
		for j := range n.Alerts {
			n.Alerts[j].Labels["service"] = svc
			n.Alerts[j].Fingerprint = fmt.Sprintf("%08x%08x", i, j)
		}
		return n
	}
	for range 8 { // the open incidents of the known services, the statements prepared
		_, err := svc.Ingest(ctx, delivery())
		require.NoError(b, err)
	}
	b.SetParallelism(16) // 32 goroutines on 2 cores
	b.ReportAllocs()
	cpu0, g0 := testutil.ProcessCPU(), testutil.GoroutinesCreated()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Ingest(ctx, delivery()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(testutil.ProcessCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(testutil.GoroutinesCreated()-g0)/float64(b.N), "goroutines/op")
}
