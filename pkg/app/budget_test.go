package app

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
)

// The data behind TestBudgetsThroughSred: every series serves 600 requests a
// minute; errors come from the incidents below and from one constant stream.
const (
	appReqPerMinute = 600.0
	appBudget       = 0.001 // objective 99.9%
	appPeriod       = 30 * 24 * time.Hour
)

// appTarget is one series pair (good and bad requests) of a service, for a
// customer when the SLO is grouped by customer.
type appTarget struct {
	service, customer string
	// constPerMinute errors every minute of the data.
	constPerMinute float64
	incidents      []appIncident
}

// appIncident puts perMinute errors in each minute of (start, start+minutes].
type appIncident struct {
	start     time.Time
	minutes   int
	perMinute float64
}

func (i appIncident) end() time.Time { return i.start.Add(time.Duration(i.minutes) * time.Minute) }

// errorRatio computes by hand the share of failed requests of a target over
// (from, to]. Incidents must lie wholly inside or outside the range.
func (tg appTarget) errorRatio(t *testing.T, from, to time.Time) float64 {
	t.Helper()
	const margin = 10 * time.Minute
	minutes := to.Sub(from).Minutes()
	errs := tg.constPerMinute * minutes
	for _, in := range tg.incidents {
		switch {
		case !in.start.Before(from.Add(margin)) && !in.end().After(to.Add(-margin)):
			errs += float64(in.minutes) * in.perMinute
		case !in.end().After(from.Add(-margin)) || !in.start.Before(to.Add(margin)):
		default:
			t.Fatalf("incident %+v of %s/%s straddles %s - %s: the figure would not be exact", in, tg.service, tg.customer, from, to)
		}
	}
	return errs / (appReqPerMinute * minutes)
}

const appSpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: %[1]s
slos:
  - name: availability
    objective: 99.9
    period: 30d
%[2]s    sli:
      events:
        errorSelector: http_requests_total{job="%[1]s",code=~"5.."}
        totalSelector: http_requests_total{job="%[1]s"}
`

const appSLA = `
sla:
  customers:
    - id: ACME-001
      name: Acme Corp
      label_value: acme
      services:
        - service: api
          availability: {target: 99.95}
        - service: web
          availability: {target: 99.9}
      credits:
        - {below: 99.95, credit: 10}
        - {below: 99.9, credit: 25}
    - id: GLOBEX
      name: Globex
      label_value: globex
      services:
        - service: api
          availability: {target: 99.99}
      credits:
        - {below: 99.99, credit: 10}
        - {below: 99.9, credit: 25}
