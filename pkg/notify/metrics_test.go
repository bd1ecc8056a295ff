package notify

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// pendingGauge gathers reg and returns sre_notifications_pending (found
// false when the scrape left it out) and the gathering error.
func pendingGauge(t *testing.T, reg *prometheus.Registry) (float64, bool, error) {
	t.Helper()
	mfs, err := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "sre_notifications_pending" {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetGauge().GetValue(), true, err
		}
	}
	return 0, false, err
}

// sre_notifications_pending counts the outbox at scrape time; a count
// that fails leaves the series out of the scrape with an error naming it
// (the /metrics handler logs it and serves the rest), rather than export
// -1 notifications, which a sum over replicas or an alert on the backlog
// reads as a number.
func TestPendingMetric(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		reg := prometheus.NewRegistry()
		NewSender(db, &Config{}, clock.NewManual(t0), nil, nil, reg)

		n, ok, err := pendingGauge(t, reg)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 0.0, n)

		_, err = Enqueue(ctx, db, t0, "INC-1/webhook", &Message{IncidentID: "INC-1", Channel: ChannelWebhook, Event: EventTrigger, Subject: "x"})
		require.NoError(t, err)
		n, ok, err = pendingGauge(t, reg)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1.0, n)

		// The outbox cannot be read.
		_, err = db.ExecContext(ctx, `ALTER TABLE jobs RENAME TO jobs_unreadable`)
		require.NoError(t, err)
		_, ok, err = pendingGauge(t, reg)
		require.ErrorContains(t, err, "count notifications pending")
		require.False(t, ok, "a failed count is left out, not exported")
	})
}
