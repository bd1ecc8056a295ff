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

// TestLongIncidentResolvedRecently: an incident opened before the uptime
// bars begin (3 days ago, with 1 day of bars) and resolved an hour ago with
// a public update is one of the incidents resolved in the last 7 days on
// the page, and its outage counts in today's bar, although it was created
// before the first bar. On SQLite and PostgreSQL.
func TestLongIncidentResolvedRecently(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(now.Add(-3 * 24 * time.Hour))
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		inc.Clock = clk
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments failing", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		clk.Set(now.Add(-2 * time.Hour))
		_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Impact: "payments fail", Public: true, PublicMessage: "Payments are failing."})
		require.NoError(t, err)
		clk.Set(now.Add(-time.Hour))
		_, err = inc.Resolve(ctx, created.ID, "rita", "fixed")
		require.NoError(t, err)

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 1}
		require.NoError(t, cfg.Validate())
		page, err := status.New(cfg, status.Options{Incidents: inc, Clock: clock.NewManual(now)}).Page(ctx)
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1, "resolved an hour ago with a public update")
		require.Equal(t, "resolved", page.Incidents[0].Stage)
		require.Equal(t, "Payments are failing.", page.Incidents[0].Updates[0].Message)
		shop := page.Components[0]
		require.Equal(t, status.Operational, shop.Status)
		require.Len(t, shop.Uptime, 1)
		today := shop.Uptime[0]
		require.Equal(t, 1, today.Incidents)
		require.Equal(t, status.PartialOutage, today.Worst)
		require.InDelta(t, 1-11.0/12, today.Uptime, 1e-9, "down from midnight to 11:00 of a 12h day")
	})
}