`

const appOverrideToken = "emergency-override-0123456789"

// budgetFixture is a real Prometheus holding the data of appTargets and the
// rules generated from the spec files in specDir.
type budgetFixture struct {
	prom    *budgettest.Server
	specDir string
	targets []appTarget
	month   time.Time // first day of the previous calendar month
}

func (f *budgetFixture) target(service, customer string) appTarget {
	for _, tg := range f.targets {
		if tg.service == service && tg.customer == customer {
			return tg
		}
	}
	panic("no target " + service + "/" + customer)
}

// startBudgetPrometheus backfills a Prometheus with data that runs from
// before the previous calendar month to two hours from now, so that sred,
// which reads budgets at the real current time, sees figures that do not
// depend on the second the test runs. (Prometheus evaluates the loaded
// rules too, but discards the results: they fall before the end of the
// backfilled blocks, "out of bounds". Every recording sred reads is the
// backfilled one.) The data:
//
//   - web: no errors (green, 100% left);
//   - checkout: 0.375 errors a minute all along: 62.5% of the budget
//     consumed over any 30 days (yellow) and a burn rate of 0.625 over every
//     window;
//   - payments: 21600 errors 8 days ago: 83.33% consumed (red);
//   - api, customer globex: 38880 errors 10 days ago: 150% (exhausted);
//   - api, customer acme: 7200 errors 5 days ago (27.78%) and 1200 in the
//     previous calendar month (green either way).
func startBudgetPrometheus(t *testing.T) *budgetFixture {
	t.Helper()
	now := time.Now().UTC()
	end := now.Truncate(time.Hour).Add(2 * time.Hour)
	today := now.Truncate(24 * time.Hour)
	noon := func(daysAgo int) time.Time { return today.AddDate(0, 0, -daysAgo).Add(12 * time.Hour) }
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	month := thisMonth.AddDate(0, -1, 0)
	// The previous month's incident lies well away from the edge of the
	// current 30-day window, so both the rolling and the monthly figures are
	// exact whatever the date.
	monthly := month.AddDate(0, 0, 9).Add(12 * time.Hour)
	if d := monthly.Sub(now.Add(-appPeriod)); d > -2*24*time.Hour && d < 2*24*time.Hour {
		monthly = month.AddDate(0, 0, 19).Add(12 * time.Hour)
	}
	f := &budgetFixture{month: month, targets: []appTarget{
		{service: "web"},
		{service: "checkout", constPerMinute: 0.375},
		{service: "payments", incidents: []appIncident{{noon(8), 72, 300}}},
		{service: "api", customer: "globex", incidents: []appIncident{{noon(10), 72, 540}}},
		{service: "api", customer: "acme", incidents: []appIncident{{noon(5), 72, 100}, {monthly, 60, 20}}},
	}}

	f.specDir = filepath.Join(t.TempDir(), "slos")
	require.NoError(t, os.MkdirAll(f.specDir, 0o755))
	var specs []*slo.Spec
	for _, svc := range []struct{ name, extra string }{
		{"api", "    groupBy: [customer]\n"}, {"checkout", ""}, {"payments", ""}, {"web", ""},
	} {
		text := fmt.Sprintf(appSpec, svc.name, svc.extra)
		require.NoError(t, os.WriteFile(filepath.Join(f.specDir, svc.name+".yml"), []byte(text), 0o644))
		sp, err := slo.Parse([]byte(text), svc.name+".yml")
		require.NoError(t, err)
		specs = append(specs, sp...)
	}

	start := end.Add(-appPeriod - 24*time.Hour)
	if month.Before(start) {
		start = month
	}
	start = start.Add(-2 * time.Hour)
	var series []budgettest.Series
	for _, tg := range f.targets {
		tg := tg
		errInc := func(ts time.Time) float64 {
			e := tg.constPerMinute
			for _, in := range tg.incidents {
				if ts.After(in.start) && !ts.After(in.end()) {
					e += in.perMinute
				}
			}
			return e
		}
		lbl := func(code string) map[string]string {
			l := map[string]string{"job": tg.service, "code": code}
			if tg.customer != "" {
				l["customer"] = tg.customer
			}
			return l
		}
		series = append(series,
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("200"), Start: start, Initial: 1e6,
				Inc: func(ts time.Time) float64 { return appReqPerMinute - errInc(ts) }},
			budgettest.Series{Metric: "http_requests_total", Labels: lbl("500"), Start: start, Initial: 1e6, Inc: errInc})
	}
	// Recent covers the chart history (1h) read at any time of the test.
	f.prom = budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end, Recent: 4 * time.Hour})
	return f
}

func nearPtr(t *testing.T, want float64, got *float64, what string) {
	t.Helper()
	require.NotNil(t, got, what)
	require.InDelta(t, want, *got, 1e-9*math.Max(1, math.Abs(want)), what)
}

// TestBudgetsThroughSred runs the whole sred (every module, its real HTTP
// mux and goroutines) on SQLite and on PostgreSQL against a real Prometheus
// holding known data and the generated rules, and checks the budget, gate
// and SLA answers and the sre_slo_* metrics against figures computed here
// by hand; then stops Prometheus and checks that sred says so.
func TestBudgetsThroughSred(t *testing.T) {
	f := startBudgetPrometheus(t)
	config := fmt.Sprintf(`prometheus:
  url: %s
slos:
  spec_files: [%s]
  poll_interval: 1s
  history_range: 1h
  history_step: 5m
  gate:
    override_tokens: [%s]
