package incident_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestCreationsHoldingEveryConnection opens, on PostgreSQL, as many
// incidents at once as the pool has connections: every delivery holds a
// transaction (and so a connection) of the pool when it allocates its
// incident ID. The allocation commits on its own; taken from the same
// pool it would wait for a connection that only a transaction waiting for
// it could free, and no delivery would ever finish (with more concurrent
// deliveries than connections, ingestion stopped). It goes through the
// store's side pool instead.
func TestCreationsHoldingEveryConnection(t *testing.T) {
	const n = 3
	db, err := store.OpenPostgres(context.Background(), testutil.PostgresSchemaURL(t), store.PostgresOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(context.Background(), incident.Migrations))
	db.SetMaxOpenConns(n)
	svc := largeService(t, db)

	// Every delivery waits, inside its transaction, until all n are inside
	// theirs: the pool is then empty.
	var mu sync.Mutex
	inside := 0
	all := make(chan struct{})
	incident.SetWriteHook(svc, func(ctx context.Context, _ int64) {
		mu.Lock()
		inside++
		if inside == n {
			close(all)
		}
		mu.Unlock()
		<-all
	})
	// A deadlock ends here, as an error, rather than at the test's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	created := make([][]string, n)
	for i := range n {
		wg.Go(func() {
			nt := largeGroup("g"+string(rune('a'+i)), 1, "firing", epoch.Add(-time.Minute))
			nt.CommonLabels = map[string]string{"alertname": "NodeDown", "service": "svc-" + string(rune('a'+i)), "severity": "critical"}
			for j := range nt.Alerts {
				nt.Alerts[j].Labels["service"] = nt.CommonLabels["service"]
			}
			res, err := svc.Ingest(ctx, nt)
			errs[i] = err
			if err == nil {
				created[i] = res.Created
			}
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i], "delivery %d", i)
		require.Len(t, created[i], 1)
		ids[created[i][0]] = true
	}
	require.Len(t, ids, n, "distinct incident IDs")
}
