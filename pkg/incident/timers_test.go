package incident_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

func timelineOf(t *testing.T, svc *incident.Service, id, kind string) []string {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		if e.Kind == kind {
			out = append(out, e.Actor+": "+e.Message)
		}
	}
	return out
}

// TestSnooze: only an acknowledged or investigated incident can be
// snoozed; the snooze is recorded, seen by hooks, and ends once, calling
// the wake function, when its time has come and the incident is open.
func TestSnooze(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "critical")

		_, err := f.svc.Snooze(ctx, id, "alice", 30*time.Minute)
		require.EqualError(t, err, "cannot snooze incident INC-2026-0001: it is triggered: acknowledge it first")
		require.ErrorIs(t, err, incident.ErrInvalidTransition)
		_, err = f.svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		for _, d := range []time.Duration{0, 30 * time.Second, 31 * 24 * time.Hour} {
			_, err = f.svc.Snooze(ctx, id, "alice", d)
			require.ErrorContains(t, err, "snooze duration must be between 1m and 30d")
		}
		_, err = f.svc.Snooze(ctx, "INC-2026-0099", "alice", time.Hour)
		require.ErrorIs(t, err, incident.ErrNotFound)

		inc, err := f.svc.Snooze(ctx, id, "alice", 30*time.Minute)
		require.NoError(t, err)
		until := epoch.Add(30 * time.Minute)
		require.Equal(t, until, *inc.SnoozedUntil)
		require.Equal(t, incident.StatusAcknowledged, inc.Status, "a snooze does not change the status")
		require.Contains(t, f.hookLog(t), id+" snoozed<-acknowledged")
		require.Equal(t, []string{"alice: snoozed by alice for 30m, until 2026-03-14T10:00:00Z"}, timelineOf(t, f.svc, id, "snooze"))

		var woken []string
		var mu sync.Mutex
		wake := func(_ context.Context, inc *incident.Incident) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			woken = append(woken, inc.ID)
			return "paged level 1", nil
		}
		f.clock.Set(until.Add(-time.Second))
		got, err := f.svc.WakeSnoozed(ctx, wake)
		require.NoError(t, err)
		require.Empty(t, got)

		// A wake that fails leaves the snooze for the next attempt.
		f.clock.Set(until)
		got, err = f.svc.WakeSnoozed(ctx, func(context.Context, *incident.Incident) (string, error) {
			return "", errors.New("escalation store down")
		})
		require.EqualError(t, err, "end snooze of "+id+": escalation store down")
		require.Empty(t, got)
		got, err = f.svc.WakeSnoozed(ctx, wake)
		require.NoError(t, err)
		require.Equal(t, []string{id}, got)
		require.Equal(t, []string{id}, woken)
		got, err = f.svc.WakeSnoozed(ctx, wake)
		require.NoError(t, err)
		require.Empty(t, got, "a snooze ends once")
		inc, err = f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.SnoozedUntil)
		require.Equal(t, []string{
			"alice: snoozed by alice for 30m, until 2026-03-14T10:00:00Z",
			"sred: snooze ended (was until 2026-03-14T10:00:00Z): the incident is still acknowledged; paged level 1",
		}, timelineOf(t, f.svc, id, "snooze"))

		// Re-snoozing replaces the end; resolving before the end means
		// nobody is woken.
		_, err = f.svc.Snooze(ctx, id, "bob", time.Hour)
		require.NoError(t, err)
		inc, err = f.svc.Snooze(ctx, id, "bob", 2*time.Hour)
		require.NoError(t, err)
		require.Equal(t, until.Add(2*time.Hour), *inc.SnoozedUntil)
		require.Contains(t, timelineOf(t, f.svc, id, "snooze")[3], "(was until 2026-03-14T11:00:00Z)")
		inc, err = f.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		require.Nil(t, inc.SnoozedUntil, "resolving ends the snooze")
		_, err = f.svc.Snooze(ctx, id, "bob", time.Hour)
		require.EqualError(t, err, "cannot snooze incident INC-2026-0001: it is resolved, only an open incident can be snoozed")
		f.clock.Set(until.Add(3 * time.Hour))
		got, err = f.svc.WakeSnoozed(ctx, wake)
		require.NoError(t, err)
		require.Empty(t, got)
		require.Equal(t, []string{id}, woken)
	})
}

