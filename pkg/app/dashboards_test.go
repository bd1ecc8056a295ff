package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/receiver"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestDashboardQueriesOnPrometheus runs sred in-process with known
// incidents, on SQLite and on PostgreSQL, has the real Prometheus scrape it
// (created timestamps on, protobuf first, as examples/prometheus.yml) and
// evaluates the committed dashboards' incident panels, read from their JSON
// with the Grafana variables substituted, against the figures computed here:
// open incidents, MTTR, MTTA and incidents opened per severity (the last
// proves that increase() sees the first incident of a new series).
func TestDashboardQueriesOnPrometheus(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testDashboardQueries(t, backend) })
	}
}

// knownIncident is one incident of the test, times in minutes after base
// (-1: never).
type knownIncident struct {
	service, severity string
	created, ack, res int64
}

func testDashboardQueries(t *testing.T, backend string) {
	// Prometheus keeps a created timestamp's 0 only within its head block's
	// appendable window (the last hour): the incidents are recent.
	base := time.Now().UTC().Add(-40 * time.Minute).Truncate(time.Second)
	clk := clock.NewManual(base)
	setAt := func(minutes int64) { clk.Set(base.Add(time.Duration(minutes) * time.Minute)) }
	// The manual clock is the app's too: the replay below runs the
	// background rollup's rounds (Prometheus's scrapes roll up as well).
	o := appOptions(t, backend, "{}\n")
	o.Clock = clk
	_, srv := runAppOptions(t, o, func(a *App) { a.Incidents.Clock = clk })

	incidents := []knownIncident{
		{"api", "CRITICAL", 0, 2, 10},
		{"web", "HIGH", 5, 6, 25},
		{"api", "CRITICAL", 20, 21, 35},
		{"api", "CRITICAL", 30, 31, -1},
		{"web", "HIGH", 32, -1, -1},
	}
	// The figures the panels must show, computed from the list.
	var resolved, resolveSum, acked, ackSum, open float64
	opened := map[string]float64{}
	for _, inc := range incidents {
		opened[inc.severity]++
		if inc.ack >= 0 {
			acked++
			ackSum += float64(inc.ack-inc.created) * 60
		}
		if inc.res >= 0 {
			resolved++
			resolveSum += float64(inc.res-inc.created) * 60
		} else {
			open++
		}
	}

	// Replay the incidents' events in time order through the API.
	type event struct {
		at   int64
		do   string
		inc  int
		path string
	}
	var events []event
	for i, inc := range incidents {
		events = append(events, event{at: inc.created, do: "open", inc: i})
		if inc.ack >= 0 {
			events = append(events, event{at: inc.ack, do: "ack", inc: i})
		}
		if inc.res >= 0 {
			events = append(events, event{at: inc.res, do: "resolve", inc: i})
		}
	}
	for i := 1; i < len(events); i++ { // insertion sort by time
		for j := i; j > 0 && events[j].at < events[j-1].at; j-- {
			events[j], events[j-1] = events[j-1], events[j]
		}
	}
	ids := make([]string, len(incidents))
	for _, ev := range events {
		setAt(ev.at)
		inc := incidents[ev.inc]
		switch ev.do {
		case "open":
			ids[ev.inc] = openIncident(t, srv.URL, fmt.Sprintf("Down%d", ev.inc), inc.service, inc.severity, clk.Now())
		case "ack":
			postJSON(t, srv.URL+"/api/v1/incidents/"+ids[ev.inc]+"/ack", map[string]string{"actor": "alice"})
		case "resolve":
			postJSON(t, srv.URL+"/api/v1/incidents/"+ids[ev.inc]+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
		}
	}

	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	prom := tu.StartPrometheus(t, tu.PrometheusOptions{
		Config: fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: sred
    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]
    static_configs: [{targets: [%q]}]
`, u.Host),
		Args: []string{"--enable-feature=created-timestamp-zero-ingestion"},
	})
	client, err := api.NewClient(api.Config{Address: prom.URL})
	require.NoError(t, err)
	papi := v1.NewAPI(client)

	panels := dashboardPanels(t)
	first := lastScrape(t, papi, time.Time{})
	at := lastScrape(t, papi, first) // a later scrape: the first one is complete

	type want struct {
		dashboard, panel string
		// values by the panel's series labels ("" for a single unlabelled value).
		values map[string]float64
	}
	for _, w := range []want{
		{"executive.json", "Open incidents", map[string]float64{"": open}},
		{"executive.json", "Open CRITICAL / HIGH incidents", map[string]float64{"": open}},
		{"executive.json", "MTTR", map[string]float64{"": resolveSum / resolved}},
		{"executive.json", "MTTA", map[string]float64{"": ackSum / acked}},
		{"executive.json", "Incidents opened per day", map[string]float64{
			`{severity="CRITICAL"}`: opened["CRITICAL"], `{severity="HIGH"}`: opened["HIGH"],
			// Severities without incidents are 0, not absent.
			`{severity="MEDIUM"}`: 0, `{severity="LOW"}`: 0}},
		// The zeros of the severities without open incidents have no
		// service: the panel shows no row without a name.
		{"operations.json", "Open incidents by service", map[string]float64{`{service="api"}`: 1, `{service="web"}`: 1}},
	} {
		got := evalPanel(t, papi, panels, w.dashboard, w.panel, at)
		require.Len(t, got, len(w.values), "%s %q: %v", w.dashboard, w.panel, got)
		for k, v := range w.values {
			g, ok := got[k]
			require.True(t, ok, "%s %q has no series %s: %v", w.dashboard, w.panel, k, got)
			require.InDelta(t, v, g, 1e-9, "%s %q %s", w.dashboard, w.panel, k)
		}
	}

	// The health row reads sred's own series as a real Prometheus stores
	// them: each panel has the series named here (matched by their
	// labels; the instance is the test server's address).
	health := map[string][]string{
		"Webhook deliveries":          {`outcome="changed"`},
		"Store writer utilisation":    {`instance=`},
		"Job lag by queue":            {`queue="escalation"`, `queue="notify"`, `queue="runbook"`, `queue="recovery"`},
		"Jobs pending by queue":       {`queue="escalation"`, `queue="notify"`, `queue="runbook"`, `queue="recovery"`},
		"Store connection pool waits": {`db_name="main"`},
	}
	if backend == "postgres" {
		health["Store connection pool waits"] = append(health["Store connection pool waits"], `db_name="side"`)
	}
	for panel, want := range health {
		got := evalPanel(t, papi, panels, "engineering.json", panel, at)
		for _, w := range want {
			found := false
			for k, v := range got {
				if strings.Contains(k, w) {
					found = true
					require.GreaterOrEqual(t, v, 0.0, "%q %s", panel, k)
				}
			}
			require.True(t, found, "engineering.json %q has no series with %s: %v", panel, w, got)
		}
	}

	// Before sred was first scraped, "Open incidents" has no data rather
	// than a reassuring 0.
	got := evalPanel(t, papi, panels, "executive.json", "Open incidents", first.Add(-2*time.Second))
	require.Empty(t, got, "open incidents before any scrape")

	// Once every incident is resolved, it shows 0 (sred counted them).
	setAt(38)
	for i, inc := range incidents {
		if inc.res < 0 {
			postJSON(t, srv.URL+"/api/v1/incidents/"+ids[i]+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
		}
	}
	after := lastScrape(t, papi, lastScrape(t, papi, at))
	require.Equal(t, map[string]float64{"": 0}, evalPanel(t, papi, panels, "executive.json", "Open incidents", after))
	require.Equal(t, map[string]float64{"": 0}, evalPanel(t, papi, panels, "executive.json", "Open CRITICAL / HIGH incidents", after))
	// The time series by service drop to 0 rather than end on their last
	// count (which their legend's last value would keep showing).
	require.Equal(t, map[string]float64{`{service="api"}`: 0, `{service="web"}`: 0},
		evalPanel(t, papi, panels, "operations.json", "Open incidents by service", after))
}

// openIncident sends a firing alert that started a minute before at and
// returns the incident it opened.
func openIncident(t *testing.T, base, name, service, severity string, at time.Time) string {
	t.Helper()
	key := fmt.Sprintf(`{}:{alertname=%q}`, name)
	lbl := map[string]string{"alertname": name, "service": service, "severity": strings.ToLower(severity)}
	postJSON(t, base+receiver.Path, map[string]any{
		"version": "4", "groupKey": key, "status": "firing", "receiver": "sred",
		"groupLabels": map[string]string{"alertname": name}, "commonLabels": lbl,
		"alerts": []map[string]any{{
			"status": "firing", "labels": lbl, "annotations": map[string]string{"summary": service + " down"},
			"startsAt": at.Add(-time.Minute).Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
			"fingerprint": name,
		}},
	})
	var got struct {
		Incidents []struct {
			ID       string `json:"id"`
			GroupKey string `json:"group_key"`
		} `json:"incidents"`
	}
	code, env := getJSON(t, base+"/api/v1/incidents", nil, &got)
	require.Equal(t, http.StatusOK, code, "%+v", env)
	for _, inc := range got.Incidents {
		if inc.GroupKey == key {
			return inc.ID
		}
	}
	t.Fatalf("no incident for group %s in %+v", key, got)
	return ""
}

func postJSON(t *testing.T, url string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "POST %s: %s", url, out)
}

// dashboardPanels reads the PromQL of every panel of the committed
// dashboards: file -> panel title -> expressions.
func dashboardPanels(t *testing.T) map[string]map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tu.RepoRoot(t), "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	out := map[string]map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d struct {
			Panels []panel `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(b, &d), f)
		m := map[string][]string{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				for _, tg := range p.Targets {
					m[p.Title] = append(m[p.Title], tg.Expr)
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		out[filepath.Base(f)] = m
	}
	return out
}

// grafanaVars are the values Grafana substitutes for the variables of the
// incident panels: a range holding every incident of the test, all services.
var grafanaVars = strings.NewReplacer(
	"$__range", "1d",
	"$__rate_interval", "1m",
	"$service", ".*",
)

// evalPanel evaluates the single query of a panel at ts and returns its
// values keyed by the series' labels.
func evalPanel(t *testing.T, papi v1.API, panels map[string]map[string][]string, file, title string, ts time.Time) map[string]float64 {
	t.Helper()
	exprs := panels[file][title]
	require.Len(t, exprs, 1, "%s: panel %q", file, title)
	q := grafanaVars.Replace(exprs[0])
	require.NotContains(t, q, "$", "unsubstituted variable in %s", q)
	v, warnings, _, err := papi.Query(context.Background(), q, ts)
	require.NoError(t, err, "%s %q: %s", file, title, q)
	require.Empty(t, warnings, q)
	out := map[string]float64{}
	for _, s := range v.(model.Vector) {
		key := ""
		if len(s.Metric) > 0 {
			key = s.Metric.String()
		}
		require.False(t, math.IsNaN(float64(s.Value)), "%s %q: NaN", file, title)
		out[key] = float64(s.Value)
	}
	return out
}

// lastScrape waits for a scrape of sred after the one at prev and returns
// the time of its samples: evaluated exactly then, increase() does not
// extrapolate past the last sample. (Prometheus stamps up a little later
// than the samples of the same scrape.)
func lastScrape(t *testing.T, papi v1.API, prev time.Time) time.Time {
	t.Helper()
	var last time.Time
	waitFor(t, func() bool {
		v, _, _, err := papi.Query(context.Background(), `timestamp(sre_collector_scrape_success{collector="open"})`, time.Now())
		if err != nil || len(v.(model.Vector)) == 0 {
			return false
		}
		ms := int64(math.Round(float64(v.(model.Vector)[0].Value) * 1000))
		last = time.UnixMilli(ms)
		return last.After(prev)
	}, "Prometheus did not scrape sred")
	return last
}