%s`, f.prom.URL, f.specDir, appOverrideToken, appSLA)

	urls := map[string]string{}
	backends := []string{"sqlite", "postgres"}
	for _, backend := range backends {
		_, srv := runApp(t, backend, config, nil)
		urls[backend] = srv.URL
	}
	for _, backend := range backends {
		url := urls[backend]
		t.Run(backend, func(t *testing.T) {
			t.Run("slos", func(t *testing.T) { checkSLOList(t, f, url) })
			t.Run("slo detail", func(t *testing.T) { checkSLODetail(t, f, url) })
			t.Run("gate", func(t *testing.T) { checkGate(t, f, url) })
			t.Run("sla", func(t *testing.T) { checkSLAReports(t, f, url) })
			t.Run("metrics", func(t *testing.T) { checkBudgetMetrics(t, f, url) })
		})
	}

	// Prometheus goes away: every answer says so, the gate fails closed
	// (the default), the poller reports the failure and sred keeps serving.
	f.prom.Stop()
	for _, backend := range backends {
		url := urls[backend]
		t.Run(backend+" without prometheus", func(t *testing.T) { checkPrometheusDown(t, f, url) })
	}
}

// appWindows are the burn-rate windows recorded for a 30d SLO.
var appWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

// appStates are the policy states of the data (default thresholds).
var appStates = map[string]slo.BudgetState{
	"web/":       slo.BudgetGreen,
	"checkout/":  slo.BudgetYellow,
	"payments/":  slo.BudgetRed,
	"api/globex": slo.BudgetExhausted,
	"api/acme":   slo.BudgetGreen,
}

// remainingAt computes by hand the share of budget left over the 30 days
// before the last rule evaluation at or before at.
func remainingAt(t *testing.T, tg appTarget, at time.Time) float64 {
	t.Helper()
	to := at.Truncate(time.Minute)
	return 1 - tg.errorRatio(t, to.Add(-appPeriod), to)/appBudget
}

// checkStatus compares a status answered by sred with the figures computed
// by hand from the data at the status's time.
func checkStatus(t *testing.T, tg appTarget, st budget.Status) {
	t.Helper()
	to := st.Time.Truncate(time.Minute)
	ratio := tg.errorRatio(t, to.Add(-appPeriod), to)
	rem := 1 - ratio/appBudget
	total := appReqPerMinute / 60 * appPeriod.Seconds()
	budgetMinutes := appBudget * appPeriod.Minutes() // 43.2
	require.Equal(t, appStates[tg.service+"/"+tg.customer], st.State)
	require.Equal(t, 0.999, st.Objective)
	require.Equal(t, "30d", st.Period)
	require.Equal(t, "events", st.SLIKind)
	nearPtr(t, 1-ratio, st.SLIAchieved, "SLI achieved")
	require.InDelta(t, appBudget, st.Budget.Total, 1e-15)
	require.InDelta(t, budgetMinutes, st.Budget.TotalMinutes, 1e-9)
	nearPtr(t, rem, st.Budget.RemainingRatio, "remaining ratio")
	nearPtr(t, 1-rem, st.Budget.ConsumedRatio, "consumed ratio")
	nearPtr(t, rem*budgetMinutes, st.Budget.RemainingMinutes, "remaining minutes")
	nearPtr(t, (1-rem)*budgetMinutes, st.Budget.ConsumedMinutes, "consumed minutes")
	nearPtr(t, total, st.Budget.TotalEvents, "total events")
	nearPtr(t, ratio*total, st.Budget.BadEvents, "bad events")
	nearPtr(t, appBudget*total, st.Budget.AllowedBadEvents, "allowed bad events")
	nearPtr(t, appBudget*total-ratio*total, st.Budget.RemainingBadEvents, "remaining bad events")

	require.Len(t, st.BurnRates, len(appWindows))
	burn := map[string]float64{}
	for i, w := range appWindows {
		name := model.Duration(w).String()
		want := tg.errorRatio(t, to.Add(-w), to) / appBudget
		burn[name] = want
		require.Equal(t, name, st.BurnRates[i].Window)
		nearPtr(t, want, st.BurnRates[i].Rate, "burn rate over "+name)
	}

	// The forecast uses the burn over 1h: R x period / B seconds left.
	fc := st.Forecast
	require.Equal(t, "1h", fc.Window)
	switch b := burn["1h"]; {
	case rem <= 0:
		require.Equal(t, "budget exhausted", fc.Message)
		nearPtr(t, 0, fc.SecondsLeft, "seconds left")
		require.Nil(t, fc.ExhaustedAt)
	case b == 0:
		require.Equal(t, "not burning over 1h", fc.Message)
		require.Nil(t, fc.SecondsLeft)
		require.Nil(t, fc.ExhaustedAt)
	default:
		secs := rem * appPeriod.Seconds() / b
		nearPtr(t, secs, fc.SecondsLeft, "seconds left")
		require.NotNil(t, fc.ExhaustedAt)
		require.Equal(t, st.Time.Add(time.Duration(secs*float64(time.Second))).Truncate(time.Second), fc.ExhaustedAt.UTC())
	}
}

func statusKey(st budget.Status) string { return st.Service + "/" + st.Group["customer"] }

func checkSLOList(t *testing.T, f *budgetFixture, url string) {
	var list budget.SLOList
	code, env := getJSON(t, url+"/api/v1/slos", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, list.SLOs, len(f.targets))
	seen := map[string]bool{}
	for _, st := range list.SLOs {
		require.Equal(t, "availability", st.SLO)
		require.Equal(t, list.Time, st.Time)
		require.WithinDuration(t, time.Now(), st.Time, time.Minute)
		seen[statusKey(st)] = true
		t.Run(statusKey(st), func(t *testing.T) { checkStatus(t, f.target(st.Service, st.Group["customer"]), st) })
	}
	require.Len(t, seen, len(f.targets))

	// By hand, independent of the date: checkout has 37.5% left and runs
	// out in 0.375 x 30d / 0.625 = 18 days; globex has overspent by half.
	for _, st := range list.SLOs {
		switch statusKey(st) {
		case "checkout/":
			nearPtr(t, 0.375, st.Budget.RemainingRatio, "checkout remaining")
			nearPtr(t, 18*24*3600, st.Forecast.SecondsLeft, "checkout forecast")
		case "api/globex":
			nearPtr(t, -0.5, st.Budget.RemainingRatio, "globex remaining")
		}
	}

	// ?service= filters.
	list = budget.SLOList{}
	code, env = getJSON(t, url+"/api/v1/slos?service=api", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, list.SLOs, 2)
	code, env = getJSON(t, url+"/api/v1/slos?time=yesterday", nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, `time: cannot parse "yesterday" as an RFC 3339 time or a Unix timestamp`, env.Error)
}

func checkSLODetail(t *testing.T, f *budgetFixture, url string) {
	var d budget.Detail
	// The poller records the first state at its first pass.
	waitFor(t, func() bool {
		d = budget.Detail{}
		code, _ := getJSON(t, url+"/api/v1/slos/checkout/availability", nil, &d)
		return code == http.StatusOK && len(d.Events) > 0
	}, "no budget event recorded for checkout")
	require.Len(t, d.Statuses, 1)
	checkStatus(t, f.target("checkout", ""), d.Statuses[0])
	var windows []string
	for _, w := range appWindows {
		windows = append(windows, model.Duration(w).String())
	}
	require.Equal(t, windows, d.Windows)
	require.Len(t, d.Events, 1)
	ev := d.Events[0]
	require.Equal(t, budget.StateUnknown, ev.From)
	require.Equal(t, slo.BudgetYellow, ev.To)
	nearPtr(t, 0.375, ev.Remaining, "remaining at the state change")
	require.Equal(t, "error budget of checkout/availability is yellow (37.50% remaining)", ev.Message)

	// History: remaining ratio and the 1h burn rate, every 5m over the last
	// hour; checkout's steady errors keep both flat.
	require.Len(t, d.History, 2)
	for _, h := range d.History {
		want := map[string]float64{"remaining_ratio": 0.375, "burn_rate": 0.625}[h.Metric]
		require.NotZero(t, want, h.Metric)
		require.Len(t, h.Points, 13, h.Metric)
		for _, p := range h.Points {
			require.InDelta(t, want, p[1], 1e-9, "%s at %v", h.Metric, p[0])
		}
		last := time.Unix(int64(h.Points[12][0]), 0)
		require.WithinDuration(t, d.Statuses[0].Time, last, time.Second)
	}
	require.Equal(t, "1h", d.History[1].Window)

	// An SLO grouped by customer answers one status per customer.
	d = budget.Detail{}
	code, env := getJSON(t, url+"/api/v1/slos/api/availability", nil, &d)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, d.Statuses, 2)
	for _, st := range d.Statuses {
		checkStatus(t, f.target("api", st.Group["customer"]), st)
	}
	require.Len(t, d.History, 4)

	code, env = getJSON(t, url+"/api/v1/slos/checkout/latency", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `SLO "latency" of service "checkout": not found`, env.Error)
}

func checkGate(t *testing.T, f *budgetFixture, url string) {
	pct := func(service, customer string) string {
		return fmt.Sprintf("%.2f%%", remainingAt(t, f.target(service, customer), time.Now())*100)
	}
	for _, tc := range []struct {
		query   string
		allowed bool
		state   slo.BudgetState
		reason  string
	}{
		{"service=web", true, slo.BudgetGreen,
			"normal change allowed: error budget of SLO availability is green (100.00% remaining): normal operations"},
		{"service=checkout", true, slo.BudgetYellow,
			"normal change allowed: error budget of SLO availability is yellow (37.50% remaining): reduce deployment frequency"},
		{"service=payments", false, slo.BudgetRed,
			"normal change denied: error budget of SLO availability is red (" + pct("payments", "") + " remaining): freeze non-critical changes"},
		{"service=payments&change=critical", true, slo.BudgetRed,
			"critical change allowed: error budget of SLO availability is red (16.67% remaining): freeze non-critical changes"},
		// api's worst group decides: globex is exhausted.
		{"service=api", false, slo.BudgetExhausted,
			`normal change denied: error budget of SLO availability{customer="globex"} is exhausted (-50.00% remaining): emergency changes only`},
		{"service=api&change=critical", false, slo.BudgetExhausted,
			`critical change denied: error budget of SLO availability{customer="globex"} is exhausted (-50.00% remaining): emergency changes only`},
	} {
		var d budget.Decision
		code, env := getJSON(t, url+"/api/v1/gate?"+tc.query, nil, &d)
		require.Equal(t, http.StatusOK, code, "%s: %s", tc.query, env.Error)
		require.Equal(t, tc.allowed, d.Allowed, tc.query)
		require.Equal(t, map[bool]string{true: "allow", false: "deny"}[tc.allowed], d.Answer, tc.query)
		require.Equal(t, tc.state, d.State, tc.query)
		require.Equal(t, tc.reason, d.Reason, tc.query)
		require.Equal(t, "availability", d.SLO, tc.query)
		require.False(t, d.Override, tc.query)
		require.Empty(t, d.PrometheusError, tc.query)
	}

	// The emergency override ships anyway and is recorded.
	var d budget.Decision
	code, env := getJSON(t, url+"/api/v1/gate?service=api&change=critical&reason=rollback+of+bad+release&actor=alice",
		map[string]string{budget.OverrideHeader: appOverrideToken}, &d)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.True(t, d.Allowed)
	require.True(t, d.Override)
	require.Equal(t, "rollback of bad release", d.OverrideReason)
	require.Equal(t, `emergency override: critical change denied: error budget of SLO availability{customer="globex"} is exhausted (-50.00% remaining): emergency changes only`, d.Reason)
	require.NotZero(t, d.ID, "the decision is stored")

	code, env = getJSON(t, url+"/api/v1/gate?service=api&reason=x", map[string]string{budget.OverrideHeader: "not-the-token-0123456789"}, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "invalid emergency override token", env.Error)
	// The refused token is in the audit log, though the gate is a GET.
	var audit []struct {
		Actor, Method, Route, Path string
		Status                     int
	}
	code, env = getJSON(t, url+"/api/v1/audit", nil, &audit)
	require.Equal(t, http.StatusOK, code, env.Error)
	var refused []string
	for _, e := range audit {
		if e.Route == "GET /api/v1/gate" {
			refused = append(refused, fmt.Sprintf("%s %s %s %d", e.Actor, e.Method, e.Path, e.Status))
		}
	}
	require.Equal(t, []string{"anonymous GET /api/v1/gate 403"}, refused, "only the refused override is recorded")
	// Wrong tokens are limited per client and principal: after 10, every
	// token is refused unchecked, the right one included, on the gate and
	// on POST /api/v1/changes, which takes the same header.
	for i := 1; i < 10; i++ {
		code, env = getJSON(t, url+"/api/v1/gate?service=api&reason=x", map[string]string{budget.OverrideHeader: fmt.Sprintf("guess-%018d", i)}, nil)
		require.Equal(t, http.StatusForbidden, code, env.Error)
	}
	req, err := http.NewRequest(http.MethodGet, url+"/api/v1/gate?service=api&reason=x", nil)
	require.NoError(t, err)
	req.Header.Set(budget.OverrideHeader, appOverrideToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	req, err = http.NewRequest(http.MethodPost, url+"/api/v1/changes", strings.NewReader(`{"service": "api", "override_reason": "hotfix"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(budget.OverrideHeader, appOverrideToken)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var cenv struct{ ErrorType, Error string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&cenv))
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, cenv.Error)
	require.Equal(t, "too_many_requests", cenv.ErrorType)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	code, env = getJSON(t, url+"/api/v1/gate?service=search", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `service "search" has no SLO: not found`, env.Error)
	code, env = getJSON(t, url+"/api/v1/gate", nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "missing parameter service", env.Error)
}

