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

// TestManualIncidentJoinedByAlerts: an incident opened by hand for
// checkout is where a later alert group of checkout goes, on both
// backends: no second incident, a timeline entry saying why, the severity
// raised, even past the window (the incident is open: a person declared
// checkout affected). A group of an unrelated service opens its own; the
// joined group's resolve leaves the incident open (a person resolves it);
// once resolved, a new group of checkout opens a new incident, and with
// correlation off so does one while a manual incident is open.
func TestManualIncidentJoinedByAlerts(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
			DependsOn: map[string]map[string][]string{"checkout": {}, "cache": {}}})
		ingest := func(n incident.Notification) *incident.IngestResult {
			t.Helper()
			res, err := f.svc.Ingest(ctx, n)
			require.NoError(t, err)
			return res
		}
		manual, err := f.svc.Create(ctx, incident.ManualIncident{Title: "Checkout slow", Service: "checkout",
			Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)

		f.clock.Advance(40 * time.Minute)
		disk := notification("g-disk", "checkout", "critical", f.clock.Now(), "disk-a")
		res := ingest(disk)
		require.Empty(t, res.Created, "the checkout alert opened an incident of its own")
		require.Equal(t, []string{manual.ID}, res.Incidents)
		inc := f.get(t, manual.ID)
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, "Checkout slow", inc.Title)
		tl, err := f.svc.Timeline(ctx, manual.ID)
		require.NoError(t, err)
		var joined []string
		for _, e := range tl {
			if e.Kind == "correlation" {
				joined = append(joined, e.Message)
			}
		}
		require.Equal(t, []string{"attached because checkout already has " + manual.ID}, joined)

		f.clock.Advance(time.Minute)
		other := ingest(notification("g-cache", "cache", "critical", f.clock.Now(), "cache-a"))
		require.Len(t, other.Created, 1, "an unrelated service opens its own")

		f.clock.Advance(time.Minute)
		disk.Alerts[0].Status, disk.Alerts[0].EndsAt = "resolved", f.clock.Now()
		ingest(disk)
		inc = f.get(t, manual.ID)
		require.True(t, inc.Status.Open(), "the joined group's resolve resolved the incident opened by hand: %s", inc.Status)

		f.clock.Advance(time.Minute)
		_, err = f.svc.Resolve(ctx, manual.ID, "alice", "fixed")
		require.NoError(t, err)
		f.clock.Advance(time.Minute)
		after := ingest(notification("g-latency", "checkout", "high", f.clock.Now(), "lat-a"))
		require.Len(t, after.Created, 1, "a checkout alert after the incident opened by hand was resolved")

		second, err := f.svc.Create(ctx, incident.ManualIncident{Title: "Checkout errors", Service: "cache",
			Severity: incident.SeverityLow, Actor: "alice"})
		require.NoError(t, err)
		f.svc.SetCorrelation(nil)
		f.clock.Advance(time.Minute)
		off := ingest(notification("g-cache-2", "cache", "low", f.clock.Now(), "cache-b"))
		require.Len(t, off.Created, 1, "correlation off")
		require.NotEqual(t, second.ID, off.Created[0])
	})
}

// TestManualIncidentSeverityKept: the alerts joining an incident opened by
// hand raise its severity, and when the highest of them resolves it falls
// back no lower than the severity the person gave it, on both backends.
func TestManualIncidentSeverityKept(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		manual := f.manualCheckout(t)

		f.clock.Advance(time.Minute)
		n := notification("g-disk", "checkout", "critical", f.clock.Now(), "disk-a", "disk-b")
		delete(n.CommonLabels, "severity")
		n.Alerts[1].Labels["severity"] = "low"
		res, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.Equal(t, []string{manual.ID}, res.Incidents)
		require.Equal(t, incident.SeverityCritical, f.get(t, manual.ID).Severity)

		f.clock.Advance(time.Minute)
		n.Alerts[0].Status, n.Alerts[0].EndsAt = "resolved", f.clock.Now()
		_, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		inc := f.get(t, manual.ID)
		require.Equal(t, incident.SeverityHigh, inc.Severity, "the low alert still fires; the person said high")
		require.True(t, inc.Status.Open())
	})
}

