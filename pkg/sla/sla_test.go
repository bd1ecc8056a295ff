package sla_test

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
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
	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// apiSpecYAML holds the SLOs of the api service.
const apiSpecYAML = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    period: 30d
    groupBy: [customer]
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
  - name: latency
    objective: 95
    period: 30d
    groupBy: [customer]
    sli:
      latency:
        histogram: http_request_duration_seconds{job="api"}
        threshold: 200ms
`

// specYAML holds the SLOs of the api and web services.
const specYAML = apiSpecYAML + `---
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: web
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{job="web",code=~"5.."}
        totalSelector: http_requests_total{job="web"}
`

const configYAML = `
customers:
  - id: ACME-001
    name: Acme Corp
    label_value: acme
    services:
      - service: api
        availability: {target: 99.95}
        latency: {target: 95}
      - service: web
        availability: {target: 99.9}
    credits:
      - {below: 99.9, credit: 25}
      - {below: 99.95, credit: 10}
  - id: GLOBEX
    name: Globex <Inc> | "Ltd"
    label_value: globex
    period: 7d
    services:
      - service: api
        availability: {target: 99.99}
        latency: {slo: latency, target: 95}
    credits:
      - {below: 99.99, credit: 10}
      - {below: 99.9, credit: 25}
`

// Every series serves 600 requests a minute; errors only in these incidents.
const perMinute = 600.0

type incident struct {
	job, customer string
	start         time.Time
	minutes       float64
	errPerMinute  float64
}

func (i incident) end() time.Time { return i.start.Add(time.Duration(i.minutes) * time.Minute) }

// latencyGood is the share of requests under 200ms, per customer.
var latencyGood = map[string]float64{"acme": 0.97, "globex": 0.92}

type fixture struct {
	srv       *budgettest.Server
	end       time.Time
	month     time.Time // first day of the calendar month before end
	incidents []incident
	specs     []*slo.Spec
	cfg       sla.Config
}

func setup(t *testing.T) *fixture {
	// Fixed dates: the incidents below lie wholly inside or wholly outside
	// every range the test reports on (the month, 30d and 7d before end)
	// whatever the day the test runs; Prometheus keeps the blocks whatever
	// their age (budgettest's retention is relative to the newest block).
	end := time.Date(2026, time.July, 20, 9, 0, 0, 0, time.UTC)
	month := time.Date(2026, time.June, 1, 0, 0, 0, 0, time.UTC)
	f := &fixture{end: end, month: month}
	f.incidents = []incident{
		{"api", "acme", month.Add(10 * 24 * time.Hour), 72, 100},
		{"api", "acme", end.Add(-5 * 24 * time.Hour), 72, 50},
		{"api", "globex", month.Add(12 * 24 * time.Hour), 60, 300},
		{"web", "", end.Add(-2 * 24 * time.Hour), 60, 120},
	}
	specs, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	f.specs = specs
	require.NoError(t, yaml.Unmarshal([]byte(configYAML), &f.cfg))

	start := month.Add(-2 * time.Hour)
	if s := end.Add(-30*24*time.Hour - 2*time.Hour); s.Before(start) {
		start = s
	}
	var series []budgettest.Series
	for _, tg := range []struct{ job, customer string }{{"api", "acme"}, {"api", "globex"}, {"web", ""}} {
		tg := tg
		errInc := func(ts time.Time) float64 {
			for _, in := range f.incidents {
				if in.job == tg.job && in.customer == tg.customer && ts.After(in.start) && !ts.After(in.end()) {
					return in.errPerMinute
				}
			}
			return 0
		}
		lbl := func(extra ...string) map[string]string {
			l := map[string]string{"job": tg.job}
			if tg.customer != "" {
				l["customer"] = tg.customer
			}
			for i := 0; i < len(extra); i += 2 {
				l[extra[i]] = extra[i+1]
			}
			return l
		}
		series = append(series,
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("code", "200"), Start: start, Initial: 1e6,
				Inc: func(ts time.Time) float64 { return perMinute - errInc(ts) }},
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("code", "500"), Start: start, Initial: 1e6, Inc: errInc})
		if tg.customer != "" {
			good := latencyGood[tg.customer] * perMinute
			series = append(series,
				budgettest.Series{Metric: "http_request_duration_seconds_count", Labels: lbl(), Start: start, Initial: 1e6,
					Inc: func(time.Time) float64 { return perMinute }},
				budgettest.Series{Metric: "http_request_duration_seconds_bucket", Labels: lbl("le", "0.2"), Start: start, Initial: 1e6,
					Inc: func(time.Time) float64 { return good }},
				budgettest.Series{Metric: "http_request_duration_seconds_bucket", Labels: lbl("le", "+Inf"), Start: start, Initial: 1e6,
					Inc: func(time.Time) float64 { return perMinute }})
		}
	}
	f.srv = budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end})
	return f
}

// availability computes by hand 1 - errors / requests over (from, to] for a
// job and customer: the incidents must lie wholly inside or outside.
func (f *fixture) availability(t *testing.T, job, customer string, from, to time.Time) float64 {
	t.Helper()
	errs := 0.0
	margin := 10 * time.Minute
	for _, in := range f.incidents {
		if in.job != job || in.customer != customer {
			continue
		}
		switch {
		case !in.start.Before(from.Add(margin)) && !in.end().After(to.Add(-margin)):
			errs += in.minutes * in.errPerMinute
		case !in.end().After(from.Add(-margin)) || !in.start.Before(to.Add(margin)):
		default:
			t.Fatalf("incident %+v straddles the range %s-%s: the figure would not be exact", in, from, to)
		}
	}
	return 1 - errs/(perMinute*to.Sub(from).Minutes())
}

func credit(tiers []sla.CreditTier, achieved float64) float64 {
	c := 0.0
	for _, t := range tiers {
		if achieved*100 < t.Below && t.Credit > c {
			c = t.Credit
		}
	}
	return c
}

func status(achieved, target float64) string {
	if achieved*100 >= target {
		return sla.StatusMet
	}
	return sla.StatusMissed
}

// reportMux returns a mux serving the API of a Reporter updated with cfg,
// the objectives of specs and prom, its clock now (nil: the time of day).
func reportMux(t *testing.T, cfg sla.Config, specs []*slo.Spec, prom sla.Querier, clk clock.Clock) *http.ServeMux {
	t.Helper()
	rep := sla.NewReporter(clk)
	require.NoError(t, rep.Update(cfg, prom, sla.Lookup(budget.Objectives(specs))))
	mux := http.NewServeMux()
	rep.Register(mux)
	return mux
}

func TestReportsFromRealPrometheus(t *testing.T) {
	f := setup(t)
	prom, err := budget.NewProm(f.srv.URL, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
	require.NoError(t, err)
	mux := reportMux(t, f.cfg, f.specs, prom, clock.NewManual(f.end))

	monthEnd := f.month.AddDate(0, 1, 0)
	for _, tc := range []struct {
		name, customer, query string
		from, to              time.Time
		period                string
	}{
		{"acme 30d", "ACME-001", "period=30d", f.end.Add(-30 * 24 * time.Hour), f.end, "30d"},
		{"acme default period", "ACME-001", "", f.end.Add(-30 * 24 * time.Hour), f.end, "30d"},
		{"acme month", "ACME-001", "month=" + f.month.Format("2006-01"), f.month, monthEnd, f.month.Format("2006-01")},
		{"globex month", "GLOBEX", "month=" + f.month.Format("2006-01"), f.month, monthEnd, f.month.Format("2006-01")},
		{"globex 7d default", "GLOBEX", "", f.end.Add(-7 * 24 * time.Hour), f.end, "1w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := doGet(t, mux, "/api/v1/sla/report/"+tc.customer+"?"+tc.query)
			require.Equal(t, http.StatusOK, code, body)
			var env struct {
				Status string     `json:"status"`
				Data   sla.Report `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &env))
			r := env.Data
			require.Equal(t, tc.customer, r.Customer)
			require.Equal(t, tc.period, r.Period)
			require.Equal(t, tc.from, r.Start)
			require.Equal(t, tc.to, r.End)
			cu, _ := f.cfg.Customer(tc.customer)
			wantViolations, wantCredits := 0, 0.0
			require.Len(t, r.Services, len(cu.Services))
			for _, s := range cu.Services {
				got := r.Services[s.Service]
				customer := cu.LabelValue
				scope := "customer"
				if s.Service == "web" {
					customer, scope = "", "service"
				}
				avail := f.availability(t, s.Service, customer, tc.from, tc.to)
				a := got.Availability
				require.NotNil(t, a)
				require.InDelta(t, avail, *a.AchievedRatio, 1e-12, s.Service)
				require.Equal(t, scope, a.Scope)
				require.Equal(t, status(avail, s.Availability.Target), a.Status, "%s availability %v", s.Service, avail)
				require.Equal(t, sla.Percent(avail), a.Achieved)
				require.Equal(t, ratioOf(t, s.Availability.Target), a.TargetRatio, "the target as written, without float noise")
				require.Equal(t, credit(cu.Credits, avail), a.Credit)
				if a.Status == sla.StatusMissed {
					wantViolations++
				}
				wantCredits = math.Max(wantCredits, a.Credit)
				if s.Latency != nil {
					l := got.Latency
					require.NotNil(t, l)
					require.InDelta(t, latencyGood[customer], *l.AchievedRatio, 1e-12)
					require.Equal(t, status(latencyGood[customer], s.Latency.Target), l.Status)
					require.Equal(t, ratioOf(t, s.Latency.Target), l.TargetRatio)
					if l.Status == sla.StatusMissed {
						wantViolations++
					}
				}
			}
			require.Equal(t, wantViolations, r.Violations)
			require.Equal(t, wantCredits, r.Credits)
		})
	}

	// Globex's month does not depend on the date the test runs: 18000 errors
	// in the month, below 99.99% (10% credit) but not below 99.9%; latency 92%.
	code, body := doGet(t, mux, "/api/v1/sla/report/GLOBEX?month="+f.month.Format("2006-01"))
	require.Equal(t, http.StatusOK, code)
	var env struct{ Data sla.Report }
	require.NoError(t, json.Unmarshal([]byte(body), &env))
	g := env.Data.Services["api"]
	require.Equal(t, sla.StatusMissed, g.Availability.Status)
	require.Equal(t, sla.StatusMissed, g.Latency.Status)
	require.Equal(t, "92%", g.Latency.Achieved)
	require.Equal(t, 2, env.Data.Violations)
	require.Equal(t, 10.0, env.Data.Credits)

	// The other formats come from the same report.
	for format, want := range map[string]string{
		"md":   "| api | availability (availability) | 99.99% | " + g.Availability.Achieved + " | MISSED | customer | 10% |",
		"csv":  "GLOBEX," + f.month.Format("2006-01") + ",",
		"html": "<td class=\"MISSED\">MISSED</td>",
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/sla/report/GLOBEX?month="+f.month.Format("2006-01")+"&format="+format, nil))
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Body.String(), want, format)
		// A customer's report: never cached, never sniffed (the HTML one
		// least of all).
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"), format)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), format)
		// The HTML report runs nothing, loads nothing and is not framed:
		// only its inline style is allowed.
		if format == "html" {
			require.Equal(t, "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
				rec.Header().Get("Content-Security-Policy"))
			require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
			require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
		}
	}

	// Errors.
	for _, tc := range []struct {
		url  string
		code int
		err  string
	}{
		{"/api/v1/sla/report/NOPE", 404, `customer "NOPE": not found`},
		{"/api/v1/sla/report/GLOBEX?period=30d&month=2026-01", 400, "invalid range: give period or month, not both"},
		{"/api/v1/sla/report/GLOBEX?month=2026-13", 400, `invalid range: month "2026-13": want YYYY-MM`},
		{"/api/v1/sla/report/GLOBEX?month=2999-01", 400, "invalid range: month 2999-01 has not started"},
		{"/api/v1/sla/report/GLOBEX?period=400d", 400, "invalid range: period must be between 1m and 366d, got 400d"},
		{"/api/v1/sla/report/GLOBEX?period=abc", 400, `invalid range: period "abc": not a valid duration string: "abc"`},
		{"/api/v1/sla/report/GLOBEX?format=pdf", 400, `unknown format "pdf" (want one of json, md, csv, html)`},
		// A value of thousands of characters is quoted cut (limits.Quote).
		{"/api/v1/sla/report/GLOBEX?month=" + strings.Repeat("n", 5000), 400, `invalid range: month "` + strings.Repeat("n", 61) + `…": want YYYY-MM`},
		{"/api/v1/sla/report/GLOBEX?period=" + strings.Repeat("n", 5000), 400,
			`invalid range: period "` + strings.Repeat("n", 61) + `…": not a valid duration string: "` + strings.Repeat("n", 61) + `…"`},
	} {
		code, body := doGet(t, mux, tc.url)
		require.Equal(t, tc.code, code, tc.url)
		var env struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		require.Equal(t, tc.err, env.Error, tc.url)
	}
}

