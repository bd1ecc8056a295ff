package incident_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentIndexes: the incidents table keeps only the indexes that
// queries use (each one more B-tree insert for every new incident), and
// the queries on an incident's group_key do without one of their own: the
// quiet-incident sweep starts from the open incidents and reaches each
// one's group by alert_groups' primary key.
func TestIncidentIndexes(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'incidents' AND name NOT LIKE 'sqlite_autoindex%'`
		if db.Dialect == store.Postgres {
			q = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'incidents' AND indexname <> 'incidents_pkey'`
		}
		rows, err := db.QueryContext(ctx, q)
		require.NoError(t, err)
		var names []string
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names = append(names, n)
		}
		require.NoError(t, rows.Err())
		require.ElementsMatch(t, []string{"incidents_status", "incidents_service", "incidents_created", "incidents_snoozed"}, names)
		if db.Dialect != store.SQLite {
			return
		}
		plan := testutil.QueryPlan(t, db, `SELECT i.id FROM incidents i JOIN alert_groups g ON g.group_key = i.group_key AND g.incident_id = i.id
			WHERE i.status IN ('triggered', 'acknowledged', 'investigating') AND i.group_key NOT LIKE 'sred:%'
			AND g.last_delivery_at <= $1 AND i.created_at <= $1
			AND EXISTS (SELECT 1 FROM incident_alerts a WHERE a.incident_id = i.id AND a.status = 'firing')
			ORDER BY i.id LIMIT 100`, 1)
		require.Contains(t, plan, "SEARCH i USING INDEX incidents_status", "the open incidents:\n%s", plan)
		require.Contains(t, plan, "SEARCH g USING INDEX sqlite_autoindex_alert_groups_1 (group_key=?)", "each one's group:\n%s", plan)
	})
}
