package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestRelatedLinksPlanProbesIncidents (PostgreSQL): correlation's query
// reads the incidents of the links it finds by their primary key, one
// probe per link row, however many open incidents there are and whatever
// the statistics say. A storm of new incidents (a webhook benchmark opens
// one per second delivery) left the statistics saying a few open
// incidents while thousands were: the planner hashed every open incident
// for every joining delivery (a bitmap scan of incidents_status, 2.4 of
// the query's 3.5 ms with 413 open incidents; the query was PostgreSQL's
// largest share of CPU under webhook load, and grew with the storm).
// Prepared, it keeps its generic plan rather than being planned again at
// every execution (sred's sessions plan generically: store.OpenPostgres).
func TestRelatedLinksPlanProbesIncidents(t *testing.T) {
	ctx := context.Background()
	db := openMigratedPostgres(t)
	for _, q := range []string{
		// As in a storm: statistics from before the incidents came.
		`ALTER TABLE incidents SET (autovacuum_enabled = false)`,
		`ALTER TABLE incident_link_services SET (autovacuum_enabled = false)`,
		`ANALYZE incidents`,
		`ANALYZE incident_link_services`,
		`INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, updated_at, root_service)
			SELECT 'INC-P-' || g, 't', 'payments', 'critical', 'triggered', '{}', 'gp' || g, 1000, 1000, 1000, 'payments'
			FROM generate_series(1, 3000) g`,
		`INSERT INTO incident_link_services (incident_id, service, last_at) SELECT id, service, 1000 FROM incidents`,
		`INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, updated_at, root_service)
			VALUES ('INC-A', 't', 'api', 'critical', 'triggered', '{}', 'ga', 1000, 1000, 1000, 'api')`,
		`INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at) VALUES
			('INC-A', 'ga', 'api', '{}', 'opened', 1000), ('INC-A', 'gc', 'checkout', '{}', 'dependency', 1000)`,
		`INSERT INTO incident_link_services (incident_id, service, last_at) VALUES ('INC-A', 'api', 1000), ('INC-A', 'checkout', 1000)`,
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}

	incidentScans, raw := explainScans(t, db, `EXPLAIN (FORMAT JSON) `+relatedLinksAnyQuery, "incidents",
		[]string{"api", "checkout", "ingest", "postgres"}, 500)
	require.NotEmpty(t, incidentScans, raw)
	for _, n := range incidentScans {
		require.Contains(t, []string{"Index Scan", "Index Only Scan"}, n.Type, raw)
		require.Equal(t, "incidents_pkey", n.Index, raw)
	}
	// The links are read through their indexes: the window's by incident
	// and service, the firing ones (a long outage) by service.
	linkScans, raw := explainScans(t, db, `EXPLAIN (FORMAT JSON) `+relatedLinksAnyQuery, "incident_links",
		[]string{"api", "checkout", "ingest", "postgres"}, 500)
	require.NotEmpty(t, linkScans, raw)
	var firingProbes int
	for _, n := range linkScans {
		require.Contains(t, []string{"Index Scan", "Index Only Scan"}, n.Type, raw)
		require.Contains(t, []string{"incident_links_service", "incident_links_firing"}, n.Index, raw)
		if n.Index == "incident_links_firing" {
			firingProbes++
		}
	}
	require.Positive(t, firingProbes, raw)

	// Prepared, as sred runs it, on sred's sessions (generic plans,
	// store.OpenPostgres), PostgreSQL plans it once and keeps that plan
	// instead of planning it again at each execution.
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `PREPARE related (text[], bigint) AS `+relatedLinksAnyQuery)
	require.NoError(t, err)
	for range 10 {
		_, err = conn.ExecContext(ctx, `EXECUTE related ('{api,checkout,ingest,postgres}', 500)`)
		require.NoError(t, err)
	}
	var generic, custom int
	require.NoError(t, conn.QueryRowContext(ctx,
		`SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'related'`).Scan(&generic, &custom))
	require.Equal(t, 10, generic, "custom plans: %d", custom)
	require.Zero(t, custom)

	// And the query still answers: the api incident, with both services.
	s, err := NewService(db, DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	pairs, err := s.relatedLinks(ctx, nil, []string{"api", "checkout", "ingest", "postgres"}, 500)
	require.NoError(t, err)
	require.Len(t, pairs, 2)
	for _, p := range pairs {
		require.Equal(t, "INC-A", p.incidentID)
		require.Equal(t, StatusTriggered, p.inc.Status)
	}
}