func TestPrometheusUnavailable(t *testing.T) {
	var cfg sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(configYAML), &cfg))
	specs, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	url := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 5*time.Second)
	require.NoError(t, err)
	mux := reportMux(t, cfg, specs, prom, nil)
	code, body := doGet(t, mux, "/api/v1/sla/report/ACME-001")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "Prometheus at "+url+" unavailable")
	require.Contains(t, body, "connection refused")

	mux = reportMux(t, cfg, specs, nil, nil)
	code, body = doGet(t, mux, "/api/v1/sla/report/ACME-001")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no Prometheus configured")

	// A contract naming an SLO that no spec defines is a configuration error.
	err = sla.NewReporter(nil).Update(cfg, nil, sla.Lookup(nil))
	require.EqualError(t, err, `sla: customer "ACME-001": service "api": SLO "availability" is not defined in the SLO specs (slos.spec_files)`)
}

func doGet(t *testing.T, h http.Handler, url string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return rec.Code, string(b)
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"no id", "customers: [{name: x}]", "sla: customer without id"},
		{"unknown field", "customers: [{id: A, servces: []}]", "field servces not found in type sla.plain"},
		{"no services", "customers: [{id: A}]", `sla: customer "A": no services`},
		{"no target", "customers: [{id: A, services: [{service: api}]}]", `sla: customer "A": service "api": no availability or latency target`},
		{"target 100", "customers: [{id: A, services: [{service: api, availability: {target: 100}}]}]", `sla: customer "A": service "api": availability target must be a percentage between 0 and 100 (exclusive), got 100`},
		{"twice", "customers: [{id: A, services: [{service: api, latency: {target: 9}}, {service: api, latency: {target: 9}}]}]", `sla: customer "A": service "api" is listed twice`},
		{"dup customer", "customers: [{id: A, services: [{service: api, latency: {target: 9}}]}, {id: A, services: [{service: api, latency: {target: 9}}]}]", `sla: customer "A" is defined twice`},
		{"bad label", "customers: [{id: A, label: 'a-b', services: [{service: api, latency: {target: 9}}]}]", `sla: customer "A": invalid label name "a-b"`},
		{"bad period", "customers: [{id: A, period: 400d, services: [{service: api, latency: {target: 9}}]}]", `sla: customer "A": period must be between 1m and 366d, got 400d`},
		{"bad credit", "customers: [{id: A, services: [{service: api, latency: {target: 9}}], credits: [{below: 99, credit: 0}]}]", `sla: customer "A": credits[0]: credit must be a percentage in (0, 100], got 0`},
		{"credit order", "customers: [{id: A, services: [{service: api, latency: {target: 9}}], credits: [{below: 99, credit: 10}, {below: 99.9, credit: 25}]}]",
			`sla: customer "A": credit tiers must grant more credit for lower availability: 10% below 99% but 25% below 99.9%`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
			dec.KnownFields(true)
			var c sla.Config
			err := dec.Decode(&c)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
	var c sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(configYAML), &c))
	cu, ok := c.Customer("ACME-001")
	require.True(t, ok)
	require.Equal(t, "customer", cu.Label)
	require.Equal(t, "availability", cu.Services[0].Availability.SLO)
	require.Equal(t, []sla.CreditTier{{Below: 99.9, Credit: 25}, {Below: 99.95, Credit: 10}}, cu.Credits)
}

