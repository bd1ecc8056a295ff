package ui_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares the page's main element with testdata/name.
func golden(t *testing.T, name, body string) {
	t.Helper()
	start := strings.Index(body, `<main id="main" tabindex="-1">`)
	end := strings.Index(body, "</main>")
	require.True(t, start >= 0 && end > start, "no main element in %s", body)
	got := body[start : end+len("</main>")]
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got, "%s differs (go test -run %s -update rewrites it)", path, t.Name())
}

// testGraph is the graph of docs/correlation.md with a cache nothing
// depends on.
func testGraph(t testing.TB) (*correlation.Graph, *incident.Correlation) {
	t.Helper()
	svcs := correlation.Services{
		"postgres": {Description: "the orders database"},
		"api":      {DependsOn: []string{"postgres"}},
		"checkout": {DependsOn: []string{"api", "postgres"}},
		"search":   {DependsOn: []string{"postgres"}},
		"cache":    {},
	}
	cfg := correlation.Config{Window: model.Duration(30 * time.Minute), SharedDependencies: true}
	g, err := correlation.Load(svcs, cfg, nil)
	require.NoError(t, err)
	return g, correlation.Compile(g, cfg)
}

// graphService is the incident service of the graph tests on db, its
// clock at *now, correlating by testGraph, and testGraph's graph.
func graphService(t *testing.T, db *store.DB, now *time.Time) (*incident.Service, *correlation.Graph) {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clock.Func(func() time.Time { return *now })
	g, rules := testGraph(t)
	svc.SetCorrelation(rules)
	return svc, g
}

