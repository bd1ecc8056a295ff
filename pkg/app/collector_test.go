package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

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
	// The background rollup runs every 100ms instead of every 15s.
	defer func(d time.Duration) { collectorRollupInterval = d }(collectorRollupInterval)
	collectorRollupInterval = 100 * time.Millisecond
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testMetricsScrape(t, backend) })
	}
}

func testMetricsScrape(t *testing.T, backend string) {
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	var clock atomic.Int64 // minutes after base
	now := func() time.Time { return base.Add(time.Duration(clock.Load()) * time.Minute) }
	at := func(minutes int64) { clock.Store(minutes) }
	sink := &hookSink{t: t, secret: "s3cret"}
	hooks := httptest.NewServer(sink)
	t.Cleanup(hooks.Close)
	// Incidents of api page alice through the webhook channel; web has no
	// escalation policy.
	a, srv := runApp(t, backend, fmt.Sprintf(`
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
`, hooks.URL), func(a *App) { a.Incidents.Now = now })

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
				"startsAt": now().Add(-ago).Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
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
	require.Len(t, mfs["sre_incidents_open"].GetMetric(), 1)
	require.Equal(t, 1.0, value("sre_incidents_open", apiCrit))
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
	require.Len(t, mfs["sre_escalation_steps_total"].GetMetric(), 2)
	// Webhook: four deliveries opened incidents, the retry changed nothing.
	require.Equal(t, 4.0, value("sre_webhook_deliveries_total", map[string]string{"outcome": "changed"}))
	require.Equal(t, 1.0, value("sre_webhook_deliveries_total", map[string]string{"outcome": "duplicate"}))
	require.Len(t, mfs["sre_webhook_deliveries_total"].GetMetric(), 2, "no delivery failed")
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
	// aggregate tables by itself. (Each change has its own time: the rollup
	// re-reads changes within the last 5 minutes of the real clock to catch
	// ties, which this clock a day behind never is.)
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
		return resolved == 3 && pmAPI == 2 && pmWeb == 1
	}, "the background rollup did not fold the changes in")
	_, sumMS := total("resolve", "api", "CRITICAL")
	require.Equal(t, int64((600+900+1800)*1000), sumMS)

	mfs, body = scrape(t, srv.URL)
	ttr := hist("sre_incident_time_to_resolve_seconds", "api", "CRITICAL")
	require.Equal(t, uint64(3), ttr.GetSampleCount())
	require.Equal(t, 600.0+900+1800, ttr.GetSampleSum())
	require.Nil(t, mfs["sre_incidents_open"], "no incident is open")
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
		if !strings.HasPrefix(name, "sre_") {
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

// TestMetricsCatalogueCurrent fails when docs/metrics.md lists a metric that
// sred no longer has: every catalogued family must be exported by a freshly
// started sred or be named in the source (metrics that only appear with
// data, such as runbook executions, are named where they are registered,
// either whole or as the name after the "sre" namespace).
func TestMetricsCatalogueCurrent(t *testing.T) {
	_, srv := runApp(t, "sqlite", "{}\n", nil)
	mfs, _ := scrape(t, srv.URL)

	root := tu.RepoRoot(t)
	var src strings.Builder
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			src.Write(b)
			return err
		})
		require.NoError(t, err)
	}
	code := src.String()

	f, err := os.Open(filepath.Join(root, "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	cat, err := dashboards.ParseCatalogue(f)
	require.NoError(t, err)
	require.NotEmpty(t, cat)
	for name := range cat {
		if mfs[name] != nil {
			continue
		}
		named := strings.Contains(code, `"`+name+`"`) || strings.Contains(code, `"`+strings.TrimPrefix(name, "sre_")+`"`)
		assertTrue(t, named, "docs/metrics.md lists %s, which sred neither exports nor registers", name)
	}
}

// The automation version sred's collector caches the ratios by changes when
// an incident changes and when a runbook run is recorded, and only then.
func TestMetricsAutomationVersion(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			a, srv := runApp(t, backend, "{}\n", nil)
			ctx := context.Background()
			src := runbookAutomation{a.DB}
			version := func() string {
				t.Helper()
				v, err := src.AutomationVersion(ctx)
				require.NoError(t, err)
				return v
			}
			empty := version()
			require.Equal(t, empty, version(), "nothing changed")
			id := openIncident(t, srv.URL, "VersionProbe", "api", "HIGH", time.Now())
			opened := version()
			require.NotEqual(t, empty, opened, "an incident was created")
			time.Sleep(2 * time.Millisecond) // updated_at has millisecond resolution
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
