package status_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

const uptimeSpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %s
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

// TestUptimeBarsFromSLI: a real Prometheus holds four days of checkout and
// payments traffic (600 requests a minute each) with the generated rules
// backfilled: checkout fails 10% of its requests from 06:00 to 08:00 on day
// 1, payments 50% from 12:00 to 12:30 on day 2. The status page's bars of
// the component made of both services are the worst daily SLI, computed by
// hand (1 - 12/1440 on day 1, 1 - 15/1440 on day 2, 1 otherwise); sred
// first started on the store at 06:00 of day 3, so the days before the
// first SLI data have no data and are left out of the uptime, and Search
// (no SLO) has data from 06:00 of day 3 only, from its incidents; a HIGH
// incident recorded during the day-2 errors annotates its bar (count and
// worst state) without changing its SLI uptime. On SQLite and PostgreSQL.
func TestUptimeBarsFromSLI(t *testing.T) {
	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5) // day 0
	end := base.Add(3*24*time.Hour + 12*time.Hour)                    // noon of day 3: "now"
	const rpm = 600.0
	failing := func(day int, from, to time.Duration, share float64) func(time.Time) float64 {
		s, e := base.AddDate(0, 0, day).Add(from), base.AddDate(0, 0, day).Add(to)
		return func(ts time.Time) float64 {
			if ts.After(s) && !ts.After(e) {
				return rpm * share
			}
			return 0
		}
	}
	var specs []*slo.Spec
	var series []budgettest.Series
	for _, svc := range []struct {
		name string
		bad  func(time.Time) float64
	}{
		{"checkout", failing(1, 6*time.Hour, 8*time.Hour, 0.1)},
		{"payments", failing(2, 12*time.Hour, 12*time.Hour+30*time.Minute, 0.5)},
	} {
		sp, err := slo.Parse(fmt.Appendf(nil, uptimeSpec, svc.name), svc.name+".yml")
		require.NoError(t, err)
		specs = append(specs, sp...)
		start := base
		series = append(series,
			budgettest.Series{Metric: "http_requests_total", Labels: map[string]string{"job": svc.name, "code": "200"}, Start: start, Initial: 1e6,
				Inc: func(ts time.Time) float64 { return rpm - svc.bad(ts) }},
			budgettest.Series{Metric: "http_requests_total", Labels: map[string]string{"job": svc.name, "code": "500"}, Start: start, Initial: 1e6,
				Inc: svc.bad})
	}
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end, Recent: time.Hour})
	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
	require.NoError(t, err)
	bs := budget.New(budget.Options{Clock: clock.NewManual(end)})
	require.NoError(t, bs.Update(budget.DefaultConfig, specs, prom, nil))

	ctx := context.Background()
	from := base.AddDate(0, 0, -2)
	daily, err := bs.DailySLI(ctx, []string{"checkout", "payments"}, from, end)
	require.NoError(t, err)
	want := map[string]float64{
		base.Format(time.DateOnly):                  1,
		base.AddDate(0, 0, 1).Format(time.DateOnly): 1 - 120*0.1/1440,
		base.AddDate(0, 0, 2).Format(time.DateOnly): 1 - 30*0.5/1440,
		base.AddDate(0, 0, 3).Format(time.DateOnly): 1,
	}
	require.Len(t, daily, len(want), "days with data only: %v", daily)
	for d, v := range want {
		require.InDelta(t, v, daily[d], 2e-5, d)
	}
	one, err := bs.DailySLI(ctx, []string{"checkout", "search"}, from, end)
	require.NoError(t, err)
	require.InDelta(t, 1-120*0.1/1440, one[base.AddDate(0, 0, 1).Format(time.DateOnly)], 2e-5, "checkout alone")
	require.InDelta(t, 1, one[base.AddDate(0, 0, 2).Format(time.DateOnly)], 2e-5, "checkout alone")
	none, err := bs.DailySLI(ctx, []string{"search"}, from, end)
	require.NoError(t, err)
	require.Empty(t, none, "a service without SLOs has no SLI")

	testutil.Backends(t, [][]store.Migration{incident.Migrations, status.Migrations}, func(t *testing.T, db *store.DB) {
		stored, err := status.Load(ctx, db, end.Add(-6*time.Hour))
		require.NoError(t, err)
		clk := clock.NewManual(base.AddDate(0, 0, 2).Add(12 * time.Hour))
		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		inc.Clock = clk
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments failing", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		clk.Advance(30 * time.Minute)
		_, err = inc.Resolve(ctx, created.ID, "rita", "fixed")
		require.NoError(t, err)

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"checkout", "payments"}}, {Name: "Search", Services: []string{"search"}}}, UptimeDays: 6}
		require.NoError(t, cfg.Validate())
		page, err := status.New(cfg, status.Options{Incidents: inc, DailySLI: bs.DailySLI, Clock: clock.NewManual(end), FirstStart: stored.FirstStart}).Page(ctx)
		require.NoError(t, err)
		shop := page.Components[0]
		require.Len(t, shop.Uptime, 6)
		var sum float64
		for i, d := range shop.Uptime {
			v, ok := want[d.Date]
			if !ok {
				require.Equal(t, status.SourceNone, d.Source, "day %d is before the first SLI data and the first start", i)
				require.Zero(t, d.Incidents, d.Date)
				continue
			}
			require.Equal(t, status.SourceSLI, d.Source, d.Date)
			require.InDelta(t, v, d.Uptime, 2e-5, d.Date)
			if d.Date == base.AddDate(0, 0, 2).Format(time.DateOnly) {
				require.Equal(t, 1, d.Incidents, "the incident annotates its day")
				require.Equal(t, status.PartialOutage, d.Worst)
			} else {
				require.Zero(t, d.Incidents, d.Date)
				require.Equal(t, status.Operational, d.Worst, d.Date)
			}
			if i == len(shop.Uptime)-1 {
				sum += v * 0.5 // today: half a day so far
			} else {
				sum += v
			}
		}
		require.Equal(t, 4, shop.DataDays())
		require.InDelta(t, sum/3.5, shop.UptimeRatio, 2e-5, "the days with data weighted by their length")
		search := page.Components[1]
		for i, d := range search.Uptime {
			if i < len(search.Uptime)-1 {
				require.Equal(t, status.SourceNone, d.Source, "Search has no SLO, and %s is before the first start", d.Date)
				continue
			}
			require.Equal(t, status.SourceIncidents, d.Source, "Search has no SLO")
			require.Equal(t, 1.0, d.Uptime)
		}
		require.Equal(t, 1, search.DataDays())
		require.Equal(t, 1.0, search.UptimeRatio)
	})
}