// slaStatus and slaCredit apply a contract by hand.
func slaStatus(achieved, target float64) string {
	if achieved*100 >= target {
		return sla.StatusMet
	}
	return sla.StatusMissed
}

func slaCredit(achieved float64, tiers map[float64]float64) float64 {
	c := 0.0
	for below, credit := range tiers {
		if achieved*100 < below {
			c = math.Max(c, credit)
		}
	}
	return c
}

func checkSLAReports(t *testing.T, f *budgetFixture, url string) {
	type contract struct {
		service, customer string // customer "" is a service-wide figure
		target            float64
	}
	contracts := map[string][]contract{
		"ACME-001": {{"api", "acme", 99.95}, {"web", "", 99.9}},
		"GLOBEX":   {{"api", "globex", 99.99}},
	}
	tiers := map[string]map[float64]float64{
		"ACME-001": {99.95: 10, 99.9: 25},
		"GLOBEX":   {99.99: 10, 99.9: 25},
	}
	month := f.month.Format("2006-01")
	for _, tc := range []struct{ customer, query, period string }{
		{"ACME-001", "period=30d", "30d"},
		{"GLOBEX", "period=30d", "30d"},
		{"ACME-001", "month=" + month, month},
		{"GLOBEX", "month=" + month, month},
	} {
		t.Run(tc.customer+" "+tc.query, func(t *testing.T) {
			var r sla.Report
			code, env := getJSON(t, url+"/api/v1/sla/report/"+tc.customer+"?"+tc.query, nil, &r)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, tc.customer, r.Customer)
			require.Equal(t, tc.period, r.Period)
			require.False(t, r.Partial)
			if tc.period == "30d" {
				require.Equal(t, appPeriod, r.End.Sub(r.Start))
				require.WithinDuration(t, time.Now(), r.End, time.Minute)
			} else {
				require.Equal(t, f.month, r.Start)
				require.Equal(t, f.month.AddDate(0, 1, 0), r.End)
			}
			violations, credits := 0, 0.0
			require.Len(t, r.Services, len(contracts[tc.customer]))
			for _, c := range contracts[tc.customer] {
				want := 1 - f.target(c.service, c.customer).errorRatio(t, r.Start, r.End)
				got := r.Services[c.service].Availability
				require.NotNil(t, got, c.service)
				nearPtr(t, want, got.AchievedRatio, c.service+" achieved")
				require.Equal(t, sla.Percent(want), got.Achieved)
				require.Equal(t, sla.Percent(c.target/100), got.Target)
				require.Equal(t, slaStatus(want, c.target), got.Status, "%s achieved %v", c.service, want)
				require.Equal(t, map[bool]string{true: "customer", false: "service"}[c.customer != ""], got.Scope)
				require.Equal(t, slaCredit(want, tiers[tc.customer]), got.Credit)
				require.Nil(t, r.Services[c.service].Latency)
				if got.Status == sla.StatusMissed {
					violations++
				}
				credits = math.Max(credits, got.Credit)
			}
			require.Equal(t, violations, r.Violations)
			require.Equal(t, credits, r.Credits)
		})
	}

	// By hand, independent of the date: over any 30 days globex lost 38880
	// of 25,920,000 requests: 99.85%, below 99.9%, a 25% credit.
	var r sla.Report
	code, env := getJSON(t, url+"/api/v1/sla/report/GLOBEX?period=30d", nil, &r)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Equal(t, "99.85%", r.Services["api"].Availability.Achieved)
	require.Equal(t, sla.StatusMissed, r.Services["api"].Availability.Status)
	require.Equal(t, 25.0, r.Credits)
	require.Equal(t, 1, r.Violations)

	// The Markdown rendering of the same report, through the server.
	resp, err := http.Get(url + "/api/v1/sla/report/GLOBEX?period=30d&format=md")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), "| api | availability (availability) | 99.99% | 99.85% | MISSED | customer | 25% |")

	code, env = getJSON(t, url+"/api/v1/sla/report/INITECH?period=30d", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, `customer "INITECH": not found`, env.Error)
	code, env = getJSON(t, url+"/api/v1/sla/report/GLOBEX?month="+month+"&period=30d", nil, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "invalid range: give period or month, not both", env.Error)
}