// TestManualLinksMigration: incident/0014_manual_links gives the open
// incidents opened by hand of a store made before it a firing link of
// their service (one with none, one whose link 0004 wrote not firing), on
// both backends; a resolved one and an alert-driven one are left as they
// are, and a checkout alert then joins the open one.
func TestManualLinksMigration(t *testing.T) {
	before := migrationsBefore("incident/0014_manual_links")
	testutil.Backends(t, [][]store.Migration{before}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		created := epoch.Add(-time.Hour).UnixMilli()
		for _, q := range []string{
			`INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, updated_at) VALUES
				('INC-1', 't', 'checkout', 'HIGH', 'acknowledged', '{"service":"checkout"}', 'manual:INC-1', $1, $1, $1),
				('INC-2', 't', 'search', 'HIGH', 'triggered', '{}', 'manual:INC-2', $1, $1, $1),
				('INC-3', 't', 'cart', 'HIGH', 'resolved', '{}', 'manual:INC-3', $1, $1, $1),
				('INC-4', 't', 'db', 'HIGH', 'triggered', '{}', 'g-db', $1, $1, $1)`,
			`INSERT INTO incident_links (incident_id, group_key, service, labels, reason, attached_at) VALUES
				('INC-2', 'manual:INC-2', 'search', '{}', 'opened', $1), ('INC-4', 'g-db', 'db', '{}', 'opened', $1)`,
		} {
			_, err := db.ExecContext(ctx, q, created)
			require.NoError(t, err, q)
		}
		require.NoError(t, db.Migrate(ctx, migrations...))
		rows, err := db.QueryContext(ctx, `SELECT l.incident_id, l.group_key, l.service, l.firing, s.last_at
			FROM incident_links l LEFT JOIN incident_link_services s ON s.incident_id = l.incident_id AND s.service = l.service
			ORDER BY l.incident_id`)
		require.NoError(t, err)
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id, group, svc string
			var firing int
			var last *int64
			require.NoError(t, rows.Scan(&id, &group, &svc, &firing, &last))
			got = append(got, fmt.Sprintf("%s %s %s %d %v", id, group, svc, firing, last != nil && *last == created))
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"INC-1 manual:INC-1 checkout 1 true", "INC-2 manual:INC-2 search 1 true", "INC-4 g-db db 0 false"}, got)

		f := newFixture(t, db)
		f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
			DependsOn: map[string]map[string][]string{"checkout": {}}})
		res, err := f.svc.Ingest(ctx, notification("g-disk", "checkout", "critical", epoch, "disk-a"))
		require.NoError(t, err)
		require.Empty(t, res.Created)
		require.Equal(t, []string{"INC-1"}, res.Incidents)
	})
}

// TestManualIncidentReopenedFiring: an incident opened by hand, resolved
// by a person and re-opened by the alert group that joined it firing
// again (within the flap window), is open: its own link fires again, on
// both backends, so that once that group resolved, a new group of its
// service, past the window, still joins it.
func TestManualIncidentReopenedFiring(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		manual := f.manualCheckout(t)
		ingest := func(n incident.Notification) *incident.IngestResult {
			t.Helper()
			res, err := f.svc.Ingest(ctx, n)
			require.NoError(t, err)
			return res
		}
		f.clock.Advance(time.Minute)
		disk := notification("g-disk", "checkout", "critical", f.clock.Now(), "disk-a")
		require.Equal(t, []string{manual.ID}, ingest(disk).Incidents)
		f.clock.Advance(time.Minute)
		_, err := f.svc.Resolve(ctx, manual.ID, "alice", "fixed")
		require.NoError(t, err)

		f.clock.Advance(time.Minute)
		again := notification("g-disk", "checkout", "critical", disk.Alerts[0].StartsAt, "disk-a", "disk-b")
		require.Equal(t, []string{manual.ID}, ingest(again).Incidents)
		require.True(t, f.get(t, manual.ID).Status.Open())
		links, err := f.svc.Links(ctx, manual.ID)
		require.NoError(t, err)
		firing := map[string]bool{}
		for _, l := range links {
			firing[l.GroupKey] = l.Firing
		}
		require.Equal(t, map[string]bool{"manual:" + manual.ID: true, "g-disk": true}, firing)

		f.clock.Advance(time.Minute)
		for i := range again.Alerts {
			again.Alerts[i].Status, again.Alerts[i].EndsAt = "resolved", f.clock.Now()
		}
		ingest(again)
		links, err = f.svc.Links(ctx, manual.ID)
		require.NoError(t, err)
		for _, l := range links {
			firing[l.GroupKey] = l.Firing
		}
		require.Equal(t, map[string]bool{"manual:" + manual.ID: true, "g-disk": false}, firing)
		require.True(t, f.get(t, manual.ID).Status.Open(), "a person resolves it")
		f.clock.Advance(time.Hour)
		res := ingest(notification("g-latency", "checkout", "high", f.clock.Now(), "lat-a"))
		require.Empty(t, res.Created)
		require.Equal(t, []string{manual.ID}, res.Incidents)
	})
}

