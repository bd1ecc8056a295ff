package change_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// delivery is a one-alert Alertmanager delivery of a new group of service.
func delivery(group, service string, started time.Time) incident.Notification {
	labels := map[string]string{"alertname": "Errors", "service": service, "severity": "critical"}
	return incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: group,
		GroupLabels: map[string]string{"alertname": "Errors", "service": service}, CommonLabels: labels,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: group + "-fp", StartsAt: started, Labels: labels}},
	}
}

// TestLinkOnDelivery: an incident opened by a webhook delivery is linked
// to the change of its service still in progress, on both backends (on
// PostgreSQL through the probe in the statement writing the incident),
// with the likely cause after the incident's own timeline entries; an
// incident of a service with no such change (another service's change, a
// change finished before the window) links nothing.
func TestLinkOnDelivery(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		c, err := e.changes.Record(ctx, change.Change{Service: "checkout", Version: "v2", Outcome: change.InProgress, Actor: "ci"})
		require.NoError(t, err)
		old, err := e.changes.Record(ctx, change.Change{Service: "search", Version: "v7", Actor: "ci",
			StartedAt: t0.Add(-5 * time.Hour), FinishedAt: tp(t0.Add(-4 * time.Hour)), Outcome: change.Succeeded})
		require.NoError(t, err)
		e.clk.Advance(10 * time.Minute)

		res, err := e.incidents.Ingest(ctx, delivery("g-checkout", "checkout", t0.Add(5*time.Minute)))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		linked, err := e.changes.LinkedTo(ctx, res.Created[0])
		require.NoError(t, err)
		require.Len(t, linked, 1)
		require.Equal(t, c.ID, linked[0].ID)
		require.True(t, linked[0].Failed)
		tl, err := e.incidents.Timeline(ctx, res.Created[0])
		require.NoError(t, err)
		var kinds []string
		for _, en := range tl {
			kinds = append(kinds, en.Kind)
		}
		require.Equal(t, []string{"status", "alert_fired", change.TimelineKind}, kinds)

		for _, svc := range []string{"search", "payments"} {
			res, err := e.incidents.Ingest(ctx, delivery("g-"+svc, svc, t0.Add(5*time.Minute)))
			require.NoError(t, err)
			require.Len(t, res.Created, 1)
			linked, err := e.changes.LinkedTo(ctx, res.Created[0])
			require.NoError(t, err)
			require.Empty(t, linked, svc)
		}
		got, err := e.changes.Get(ctx, old.ID)
		require.NoError(t, err)
		require.False(t, got.Failed, "a change finished before the window is no likely cause")
	})
}

