package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestTransactionNeedsOneConnection: with every other connection of the
// pool taken (the first service stopped) (on SQLite, by writers waiting on busy_timeout for the
// transaction's lock), a fresh service, whose statement cache is empty, still
// completes a transition: nothing inside its transaction waits for a second
// connection.
func TestTransactionNeedsOneConnection(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		id := f.open(t, "g1", "checkout", "critical")
		// On SQLite its writer keeps a connection of its own: stopped, it
		// gives it back.
		require.NoError(t, f.svc.Close())

		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock.NewManual(epoch.Add(time.Minute))
		t.Cleanup(func() { svc.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		max := db.Stats().MaxOpenConnections
		require.Positive(t, max)
		for i := 0; i < max-1; i++ {
			conn, err := db.Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
		}
		inc, err := svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		require.Equal(t, incident.StatusAcknowledged, inc.Status)
		inc, err = svc.Resolve(ctx, id, "alice", "fixed")
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
	})
}
