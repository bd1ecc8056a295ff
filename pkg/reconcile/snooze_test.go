package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

type amSilenceTimes struct {
	ID        string                 `json:"id"`
	Comment   string                 `json:"comment"`
	CreatedBy string                 `json:"createdBy"`
	EndsAt    time.Time              `json:"endsAt"`
	Status    struct{ State string } `json:"status"`
}

// TestSnoozeSilence snoozes an acknowledged incident with silences on
// snooze only: a real Alertmanager gets a silence ending with the snooze
// (none on acknowledge); a longer snooze adds one that covers it; with
// expire_silences_on_resolve off, resolving leaves the silences running.
func TestSnoozeSilence(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		s := NewSilencer(db, newClient(t, am.URL), e.svc, SilenceOptions{OnSnooze: true, ExpireOnResolve: false}, nil, e.m)
		e.hooks = []incident.Hook{s}

		start := time.Now().UTC().Add(-time.Minute)
		labels := map[string]string{"alertname": "DiskFilling", "service": "db", "instance": "db1"}
		postAlerts(t, am.URL, amAlert{Labels: labels, StartsAt: start, EndsAt: start.Add(time.Hour)})
		inc := waitIncident(t, e.svc, 1)

		_, err := e.svc.Acknowledge(ctx, inc.ID, "alice")
		require.NoError(t, err)
		n, err := s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "silence_on_ack is off")

		snoozed, err := e.svc.Snooze(ctx, inc.ID, "alice", 30*time.Minute)
		require.NoError(t, err)
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		var sils []amSilenceTimes
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		require.Len(t, sils, 1)
		require.Equal(t, "active", sils[0].Status.State)
		require.Equal(t, "sred/alice", sils[0].CreatedBy)
		require.Contains(t, sils[0].Comment, "incident "+inc.ID+" snoozed by alice")
		require.WithinDuration(t, *snoozed.SnoozedUntil, sils[0].EndsAt, time.Millisecond, "the silence ends with the snooze")
		require.True(t, contains(timelineKinds(t, e.svc, inc.ID)["silence"], "silence "+sils[0].ID+" created"))

		// Syncing again changes nothing; a longer snooze needs a silence
		// that lasts as long.
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		longer, err := e.svc.Snooze(ctx, inc.ID, "bob", 2*time.Hour)
		require.NoError(t, err)
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		require.Len(t, sils, 2)
		var ends []time.Time
		for _, sil := range sils {
			require.Equal(t, "active", sil.Status.State)
			ends = append(ends, sil.EndsAt)
		}
		require.Contains(t, ends, longer.SnoozedUntil.Truncate(time.Millisecond))
		recs, err := s.Silences(ctx, inc.ID)
		require.NoError(t, err)
		require.Len(t, recs, 2)

		// expire_silences_on_resolve: false.
		_, err = e.svc.Resolve(ctx, inc.ID, "bob", "disk cleaned")
		require.NoError(t, err)
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		for _, sil := range sils {
			require.Equal(t, "active", sil.Status.State)
		}
	})
}