// TestLinkProbeRoundTrips (PostgreSQL), counted on the wire: a new
// incident of a service without a recent change costs no statement for
// the change hook (its probe runs in the statement writing the incident;
// the lookup was a statement of its own) and one round trip (the
// statement's answer is read before COMMIT, which it goes with otherwise:
// store.AtCommit); with a change in progress, the link's reads and writes
// follow that statement.
func TestLinkProbeRoundTrips(t *testing.T) {
	ctx := context.Background()
	db, proxy := testutil.OpenPostgresThroughProxy(t, migrations()...)
	clk := clock.NewManual(t0)
	changes := change.New(change.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clk})
	changes.SetConfig(change.DefaultConfig)
	var hooks []incident.Hook
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return hooks }, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clk
	db.SetMaxOpenConns(1) // one connection: its prepared statements are the deliveries'

	n := 0
	// fewest returns the fewest round trips and statements of five
	// creations (a statement's first runs prepare it).
	fewest := func(service string) (trips, statements int64) {
		trips, statements = -1, -1
		for range 5 {
			n++
			before, beforeStmts := proxy.Count(), proxy.Statements()
			res, err := svc.Ingest(ctx, delivery(fmt.Sprintf("g%d", n), service, t0))
			require.NoError(t, err)
			require.Len(t, res.Created, 1)
			if c := proxy.Count() - before; trips < 0 || c < trips {
				trips = c
			}
			if c := proxy.Statements() - beforeStmts; statements < 0 || c < statements {
				statements = c
			}
		}
		return trips, statements
	}
	without, withoutStmts := fewest("checkout")
	hooks = append(hooks, changes.Hook(svc))
	trips, stmts := fewest("checkout")
	require.Equal(t, withoutStmts, stmts, "no change of the service: the hook costs no statement")
	require.Equal(t, without+1, trips, "no change of the service: the probe's answer is read before COMMIT")

	_, err = changes.Record(ctx, change.Change{Service: "checkout", Outcome: change.InProgress, Actor: "ci"})
	require.NoError(t, err)
	trips, _ = fewest("checkout")
	require.Greater(t, trips, without+1, "a likely cause is read and linked after the statement")
	var links int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM change_incidents`).Scan(&links))
	require.Equal(t, 5, links)
	var failed bool
	require.NoError(t, db.QueryRowContext(ctx, `SELECT failed <> 0 FROM changes`).Scan(&failed))
	require.True(t, failed)
}

// TestRestoreTimeFromFirstAlert: the time to restore of a change runs
// from the failure's start, the incident's first alert, to the incident's
// resolution, as DORA defines it; it ran from the incident's creation,
// leaving out the alert's pending and grouping time.
func TestRestoreTimeFromFirstAlert(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		c, err := e.changes.Record(ctx, change.Change{Service: "checkout", Version: "v2", Actor: "ci"})
		require.NoError(t, err)
		// The alert started 5 minutes after the change; Alertmanager
		// delivered it 10 minutes later.
		e.clk.Advance(15 * time.Minute)
		res, err := e.incidents.Ingest(ctx, delivery("g-checkout", "checkout", t0.Add(5*time.Minute)))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		e.clk.Advance(30 * time.Minute)
		_, err = e.incidents.Resolve(ctx, res.Created[0], "alice", "rolled back")
		require.NoError(t, err)

		got, err := e.changes.Get(ctx, c.ID)
		require.NoError(t, err)
		require.Len(t, got.Incidents, 1)
		require.Equal(t, t0.Add(5*time.Minute), got.Incidents[0].OpenedAt, "the failure started with the first alert")
		ms, err := e.changes.Metrics(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 1)
		require.Equal(t, uint64(1), ms[0].RestoreTime.Count)
		require.InDelta(t, (40 * time.Minute).Seconds(), ms[0].RestoreTime.Sum, 1e-9)
	})
}

// TestRestoreTimeKeptWhenReopened: the time to restore is a histogram,
// whose count, sum and buckets Prometheus reads as counters; an incident
// re-opened after its resolution keeps its first resolution, as
// sre_incident_time_to_resolve_seconds does. Before, the re-opening took
// it out of the histogram (its count went down: a counter reset to
// increase()) and the next resolution put it back.
func TestRestoreTimeKeptWhenReopened(t *testing.T) {
	testutil.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, change.DefaultConfig)
		_, err := e.changes.Record(ctx, change.Change{Service: "checkout", Version: "v2", Actor: "ci"})
		require.NoError(t, err)
		e.clk.Advance(5 * time.Minute)
		n := delivery("g-checkout", "checkout", t0.Add(5*time.Minute))
		res, err := e.incidents.Ingest(ctx, n)
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		restore := func() (uint64, float64) {
			t.Helper()
			ms, err := e.changes.Metrics(ctx)
			require.NoError(t, err)
			require.Len(t, ms, 1)
			return ms[0].RestoreTime.Count, ms[0].RestoreTime.Sum
		}

		// Resolved 10 minutes after its alert fired.
		e.clk.Advance(10 * time.Minute)
		n.Status, n.Alerts[0].Status, n.Alerts[0].EndsAt = "resolved", "resolved", e.clk.Now()
		_, err = e.incidents.Ingest(ctx, n)
		require.NoError(t, err)
		inc, err := e.incidents.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
		count, sum := restore()
		require.Equal(t, uint64(1), count)
		require.InDelta(t, (10 * time.Minute).Seconds(), sum, 1e-9)

		// The alert fires again: the incident re-opens.
		e.clk.Advance(time.Minute)
		n = delivery("g-checkout", "checkout", e.clk.Now())
		_, err = e.incidents.Ingest(ctx, n)
		require.NoError(t, err)
		inc, err = e.incidents.Get(ctx, id)
		require.NoError(t, err)
		require.NotEqual(t, incident.StatusResolved, inc.Status, "re-opened")
		count, sum = restore()
		require.Equal(t, uint64(1), count, "the histogram's count does not go down")
		require.InDelta(t, (10 * time.Minute).Seconds(), sum, 1e-9)

		e.clk.Advance(30 * time.Minute)
		_, err = e.incidents.Resolve(ctx, id, "alice", "fixed")
		require.NoError(t, err)
		count, sum = restore()
		require.Equal(t, uint64(1), count)
		require.InDelta(t, (10 * time.Minute).Seconds(), sum, 1e-9, "the first resolution stays")
	})
}