// The renderings of a fixed report match the golden files (go test -update rewrites them).
func TestRenderGolden(t *testing.T) {
	ach := func(v float64) *float64 { return &v }
	r := &sla.Report{
		Customer: "GLOBEX", Name: `Globex <Inc> | "Ltd"`, Period: "2026-10",
		Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Services: map[string]sla.ServiceReport{
			"api": {
				Availability: &sla.Objective{Target: "99.99%", Achieved: "99.9306%", Status: sla.StatusMissed, SLO: "availability", Scope: "customer", TargetRatio: 0.9999, AchievedRatio: ach(0.999306), Credit: 10},
				Latency:      &sla.Objective{Target: "95%", Achieved: "97.2%", Status: sla.StatusMet, SLO: "latency", Scope: "customer", TargetRatio: 0.95, AchievedRatio: ach(0.972)},
			},
			"=cmd": {Availability: &sla.Objective{Target: "99.9%", Achieved: "n/a", Status: sla.StatusNoData, SLO: "availability", Scope: "service", TargetRatio: 0.999}},
		},
		Violations: 1, Credits: 10,
	}
	for _, format := range sla.Formats {
		t.Run(format, func(t *testing.T) {
			var b strings.Builder
			require.NoError(t, sla.Render(&b, r, format))
			golden := filepath.Join("testdata", "report."+format)
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), b.String())
		})
	}
	require.EqualError(t, sla.Render(io.Discard, r, "pdf"), `unknown format "pdf" (want one of json, md, csv, html)`)

	// The CSV's credit cell is empty where JSON leaves the credit out (no
	// data, or no credit earned), as the Markdown and HTML cells are.
	var b strings.Builder
	require.NoError(t, sla.Render(&b, r, "csv"))
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	require.NoError(t, err)
	credits := map[string]string{}
	for _, rec := range recs[1:] {
		credits[rec[9]] = rec[11] // status -> credit
	}
	require.Equal(t, map[string]string{sla.StatusNoData: "", sla.StatusMissed: "10%", sla.StatusMet: ""}, credits)
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	r, err := sla.ParseRange("", "2026-10", 30*24*time.Hour, now)
	require.NoError(t, err)
	require.Equal(t, sla.Range{Label: "2026-10", Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, r)
	r, err = sla.ParseRange("", "2026-11", 30*24*time.Hour, now)
	require.NoError(t, err)
	require.Equal(t, sla.Range{Label: "2026-11", Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: now, Partial: true}, r)
	r, err = sla.ParseRange("", "", 30*24*time.Hour, now)
	require.NoError(t, err)
	require.Equal(t, sla.Range{Label: "30d", Start: now.Add(-30 * 24 * time.Hour), End: now}, r)
}