// planNode is a node of PostgreSQL's EXPLAIN (FORMAT JSON); Loops is set
// with ANALYZE.
type planNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Cond     string     `json:"Index Cond"`
	Loops    int        `json:"Actual Loops"`
	Plans    []planNode `json:"Plans"`
}

// openMigratedPostgres opens a fresh PostgreSQL schema with the incident
// migrations applied, closed at the end of the test.
func openMigratedPostgres(t *testing.T) *store.DB {
	t.Helper()
	return testutil.OpenPostgres(t, Migrations)
}

// explainScans runs explain (an EXPLAIN (..., FORMAT JSON) statement) on db
// (a *store.DB, or a *sql.Conn of it with settings of its own) and returns
// the plan's nodes that read relation, in plan order, and the raw plan for
// messages.
func explainScans(t *testing.T, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, explain, relation string, args ...any) ([]planNode, string) {
	t.Helper()
	var raw string
	require.NoError(t, db.QueryRowContext(context.Background(), explain, args...).Scan(&raw))
	var plan []struct{ Plan planNode }
	require.NoError(t, json.Unmarshal([]byte(raw), &plan))
	var scans []planNode
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.Relation == relation {
			scans = append(scans, n)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	return scans, raw
}

// TestResolveCopiesPlan: a resolve finds the copies other groups hold of
// its episodes on their incident by an index probe on the incident and
// the fingerprint, not by reading the incident's alerts (thousands in a
// storm): on SQLite the statement run for each episode, on PostgreSQL the
// statement resolving a delivery's episodes, whose every read of
// incident_alerts is an index scan.
func TestResolveCopiesPlan(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, updated_at)
				VALUES ('INC-S', 't', 'api', 'critical', 'triggered', '{}', 'g0', 1000, 1000, 1000)`,
			// A storm: 3,000 groups of one alert each on one incident.
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
			INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, labels, annotations, first_seen_at, updated_at)
				SELECT 'g' || i, 'fp' || i, 1000, 'INC-S', 'firing', '{}', '{}', 1000, 1000 FROM n`,
			`ANALYZE incident_alerts`,
		} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		if db.Dialect == store.SQLite {
			plan := testutil.QueryPlan(t, db, resolveCopiesSQLite, 2000, 2000, "INC-S", "fp7", 1000, "g7")
			require.Contains(t, plan, "USING INDEX incident_alerts_incident (incident_id=? AND fingerprint=?)", plan)
			return
		}
		scans, raw := explainScans(t, db, `EXPLAIN (FORMAT JSON) `+resolveCopiesSQL, "incident_alerts",
			"g7", 2000, []string{"fp7"}, []int64{1000}, []int64{2000})
		var byIncident int
		for _, n := range scans {
			require.Contains(t, []string{"ModifyTable", "Index Scan"}, n.Type, "incident_alerts read by an index only: %s", raw)
			if n.Type == "Index Scan" {
				require.Contains(t, []string{"incident_alerts_pkey", "incident_alerts_incident"}, n.Index, raw)
				if n.Index == "incident_alerts_incident" {
					require.Contains(t, n.Cond, "fingerprint", "probed by the fingerprint too: %s", raw)
					byIncident++
				}
			}
		}
		require.NotZero(t, byIncident, "the copies are probed by incident and fingerprint: %s", raw)
	})
}