func checkBudgetMetrics(t *testing.T, f *budgetFixture, url string) {
	var mfs map[string]*dto.MetricFamily
	var body []byte
	waitFor(t, func() bool {
		mfs, body = scrape(t, url)
		v, ok := metricValue(mfs, "sre_slo_budget_poll_success", nil)
		return ok && v == 1
	}, "the budget poller did not succeed")
	last, ok := metricValue(mfs, "sre_slo_budget_last_poll_success_timestamp_seconds", nil)
	require.True(t, ok)
	polled := time.UnixMilli(int64(last * 1000))
	require.WithinDuration(t, time.Now(), polled, time.Minute)

	for _, tg := range f.targets {
		group := ""
		if tg.customer != "" {
			group = `customer="` + tg.customer + `"`
		}
		what := tg.service + "{" + group + "}"
		lbl := func(kv ...string) map[string]string {
			l := map[string]string{"service": tg.service, "slo": "availability", "group": group}
			for i := 0; i < len(kv); i += 2 {
				l[kv[i]] = kv[i+1]
			}
			return l
		}
		get := func(name string, kv ...string) float64 {
			t.Helper()
			v, ok := metricValue(mfs, name, lbl(kv...))
			require.True(t, ok, "%s%v missing", name, lbl(kv...))
			return v
		}
		// The poll happened within the same minute's data as polled.
		to := polled.Truncate(time.Minute)
		ratio := tg.errorRatio(t, to.Add(-appPeriod), to)
		rem := 1 - ratio/appBudget
		require.InDelta(t, rem, get("sre_slo_error_budget_remaining_ratio"), 1e-9, what)
		require.InDelta(t, 1-rem, get("sre_slo_error_budget_consumed_ratio"), 1e-9, what)
		require.InDelta(t, 1-ratio, get("sre_slo_sli_achieved_ratio"), 1e-12, what)
		require.Equal(t, 0.999, get("sre_slo_objective_ratio"), what)
		for _, w := range appWindows {
			name := model.Duration(w).String()
			require.InDelta(t, tg.errorRatio(t, to.Add(-w), to)/appBudget, get("sre_slo_burn_rate", "window", name), 1e-9, what+" "+name)
		}
		want := appStates[tg.service+"/"+tg.customer]
		for _, s := range budget.States {
			require.Equal(t, map[bool]float64{true: 1, false: 0}[s == want], get("sre_slo_budget_policy_state", "state", string(s)), "%s %s", what, s)
		}
		// State changes are counted per SLO (not per group): the first
		// poll entered each group's state once.
		changes, ok := metricValue(mfs, "sre_slo_budget_state_changes_total", map[string]string{"service": tg.service, "slo": "availability", "state": string(want)})
		require.True(t, ok, what)
		require.Equal(t, 1.0, changes, what)
		burn1h := tg.errorRatio(t, to.Add(-time.Hour), to) / appBudget
		exh, ok := metricValue(mfs, "sre_slo_error_budget_exhaustion_seconds", lbl())
		switch {
		case rem <= 0:
			require.True(t, ok, what)
			require.Equal(t, 0.0, exh, what)
		case burn1h == 0:
			require.False(t, ok, "%s does not burn: no exhaustion forecast", what)
		default:
			require.True(t, ok, what)
			require.InDelta(t, rem*appPeriod.Seconds()/burn1h, exh, 1e-6, what)
		}
	}
	// The gate's answers so far (checkGate ran before): one override.
	v, ok := metricValue(mfs, "sre_gate_decisions_total", map[string]string{"decision": "allow", "change": "critical", "override": "true"})
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, ok = metricValue(mfs, "sre_gate_decisions_total", map[string]string{"decision": "deny", "change": "normal", "override": "false"})
	require.True(t, ok)
	require.Equal(t, 2.0, v)

	// A fully wired sred with budgets exports only catalogued metrics, and
	// promtool accepts the exposition.
	checkCatalogue(t, mfs, body)
}

