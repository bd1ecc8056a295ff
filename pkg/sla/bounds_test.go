package sla_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
)

// boundsOutage fails every request (errors, or slow requests for a latency
// outage) in each minute of (start, start+minutes].
type boundsOutage struct {
	customer string
	start    time.Time
	minutes  int
	latency  bool
}

func (o boundsOutage) covers(customer string, latency bool, ts time.Time) bool {
	return o.customer == customer && o.latency == latency &&
		ts.After(o.start) && !ts.After(o.start.Add(time.Duration(o.minutes)*time.Minute))
}

// TestReportsExactAtBounds checks that achieved figures count exactly the
// requests of the range, to the scrape interval (1m here), when outages lie
// just before a range or straddle its start or its end, for a rolling
// period (1h) and a calendar month; and that a customer whose raw series
// are gone is reported from the recordings, saying so.
func TestReportsExactAtBounds(t *testing.T) {
	month := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	monthEnd := month.AddDate(0, 1, 0)
	now := monthEnd.Add(6 * time.Hour) // the 1h period is (05:00, 06:00]
	periodStart := now.Add(-time.Hour)
	outages := []boundsOutage{
		{customer: "before", start: periodStart.Add(-8 * time.Minute), minutes: 4},
		{customer: "pstart", start: periodStart.Add(-2 * time.Minute), minutes: 4},
		{customer: "pend", start: now.Add(-3 * time.Minute), minutes: 6},
		{customer: "pend", start: now.Add(-4 * time.Minute), minutes: 8, latency: true},
		{customer: "mstart", start: month.Add(-2 * time.Minute), minutes: 4},
		{customer: "mstart", start: month.Add(-1 * time.Minute), minutes: 3, latency: true},
		{customer: "mend", start: monthEnd.Add(-3 * time.Minute), minutes: 6},
		{customer: "inner", start: month.AddDate(0, 0, 9).Add(12 * time.Hour), minutes: 60},
	}
	customers := []string{"before", "pstart", "pend", "mstart", "mend", "inner"}
	const perMinute, goodLatency = 600.0, 0.95
	errInc := func(customer string, latency bool) func(time.Time) float64 {
		return func(ts time.Time) float64 {
			for _, o := range outages {
				if o.covers(customer, latency, ts) {
					return perMinute
				}
			}
			return 0
		}
	}

	start := month.Add(-2 * time.Hour)
	var series []budgettest.Series
	for _, c := range customers {
		lbl := func(kv ...string) map[string]string {
			l := map[string]string{"job": "api", "customer": c}
			for i := 0; i < len(kv); i += 2 {
				l[kv[i]] = kv[i+1]
			}
			return l
		}
		errs, slow := errInc(c, false), errInc(c, true)
		series = append(series,
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("code", "200"), Start: start, Initial: 1e6,
				Inc: func(ts time.Time) float64 { return perMinute - errs(ts) }},
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("code", "500"), Start: start, Initial: 1e6, Inc: errs},
			budgettest.Series{Metric: "http_request_duration_seconds_count", Labels: lbl(), Start: start, Initial: 1e6,
				Inc: func(time.Time) float64 { return perMinute }},
			budgettest.Series{Metric: "http_request_duration_seconds_bucket", Labels: lbl("le", "0.2"), Start: start, Initial: 1e6,
				Inc: func(ts time.Time) float64 {
					if slow(ts) > 0 {
						return 0
					}
					return goodLatency * perMinute
				}},
			budgettest.Series{Metric: "http_request_duration_seconds_bucket", Labels: lbl("le", "+Inf"), Start: start, Initial: 1e6,
				Inc: func(time.Time) float64 { return perMinute }})
	}
	specs, err := slo.Parse([]byte(apiSpecYAML), "api.yml")
	require.NoError(t, err)
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: now.Add(time.Hour), Args: []string{"--web.enable-admin-api"}})

	var cfgText strings.Builder
	cfgText.WriteString("customers:\n")
	for _, c := range customers {
		fmt.Fprintf(&cfgText, "  - id: %s\n    label_value: %s\n    services:\n      - service: api\n        availability: {target: 99.9}\n        latency: {target: 90}\n    credits:\n      - {below: 99.9, credit: 10}\n      - {below: 99, credit: 25}\n", strings.ToUpper(c), c)
	}
	var cfg sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(cfgText.String()), &cfg))
	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
	require.NoError(t, err)
	mux := reportMux(t, cfg, specs, prom, clock.NewManual(now))

	// achieved is computed by hand, minute by minute, over (from, to].
	achieved := func(customer string, latency bool, from, to time.Time) float64 {
		bad, all := 0.0, 0.0
		f := errInc(customer, latency)
		for ts := from.Add(time.Minute); !ts.After(to); ts = ts.Add(time.Minute) {
			b := f(ts)
			if latency && b == 0 {
				b = (1 - goodLatency) * perMinute
			}
			bad += b
			all += perMinute
		}
		return 1 - bad/all
	}
	// Exact figures that a window of 5m rates over the range would miss.
	byHand := map[string]float64{
		"before 1h":      1,
		"pstart 1h":      1 - 2*perMinute/(60*perMinute), // 96.6667%
		"pend 1h":        1 - 3*perMinute/(60*perMinute), // 95%
		"mstart 2026-02": 1 - 2*perMinute/(28*24*60*perMinute),
		"mend 2026-02":   1 - 3*perMinute/(28*24*60*perMinute),
	}

	report := func(t *testing.T, customer, query string) sla.Report {
		t.Helper()
		code, body := doGet(t, mux, "/api/v1/sla/report/"+customer+"?"+query)
		require.Equal(t, http.StatusOK, code, body)
		var env struct{ Data sla.Report }
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		return env.Data
	}
	for _, rg := range []struct {
		label, query string
		from, to     time.Time
	}{
		{"1h", "period=1h", periodStart, now},
		{"2026-02", "month=2026-02", month, monthEnd},
	} {
		for _, c := range customers {
			if c == "inner" {
				continue
			}
			t.Run(c+" "+rg.label, func(t *testing.T) {
				r := report(t, strings.ToUpper(c), rg.query)
				require.Equal(t, rg.from, r.Start)
				require.Equal(t, rg.to, r.End)
				a := r.Services["api"].Availability
				want := achieved(c, false, rg.from, rg.to)
				if v, ok := byHand[c+" "+rg.label]; ok {
					require.InDelta(t, v, want, 1e-15, "the hand computations agree")
				}
				require.NotNil(t, a.AchievedRatio)
				require.InDelta(t, want, *a.AchievedRatio, 1e-12, "availability")
				require.Equal(t, sla.Percent(want), a.Achieved)
				require.Equal(t, sla.SourceRaw, a.Source)
				require.Equal(t, status(want, 99.9), a.Status)
				require.Equal(t, credit(cfg.Customers[0].Credits, want), a.Credit)
				l := r.Services["api"].Latency
				wantL := achieved(c, true, rg.from, rg.to)
				require.NotNil(t, l.AchievedRatio)
				require.InDelta(t, wantL, *l.AchievedRatio, 1e-12, "latency")
				require.Equal(t, sla.SourceRaw, l.Source)
			})
		}
	}
	// The figures above, rendered: the 1h outage straddling the start.
	r := report(t, "PSTART", "period=1h")
	require.Equal(t, "96.6666%", r.Services["api"].Availability.Achieved)
	require.Equal(t, sla.StatusMissed, r.Services["api"].Availability.Status)
	require.Equal(t, 25.0, r.Credits)
	r = report(t, "PEND", "period=1h")
	require.Equal(t, "95%", r.Services["api"].Availability.Achieved)
	require.Equal(t, "88.6666%", r.Services["api"].Latency.Achieved) // 4 slow minutes and 5% of 56, cut (not rounded) to 4 decimals

	// Without the raw series (deleted here; in production, a raw retention
	// shorter than the range), the figure comes from the recordings.
	r = report(t, "INNER", "month=2026-02")
	require.Equal(t, sla.SourceRaw, r.Services["api"].Availability.Source)
	want := achieved("inner", false, month, monthEnd)
	require.InDelta(t, want, *r.Services["api"].Availability.AchievedRatio, 1e-12)
	resp, err := http.PostForm(srv.URL+"/api/v1/admin/tsdb/delete_series", url.Values{"match[]": {`http_requests_total{customer="inner"}`}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	r = report(t, "INNER", "month=2026-02")
	a := r.Services["api"].Availability
	require.Equal(t, sla.SourceRecordings, a.Source)
	require.NotNil(t, a.AchievedRatio)
	require.InDelta(t, want, *a.AchievedRatio, 1e-9, "an outage well inside the range is exact from the recordings too")
	require.Equal(t, sla.SourceRaw, r.Services["api"].Latency.Source, "the latency histogram is still there")
}