// quietFixture: a service with auto_resolve_after 2h.
func quietFixture(t *testing.T, db *store.DB) *fixture {
	f := newFixture(t, db)
	o := f.svc.Options()
	o.AutoResolveAfter = 2 * time.Hour
	require.NoError(t, f.svc.SetOptions(o))
	return f
}

// TestResolveQuiet: an incident whose alerts are firing but whose group
// has had no delivery for auto_resolve_after resolves, saying why;
// repeated (duplicate) deliveries keep it open; a later delivery of the
// same still-firing alerts re-opens it.
func TestResolveQuiet(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := quietFixture(t, db)
		ctx := context.Background()
		n := notification(`{}:{alertname="HighLatency"}`, "checkout", "critical", epoch.Add(-5*time.Minute), "a", "b")
		res, err := f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		id := res.Created[0]
		// Alertmanager repeats the notification (repeat_interval 1h): a
		// duplicate that writes nothing, but counts as a delivery.
		f.clock.Set(epoch.Add(time.Hour))
		res, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.True(t, res.Duplicate)
		// An incident sred opened itself never gets deliveries: left alone.
		res, err = f.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: incident.InternalGroupPrefix + "watchdog/x",
			Actor: "watchdog", Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "w", StartsAt: epoch,
				Labels: map[string]string{"alertname": "AlertingPipelineBroken"}}}})
		require.NoError(t, err)
		own := res.Created[0]

		f.clock.Set(epoch.Add(3*time.Hour - time.Millisecond))
		got, err := f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, got, "the duplicate at +1h counts: quiet for less than 2h")
		f.clock.Set(epoch.Add(3 * time.Hour))
		got, err = f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, []string{id}, got)
		got, err = f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, got)

		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
		require.Equal(t, epoch.Add(3*time.Hour), *inc.ResolvedAt)
		require.Equal(t, epoch.Add(time.Hour), *inc.RecoveredAt, "recovered at the last delivery")
		for _, a := range inc.Alerts {
			require.Equal(t, "stale", a.Status)
			require.Equal(t, epoch.Add(time.Hour), *a.EndsAt)
		}
		require.Equal(t, "sred: resolved automatically: no delivery from Alertmanager since 2026-03-14T10:30:00Z "+
			"(incidents.auto_resolve_after: 2h) while 2 alerts were still firing; their resolve was presumably lost",
			last(timelineOf(t, f.svc, id, "status")))
		require.Contains(t, f.hookLog(t), id+" resolved<-triggered")
		ownInc, err := f.svc.Get(ctx, own)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, ownInc.Status)

		// The alerts were in fact still firing: the next delivery re-opens
		// the incident (not as flapping), with both alerts firing again.
		f.clock.Set(epoch.Add(4 * time.Hour))
		res, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.False(t, res.Duplicate)
		require.Equal(t, []string{id}, res.Incidents)
		require.Empty(t, res.Created)
		inc, err = f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.False(t, inc.Flapping)
		require.Nil(t, inc.ResolvedAt)
		for _, a := range inc.Alerts {
			require.Equal(t, "firing", a.Status)
		}
		require.Equal(t, "alertmanager: re-opened: Alertmanager delivered alerts still firing after the incident was resolved for lack of deliveries",
			last(timelineOf(t, f.svc, id, "status")))
		res, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.True(t, res.Duplicate, "the revived alerts are stored as firing again")

		// A stale alert whose resolve finally arrives is resolved.
		f.clock.Set(epoch.Add(7 * time.Hour))
		got, err = f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, []string{id}, got)
		r := n
		r.Status = "resolved"
		r.Alerts = append([]incident.NotifiedAlert(nil), n.Alerts...)
		for i := range r.Alerts {
			r.Alerts[i].Status, r.Alerts[i].EndsAt = "resolved", epoch.Add(6*time.Hour)
		}
		_, err = f.svc.Ingest(ctx, r)
		require.NoError(t, err)
		inc, err = f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
		require.Equal(t, epoch.Add(6*time.Hour), *inc.RecoveredAt)
		for _, a := range inc.Alerts {
			require.Equal(t, "resolved", a.Status)
		}
	})
}

