package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
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
	rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	all := strings.Join(plan, "\n")
	require.Contains(t, all, "USING COVERING INDEX jobs_due (queue=? AND state=? AND run_at<?)", all)
	require.Contains(t, all, "USING INDEX jobs_due (queue=? AND state=?)", all)
}
