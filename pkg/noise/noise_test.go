package noise_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPagesCountForThePeakAlert: an incident counts as a page of the alert
// rule that raised it to its peak severity. An SLO's ticket tier (MEDIUM,
// it pages nobody) opening the incident its page tier then raises to
// CRITICAL is a page of the page tier's alert, not of the ticket's (as the
// report read after `make demo-break`); an incident opened at its peak,
// or raised by an exhausted error budget (no alert), counts for the alert
// that opened it.
func TestPagesCountForThePeakAlert(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		clk := clock.NewManual(t0)
		svc.Clock = clk
		alert := func(name, svcName, sev string) incident.NotifiedAlert {
			return incident.NotifiedAlert{Status: "firing", Fingerprint: name + sev, StartsAt: clk.Now(),
				Labels: map[string]string{"alertname": name, "service": svcName, "slo": "availability", "severity": sev}}
		}
		group := func(svcName string, alerts ...incident.NotifiedAlert) incident.Notification {
			return incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="` + svcName + `",slo="availability"}`,
				CommonLabels: alerts[0].Labels, Alerts: alerts}
		}
		ingest := func(n incident.Notification) string {
			t.Helper()
			res, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
			require.Len(t, res.Incidents, 1)
			return res.Incidents[0]
		}

		// api: opened by the ticket, raised by the page.
		ticket := alert("SLOBurnRateTicket", "api", "ticket")
		id := ingest(group("api", ticket))
		clk.Advance(2 * time.Minute)
		require.Equal(t, id, ingest(group("api", ticket, alert("SLOBurnRatePage", "api", "page"))))
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.SeverityCritical, inc.PeakSeverity)

		// web: opened by the page at once.
		ingest(group("web", alert("SLOBurnRatePage", "web", "page")))

		// db: opened by the ticket, raised by an exhausted budget.
		dbID := ingest(group("db", alert("SLOBurnRateTicket", "db", "ticket")))
		_, err = svc.Raise(ctx, dbID, "budget", incident.SeverityCritical, "budget", "error budget exhausted")
		require.NoError(t, err)

		// search: opened by the ticket of its availability SLO, raised by
		// the page of its success-rate SLO: the row is that SLO's too.
		searchTicket := alert("SLOBurnRateTicket", "search", "ticket")
		searchID := ingest(group("search", searchTicket))
		clk.Advance(2 * time.Minute)
		searchPage := alert("SLOBurnRatePage", "search", "page")
		searchPage.Labels["slo"] = "success-rate"
		require.Equal(t, searchID, ingest(group("search", searchTicket, searchPage)))

		rep, err := noise.Build(ctx, db, noise.Options{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)})
		require.NoError(t, err)
		got := map[string]int{}
		slos := map[string]string{}
		for _, r := range rep.Rows {
			got[r.Service+"/"+r.Alertname] = r.Pages
			slos[r.Service+"/"+r.Alertname] = r.SLO
		}
		require.Equal(t, map[string]int{
			"api/SLOBurnRatePage":    1,
			"web/SLOBurnRatePage":    1,
			"db/SLOBurnRateTicket":   1,
			"search/SLOBurnRatePage": 1,
		}, got)
		require.Equal(t, 4, rep.Pages)
		require.Equal(t, "success-rate", slos["search/SLOBurnRatePage"], "the SLO of the alert that raised it")
		require.Equal(t, "availability", slos["db/SLOBurnRateTicket"])
	})
}
