package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/collector"
	"github.com/rootuip/sre/pkg/dashboards"
	"github.com/rootuip/sre/pkg/receiver"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestMetricsScrape runs the whole sred in-process (its real mux and its
// goroutines) on SQLite and on PostgreSQL, feeds it alerts through the
// Alertmanager webhook (one delivery twice), lets the escalation engine page
// through a real webhook channel, acknowledges and resolves the incidents and
// completes post-mortems through the API at known times, and checks the
// values /metrics exports (incident statistics, escalation steps, webhook
// deliveries, request durations by route, collector query durations), that
// the background rollup folds changes in without a scrape, that promtool
// accepts the exposition and that every sre_ metric in it is in the
// catalogue (docs/metrics.md) with its type.
func TestMetricsScrape(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testMetricsScrape(t, backend) })
	}
}

func testMetricsScrape(t *testing.T, backend string) {
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	clk := clock.NewManual(base)
	at := func(minutes int64) { clk.Set(base.Add(time.Duration(minutes) * time.Minute)) }
	sink := &hookSink{t: t, secret: "s3cret"}
	hooks := httptest.NewServer(sink)
	t.Cleanup(hooks.Close)
	// Incidents of api page alice through the webhook channel; web has no
	// escalation policy.
	// The manual clock is the app's too: moving it runs the background
	// rollup's rounds.
	o := appOptions(t, backend, fmt.Sprintf(`
escalation:
  policies:
    - name: api
      matchers: ['service="api"']
      levels:
        - {after: 0m, users: [alice], channels: [webhook]}
oncall:
  users:
    - {name: alice, email: alice@example.com}
notifications:
  webhook: {url: %s, secret: s3cret}
`, hooks.URL))
	o.Clock = clk
	a, srv := runAppOptions(t, o, func(a *App) { a.Incidents.Clock = clk })

	post := func(path string, body any) {
		t.Helper()
		b, err := json.Marshal(body)
		require.NoError(t, err)
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "POST %s: %s", path, out)
	}
	// open sends a firing alert that started `ago` before now and returns
	// the incident it opened; lastDelivery keeps the delivery.
	n := 0
	var lastDelivery map[string]any
	open := func(service, severity string, ago time.Duration) string {
		t.Helper()
		n++
		name := fmt.Sprintf("Down%d", n)
		key := fmt.Sprintf(`{}:{alertname=%q}`, name)
		lbl := map[string]string{"alertname": name, "service": service, "severity": severity}
		lastDelivery = map[string]any{
			"version": "4", "groupKey": key, "status": "firing", "receiver": "sred",
			"groupLabels": map[string]string{"alertname": name}, "commonLabels": lbl,
			"alerts": []map[string]any{{
				"status": "firing", "labels": lbl, "annotations": map[string]string{"summary": service + " down"},
				"startsAt": clk.Now().Add(-ago).Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
				"fingerprint": fmt.Sprintf("%016x", n),
			}},
		}
		post(receiver.Path, lastDelivery)
		var got struct {
			Data struct {
				Incidents []struct {
					ID       string `json:"id"`
					GroupKey string `json:"group_key"`
				} `json:"incidents"`
			} `json:"data"`
		}
		resp, err := http.Get(srv.URL + "/api/v1/incidents")
		require.NoError(t, err)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		resp.Body.Close()
		for _, inc := range got.Data.Incidents {
			if inc.GroupKey == key {
				return inc.ID
			}
		}
		t.Fatalf("no incident for group %s in %+v", key, got)
		return ""
	}
	actor := map[string]string{"actor": "alice"}
	// paged waits until the escalation engine paged alice for an incident
	// (before it is acknowledged, which would stop its escalation).
	paged := func(id string) {
		t.Helper()
		waitFor(t, func() bool { return len(sink.find(id)) > 0 }, "the escalation engine did not page for "+id)
	}
	ack := func(id string) { post("/api/v1/incidents/"+id+"/ack", actor) }
	resolve := func(id string) {
		post("/api/v1/incidents/"+id+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
	}
	postmortem := func(id string) { post("/api/v1/incidents/"+id+"/postmortem/complete", actor) }

	// Minutes after base. api has three CRITICAL incidents, detected one
	// minute before sred opened them, an hour apart; web one HIGH incident,
	// detected two minutes before.
	at(0)
	c0 := open("api", "critical", time.Minute)
	post(receiver.Path, lastDelivery) // Alertmanager retried: a duplicate
	paged(c0)
	at(2)
	ack(c0) // 120s
	at(10)
	resolve(c0) // 600s
	at(15)
	h := open("web", "high", 2*time.Minute)
	at(16)
	ack(h) // 60s
	at(35)
	resolve(h) // 1200s
	at(60)
	c1 := open("api", "critical", time.Minute)
	paged(c1)
	at(65)
	ack(c1) // 300s
	at(75)
	resolve(c1) // 900s
	at(90)
	postmortem(c0)
	at(120)
	c2 := open("api", "critical", time.Minute)
	paged(c2)
	at(130)
	ack(c2) // 600s

	mfs, body := scrape(t, srv.URL)
	hist := func(name, service, severity string) *dto.Histogram {
		t.Helper()
		mf := mfs[name]
		require.NotNil(t, mf, "%s missing from /metrics", name)
		for _, m := range mf.GetMetric() {
			if label(m, "service") == service && label(m, "severity") == severity {
				return m.GetHistogram()
			}
		}
		t.Fatalf("%s has no series for service %s, severity %s", name, service, severity)
		return nil
	}
	value := func(name string, lbl map[string]string) float64 {
		t.Helper()
		v, ok := metricValue(mfs, name, lbl)
		require.True(t, ok, "%s%v missing from /metrics", name, lbl)
		return v
	}
	apiCrit := map[string]string{"service": "api", "severity": "CRITICAL"}
	webHigh := map[string]string{"service": "web", "severity": "HIGH"}
	for _, tc := range []struct {
		name, service, severity string
		count                   uint64
		sum                     float64
	}{
		{"sre_incident_time_to_acknowledge_seconds", "api", "CRITICAL", 3, 120 + 300 + 600},
		{"sre_incident_time_to_resolve_seconds", "api", "CRITICAL", 2, 600 + 900},
		{"sre_incident_detection_seconds", "api", "CRITICAL", 3, 3 * 60},
		{"sre_incident_time_to_acknowledge_seconds", "web", "HIGH", 1, 60},
		{"sre_incident_time_to_resolve_seconds", "web", "HIGH", 1, 1200},
		{"sre_incident_detection_seconds", "web", "HIGH", 1, 120},
	} {
		h := hist(tc.name, tc.service, tc.severity)
		require.Equal(t, tc.count, h.GetSampleCount(), "%s{%s,%s}", tc.name, tc.service, tc.severity)
		require.Equal(t, tc.sum, h.GetSampleSum(), "%s{%s,%s}", tc.name, tc.service, tc.severity)
	}
	// 600s and 900s are bucket bounds: both resolutions are within 900s.
	for _, b := range hist("sre_incident_time_to_resolve_seconds", "api", "CRITICAL").GetBucket() {
		want := map[bool]uint64{true: 2, false: 0}[b.GetUpperBound() >= 900]
		if b.GetUpperBound() == 600 {
			want = 1
		}
		require.Equal(t, want, b.GetCumulativeCount(), "le=%v", b.GetUpperBound())
	}
	// One series open, and a 0 without a service for every other severity.
	require.Len(t, mfs["sre_incidents_open"].GetMetric(), 4)
	require.Equal(t, 1.0, value("sre_incidents_open", apiCrit))
	require.Equal(t, 0.0, value("sre_incidents_open", map[string]string{"service": "", "severity": "HIGH"}))
	require.Equal(t, 3.0, value("sre_incidents_stored_total", apiCrit))
	require.Equal(t, 1.0, value("sre_incidents_stored_total", webHigh))
	// MTBF: detections at -1m, 59m and 119m: 120m over two gaps.
	require.Equal(t, 3600.0, value("sre_incident_mtbf_seconds", map[string]string{"service": "api"}))
	_, ok := metricValue(mfs, "sre_incident_mtbf_seconds", map[string]string{"service": "web"})
	require.False(t, ok, "no MTBF with a single incident")
	require.Equal(t, float64(base.Add(119*time.Minute).Unix()), value("sre_incident_last_detected_timestamp_seconds", map[string]string{"service": "api"}))
	// Post-mortems: one of the two resolved CRITICAL incidents, none of
	// the resolved HIGH one.
	require.Equal(t, 1.0, value("sre_incident_postmortems_completed_total", apiCrit))
	require.Equal(t, 0.5, value("sre_incident_postmortem_completion_ratio", map[string]string{"severity": "CRITICAL"}))
	require.Equal(t, 0.0, value("sre_incident_postmortem_completion_ratio", map[string]string{"severity": "HIGH"}))
	// Escalation: each api incident paged its only level; web has no policy.
	require.Equal(t, 3.0, value("sre_escalation_steps_total", map[string]string{"severity": "CRITICAL", "outcome": "paged"}))
	require.Equal(t, 1.0, value("sre_escalation_steps_total", map[string]string{"severity": "HIGH", "outcome": "no_policy"}))
	require.Equal(t, 2, nonZeroSeries(mfs["sre_escalation_steps_total"]), "the other outcomes are zero series")
	// Webhook: four deliveries opened incidents, the retry changed nothing.
	require.Equal(t, 4.0, value("sre_webhook_deliveries_total", map[string]string{"outcome": "changed"}))
	require.Equal(t, 1.0, value("sre_webhook_deliveries_total", map[string]string{"outcome": "duplicate"}))
	require.Equal(t, 2, nonZeroSeries(mfs["sre_webhook_deliveries_total"]), "no delivery failed")
	require.Equal(t, 0.0, value("sre_webhook_deliveries_total", map[string]string{"outcome": "error"}))
	require.Equal(t, 1.0, value("sre_webhook_duplicate_deliveries_total", nil))
	// Request durations by route pattern, never by raw path.
	for _, tc := range []struct {
		handler, method, code string
		count                 uint64
	}{
		{receiver.Path, "post", "200", 5},
		{"/api/v1/incidents/{id}/ack", "post", "200", 4},
		{"/api/v1/incidents/{id}/resolve", "post", "200", 3},
		{"/api/v1/incidents/{id}/postmortem/complete", "post", "200", 1},
		{"/api/v1/incidents", "get", "200", 4},
	} {
		h := series(t, mfs, "sre_http_request_duration_seconds", map[string]string{"handler": tc.handler, "method": tc.method, "code": tc.code})
		require.Equal(t, tc.count, h.GetHistogram().GetSampleCount(), "%+v", tc)
	}
	for _, m := range mfs["sre_http_request_duration_seconds"].GetMetric() {
		require.NotContains(t, label(m, "handler"), c0, "a raw path became a handler label")
	}
	// Store query durations of each collector part: this scrape's at least.
	for _, part := range []string{"rollup", "open", "aggregates", "automation"} {
		h := series(t, mfs, "sre_collector_query_duration_seconds", map[string]string{"collector": part})
		require.GreaterOrEqual(t, h.GetHistogram().GetSampleCount(), uint64(1), part)
	}
	checkCollectorParts(t, mfs)
	checkCatalogue(t, mfs, body)

	// Requests that match no route share one label value.
	resp, err := http.Get(srv.URL + "/no/such/" + c0)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Changes without a scrape: the background rollup folds them into the
	// aggregate tables by itself, in the rounds the app's clock runs. (Each
	// change has its own time: the rollup re-reads changes within the last
	// 5 minutes of the real clock to catch ties, which this clock a day
	// behind never is.) The rollup waits on the app's clock, no other
	// timer does.
	waitFor(t, func() bool { n, _ := clk.Waiters(); return n == 1 }, "the background rollup does not wait on the app's clock")
	at(150)
	resolve(c2) // 1800s
	at(160)
	postmortem(c1)
	at(161)
	postmortem(h)
	total := func(metric, service, severity string) (n, sumMS int64) {
		err := a.DB.QueryRowContext(context.Background(),
			`SELECT n, sum_ms FROM collector_totals WHERE metric = $1 AND service = $2 AND severity = $3`,
			metric, service, severity).Scan(&n, &sumMS)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0
		}
		require.NoError(t, err)
		return n, sumMS
	}
	waitFor(t, func() bool {
		resolved, _ := total("resolve", "api", "CRITICAL")
		pmAPI, _ := total("postmortem", "api", "CRITICAL")
		pmWeb, _ := total("postmortem", "web", "HIGH")
		if resolved == 3 && pmAPI == 2 && pmWeb == 1 {
			return true
		}
		// A round that ran during the changes may have missed the last
		// ones: once the rollup waits again, run its next round.
		if n, _ := clk.Waiters(); n > 0 {
			clk.Advance(collector.DefaultRollupInterval)
		}
		return false
	}, "the background rollup did not fold the changes in")
	_, sumMS := total("resolve", "api", "CRITICAL")
	require.Equal(t, int64((600+900+1800)*1000), sumMS)

	mfs, body = scrape(t, srv.URL)
	ttr := hist("sre_incident_time_to_resolve_seconds", "api", "CRITICAL")
	require.Equal(t, uint64(3), ttr.GetSampleCount())
	require.Equal(t, 600.0+900+1800, ttr.GetSampleSum())
	// No incident is open: a 0 per severity, without a service.
	require.Len(t, mfs["sre_incidents_open"].GetMetric(), 4)
	for _, m := range mfs["sre_incidents_open"].GetMetric() {
		require.Zero(t, m.GetGauge().GetValue(), "no incident is open")
		require.Empty(t, label(m, "service"), "no incident is open")
	}
	require.Equal(t, 2.0, value("sre_incident_postmortems_completed_total", apiCrit))
	require.Equal(t, 1.0, value("sre_incident_postmortems_completed_total", webHigh))
	require.InDelta(t, 2.0/3, value("sre_incident_postmortem_completion_ratio", map[string]string{"severity": "CRITICAL"}), 1e-15)
	require.Equal(t, 1.0, value("sre_incident_postmortem_completion_ratio", map[string]string{"severity": "HIGH"}))
	unmatched := series(t, mfs, "sre_http_request_duration_seconds", map[string]string{"handler": "unmatched", "method": "get", "code": "404"})
	require.Equal(t, uint64(1), unmatched.GetHistogram().GetSampleCount())
	checkCollectorParts(t, mfs)
	checkCatalogue(t, mfs, body)
}

