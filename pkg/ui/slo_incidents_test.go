package ui_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestSLOPageListsIncidentsOfItsAlerts: on both backends, an SLO's page
// lists the incidents that hold its alerts, not only the one its alert
// opened. In the demo the page of api/success-rate opens the outage's
// incident and the pages of api/availability join it; the availability
// page said "Recent incidents: None." during the outage. An incident of
// another SLO of the service, without this SLO's alerts, stays off it.
func TestSLOPageListsIncidentsOfItsAlerts(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, budget.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		t.Cleanup(func() { svc.Close() })
		bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
		require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 1, 3), nil, nil))
		page := func(slo string) incident.NotifiedAlert {
			return incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-" + slo, StartsAt: time.Now().Add(-time.Minute),
				Labels: map[string]string{"alertname": "SLOBurnRatePage", "service": "svc000", "slo": slo, "severity": "page"}}
		}
		open := func(key string, alerts ...incident.NotifiedAlert) string {
			t.Helper()
			res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: key,
				GroupLabels: map[string]string{"service": "svc000"}, CommonLabels: alerts[0].Labels, Alerts: alerts})
			require.NoError(t, err)
			require.Len(t, res.Created, 1)
			return res.Created[0]
		}
		outage := open(`{}:{service="svc000"}`, page("slo00"), page("slo01"))
		other := open(`{}:{service="svc000",other="1"}`, page("slo02"))

		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{AllowAnonymous: true}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		c := &client{t: t, base: srv.URL, c: srv.Client()}
		for _, tc := range []struct {
			slo       string
			want, not []string
		}{
			{"slo00", []string{outage}, []string{other}},
			{"slo01", []string{outage}, []string{other}},
			{"slo02", []string{other}, []string{outage}},
		} {
			code, body := c.do("GET", "/slos/svc000/"+tc.slo, nil)
			require.Equal(t, http.StatusOK, code, body)
			for _, id := range tc.want {
				require.Contains(t, body, `href="/incidents/`+id+`"`, tc.slo)
			}
			for _, id := range tc.not {
				require.NotContains(t, body, `href="/incidents/`+id+`"`, tc.slo)
			}
		}
	})
}
