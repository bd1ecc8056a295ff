package retention_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/store"
)

// TestAlertsRowidMigration (SQLite): incident/0009_alerts_rowid rebuilds
// incident_alerts as a rowid table on a store made before it, keeping
// every row and every index, retention's incident_alerts_ends included
// (dropped with the old table); on a new store, where retention's
// migration runs after it, the same schema results.
func TestAlertsRowidMigration(t *testing.T) {
	ctx := context.Background()
	var before []store.Migration
	var later []string
	for _, m := range incident.Migrations {
		if m.ID < "incident/0009_alerts_rowid" {
			before = append(before, m)
		} else {
			later = append(later, m.ID)
		}
	}
	// What runs from 0009 on: the rebuild, then a dropped index of
	// incidents and a column and index of incident_links, which do not
	// change incident_alerts, incident_alerts_incident made again
	// with the fingerprint, under its name, a column of incidents, and
	// the links of open incidents opened by hand, indexes of the timeline
	// and of incidents.
	require.Equal(t, []string{"incident/0009_alerts_rowid", "incident/0010_drop_incidents_group", "incident/0011_link_firing",
		"incident/0012_alerts_incident_fingerprint", "incident/0013_peak_severity", "incident/0014_manual_links",
		"incident/0015_timeline_status_updates", "incident/0016_incidents_merged_into", "incident/0017_timeline_bounded_kinds"}, later)

	// schema returns incident_alerts' table text and the names of its indexes.
	schema := func(db *store.DB) (string, []string) {
		var table string
		require.NoError(t, db.QueryRowContext(ctx,
			`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'incident_alerts'`).Scan(&table))
		return table, strings(t, db,
			`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'incident_alerts' ORDER BY name`)
	}
	wantIndexes := []string{"incident_alerts_ends", "incident_alerts_incident", "sqlite_autoindex_incident_alerts_1"}

	// A store of the schema before 0009, retention's indexes made, with rows.
	old, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { old.Close() })
	require.NoError(t, old.Migrate(ctx, before, jobs.Migrations, runbook.Migrations, retention.Migrations))
	table, indexes := schema(old)
	require.Contains(t, table, "WITHOUT ROWID")
	require.Equal(t, []string{"incident_alerts_ends", "incident_alerts_incident"}, indexes)
	exec(t, old, `INSERT INTO incidents (id, title, service, severity, status, labels, detected_at, created_at, updated_at)
		VALUES ('INC-1', 't', 'api', 'critical', 'triggered', '{}', 1, 1, 1)`)
	exec(t, old, `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, ends_at,
			labels, annotations, generator_url, first_seen_at, updated_at) VALUES
		('g1', 'fa', 100, 'INC-1', 'firing', NULL, '{"a":"1"}', '{"s":"x"}', 'http://p', 101, 102),
		('g1', 'fb', 100, 'INC-1', 'resolved', 200, '{"a":"2"}', '{}', '', 103, 201),
		('g2', 'fa', 300, NULL, 'resolved', 400, '{}', '{}', '', 301, 401)`)
	const rowsQuery = `SELECT group_key || '|' || fingerprint || '|' || starts_at || '|' || COALESCE(incident_id, '-') || '|' ||
		status || '|' || COALESCE(ends_at, -1) || '|' || labels || '|' || annotations || '|' || generator_url || '|' ||
		first_seen_at || '|' || updated_at FROM incident_alerts ORDER BY group_key, fingerprint`
	rows := strings(t, old, rowsQuery)
	require.Len(t, rows, 3)

	require.NoError(t, old.Migrate(ctx, incident.Migrations, jobs.Migrations, runbook.Migrations, retention.Migrations))
	table, indexes = schema(old)
	require.NotContains(t, table, "WITHOUT ROWID")
	require.Equal(t, wantIndexes, indexes)
	require.Equal(t, rows, strings(t, old, rowsQuery), "rows kept")
	// The key is still unique, and the resolved episodes are found by end.
	_, err = old.ExecContext(ctx, `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, status, labels, annotations,
		first_seen_at, updated_at) VALUES ('g1', 'fa', 100, 'firing', '{}', '{}', 1, 1)`)
	require.ErrorContains(t, err, "UNIQUE")
	prows, err := old.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT group_key FROM incident_alerts WHERE status = 'resolved' AND ends_at < 300`)
	require.NoError(t, err)
	var plan []string
	for prows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, prows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, prows.Close())
	require.Equal(t, []string{"SEARCH incident_alerts USING INDEX incident_alerts_ends (ends_at<?)"}, plan)

	// A new store: the same schema.
	fresh, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { fresh.Close() })
	require.NoError(t, fresh.Migrate(ctx, migrations()...))
	ft, fi := schema(fresh)
	require.NotContains(t, ft, "WITHOUT ROWID")
	require.Equal(t, wantIndexes, fi)
}