func checkPrometheusDown(t *testing.T, f *budgetFixture, url string) {
	unavailable := func(t *testing.T, env apiEnvelope) {
		t.Helper()
		require.Equal(t, "unavailable", env.ErrorType)
		require.Contains(t, env.Error, "Prometheus at "+f.prom.URL+" unavailable: query ")
		require.Contains(t, env.Error, "connection refused")
	}
	for _, path := range []string{
		"/api/v1/slos",
		"/api/v1/slos/checkout/availability",
		"/api/v1/sla/report/ACME-001?period=30d",
		"/api/v1/sla/report/GLOBEX?month=" + f.month.Format("2006-01"),
	} {
		code, env := getJSON(t, url+path, nil, nil)
		require.Equal(t, http.StatusServiceUnavailable, code, path)
		unavailable(t, env)
	}
	// An unknown SLO is still a 404: it does not need Prometheus.
	code, _ := getJSON(t, url+"/api/v1/slos/checkout/latency", nil, nil)
	require.Equal(t, http.StatusNotFound, code)

	// The gate fails closed (gate.on_prometheus_error defaults to deny).
	var d budget.Decision
	code, env := getJSON(t, url+"/api/v1/gate?service=web", nil, &d)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.False(t, d.Allowed)
	require.Equal(t, "deny", d.Answer)
	require.Equal(t, budget.StateUnknown, d.State)
	require.Contains(t, d.PrometheusError, "connection refused")
	require.True(t, strings.HasPrefix(d.Reason, "cannot read error budgets, gate fails closed (deny): "), d.Reason)

	// The poller reports the failure; sred stays healthy and ready.
	waitFor(t, func() bool {
		mfs, _ := scrape(t, url)
		v, ok := metricValue(mfs, "sre_slo_budget_poll_success", nil)
		return ok && v == 0
	}, "the budget poller did not report the failure")
	for _, path := range []string{"/-/healthy", "/-/ready"} {
		resp, err := http.Get(url + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}
