package noise_test

import (
	"context"
	"fmt"
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
		svc, clk := incidents(t, db, t0)
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

// TestRowPerSLO: the generated rules give every SLO's alerts the same
// names (SLOBurnRatePage), so the pages of a service's availability SLO and
// of its success-rate SLO are two rows, each with its SLO, and two series
// of sre_noise_* told apart by their slo label (they were one row, whose
// SLO was that of whichever incident came first, and one series); an
// alert of no SLO keeps an empty slo label.
func TestRowPerSLO(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, clk := incidents(t, db, t0)
		n := 0
		page := func(name, slo string) {
			t.Helper()
			n++
			l := map[string]string{"alertname": name, "service": "checkout", "severity": "page"}
			if slo != "" {
				l["slo"] = slo
			}
			a := incident.NotifiedAlert{Status: "firing", Fingerprint: name + slo, StartsAt: clk.Now(), Labels: l}
			res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing",
				GroupKey: fmt.Sprintf(`{}:{alertname=%q,service="checkout",slo=%q,n="%d"}`, name, slo, n), CommonLabels: l, Alerts: []incident.NotifiedAlert{a}})
			require.NoError(t, err)
			require.Len(t, res.Incidents, 1)
			clk.Advance(time.Minute)
		}
		page("SLOBurnRatePage", "success-rate")
		page("SLOBurnRatePage", "latency")
		page("SLOBurnRatePage", "success-rate")
		page("SLOBurnRatePage", "availability")
		page("HighLatency", "")

		rep, err := noise.Build(ctx, db, noise.Options{Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)})
		require.NoError(t, err)
		type row struct {
			alertname, service, slo string
			pages                   int
		}
		var got []row
		for _, r := range rep.Rows {
			got = append(got, row{r.Alertname, r.Service, r.SLO, r.Pages})
		}
		require.Equal(t, []row{
			{"SLOBurnRatePage", "checkout", "success-rate", 2},
			{"HighLatency", "checkout", "", 1},
			{"SLOBurnRatePage", "checkout", "availability", 1},
			{"SLOBurnRatePage", "checkout", "latency", 1},
		}, got, "the most pages first, then by alert name, service and SLO")

		reg := prometheus.NewRegistry()
		reg.MustRegister(&noise.Collector{DB: db, Clock: clock.NewManual(t0.Add(time.Hour))})
		mfs, err := reg.Gather()
		require.NoError(t, err)
		series := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "sre_noise_pages" {
				continue
			}
			for _, m := range mf.GetMetric() {
				ls := map[string]string{}
				for _, l := range m.GetLabel() {
					ls[l.GetName()] = l.GetValue()
				}
				require.Len(t, ls, 3, "alertname, service and slo: %v", ls)
				series[ls["alertname"]+"/"+ls["service"]+"/"+ls["slo"]] = m.GetGauge().GetValue()
			}
		}
		require.Equal(t, map[string]float64{
			"SLOBurnRatePage/checkout/availability": 1,
			"SLOBurnRatePage/checkout/success-rate": 2,
			"SLOBurnRatePage/checkout/latency":      1,
			"HighLatency/checkout/":                 1,
		}, series)
	})
}

// incidents is an incident service on db whose clock is a Manual one at t0.
func incidents(t *testing.T, db *store.DB, t0 time.Time) (*incident.Service, *clock.Manual) {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	clk := clock.NewManual(t0)
	svc.Clock = clk
	return svc, clk
}