// series returns the series of family name with these label values (among
// others), failing when there is none.
func series(t *testing.T, mfs map[string]*dto.MetricFamily, name string, lbl map[string]string) *dto.Metric {
	t.Helper()
	mf := mfs[name]
	require.NotNil(t, mf, "%s missing from /metrics", name)
next:
	for _, m := range mf.GetMetric() {
		for k, v := range lbl {
			if label(m, k) != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s has no series %v", name, lbl)
	return nil
}

// checkCollectorParts fails when a part of the store collector failed.
func checkCollectorParts(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	parts := mfs["sre_collector_scrape_success"].GetMetric()
	require.Len(t, parts, 4)
	for _, m := range parts {
		require.Equal(t, 1.0, m.GetGauge().GetValue(), "collector part %s failed", label(m, "collector"))
	}
}

// checkCatalogue fails when an exported sre_ family is missing from the
// catalogue (docs/metrics.md) or has another type there, and runs promtool
// check metrics on the exposition.
func checkCatalogue(t *testing.T, mfs map[string]*dto.MetricFamily, body []byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(tu.RepoRoot(t), "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	cat, err := dashboards.ParseCatalogue(f)
	require.NoError(t, err)
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "sre_") && !slices.Contains(dashboards.BlackboxCompatible, name) {
			continue
		}
		typ, ok := cat[name]
		if !assertTrue(t, ok, "%s is exported but not documented in docs/metrics.md", name) {
			continue
		}
		require.Equal(t, strings.ToLower(mf.GetType().String()), typ, "type of %s in docs/metrics.md", name)
	}

	cmd := exec.Command(tu.Tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func assertTrue(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}

// TestMetricsCatalogueCurrent checks docs/metrics.md, the dashboards and the
// alert rules against the metrics a freshly started sred (SQLite, empty
// store) really exposes, scraped from /metrics and parsed with expfmt:
//   - every exposed family of sred is catalogued;
//   - every catalogued family is exposed, or at least registered with
//     sred's registry (a vector that only has series once there is data,
//     such as runbook executions): registering a descriptor of the same name
//     with another help string fails exactly when the name is registered;
//     afterEvent names the sre_incident* gauges that have no value before
//     their event, with the reason;
//   - every series a dashboard panel or rule reads (parsed with the PromQL
//     parser) is sred's and catalogued, recorded by a shipped rule, or
//     named in external; the sre_incident* ones are exposed at once, at
//     zero, as Alertmanager exports its counters: otherwise panels show
//     "No data" and absent() alerts fire on a healthy sred.
func TestMetricsCatalogueCurrent(t *testing.T) {
	root := tu.RepoRoot(t)
	// The configuration `make run` uses: what a new user's dashboards and
	// alerts read first.
	a, srv := runAppOptions(t, Options{
		ConfigFile:  filepath.Join(root, "examples", "sred.yml"),
		StoragePath: filepath.Join(t.TempDir(), "data"),
	}, nil)
	mfs, _ := scrape(t, srv.URL)

	f, err := os.Open(filepath.Join(root, "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	cat, err := dashboards.ParseCatalogue(f)
	require.NoError(t, err)
	require.NotEmpty(t, cat)
	// sre_http_* connection metrics belong to cmd/sred's listeners
	// (pkg/connlimit, registered on this registry by main), not to the app.
	for _, name := range []string{"sre_http_open_connections", "sre_http_refused_connections_total"} {
		require.False(t, registered(a.Registry, name), "%s is registered by the app now: drop it from this list", name)
		require.Contains(t, cat, name)
		delete(cat, name)
	}
	// The health checks' metrics are not sre_-prefixed on purpose: they
	// carry blackbox_exporter's names (docs/healing.md). They are
	// catalogued and registered, and nothing else leaves the namespace.
	for _, name := range dashboards.BlackboxCompatible {
		require.Contains(t, cat, name, "docs/metrics.md documents the blackbox-compatible %s", name)
	}
	for name := range cat {
		require.True(t, strings.HasPrefix(name, "sre_") || slices.Contains(dashboards.BlackboxCompatible, name),
			"docs/metrics.md lists %s outside the sre_ namespace", name)
	}
	// Every exposed family of sred's namespace is documented; the Go and
	// process collectors' families are the client library's, not sred's.
	for name := range mfs {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
			continue
		}
		assertTrue(t, cat[name] != "", "/metrics exposes %s, which docs/metrics.md does not list", name)
	}
	// Every documented family is exposed on a fresh store, at zero where it
	// counts events, but these, which have no value before their event.
	afterEvent := map[string]string{
		"sre_incident_mtbf_seconds":                    "a mean between failures, undefined until a service had two incidents",
		"sre_incident_last_detected_timestamp_seconds": "a time of the service's last incident, undefined before its first",
		"sre_incident_postmortem_completion_ratio":     "completed / resolved post-mortems, undefined (0/0) until an incident of the severity resolved",
		"sre_automation_coverage_ratio":                "a share of the last 30 days' incidents, undefined (0/0) before the first",
		"sre_toil_ratio":                               "a share of the last 30 days' incidents, undefined (0/0) before the first",
	}
	// The event relay's families exist on PostgreSQL only (one process on
	// SQLite has no other replica): relayMetrics lists them, and must be
	// exactly what a relay registers, each with a series from the start
	// (gathered from a relay of its own); TestStreamAcrossReplicas scrapes
	// them from PostgreSQL replicas. Dashboards and rules may read them.
	relayFams := relayFamilies(t)
	require.ElementsMatch(t, slices.Collect(maps.Keys(relayMetrics)), slices.Collect(maps.Keys(relayFams)),
		"relayMetrics are not the families the relay registers")
	for name := range relayMetrics {
		require.Contains(t, cat, name)
		require.False(t, registered(a.Registry, name), "%s is registered on SQLite", name)
	}
	for name := range cat {
		if relayMetrics[name] {
			continue // checked against a relay above
		}
		if why, ok := afterEvent[name]; ok {
			require.Nil(t, mfs[name], "%s is exposed on a fresh store now: drop it from afterEvent", name)
			assertTrue(t, registered(a.Registry, name), "docs/metrics.md lists %s, which sred does not register", name)
			t.Logf("%s is not exposed on a fresh store: %s", name, why)
			continue
		}
		if mfs[name] == nil {
			// A vector without series yet (runbook executions, SLO
			// gauges before SLOs are configured): registered, at least.
			assertTrue(t, registered(a.Registry, name), "docs/metrics.md lists %s, which sred neither exposes nor registers", name)
		}
	}
	for name := range afterEvent {
		require.Contains(t, cat, name, "afterEvent names %s, which docs/metrics.md does not list", name)
	}

	// Every sred series a dashboard panel or rule reads is documented, and
	// exposed with at least one series on a fresh store, at zero, as
	// Alertmanager exports its counters: otherwise panels show "No data"
	// and absent() or increase() == 0 alerts misfire on a healthy sred.
	// The exceptions wait for their event (afterEvent) or for what they
	// measure to exist (afterSource).
	read := readSeries(t, root)
	require.NotEmpty(t, read)
	recorded := recordedSeries(t, root)
	waited := map[string]bool{}
	for name, where := range read {
		family := familyOf(cat, name)
		if slices.Contains(dashboards.DBStats, name) {
			// The store's connection pools (client_golang's database/sql
			// collector): exposed from the start, every pool a series.
			assertTrue(t, mfs[name] != nil && len(mfs[name].GetMetric()) > 0,
				"%s reads %s, which a freshly started sred does not expose", where, name)
			continue
		}
		if !strings.HasPrefix(name, "sre_") && cat[family] == "" {
			// Not sred's: recorded by the rules themselves, or the
			// scraped services' and Prometheus' own series.
			assertTrue(t, recorded[name] || external[name], "%s reads %s, which neither sred exposes nor a rule records", where, name)
			continue
		}
		assertTrue(t, cat[family] != "", "%s reads %s, which docs/metrics.md does not list", where, name)
		if relayMetrics[family] {
			// PostgreSQL only: exposed by the relay from the start.
			assertTrue(t, len(relayFams[family].GetMetric()) > 0,
				"%s reads %s, which a freshly started event relay does not expose", where, name)
			continue
		}
		if _, ok := afterEvent[family]; ok {
			continue
		}
		if _, ok := afterSource[family]; ok {
			waited[family] = true
			assertTrue(t, registered(a.Registry, family), "%s reads %s, which sred does not register", where, name)
			continue
		}
		assertTrue(t, mfs[family] != nil && len(mfs[family].GetMetric()) > 0,
			"%s reads %s, which a freshly started sred does not expose", where, name)
	}
	for name, why := range afterSource {
		assertTrue(t, waited[name], "afterSource names %s, which no dashboard or rule reads: drop it", name)
		t.Logf("%s need not be exposed on a fresh store: %s", name, why)
	}
}

// afterSource are the families that dashboards and rules read but that a
// fresh sred cannot expose, with the reason: their series are labelled by
// something that does not exist before it is measured, and a zero would
// be a false value.
var afterSource = map[string]string{
	"sre_slo_budget_policy_state": "per SLO, once its budget was computed from Prometheus",
	"sre_slo_data_coverage_ratio": "per SLO, once its budget was computed from Prometheus",
	"probe_success":               "per health check, once it has run: a 0 before would say the check fails",
	"sre_chaos_fault_active":      "per injected fault of an experiment, removed when the fault is reverted",
	"sre_chaos_resilience_score":  "the score of an experiment's last run, undefined before its first",
	// The DORA measures are per service, and a service is whatever the
	// CI pipeline or deploy tool that records a change names.
	"sre_deployments_total":            "per service, once a change of the service was recorded",
	"sre_rollbacks_total":              "per service, once a change of the service was recorded",
	"sre_change_failures_total":        "per service, once a change of the service was recorded",
	"sre_change_failure_ratio":         "per service, once a change of the service was recorded",
	"sre_deployment_frequency_per_day": "per service, once a change of the service was recorded",
	"sre_change_lead_time_seconds":     "per service, once a change of the service was recorded",
	"sre_change_restore_time_seconds":  "per service, once a change of the service was recorded",
}

// registered reports whether reg has a collector describing a metric named
// name: registering another descriptor of that name with a different help
// string is refused then.
func registered(reg *prometheus.Registry, name string) bool {
	probe := probeCollector{prometheus.NewDesc(name, "probe of TestMetricsCatalogueCurrent", nil, nil)}
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

type probeCollector struct{ desc *prometheus.Desc }

func (p probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }
func (p probeCollector) Collect(chan<- prometheus.Metric)    {}

// external are the series that dashboards and rules read from outside
// sred: Prometheus' own and the scraped services' (with the name the
// examples give them).
var external = map[string]bool{
	// Prometheus itself.
	"up": true, "ALERTS": true,
	// node_exporter (examples/healing.rules.yml).
	"node_memory_MemTotal_bytes": true, "node_memory_MemAvailable_bytes": true, "node_filesystem_size_bytes": true, "node_filesystem_avail_bytes": true,
	// cAdvisor and kube-state-metrics (examples/healing.rules.yml).
	"container_memory_working_set_bytes": true, "kube_pod_container_resource_limits": true,
	// the example services' own metrics (examples/healing.rules.yml, the SLO rules generated from examples/slos).
	"db_pool_connections_in_use": true, "db_pool_connections_max": true, "service_memory_used_bytes": true, "service_memory_limit_bytes": true, "http_requests_total": true, "http_request_duration_seconds_bucket": true, "http_request_duration_seconds_count": true, "api_integrity_checks_total": true, "checkout_orders_total": true, "payment_authorizations_total": true, "ingest_records_received_total": true, "ingest_records_dropped_total": true, "ingest_batch_commit_seconds": true,
}

// recordedSeries returns the names that the shipped rule files record.
func recordedSeries(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, file := range ruleFiles(t, root) {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
		require.Empty(t, errs, file)
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record] = true
				}
			}
		}
	}
	return out
}

// ruleFiles returns the shipped rule files.
func ruleFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"rules/*.yml", "examples/*.rules.yml", "examples/rules/*.rules.yml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	return files
}

