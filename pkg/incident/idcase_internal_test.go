package incident

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIDCaseLookupUsesThePrimaryKey: an incident ID typed in another case
// is looked up by the primary key, not by a scan of every incident (a
// lower(id) comparison read the whole table for each such request, which
// anyone allowed to read an incident could repeat). SQLite's plan is read
// (PostgreSQL plans a small table with a sequential scan whatever its
// indexes; the query is the same text on both).
func TestIDCaseLookupUsesThePrimaryKey(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(ctx, Migrations))
	plan := testutil.QueryPlan(t, db, idCaseSQL, "INC-2026-0001", "inc-2026-0001")
	require.Contains(t, plan, "SEARCH incidents USING", "the ID in two cases, from the primary key:\n%s", plan)
	require.NotContains(t, plan, "SCAN incidents", "no scan of the incidents:\n%s", plan)
}
