package incident

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentIndexes: the incidents table keeps only the indexes that
// queries use (each one more B-tree insert for every new incident), and
// the queries on an incident's group_key do without one of their own: the
// quiet-incident sweep starts from the open incidents and reaches each
// one's group by alert_groups' primary key. incidents_merged_into holds
// merged incidents alone (TestMergedIntoIndex).
func TestIncidentIndexes(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
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
		require.ElementsMatch(t, []string{"incidents_status", "incidents_service", "incidents_created", "incidents_snoozed", "incidents_merged_into"}, names)
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

// indexPlan checks that query (with args) reads table through one of
// indexes only: on SQLite its plan searches the table with one of them and
// never scans it; on PostgreSQL, with sequential scans off (a table this
// small would be read whole otherwise), every read of the table is an
// index scan of one of them.
func indexPlan(t *testing.T, db *store.DB, table string, indexes []string, query string, args ...any) {
	t.Helper()
	if db.Dialect == store.SQLite {
		plan := testutil.QueryPlan(t, db, query, args...)
		var searched bool
		for _, line := range strings.Split(plan, "\n") {
			require.NotRegexp(t, `^SCAN `+table+`\b`, line, "%s read whole:\n%s", table, plan)
			for _, ix := range indexes {
				if strings.HasPrefix(line, "SEARCH "+table+" USING ") && strings.Contains(line, " INDEX "+ix+" (") {
					searched = true
				}
			}
		}
		require.True(t, searched, "%s read through %v:\n%s", table, indexes, plan)
		return
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)
	defer conn.ExecContext(ctx, `RESET enable_seqscan`) //nolint:errcheck
	scans, raw := explainScans(t, conn, `EXPLAIN (FORMAT JSON) `+query, table, args...)
	require.NotEmpty(t, scans, raw)
	for _, n := range scans {
		require.Contains(t, []string{"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}, n.Type, raw)
		if n.Type == "Bitmap Heap Scan" {
			require.Len(t, n.Plans, 1, raw)
			n = n.Plans[0]
		}
		require.Contains(t, indexes, n.Index, raw)
	}
}

// TestMergedIntoIndex: a merge counts the incidents already merged into
// its target (boundMerged), and an import those merged into each target
// of its lines (importMergedQuery), through incidents_merged_into, not by
// reading every incident; and the counts are right.
func TestMergedIntoIndex(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			// 3,000 incidents, 40 of them merged into INC-T, 2 into INC-U.
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
			INSERT INTO incidents (id, title, service, severity, status, labels, detected_at, created_at, updated_at, merged_into)
				SELECT 'INC-' || i, 't', 'api', 'HIGH', 'resolved', '{}', i, i, i,
					CASE WHEN i <= 40 THEN 'INC-T' WHEN i <= 42 THEN 'INC-U' ELSE '' END FROM n`,
			`ANALYZE incidents`,
		} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		q, args := boundMerged.countQuery("INC-T")
		indexPlan(t, db, "incidents", []string{"incidents_merged_into"}, q, args...)
		var n int
		require.NoError(t, db.QueryRowContext(ctx, q, args...).Scan(&n))
		require.Equal(t, 40, n)

		q = importMergedQuery(3)
		args = []any{"INC-T", "INC-U", "INC-V"}
		indexPlan(t, db, "incidents", []string{"incidents_merged_into"}, q, args...)
		rows, err := db.QueryContext(ctx, q, args...)
		require.NoError(t, err)
		got := map[string]int{}
		for rows.Next() {
			var id string
			var n int
			require.NoError(t, rows.Scan(&id, &n))
			got[id] = n
		}
		require.NoError(t, rows.Err())
		require.Equal(t, map[string]int{"INC-T": 40, "INC-U": 2}, got)
	})
}

// TestBoundedCountIndex: the counts of an incident's notes, status updates
// and changes (room) read its entries of those kinds through
// incident_timeline_bounded, not its whole timeline: with thousands of
// sred's own entries (alerts) on the incident, each note added would read
// them all. Every kind a bound counts is in the index (else it would count
// none of them), and the counts are right.
func TestBoundedCountIndex(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO incidents (id, title, service, severity, status, labels, detected_at, created_at, updated_at)
				VALUES ('INC-1', 't', 'api', 'HIGH', 'triggered', '{}', 1, 1, 1), ('INC-2', 't', 'api', 'HIGH', 'triggered', '{}', 1, 1, 1)`,
			// A long storm: 3,000 alert entries, and a few of each bounded kind.
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
			INSERT INTO incident_timeline (incident_id, at, kind, actor, message) SELECT 'INC-1', i, 'alert', 'alertmanager', 'firing' FROM n`,
			`INSERT INTO incident_timeline (incident_id, at, kind, actor, message) VALUES
				('INC-1', 1, 'note', 'a', 'n'), ('INC-1', 2, 'note', 'a', 'n'), ('INC-1', 3, 'note', 'a', 'n'),
				('INC-1', 4, 'status_update', 'a', 's'), ('INC-1', 5, 'status_update', 'a', 's'),
				('INC-1', 6, 'impact', 'a', 'i'), ('INC-1', 7, 'assignment', 'a', 'a'), ('INC-1', 8, 'snooze', 'a', 's'),
				('INC-1', 9, 'action_item', 'a', 'x'), ('INC-1', 10, 'action_item', 'a', 'x'),
				('INC-2', 1, 'note', 'a', 'n')`,
			`ANALYZE incident_timeline`,
		} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		for _, tc := range []struct {
			b    bounded
			want int
		}{{boundNotes, 3}, {boundStatusUpdates, 2}, {boundEdits, 5}} {
			for _, k := range tc.b.kinds {
				require.Contains(t, boundedKindsIndexed, "'"+k+"'", "%s: kind %s not in incident_timeline_bounded", tc.b.name, k)
			}
			q, args := tc.b.countQuery("INC-1")
			indexes := []string{"incident_timeline_bounded"}
			if tc.b.name == boundStatusUpdates.name {
				indexes = append(indexes, "incident_timeline_status_updates")
			}
			indexPlan(t, db, "incident_timeline", indexes, q, args...)
			var n int
			require.NoError(t, db.QueryRowContext(ctx, q, args...).Scan(&n))
			require.Equal(t, tc.want, n, fmt.Sprintf("%s of INC-1", tc.b.name))
		}
	})
}
