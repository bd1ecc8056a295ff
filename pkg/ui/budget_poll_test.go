package ui_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestHomeSaysWhyBudgetsAreUnknown: while the budget poll cannot reach
// Prometheus, the home page says so, with the error, instead of showing
// every SLO "unknown" without a reason; a poll against a real Prometheus
// clears it, and a later failure says the states shown are those of the
// last poll that succeeded.
func TestHomeSaysWhyBudgetsAreUnknown(t *testing.T) {
	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context(), incident.Migrations, budget.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
	point := func(url string) {
		t.Helper()
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
		require.NoError(t, err)
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 1), prom, nil))
	}
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{AllowAnonymous: true}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	home := func() string {
		t.Helper()
		code, body := (&client{t: t, base: srv.URL, c: srv.Client()}).do("GET", "/", nil)
		require.Equal(t, http.StatusOK, code, body)
		return body
	}

	down := "http://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	point(down)
	require.Error(t, bs.Poll(t.Context()))
	body := home()
	require.Contains(t, body, `id="budget-poll-failure"`)
	require.Contains(t, body, "Prometheus at "+down+" unavailable")
	require.Contains(t, body, "The states stay unknown until Prometheus answers")

	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global:\n  scrape_interval: 1m\n"})
	point(prom.URL)
	require.NoError(t, bs.Poll(t.Context()))
	require.Nil(t, bs.LastPollFailure())
	require.NotContains(t, home(), `id="budget-poll-failure"`)

	point(down)
	require.Error(t, bs.Poll(t.Context()))
	body = home()
	require.Contains(t, body, "Prometheus at "+down+" unavailable")
	require.Contains(t, body, "The states below are those of the last poll that succeeded")
}

// TestSLOPageTierWithoutDataSaysNoData: on the SLO page, a burn-rate tier
// whose windows have no rate in Prometheus (no traffic recorded, or the
// generated rules not loaded) says "no data", not a green "below".
func TestSLOPageTierWithoutDataSaysNoData(t *testing.T) {
	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context(), incident.Migrations, budget.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: "global:\n  scrape_interval: 1m\n"})
	pc, err := budget.NewProm(prom.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 1), pc, nil))
	require.NoError(t, bs.Poll(t.Context()))
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{AllowAnonymous: true}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	code, body := (&client{t: t, base: srv.URL, c: srv.Client()}).do("GET", "/slos/svc000/slo00", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "<th>Condition</th>", "the tiers are listed")
	require.Contains(t, body, `<span class="badge state-unknown">no data</span>`)
	require.NotContains(t, body, `<span class="badge state-green">below</span>`)
}
