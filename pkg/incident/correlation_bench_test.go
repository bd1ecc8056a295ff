package incident_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// BenchmarkCorrelationStorm measures one delivery of a new alert group
// (10 alerts) of service fleet that correlation attaches to the storm's
// open incident, after `storm` groups of fleet were already placed on it
// (SQLite). Correlation reads the open incidents of the related services,
// not the storm's groups, so the cost per delivery must not grow with the
// storm (docs/benchmarks-history.md, "Correlation by service, the
// escalation worker on the writer").
func BenchmarkCorrelationStorm(b *testing.B) {
	for _, storm := range []int{100, 2000} {
		b.Run(fmt.Sprintf("storm=%d", storm), func(b *testing.B) {
			ctx := context.Background()
			db, err := store.OpenSQLite(ctx, b.TempDir())
			require.NoError(b, err)
			b.Cleanup(func() { db.Close() })
			require.NoError(b, db.Migrate(ctx, incident.Migrations))
			svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil), nil, prometheus.NewRegistry())
			require.NoError(b, err)
			b.Cleanup(func() { svc.Close() })
			svc.SetCorrelation(&incident.Correlation{Window: 24 * time.Hour,
				DependsOn: map[string]map[string][]string{"fleet": {}, "db": {}}})
			started := time.Now().Add(-time.Minute)
			for i := range storm {
				_, err := svc.Ingest(ctx, largeGroup(fmt.Sprintf("storm-%d", i), 10, "firing", started))
				require.NoError(b, err)
			}
			var open int
			require.NoError(b, db.QueryRow(`SELECT COUNT(*) FROM incidents`).Scan(&open))
			require.Equal(b, 1, open, "the storm's groups must join one incident")
			b.ResetTimer()
			for i := range b.N {
				_, err := svc.Ingest(ctx, largeGroup(fmt.Sprintf("bench-%d", i), 10, "firing", started))
				require.NoError(b, err)
			}
		})
	}
}
