package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

type amSilence struct {
	ID       string                 `json:"id"`
	Comment  string                 `json:"comment"`
	Status   struct{ State string } `json:"status"`
	Matchers []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual bool   `json:"isEqual"`
	} `json:"matchers"`
}

type amGettable struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// TestSilenceOnAckAndExpireOnResolve acknowledges an incident, shows the
// silence in a real Alertmanager's /api/v2/silences (and its alert
// suppressed by it), resolves the incident and shows the silence expired.
func TestSilenceOnAckAndExpireOnResolve(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		s := NewSilencer(db, newClient(t, am.URL), e.svc, DefaultSilenceOptions(), nil, e.m)
		e.hooks = []incident.Hook{s}

		start := time.Now().UTC().Add(-time.Minute)
		labels := map[string]string{"alertname": "HighLatency", "service": "checkout", "severity": "warning", "instance": "c1"}
		postAlerts(t, am.URL, amAlert{Labels: labels, StartsAt: start, EndsAt: start.Add(time.Hour)})
		inc := waitIncident(t, e.svc, 1)

		// Nothing requested yet.
		n, err := s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		_, err = e.svc.Acknowledge(ctx, inc.ID, "alice")
		require.NoError(t, err)
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)

		recs, err := s.Silences(ctx, inc.ID)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, "active", recs[0].State)
		require.Equal(t, labels, recs[0].Matchers)
		require.Equal(t, "sred/alice", recs[0].CreatedBy)

		var sils []amSilence
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		require.Len(t, sils, 1)
		require.Equal(t, recs[0].ID, sils[0].ID)
		require.Equal(t, "active", sils[0].Status.State)
		require.Contains(t, sils[0].Comment, "incident "+inc.ID+" acknowledged by alice")
		got := map[string]string{}
		for _, m := range sils[0].Matchers {
			require.False(t, m.IsRegex)
			require.True(t, m.IsEqual)
			got[m.Name] = m.Value
		}
		require.Equal(t, labels, got)
		require.Eventually(t, func() bool {
			var alerts []amGettable
			getJSON(t, am.URL+"/api/v2/alerts", &alerts)
			return len(alerts) == 1 && alerts[0].Status.State == "suppressed" &&
				len(alerts[0].Status.SilencedBy) == 1 && alerts[0].Status.SilencedBy[0] == recs[0].ID
		}, 60*time.Second, 100*time.Millisecond, "the alert is not silenced in Alertmanager")
		require.True(t, contains(timelineKinds(t, e.svc, inc.ID)["silence"], "silence "+recs[0].ID+" created"))

		// Syncing again does nothing: one silence per alert.
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		_, err = e.svc.Resolve(ctx, inc.ID, "alice", "rolled back")
		require.NoError(t, err)
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		require.Len(t, sils, 1)
		require.Equal(t, "expired", sils[0].Status.State)
		recs, err = s.Silences(ctx, inc.ID)
		require.NoError(t, err)
		require.Equal(t, "expired", recs[0].State)
		require.NotNil(t, recs[0].ExpiredAt)
		require.True(t, contains(timelineKinds(t, e.svc, inc.ID)["silence"], "silence "+recs[0].ID+" expired"))
	})
}

// TestSilenceRetriedWhenAlertmanagerDown: a request made while Alertmanager
// is unreachable stays pending, with its error, and is carried out once
// Alertmanager answers.
func TestSilenceRetriedWhenAlertmanagerDown(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		am := startAlertmanager(t, e.srv.URL)
		start := time.Now().UTC().Add(-time.Minute)
		postAlerts(t, am.URL, amAlert{Labels: map[string]string{"alertname": "QueueBacklog", "service": "jobs", "instance": "q"},
			StartsAt: start, EndsAt: start.Add(time.Hour)})
		inc := waitIncident(t, e.svc, 1)

		down := &Swappable{} // not configured yet: every call fails
		s := NewSilencer(db, down, e.svc, DefaultSilenceOptions(), nil, e.m)
		clk := clock.NewManual(time.Now().Add(-3 * time.Second))
		s.Clock = clk
		e.hooks = []incident.Hook{s}
		_, err := e.svc.Investigate(ctx, inc.ID, "bob", "")
		require.NoError(t, err)

		n, err := s.Sync(ctx)
		require.EqualError(t, err, "silence alert "+inc.Alerts[0].Fingerprint+" of "+inc.ID+": alertmanager.url is not configured")
		require.Zero(t, n)
		var lastErr string
		var attempts int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT last_error, attempts FROM reconcile_silence_requests WHERE incident_id = $1`,
			inc.ID).Scan(&lastErr, &attempts))
		require.Equal(t, 1, attempts)
		require.Contains(t, lastErr, "alertmanager.url is not configured")

		// Backoff: not retried at once.
		down.Set(newClient(t, am.URL))
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		clk.Advance(3 * time.Second) // past the 2s backoff
		n, err = s.Sync(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		var sils []amSilence
		getJSON(t, am.URL+"/api/v2/silences", &sils)
		require.Len(t, sils, 1)
		require.Equal(t, "active", sils[0].Status.State)
	})
}

// TestSilencerDisabled: with silences off, acknowledging records nothing.
func TestSilencerDisabled(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		s := NewSilencer(db, &Swappable{}, e.svc, SilenceOptions{}, nil, e.m)
		e.hooks = []incident.Hook{s}
		res, err := e.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="X"}`,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Labels: map[string]string{"alertname": "X"}, StartsAt: time.Now(), Fingerprint: "f1"}}})
		require.NoError(t, err)
		_, err = e.svc.Acknowledge(ctx, res.Created[0], "alice")
		require.NoError(t, err)
		var count int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconcile_silence_requests`).Scan(&count))
		require.Zero(t, count)
	})
}