// TestPercentNeverRoundsUp: the achieved figure a report shows never
// reaches a target the availability missed, nor a credit tier's bound it is
// below: 99.98999% is shown as 99.9899%, not 99.99% beside "target 99.99%,
// MISSED" and a credit for being below 99.99%.
func TestPercentNeverRoundsUp(t *testing.T) {
	for _, c := range []struct {
		ratio float64
		want  string
	}{
		{0.9998999, "99.9899%"},
		{0.99989999999, "99.9899%"},
		{0.99995, "99.995%"},
		{0.9999, "99.99%"},
		{0.9995, "99.95%"},
		{0.999, "99.9%"},
		{0.95, "95%"},
		{0.972, "97.2%"},
		{0.999306, "99.9306%"},
		{1, "100%"},
		{0.99999999, "99.9999%"},
		{0, "0%"},
	} {
		require.Equal(t, c.want, sla.Percent(c.ratio), "%v", c.ratio)
	}
}

// ratioOf is the ratio of a target percentage as a decimal reading gives
// it: 99.99 -> 0.9999 (99.99 / 100 is 0.9998999999999999).
func ratioOf(t *testing.T, pct float64) float64 {
	t.Helper()
	r, err := strconv.ParseFloat(strconv.FormatFloat(pct, 'f', -1, 64)+"e-2", 64)
	require.NoError(t, err)
	return r
}