// manualCheckout sets a correlation of checkout alone (a 30-minute
// window) and opens an incident by hand for it, HIGH.
func (f *fixture) manualCheckout(t *testing.T) *incident.Incident {
	t.Helper()
	f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
		DependsOn: map[string]map[string][]string{"checkout": {}}})
	manual, err := f.svc.Create(context.Background(), incident.ManualIncident{Title: "Checkout slow", Service: "checkout",
		Severity: incident.SeverityHigh, Actor: "alice"})
	require.NoError(t, err)
	return manual
}

// TestManualIncidentMergedIntoAlerts: an incident opened by hand for
// billing (high) merged into one opened by alerts of search (critical): its link
// moves there and keeps firing, so a later billing group, past the window,
// joins the target; the alerts never lower the target below the severity
// the person gave; the target, opened by alerts, still resolves when its
// alerts do, its links (the moved one too) stop firing, and re-opened by
// its group firing again, the moved link fires again; on both backends.
func TestManualIncidentMergedIntoAlerts(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute,
			DependsOn: map[string]map[string][]string{"search": {}, "billing": {}}})
		ingest := func(n incident.Notification) *incident.IngestResult {
			t.Helper()
			res, err := f.svc.Ingest(ctx, n)
			require.NoError(t, err)
			return res
		}
		search := notification("g-search", "search", "critical", f.clock.Now(), "search-a", "search-b")
		delete(search.CommonLabels, "severity")
		search.Alerts[1].Labels["severity"] = "low"
		res := ingest(search)
		require.Len(t, res.Created, 1)
		target := res.Created[0]
		manual, err := f.svc.Create(ctx, incident.ManualIncident{Title: "Billing down", Service: "billing",
			Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)

		f.clock.Advance(time.Minute)
		merged, err := f.svc.Merge(ctx, target, manual.ID, "alice")
		require.NoError(t, err)
		require.Equal(t, incident.SeverityCritical, merged.Incident.Severity)
		require.Equal(t, map[string]bool{"g-search": true, "manual:" + manual.ID: true}, linksFiring(t, f, target))

		f.clock.Advance(40 * time.Minute)
		billing := notification("g-billing", "billing", "low", f.clock.Now(), "billing-a")
		res = ingest(billing)
		require.Empty(t, res.Created, "a billing group past the window opened an incident of its own")
		require.Equal(t, []string{target}, res.Incidents)

		f.clock.Advance(time.Minute)
		search.Alerts[0].Status, search.Alerts[0].EndsAt = "resolved", f.clock.Now()
		ingest(search)
		inc := f.get(t, target)
		require.Equal(t, incident.SeverityHigh, inc.Severity, "low alerts fire; the person said high")
		require.True(t, inc.Status.Open())

		f.clock.Advance(time.Minute)
		search.Alerts[1].Status, search.Alerts[1].EndsAt = "resolved", f.clock.Now()
		ingest(search)
		billing.Alerts[0].Status, billing.Alerts[0].EndsAt = "resolved", f.clock.Now()
		ingest(billing)
		inc = f.get(t, target)
		require.Equal(t, incident.StatusResolved, inc.Status, "the incident opened by alerts stays open once they all resolved")
		require.Equal(t, map[string]bool{"g-search": false, "g-billing": false, "manual:" + manual.ID: false}, linksFiring(t, f, target))

		f.clock.Advance(time.Minute)
		again := notification("g-search", "search", "high", f.clock.Now(), "search-c")
		require.Equal(t, []string{target}, ingest(again).Incidents)
		inc = f.get(t, target)
		require.True(t, inc.Status.Open(), "re-opened: %s", inc.Status)
		require.Equal(t, map[string]bool{"g-search": true, "g-billing": false, "manual:" + manual.ID: true}, linksFiring(t, f, target))
	})
}