// familyOf returns the family a series name belongs to (a histogram's or
// summary's _bucket, _sum and _count series are its family's).
// The catalogue says the type of a family that is not exposed.
func familyOf(cat dashboards.Catalogue, name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && (cat[base] == "histogram" || cat[base] == "summary") {
			return base
		}
	}
	return name
}

// readSeries returns the metric names read by the committed dashboards'
// panels and by the alert and recording rules (rules/, examples/), parsed
// with the PromQL parser, each with one place that reads it.
func readSeries(t *testing.T, root string) map[string]string {
	t.Helper()
	promql := parser.NewParser(parser.Options{})
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1d", "$service", "api", "$slo", "availability")
	out := map[string]string{}
	add := func(where, expr string) {
		e, err := promql.ParseExpr(grafana.Replace(expr))
		require.NoError(t, err, "%s: %s", where, expr)
		for _, sel := range parser.ExtractSelectors(e) {
			for _, m := range sel {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					if _, ok := out[m.Value]; !ok {
						out[m.Value] = where
					}
				}
			}
		}
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var d struct {
			Panels []json.RawMessage `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(b, &d))
		var walk func([]json.RawMessage)
		walk = func(ps []json.RawMessage) {
			for _, raw := range ps {
				var p panel
				require.NoError(t, json.Unmarshal(raw, &p))
				for _, tg := range p.Targets {
					if tg.Expr != "" {
						add(fmt.Sprintf("dashboard %s panel %q", filepath.Base(file), p.Title), tg.Expr)
					}
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
	for _, file := range ruleFiles(t, root) {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promql, promslog.NewNopLogger())
		require.Empty(t, errs, file)
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				add(fmt.Sprintf("rule %s%s in %s", r.Alert, r.Record, filepath.Base(file)), r.Expr)
			}
		}
	}
	return out
}

// The automation version sred's collector caches the ratios by changes when
// an incident changes and when a runbook run is recorded, and only then.
func TestMetricsAutomationVersion(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			clk := clock.NewManual(time.Now())
			a, srv := runApp(t, backend, "{}\n", func(a *App) { a.Incidents.Clock = clk })
			ctx := context.Background()
			src := runbookAutomation{db: a.DB}
			version := func() string {
				t.Helper()
				v, err := src.AutomationVersion(ctx)
				require.NoError(t, err)
				return v
			}
			empty := version()
			require.Equal(t, empty, version(), "nothing changed")
			id := openIncident(t, srv.URL, "VersionProbe", "api", "HIGH", clk.Now())
			opened := version()
			require.NotEqual(t, empty, opened, "an incident was created")
			clk.Advance(time.Second) // the acknowledgement's updated_at is later
			postJSON(t, srv.URL+"/api/v1/incidents/"+id+"/ack", map[string]string{"actor": "alice"})
			acked := version()
			require.NotEqual(t, opened, acked, "an incident was acknowledged")
			_, err := a.DB.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at) VALUES ($1, 'probe', 'api', 'pending', $2)`,
				id, time.Now().UnixMilli())
			require.NoError(t, err)
			require.NotEqual(t, acked, version(), "a runbook run was recorded")
		})
	}
}

