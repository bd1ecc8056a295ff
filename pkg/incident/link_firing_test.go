package incident_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// migrationsBefore is incident.Migrations up to, not including, id: a
// store made before that migration.
func migrationsBefore(id string) []store.Migration {
	var before []store.Migration
	for _, m := range incident.Migrations {
		if m.ID < id {
			before = append(before, m)
		}
	}
	return before
}

// linksFiring is each group key of incident id's links with whether it
// fires.
func linksFiring(t *testing.T, f *fixture, id string) map[string]bool {
	t.Helper()
	links, err := f.svc.Links(context.Background(), id)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, l := range links {
		out[l.GroupKey] = l.Firing
	}
	return out
}

// linkFiringFixture makes api depend on db for f's correlation (30m
// window) and returns firing, each group key of an incident's links with
// whether it fires, and ingest, f's Ingest that must succeed.
func linkFiringFixture(t *testing.T, f *fixture) (firing func(id string) map[string]bool, ingest func(incident.Notification) *incident.IngestResult) {
	t.Helper()
	ctx := context.Background()
	f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
		DependsOn: map[string]map[string][]string{"api": {"db": {"api", "db"}}, "db": {}}})
	firing = func(id string) map[string]bool {
		t.Helper()
		return linksFiring(t, f, id)
	}
	ingest = func(n incident.Notification) *incident.IngestResult {
		t.Helper()
		res, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		return res
	}
	return firing, ingest
}

// TestLinkFiringFollowsAlerts: a link (an alert group placed on an
// incident) says whether its group fires on the incident, on both
// backends, through everything that moves its alerts: a partial resolve
// leaves it firing, the last resolve clears it, a new firing sets it
// again, a split and a merge carry it, and the quiet-incident sweep (its
// alerts stale) clears it. Correlation finds an incident through a
// related service's links that still fire, however old.
func TestLinkFiringFollowsAlerts(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := quietFixture(t, db)
		firing, ingest := linkFiringFixture(t, f)
		resolved := func(n incident.Notification, fps ...string) incident.Notification {
			for i := range n.Alerts {
				for _, fp := range fps {
					if n.Alerts[i].Fingerprint == fp {
						n.Alerts[i].Status = "resolved"
						n.Alerts[i].EndsAt = f.clock.Now()
					}
				}
			}
			return n
		}

		id := f.open(t, "g-db", "db", "critical")
		f.clock.Advance(time.Minute)
		api := notification("g-api", "api", "critical", epoch, "api-a", "api-b")
		require.Equal(t, []string{id}, ingest(api).Incidents)
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id))

		f.clock.Advance(time.Minute)
		ingest(resolved(api, "api-a"))
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id), "api-b still fires")
		f.clock.Advance(time.Minute)
		ingest(resolved(api, "api-a", "api-b"))
		require.Equal(t, map[string]bool{"g-db": true, "g-api": false}, firing(id))
		f.clock.Advance(time.Minute)
		again := notification("g-api", "api", "critical", f.clock.Now(), "api-b")
		require.Equal(t, []string{id}, ingest(again).Incidents)
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id))

		split, err := f.svc.Split(ctx, id, "g-api", "alice")
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"g-db": true}, firing(id))
		require.Equal(t, map[string]bool{"g-api": true}, firing(split.Incident.ID))
		_, err = f.svc.Merge(ctx, id, split.Incident.ID, "alice")
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id))

		// Long after the window, the database's group still fires: a new
		// group of api joins the incident.
		f.clock.Advance(time.Hour)
		res := ingest(notification("g-api-2", "api", "critical", f.clock.Now(), "api-c"))
		require.Empty(t, res.Created)
		require.Equal(t, []string{id}, res.Incidents)

		// No delivery for auto_resolve_after: the alerts turn stale and
		// the incident resolves; no link fires any more.
		f.clock.Advance(3 * time.Hour)
		got, err := f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, []string{id}, got)
		require.Equal(t, map[string]bool{"g-db": false, "g-api": false, "g-api-2": false}, firing(id))
	})
}

