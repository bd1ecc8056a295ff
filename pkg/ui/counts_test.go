package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestConsoleCountsOfOne: the console's counts of one are singular: the
// home page's "1 of 1 SLO in 1 service", the dependency graph's "1
// service" and the noise report's "1 page" (they read "1 SLOs", "1
// services" and "1 pages"); other counts stay plural.
func TestConsoleCountsOfOne(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, budget.Migrations}, func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		now := start.Add(7 * 24 * time.Hour)
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		defer svc.Close()
		svc.Clock = clock.Func(func() time.Time { return now })
		bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 1), nil, nil))
		g, err := correlation.Load(correlation.Services{"postgres": {}}, correlation.Config{Window: model.Duration(30 * time.Minute)}, nil)
		require.NoError(t, err)
		report := func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, db, o) }
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Budgets: bs, Noise: report, Graph: func() *correlation.Graph { return g }},
			ui.Options{Clock: clock.Func(func() time.Time { return start.Add(7 * 24 * time.Hour) })}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: http.DefaultClient}

		for _, tc := range []struct{ path, want string }{
			{"/", "1 of 1 SLO in 1 service."},
			{"/?q=nothing", "0 of 1 SLO in 0 services."},
			{"/graph", `<p id="graph-summary">1 service. `},
			{"/noise?since=7d", "2026-11-23 00:00:00 UTC to 2026-11-30 00:00:00 UTC: 0 pages."},
		} {
			code, body := viewer.do("GET", tc.path, nil)
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, tc.want, tc.path)
		}
		now = start.Add(time.Hour)
		fire(t, svc, "{}:postgres", "PostgresDown", "postgres", "critical", now)
		now = start.Add(7 * 24 * time.Hour)
		code, body := viewer.do("GET", "/noise?since=7d", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "2026-11-23 00:00:00 UTC to 2026-11-30 00:00:00 UTC: 1 page.")
	})
}