// nonZeroSeries counts the series of a counter family that are not zero
// (families read by dashboards and rules start with zero series).
func nonZeroSeries(mf *dto.MetricFamily) int {
	n := 0
	for _, m := range mf.GetMetric() {
		if m.GetCounter().GetValue() != 0 {
			n++
		}
	}
	return n
}

// failingCollector stands for a collector whose store read failed (the
// on-call, job queue and rollout collectors report such an error as an
// invalid metric).
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("list overrides: context deadline exceeded"))
}

// TestMetricsSurviveFailingCollector: a collector that fails leaves its own
// series out of /metrics; the scrape still answers 200 with every other
// series (the incident statistics of an incident just opened, the webhook
// counters), rather than a 500 that drops them all and sets up to 0.
func TestMetricsSurviveFailingCollector(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", func(a *App) {
		a.Registry.MustRegister(failingCollector{prometheus.NewDesc("sre_test_failing", "A collector whose store read fails.", nil, nil)})
	})
	body := `{"version":"4","groupKey":"g1","status":"firing","receiver":"sred","groupLabels":{"alertname":"HighErrors"},
		"commonLabels":{"alertname":"HighErrors","service":"api","severity":"critical"},"externalURL":"http://am",
		"alerts":[{"status":"firing","labels":{"alertname":"HighErrors","service":"api","severity":"critical"},
		"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f1"}]}`
	resp, err := http.Post(srv.URL+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `sre_incidents_open{service="api",severity="CRITICAL"} 1`)
	require.Contains(t, string(b), `sre_webhook_requests_total{code="200"} 1`)
	require.NotContains(t, string(b), "sre_test_failing")
}

