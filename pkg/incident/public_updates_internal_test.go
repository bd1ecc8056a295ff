package incident

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPublicUpdatesQueryPlan: the status page's query reads the shown
// incidents' status updates through their own index, not the incidents'
// whole timelines (alerts, notes) through incident_timeline_incident.
func TestPublicUpdatesQueryPlan(t *testing.T) {
	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Migrate(t.Context(), Migrations))
	plan := testutil.QueryPlan(t, db, publicUpdatesQuery(3), "INC-1", "INC-2", "INC-3")
	require.Contains(t, plan, "SEARCH incident_timeline USING INDEX incident_timeline_status_updates (incident_id=? AND kind=?)", plan)
}
