package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/status"
	tu "github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/testutil/browser"
)

// consoleSpec is a 99% SLO over a day. Its budget alert fires without
// delay once 80% of the budget is gone (red); the page tiers keep the
// defaults (5.76x over 5m/5m, no for:).
const consoleSpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: checkout
slos:
  - name: availability
    objective: 99
    period: 1d
    sli:
      events:
        errorSelector: http_requests_total{job="checkout",code=~"5.."}
        totalSelector: http_requests_total{job="checkout"}
`

// TestConsoleBrowserPrometheus drives the console of a whole sred in
// headless Chromium while a real Prometheus evaluates the generated rules
// of a checkout SLO over a target whose counters the test steers:
//
//  1. good traffic only: the home page shows the SLO green;
//  2. 0.95% errors against a 1% budget: without a reload, the page first
//     updates the SLO's numbers in place (budget.updated), then shows it
//     red (budget.state_changed); Prometheus' budget alert rule goes
//     pending (its for: is 5m) and the home page marks it; /status shows
//     Checkout in degraded performance;
//  3. 50% errors: the page_fast burn-rate alert fires in Prometheus; the
//     home page marks the service firing, and the SLO page lists every
//     generated alert rule with the state the rules API reports.
//
// Screenshots of the home page, the SLO page and /status are written to
// $SRE_TEST_ARTIFACTS (docs/images holds copies).
func TestConsoleBrowserPrometheus(t *testing.T) {
	browser.Chromium(t) // before the long set-up
	dir := t.TempDir()

	// The target: each scrape adds good and bad requests as the phase says.
	var good, bad atomic.Int64
	good.Store(10)
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"code"})
	reg.MustRegister(reqs)
	reqs.WithLabelValues("500").Add(0) // the error series exists from the start
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.WithLabelValues("200").Add(float64(good.Load()))
		reqs.WithLabelValues("500").Add(float64(bad.Load()))
		metrics.ServeHTTP(w, r)
	}))
	defer target.Close()

	specs, err := slo.Parse([]byte(consoleSpec), "checkout.yml")
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	promFiles := map[string]string{}
	promCfg := "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files:\n"
	for _, f := range files {
		b, err := f.Marshal()
		require.NoError(t, err)
		promFiles[f.Name] = string(b)
		promCfg += "  - " + f.Name + "\n"
	}
	promCfg += fmt.Sprintf("scrape_configs:\n  - job_name: checkout\n    static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(target.URL, "http://"))
	prom := tu.StartPrometheus(t, tu.PrometheusOptions{Config: promCfg, Files: promFiles})

	specDir := filepath.Join(dir, "slos")
	require.NoError(t, os.MkdirAll(specDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(specDir, "checkout.yml"), []byte(consoleSpec), 0o644))
	a, srv := runApp(t, "sqlite", fmt.Sprintf(`prometheus:
  url: %s
webhook:
  bearer_token: console-hook-token
slos:
  spec_files: [%s]
  poll_interval: 1s
status_page:
  title: Example status
  components:
    - {name: Checkout, description: Buying things, services: [checkout]}
    - {name: Search, services: [search]}