// TestLinkFiringMigration: incident/0011_link_firing marks the links of a
// store made before it whose group has a firing alert on their incident,
// on both backends; the others (resolved, stale, or firing on another
// incident) stay not firing.
func TestLinkFiringMigration(t *testing.T) {
	before := migrationsBefore("incident/0011_link_firing")
	testutil.Backends(t, [][]store.Migration{before}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO incidents (id, title, service, severity, status, labels, detected_at, created_at, updated_at)
				VALUES ('INC-1', 't', 'db', 'critical', 'triggered', '{}', 1, 1, 1), ('INC-2', 't', 'api', 'critical', 'triggered', '{}', 1, 1, 1)`,
			`INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, first_seen_at, updated_at) VALUES
				('g-db', 'a', 1, 'INC-1', 'resolved', 5, '{}', '{}', 1, 5),
				('g-db', 'b', 1, 'INC-1', 'firing', NULL, '{}', '{}', 1, 1),
				('g-api', 'a', 1, 'INC-1', 'resolved', 5, '{}', '{}', 1, 5),
				('g-api', 'b', 1, 'INC-2', 'firing', NULL, '{}', '{}', 1, 1),
				('g-old', 'a', 1, 'INC-1', 'stale', 5, '{}', '{}', 1, 5)`,
			`INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at) VALUES
				('INC-1', 'g-db', 'db', '{}', 'opened', 1), ('INC-1', 'g-api', 'api', '{}', 'dependant', 2),
				('INC-1', 'g-old', 'db', '{}', 'service', 3), ('INC-2', 'g-api', 'api', '{}', 'split', 4)`,
		} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		require.NoError(t, db.Migrate(ctx, incident.Migrations))
		rows, err := db.QueryContext(ctx, `SELECT incident_id, group_key, firing FROM incident_links ORDER BY incident_id, group_key`)
		require.NoError(t, err)
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id, group string
			var firing int
			require.NoError(t, rows.Scan(&id, &group, &firing))
			got = append(got, fmt.Sprintf("%s %s %d", id, group, firing))
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"INC-1 g-api 0", "INC-1 g-db 1", "INC-1 g-old 0", "INC-2 g-api 1"}, got)
	})
}

// TestManualResolveClearsLinkFiring: a responder resolves an incident
// whose group still fires and never resolves (the quiet sweep off): its
// links no longer count as firing, on both backends.
func TestManualResolveClearsLinkFiring(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		id := f.open(t, "g-db", "db", "critical")
		firing := func() int {
			t.Helper()
			var n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_links WHERE incident_id = $1 AND firing = 1`, id).Scan(&n))
			return n
		}
		require.Equal(t, 1, firing(), "link of the open incident")
		f.clock.Advance(time.Minute)
		_, err := f.svc.Resolve(ctx, id, "alice", "fixed by hand")
		require.NoError(t, err)
		require.Equal(t, 0, firing(), "links of the incident resolved by hand")
		links, err := f.svc.Links(ctx, id)
		require.NoError(t, err)
		require.Len(t, links, 1)
		require.False(t, links[0].Firing, "link %+v", links[0])
	})
}

// TestReopenRestoresLinkFiring: an incident resolved by hand while two
// groups still fire, re-opened by a new firing of one of them, marks the
// links of both firing again, on both backends: the other group's alerts
// never stopped firing on it, and Alertmanager's repeats of them are no
// new firing. Long after the window, a new group of a service depending
// on the other group's still joins the incident through its link.
func TestReopenRestoresLinkFiring(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		firing, ingest := linkFiringFixture(t, f)

		id := f.open(t, "g-db", "db", "critical")
		f.clock.Advance(time.Minute)
		require.Equal(t, []string{id}, ingest(notification("g-api", "api", "critical", epoch, "api-a")).Incidents)
		// From here on web depends on db, and api is no one's: only the
		// database's link brings a new group of web to the incident.
		f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
			DependsOn: map[string]map[string][]string{"web": {"db": {"web", "db"}}, "db": {}}})
		f.clock.Advance(time.Minute)
		_, err := f.svc.Resolve(ctx, id, "alice", "fixed by hand")
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"g-db": false, "g-api": false}, firing(id))

		// Within the flap window a new alert of api re-opens it; the
		// database's alert still fires on it.
		f.clock.Advance(time.Minute)
		res := ingest(notification("g-api", "api", "critical", f.clock.Now(), "api-a", "api-b"))
		require.Equal(t, []string{id}, res.Incidents)
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, inc.Status.Open(), "status %s", inc.Status)
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id))
		// Alertmanager repeats the database's firing alert: no change.
		f.clock.Advance(time.Minute)
		ingest(notification("g-db", "db", "critical", epoch.Add(-5*time.Minute), "g-db-a"))
		require.Equal(t, map[string]bool{"g-db": true, "g-api": true}, firing(id))

		// Long after the window, the database still fires on the
		// incident: a new group of web joins it.
		f.clock.Advance(time.Hour)
		res = ingest(notification("g-web", "web", "critical", f.clock.Now(), "web-a"))
		require.Empty(t, res.Created)
		require.Equal(t, []string{id}, res.Incidents)
	})
}
