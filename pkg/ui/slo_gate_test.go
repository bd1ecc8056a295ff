package ui_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/ui"
)

// TestSLOPageGateAnswersForTheService: the deploy gate answers for a
// service, so an SLO's page shows the service's answer. In the demo the
// page of api/data-integrity (no data: the demo service exports no
// integrity checks) said "no data: no SLO of the service has data yet"
// while api/availability had data and the gate denied. Here search's
// availability is yellow (StartYellow) and its latency has no data: both
// pages answer allow, with the yellow budget as the reason.
func TestSLOPageGateAnswersForTheService(t *testing.T) {
	prom, _, end := budgettest.StartYellow(t)
	specs, err := slo.Parse([]byte(budgettest.YellowSpec+`
  - name: latency
    objective: 99
    period: 1d
    sli:
      events:
        errorSelector: search_slow_requests_total{job="search"}
        totalSelector: search_requests_total{job="search"}
`), "search.yml")
	require.NoError(t, err)
	db, err := store.OpenSQLite(t.Context(), t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(t.Context(), incident.Migrations, budget.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock.NewManual(end)})
	require.NoError(t, bs.Update(budget.DefaultConfig, specs, prom, nil))
	require.NoError(t, bs.Poll(t.Context()))
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{AllowAnonymous: true, Clock: clock.NewManual(end)}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &client{t: t, base: srv.URL, c: srv.Client()}
	for _, name := range []string{"availability", "latency"} {
		code, body := c.do("GET", "/slos/search/"+name, nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<span class="gate gate-allow">allow</span> <span class="muted">error budget yellow</span>`, name)
		require.NotContains(t, body, "no SLO of the service has data yet", name)
	}
}
