package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// TestDueQueryPlan: on SQLite, looking for due pending jobs with kinds left
// out (a notification sender with paused channels) reads the index
// jobs_due alone, so that a paused channel's backlog of due messages is
// rejected by kind in the index rather than by a read of each row; the
// expired leases are looked for among the running jobs only.
func TestDueQueryPlan(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	q, args := dueQuery(ClaimOptions{Queue: "notify", Now: time.Unix(1e9, 0), ExcludeKinds: []Kind{"slack", "email"}})
	all := sretest.QueryPlan(t, db, q, args...)
	require.Contains(t, all, "USING COVERING INDEX jobs_due (queue=? AND state=? AND run_at<?)", all)
	require.Contains(t, all, "USING INDEX jobs_due (queue=? AND state=?)", all)
}