// Toil is the share of resolved incidents resolved by hand: while no
// incident of the window is resolved it is 0/0, absent rather than a 0 that
// reads as no work done by hand (on target); coverage is there.
func TestToilAbsentUntilResolved(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			_, srv := runApp(t, backend, "", nil)
			id := openIncident(t, srv.URL, "HighErrors", "api", "CRITICAL", time.Now())

			mfs, body := scrape(t, srv.URL)
			v, ok := metricValue(mfs, collector.MetricAutomationCoverage, nil)
			require.True(t, ok, "no coverage with an open incident:\n%s", body)
			require.Zero(t, v)
			_, ok = metricValue(mfs, collector.MetricToil, nil)
			require.False(t, ok, "toil exported before any incident resolved:\n%s", body)

			postJSON(t, srv.URL+"/api/v1/incidents/"+id+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
			mfs, body = scrape(t, srv.URL)
			v, ok = metricValue(mfs, collector.MetricToil, nil)
			require.True(t, ok, "no toil once the incident resolved by hand:\n%s", body)
			require.Equal(t, 1.0, v)
		})
	}
}

// The automation ratios cover the AutomationWindow before sred's clock, not
// before the wall clock: an incident created now on a clock 60 days behind
// the wall clock is within the window.
func TestAutomationWindowOnClock(t *testing.T) {
	clk := clock.NewManual(time.Now().Add(-60 * 24 * time.Hour))
	o := appOptions(t, "sqlite", "")
	o.Clock = clk
	_, srv := runAppOptions(t, o, func(a *App) { a.Incidents.Clock = clk })
	openIncident(t, srv.URL, "HighErrors", "api", "CRITICAL", clk.Now())

	mfs, body := scrape(t, srv.URL)
	v, ok := metricValue(mfs, collector.MetricAutomationCoverage, nil)
	require.True(t, ok, "no coverage with an incident created now on sred's clock:\n%s", body)
	require.Zero(t, v)
	v, ok = metricValue(mfs, collector.MetricAutomationRun, nil)
	require.True(t, ok, "no run ratio with an incident created now on sred's clock:\n%s", body)
	require.Zero(t, v)
}