// TestMarkdownCoverage: the Markdown report says how much of the range a
// young SLO's data covers as a time and a share; the share alone read
// "covers 0.0% of the period" for the demo's SLO, 15 minutes into a 30d
// report.
func TestMarkdownCoverage(t *testing.T) {
	end := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		span     time.Duration
		coverage float64
		want     string
	}{
		{"demo, 15m of 30d", 30 * 24 * time.Hour, 15.0 / (30 * 24 * 60), "covers 15m of the period (0.03%)"},
		{"seconds", 30 * 24 * time.Hour, 30.0 / (30 * 24 * 3600), "covers 30s of the period (under 0.01%)"},
		{"a third", 30 * 24 * time.Hour, 1.0 / 3, "covers 10d of the period (33.3%)"},
		{"a week", 7 * 24 * time.Hour, 0.5, "covers 3d12h of the period (50.0%)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cov := tc.coverage
			r := &sla.Report{Customer: "ACME-001", Name: "Acme", Period: "30d", Start: end.Add(-tc.span), End: end,
				Services: map[string]sla.ServiceReport{"api": {Availability: &sla.Objective{Target: "99.99%", Achieved: "1%",
					Status: sla.StatusMissed, SLO: "availability", Scope: "service", TargetRatio: 0.9999, Coverage: &cov}}}}
			var b strings.Builder
			require.NoError(t, sla.Render(&b, r, "md"))
			require.Contains(t, b.String(), "The data of api availability "+tc.want+": its figure is over that part.")
		})
	}
}
