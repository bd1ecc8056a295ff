package status_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestAlertStartingInTheFuture: an incident whose alert starts after the
// incident was opened (an Alertmanager clock ahead, or a startsAt in the year
// 9999) is shown as started when it was opened, and its outage counts in
// today's bar from then, not from a time to come.
func TestAlertStartingInTheFuture(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(now.Add(-6 * time.Hour))
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		inc.Clock = clk
		_, err = inc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:{alertname=\"Down\"}",
			GroupLabels: map[string]string{"alertname": "Down"}, CommonLabels: map[string]string{"alertname": "Down", "service": "payments", "severity": "critical"},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Labels: map[string]string{"alertname": "Down", "service": "payments", "severity": "critical"},
				StartsAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Fingerprint: "f1"}}})
		require.NoError(t, err)

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 1}
		require.NoError(t, cfg.Validate())
		page, err := status.New(cfg, status.Options{Incidents: inc, Clock: clock.NewManual(now)}).Page(ctx)
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1)
		require.Equal(t, now.Add(-6*time.Hour), page.Incidents[0].StartedAt, "started when opened")
		shop := page.Components[0]
		require.Equal(t, status.MajorOutage, shop.Status)
		today := shop.Uptime[0]
		require.Equal(t, 1, today.Incidents)
		require.InDelta(t, 0.5, today.Uptime, 1e-9, "down from 06:00 of a 12h day")
	})
}