// TestResolveQuietOff: with auto_resolve_after 0 nothing is resolved.
func TestResolveQuietOff(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		id := f.open(t, "g1", "checkout", "critical")
		f.clock.Set(epoch.Add(1000 * time.Hour))
		got, err := f.svc.ResolveQuiet(context.Background(), 0)
		require.NoError(t, err)
		require.Empty(t, got)
		inc, err := f.svc.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
	})
}

// TestResolveQuietAttachedGroup: an incident whose own group is quiet but
// that holds the firing alerts of another group Alertmanager still repeats
// (merged, or attached by correlation) stays open; it resolves once both
// are quiet.
func TestResolveQuietAttachedGroup(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := quietFixture(t, db)
		ctx := context.Background()
		into := f.open(t, `{}:{alertname="HighLatency",service="checkout"}`, "checkout", "critical")
		other := notification(`{}:{alertname="HighLatency",service="payments"}`, "payments", "critical", epoch.Add(-5*time.Minute), "p")
		res, err := f.svc.Ingest(ctx, other)
		require.NoError(t, err)
		from := res.Created[0]
		_, err = f.svc.Merge(ctx, into, from, "rita")
		require.NoError(t, err)

		// Alertmanager repeats the payments group every hour; the
		// checkout group has been quiet since the start.
		for h := 1; h <= 3; h++ {
			f.clock.Set(epoch.Add(time.Duration(h) * time.Hour))
			_, err := f.svc.Ingest(ctx, other)
			require.NoError(t, err)
		}
		f.clock.Set(epoch.Add(4 * time.Hour))
		got, err := f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, got, "the payments group was delivered 1h ago: still firing")
		inc, err := f.svc.Get(ctx, into)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)

		f.clock.Set(epoch.Add(5 * time.Hour))
		got, err = f.svc.ResolveQuiet(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, []string{into}, got, "both groups quiet for 2h")
		inc, err = f.svc.Get(ctx, into)
		require.NoError(t, err)
		require.Equal(t, epoch.Add(3*time.Hour), *inc.RecoveredAt, "recovered at the last delivery of either group")
	})
}

// TestResolveQuietReplicas: several services (replicas) on one database
// sweeping at once resolve each quiet incident once.
func TestResolveQuietReplicas(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := quietFixture(t, db)
		ctx := context.Background()
		var ids []string
		for _, g := range []string{"g1", "g2", "g3"} {
			ids = append(ids, f.open(t, g, "svc-"+g, "warning"))
		}
		later := epoch.Add(5 * time.Hour)
		var replicas []*incident.Service
		for range 4 {
			svc, err := incident.NewService(db, f.svc.Options(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
			require.NoError(t, err)
			svc.Clock = clock.NewManual(later)
			t.Cleanup(func() { svc.Close() })
			replicas = append(replicas, svc)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var all []string
		for _, svc := range replicas {
			wg.Go(func() {
				for range 3 {
					got, err := svc.ResolveQuiet(ctx, 0)
					require.NoError(t, err)
					mu.Lock()
					all = append(all, got...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.ElementsMatch(t, ids, all, "each incident resolved exactly once")
		for _, id := range ids {
			var n int
			for _, e := range timelineOf(t, f.svc, id, "status") {
				if strings.Contains(e, "resolved automatically") {
					n++
				}
			}
			require.Equal(t, 1, n)
		}
	})
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