// noiseService is the incident service of the noise tests on db, its
// clock at *now, resolving incidents whose alerts all resolved.
func noiseService(t *testing.T, db *store.DB, now *time.Time) *incident.Service {
	t.Helper()
	opts := incident.DefaultOptions()
	opts.AutoResolve = true
	svc, err := incident.NewService(db, opts, nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clock.Func(func() time.Time { return *now })
	return svc
}

// fire delivers a firing alert group of one alert.
func fire(t *testing.T, svc *incident.Service, gk, alertname, service, severity string, at time.Time) string {
	t.Helper()
	l := map[string]string{"alertname": alertname, "service": service, "severity": severity}
	res, err := svc.Ingest(context.Background(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: gk, CommonLabels: l,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-" + gk, StartsAt: at, Labels: l}}})
	require.NoError(t, err)
	require.Len(t, res.Incidents, 1)
	return res.Incidents[0]
}

// TestGraphPage shows the service dependency graph over the real incident
// service with the real correlation rules, on both backends (golden
// files): without a graph, with no open incident, and during a database
// outage the API alerted first (correlation attaches the database's group
// to the API's incident): postgres is highlighted as the likely root, api
// and the incident's services are marked failing, an unrelated cache
// outage is a second root, and a service outside the graph is named. A
// viewer reads it; the navigation links it.
func TestGraphPage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		svc, g := graphService(t, db, &now)

		// No graph configured.
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{Clock: svc.Clock}).Register(mux)
		bare := httptest.NewServer(principal(mux))
		defer bare.Close()
		code, body := (&client{t: t, base: bare.URL, role: "viewer", c: http.DefaultClient}).do("GET", "/graph", nil)
		require.Equal(t, http.StatusOK, code, body)
		golden(t, "graph_disabled.html", body)

		mux = http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Graph: func() *correlation.Graph { return g }}, ui.Options{Clock: svc.Clock}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: http.DefaultClient}
		code, body = viewer.do("GET", "/graph", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<a href="/graph" aria-current="page">Dependencies</a>`)
		require.Contains(t, body, `<a href="/noise">Noise</a>`)
		require.NotContains(t, body, "likely root")
		golden(t, "graph_empty.html", body)

		// The API alerts, then its database: one incident, rooted at postgres.
		apiInc := fire(t, svc, "{}:api", "HighErrorRate", "api", "critical", now)
		now = now.Add(2 * time.Minute)
		require.Equal(t, apiInc, fire(t, svc, "{}:postgres", "PostgresDown", "postgres", "critical", now))
		now = now.Add(time.Minute)
		cacheInc := fire(t, svc, "{}:cache", "CacheDown", "cache", "high", now)
		require.NotEqual(t, apiInc, cacheInc)
		now = now.Add(time.Minute)
		fire(t, svc, "{}:legacy", "LegacyDown", "legacy", "low", now)
		inc, err := svc.Get(context.Background(), apiInc)
		require.NoError(t, err)
		require.Equal(t, "postgres", inc.RootService)

		code, body = viewer.do("GET", "/graph", nil)
		require.Equal(t, http.StatusOK, code, body)
		for _, want := range []string{
			`<li id="svc-postgres" class="node failing root">`,
			`<li id="svc-api" class="node failing">`,
			`<li id="svc-cache" class="node failing root">`,
			`<li id="svc-checkout" class="node">`,
			`likely root: <a href="#svc-cache"><strong>cache</strong></a>, <a href="#svc-postgres"><strong>postgres</strong></a>`,
			`Depends on: <a href="#svc-postgres" class="failing">postgres</a> (failing)`,
			`href="/incidents/` + apiInc + `"`,
			"Open incidents of services outside the graph: legacy.",
		} {
			require.Contains(t, body, want)
		}
		golden(t, "graph_outage.html", body)
	})
}

// countingIncidents counts the incident reads of a page.
type countingIncidents struct {
	ui.Incidents
	gets, lists, opens int
}

func (c *countingIncidents) Get(ctx context.Context, id string) (*incident.Incident, error) {
	c.gets++
	return c.Incidents.Get(ctx, id)
}

func (c *countingIncidents) List(ctx context.Context, f incident.Filter) (*incident.Page, error) {
	c.lists++
	return c.Incidents.List(ctx, f)
}

func (c *countingIncidents) OpenWithServices(ctx context.Context, limit int) ([]incident.Incident, bool, error) {
	c.opens++
	return c.Incidents.OpenWithServices(ctx, limit)
}

// TestGraphPageReadsOnce: /graph reads the open incidents with their
// services in one call (incident.Service.OpenWithServices, one query), not
// one read per incident, on both backends: with 200 open incidents it
// shows them all, the database's group that correlation attached to the
// API's incident marking postgres failing; with 201 it shows the 200
// newest and says so.
func TestGraphPageReadsOnce(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		svc, g := graphService(t, db, &now)
		src := &countingIncidents{Incidents: svc}
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: src, Graph: func() *correlation.Graph { return g }}, ui.Options{Clock: svc.Clock}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: http.DefaultClient}

		fire(t, svc, "{}:api", "HighErrorRate", "api", "critical", now)
		now = now.Add(time.Minute)
		fire(t, svc, "{}:postgres", "PostgresDown", "postgres", "critical", now)
		for i := range 199 {
			now = now.Add(time.Second)
			fire(t, svc, fmt.Sprintf("{}:other-%03d", i), "Down", fmt.Sprintf("other-%03d", i), "low", now)
		}
		code, body := viewer.do("GET", "/graph", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, 1, src.opens)
		require.Zero(t, src.gets, "no read per incident")
		require.Zero(t, src.lists)
		has := func(s string) bool { return strings.Contains(body, s) }
		require.False(t, has("Only the 200 newest open incidents are read."), "200 open incidents are all read")
		require.True(t, has(`<li id="svc-postgres" class="node failing root">`), "the API's incident names postgres")
		require.True(t, has(`<li id="svc-api" class="node failing">`))
		require.True(t, has("other-198"))

		now = now.Add(time.Second)
		fire(t, svc, "{}:other-199", "Down", "other-199", "low", now)
		_, body = viewer.do("GET", "/graph", nil)
		require.Equal(t, 2, src.opens)
		require.Zero(t, src.gets)
		require.True(t, has("Only the 200 newest open incidents are read."))
		require.False(t, has(`<li id="svc-api" class="node failing">`), "the API's incident is the oldest of 201: cut")
		require.True(t, has("other-199"))
	})
}

// TestNoisePage shows the noise report (noise.Build over the real store,
// both backends, golden files): with no page, then a week with a disk
// alert resolving by itself at night and a latency alert acknowledged and
// closed without action, each with its suggestion; the since filter
// narrows the period and a bad one is refused. A viewer reads it.
func TestNoisePage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		now := start.Add(7 * 24 * time.Hour)
		svc := noiseService(t, db, &now)
		end := now
		report := func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, db, o) }
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Noise: report}, ui.Options{Clock: clock.Func(func() time.Time { return end })}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: http.DefaultClient}

		code, body := viewer.do("GET", "/noise", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<a href="/noise" aria-current="page">Noise</a>`)
		require.Contains(t, body, "No pages in this period.")
		golden(t, "noise_empty.html", body)

		noisyWeek(t, svc, start, func(t time.Time) { now = t })
		// A page 20 days ago: in the 30-day report, not in the 7-day one.
		now = end.Add(-20 * 24 * time.Hour)
		fire(t, svc, "old", "OldAlert", "billing", "", now)

		code, body = viewer.do("GET", "/noise?since=7d", nil)
		require.Equal(t, http.StatusOK, code, body)
		for _, want := range []string{
			`<option selected>7d</option>`,
			`<tr class="noisy"><td>DiskIOSaturated</td><td>storage</td><td>3</td><td>3.0</td><td>3</td><td>0 of 0</td><td>0</td><td>100%</td><td>–</td></tr>`,
			`<tr class="noisy"><td>HighLatency</td><td>api</td><td>2</td><td>2.0</td><td>0</td><td>2 of 2</td><td>0</td><td>0%</td><td>5m00s</td></tr>`,
			"<strong>storage/DiskIOSaturated</strong>: raise `for:`",
			"<strong>api/HighLatency</strong>: move it to the ticket tier",
		} {
			require.Contains(t, body, want)
		}
		require.NotContains(t, body, "OldAlert")
		golden(t, "noise_week.html", body)

		code, body = viewer.do("GET", "/noise", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<option selected>30d</option>`)
		require.Contains(t, body, "<td>OldAlert</td><td>billing</td><td>1</td>")

		code, body = viewer.do("GET", "/noise?since=yesterday", nil)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "since: want a positive duration (7d, 30d, 90d), got &#34;yesterday&#34;")
	})
}

// TestNoisePageSLOs: the generated SLO alerts share their names, so the
// pages of a service's availability and success-rate SLOs are a row each
// on the console, the SLO shown in the row and in the suggestion's name
// (they were one row, showing the SLO of whichever incident came first).
func TestNoisePageSLOs(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		svc := noiseService(t, db, &now)
		report := func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, db, o) }
		mux := http.NewServeMux()
		end := now.Add(24 * time.Hour)
		ui.New(ui.Sources{Incidents: svc, Noise: report}, ui.Options{Clock: clock.Func(func() time.Time { return end })}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		viewer := &client{t: t, base: srv.URL, role: "viewer", c: http.DefaultClient}

		// Two pages of each SLO, acknowledged and closed by Alertmanager
		// 40 minutes later with nothing done.
		for i, slo := range []string{"availability", "success-rate", "availability", "success-rate"} {
			gk := fmt.Sprintf("slo-%d", i)
			l := map[string]string{"alertname": "SLOBurnRatePage", "service": "checkout", "slo": slo, "severity": "page"}
			note := func(status string, started time.Time) incident.Notification {
				a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-" + gk, StartsAt: started, Labels: l}
				if status == "resolved" {
					a.EndsAt = now
				}
				return incident.Notification{Receiver: "sred", Status: status, GroupKey: gk, CommonLabels: l, Alerts: []incident.NotifiedAlert{a}}
			}
			started := now
			res, err := svc.Ingest(ctx, note("firing", started))
			require.NoError(t, err)
			require.Len(t, res.Incidents, 1)
			now = now.Add(5 * time.Minute)
			_, err = svc.Acknowledge(ctx, res.Incidents[0], "alice")
			require.NoError(t, err)
			now = now.Add(35 * time.Minute)
			_, err = svc.Ingest(ctx, note("resolved", started))
			require.NoError(t, err)
			now = now.Add(time.Hour)
		}

		code, body := viewer.do("GET", "/noise?since=7d", nil)
		require.Equal(t, http.StatusOK, code, body)
		for _, slo := range []string{"availability", "success-rate"} {
			require.Contains(t, body, `<tr class="noisy"><td>SLOBurnRatePage <span class="muted">(SLO `+slo+`)</span></td><td>checkout</td><td>2</td>`)
			require.Contains(t, body, "<strong>checkout/SLOBurnRatePage (SLO "+slo+")</strong>: move it to the ticket tier: 2 of 2 pages")
		}
	})
}

// noisyWeek records, in the week from start, three disk pages at 03:00
// that resolve by themselves in 4 minutes and two latency pages
// acknowledged after 5 minutes and closed by Alertmanager after 40, with
// nothing done. setNow moves the incident service's clock. The service
// must resolve incidents automatically.
func noisyWeek(t *testing.T, svc *incident.Service, start time.Time, setNow func(time.Time)) {
	t.Helper()
	ctx := context.Background()
	// resolve delivers the resolution of the alert fired at started.
	resolve := func(gk, alertname, service string, started, at time.Time) {
		l := map[string]string{"alertname": alertname, "service": service, "severity": ""}
		setNow(at)
		_, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: gk, CommonLabels: l,
			Alerts: []incident.NotifiedAlert{{Status: "resolved", Fingerprint: "fp-" + gk, StartsAt: started, EndsAt: at, Labels: l}}})
		require.NoError(t, err)
	}
	day := func(d, h int) time.Time { return start.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour) }
	for d := range 3 {
		gk := fmt.Sprintf("disk-%d", d)
		at := day(d+3, 3)
		setNow(at)
		fire(t, svc, gk, "DiskIOSaturated", "storage", "", at)
		resolve(gk, "DiskIOSaturated", "storage", at, at.Add(4*time.Minute))
	}
	for d := range 2 {
		gk := fmt.Sprintf("lat-%d", d)
		at := day(d+4, 14)
		setNow(at)
		id := fire(t, svc, gk, "HighLatency", "api", "", at)
		setNow(at.Add(5 * time.Minute))
		_, err := svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		resolve(gk, "HighLatency", "api", at, at.Add(40*time.Minute))
	}
}