`, prom.URL, specDir), nil)

	// Alertmanager delivers to this sred; Prometheus sends it its alerts
	// (its configuration reloaded now that the addresses are known).
	am := tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: fmt.Sprintf(`route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: sred
    webhook_configs:
      - url: %s/api/v1/webhook/alertmanager
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials: console-hook-token}
`, srv.URL)})
	promCfg += fmt.Sprintf("alerting:\n  alertmanagers:\n    - static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(am.URL, "http://"))
	require.NoError(t, os.WriteFile(filepath.Join(prom.Dir, "prometheus.yml"), []byte(promCfg), 0o644))
	resp, err := http.Post(prom.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "reload Prometheus")

	slos := func() []budget.Status {
		var list budget.SLOList
		code, env := getJSON(t, srv.URL+"/api/v1/slos", nil, &list)
		require.Equal(t, http.StatusOK, code, env.Error)
		return list.SLOs
	}
	waitFor(t, func() bool {
		sts := slos()
		return len(sts) == 1 && sts[0].State == slo.BudgetGreen
	}, "the SLO never had data (green)")
	// The home page shows the budget poller's last answer.
	waitFor(t, func() bool {
		code, body := fetch(t, http.MethodGet, srv.URL+"/", nil, nil)
		require.Equal(t, http.StatusOK, code, body)
		return strings.Contains(body, `data-slo="checkout/availability" data-group="" data-state="green"`)
	}, "the home page never showed the SLO green")

	// A safety net only: every step waits on a condition.
	tab, closeBrowser := browser.Tab(t, 3*time.Minute)
	defer closeBrowser()
	arts := browser.Artifacts(t)
	shoot := func(name string) { t.Helper(); browser.Screenshot(t, tab, arts, name) }

	// 1. Green. A marker in the page's window proves later that the page
	// was never reloaded.
	row := `tr.slo[data-slo="checkout/availability"]`
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`))))
	state, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.sredMarker = "same page"; document.querySelector('`+row+`').dataset.state`))
	require.NoError(t, err)
	require.Equal(t, "green", state)
	before, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector('`+row+` .remaining').textContent`))
	require.NoError(t, err)
	require.Regexp(t, `^100% over [0-9]+m of 1d$`, before, "the budget left of data minutes old says over how much of the period")

	// 2. 0.95% errors: budget.updated changes the numbers in place, then
	// the row turns red.
	good.Store(9905)
	bad.Store(95)
	require.NoError(t, chromedp.Do(tab, chromedp.WaitReady(chromedp.CSS(`body[data-values-updated]`))))
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(row+`[data-state="red"]`))))
	marker, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.sredMarker`))
	require.NoError(t, err)
	require.Equal(t, "same page", marker, "the home page was reloaded instead of updated live")
	remaining, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(row+` .remaining`)))
	require.NoError(t, err)
	require.NotRegexp(t, `^100%`, strings.TrimSpace(remaining))
	require.Regexp(t, ` over [0-9]+m of 1d$`, strings.TrimSpace(remaining), "the live update keeps the coverage")
	// The budget alert (80% consumed, for: 5m) is pending in Prometheus.
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(row+` .alert.rule-pending[data-tier="budget"]`))))
	shoot("console-home-slo-red.jpg")

	// /status: Checkout is degraded (its budget is red), Search is not.
	waitFor(t, func() bool {
		var p status.Page
		resp, err := http.Get(srv.URL + "/status.json")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		return len(p.Components) == 2 && p.Components[0].Status == status.Degraded
	}, "/status.json never showed Checkout degraded")
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/status"), chromedp.WaitVisible(chromedp.ID("components"))))
	states, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#components .component")).map(c => c.querySelector("h3").textContent + ": " + c.querySelector(".state").textContent)`))
	require.NoError(t, err)
	require.Equal(t, []string{"Checkout: Degraded performance", "Search: Operational"}, states)
	shoot("status-degraded.jpg")

	// 3. 50% errors: the page_fast burn-rate alert fires in Prometheus.
	good.Store(5000)
	bad.Store(5000)
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` .alert.rule-firing[data-tier="page_fast"]`)),
		chromedp.WaitVisible(chromedp.CSS(`details[data-service="checkout"] .firing`))))

	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/slos/checkout/availability"),
		chromedp.WaitVisible(chromedp.CSS(`#alert-rules tr.rule[data-tier="page_fast"][data-state="firing"]`))))
	rules, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#alert-rules tr.rule")).map(r => r.dataset.tier)`))
	require.NoError(t, err)
	// Every generated alert rule is listed, as Prometheus loaded them.
	var want []string
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					want = append(want, r.Labels[rulegen.LabelBurnTier])
				}
			}
		}
	}
	require.ElementsMatch(t, want, rules)
	shoot("console-slo-alerts.jpg")

	// 4. Alertmanager delivered the firing page alert: sred opened an
	// incident. Two tabs show it; the first acknowledges it with the
	// button, the second follows without a reload.
	var inc incident.Incident
	waitFor(t, func() bool {
		p, err := a.Incidents.List(t.Context(), incident.Filter{Service: "checkout", Limit: 10})
		require.NoError(t, err)
		for _, i := range p.Incidents {
			if i.Labels["alertname"] == "SLOBurnRatePage" {
				inc = i
				return true
			}
		}
		return false
	}, "Alertmanager never delivered the page_fast alert to sred")
	require.Equal(t, incident.SeverityCritical, inc.Severity)
	page := srv.URL + "/incidents/" + inc.ID
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("ack"))))
	tab2, cancel2 := chromedp.NewContext(tab)
	defer cancel2()
	require.NoError(t, chromedp.Do(tab2, chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live-connected="true"]`))))
	_, err = chromedp.Run(tab2, chromedp.Evaluate[bool](`window.sredMarker = "same page"; true`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.ID("ack")), chromedp.WaitVisible(chromedp.CSS(".done"))))
	require.NoError(t, chromedp.Do(tab2, chromedp.WaitVisible(chromedp.CSS(`body[data-refreshed]`))))
	st, err := chromedp.Run(tab2, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", strings.TrimSpace(st))
	marker, err = chromedp.Run(tab2, chromedp.Evaluate[string](`window.sredMarker`))
	require.NoError(t, err)
	require.Equal(t, "same page", marker, "the second tab was reloaded")

	// 5. An internal note and a public status update: /status shows the
	// incident (Checkout in major outage) with the public update only.
	_, err = a.Incidents.AddNote(t.Context(), inc.ID, "rita", "internal-note-xyz: db-primary-7 is at fault")
	require.NoError(t, err)
	_, err = a.Incidents.PostStatusUpdate(t.Context(), inc.ID, incident.StatusUpdate{Actor: "rita", Impact: "internal-impact-xyz",
		Public: true, PublicMessage: "Some payments fail; we are on it."})
	require.NoError(t, err)
	waitFor(t, func() bool {
		code, body := fetch(t, http.MethodGet, srv.URL+"/status.json", nil, nil)
		require.Equal(t, http.StatusOK, code, body)
		return strings.Contains(body, "Some payments fail")
	}, "/status.json never showed the public update")
	// The page may be cached for 15s (Cache-Control): a reload asks again.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/status"), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("active"))))
	text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	require.Contains(t, text, "Some payments fail; we are on it.")
	require.Contains(t, text, "Major outage")
	for _, secret := range []string{"internal-note-xyz", "db-primary-7", "internal-impact-xyz", "rita", inc.ID, "SLOBurnRatePage", inc.Title} {
		require.NotContains(t, text, secret)
	}
	shoot("status-incident.jpg")

	// The home page on a phone: no horizontal scrolling.
	require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("mtta"))))
	overflow, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	require.NoError(t, err)
	require.False(t, overflow, "the home page scrolls sideways at 390px")
	t.Logf("screenshots in %s", arts)
}
