package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/incident"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// The proof of issue 14's change records: a change recorded with a commit
// time through POST /api/v1/changes, followed by an incident opened through
// the real Alertmanager webhook, shows in /metrics as a failed change with
// its lead time and, once the incident resolves, its time to restore; the
// incident page and the post-mortem draft name it as the likely cause.
func TestChangeFollowedByIncident(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testChangeFollowedByIncident(t, backend) })
	}
}

func send(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func testChangeFollowedByIncident(t *testing.T, backend string) {
	_, srv := runApp(t, backend, "changes:\n  incident_link_window: 1h\n", nil)
	now := time.Now().UTC().Truncate(time.Second)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	// The change: committed 3h ago, deployed from 30 to 20 minutes ago.
	code, b := send(t, http.MethodPost, srv.URL+"/api/v1/changes", fmt.Sprintf(`{"service": "checkout", "kind": "deploy",
		"commit": "3f2c1ab", "commit_time": %q, "started_at": %q, "finished_at": %q, "outcome": "succeeded",
		"version": "v2.4.1", "source": "ci", "actor": "ci-bot"}`, ts(-3*time.Hour), ts(-30*time.Minute), ts(-20*time.Minute)))
	require.Equal(t, http.StatusCreated, code, "%s", b)
	var env struct {
		Data change.Change `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &env))
	c := env.Data
	require.Equal(t, change.Succeeded, c.Outcome)
	require.Equal(t, "skipped", c.Gate.Decision, "no SLO: not gated")
	require.InDelta(t, (2*time.Hour + 40*time.Minute).Seconds(), *c.LeadTime, 1e-9)

	mfs, _ := scrape(t, srv.URL)
	v, ok := metricValue(mfs, change.MetricFailures, map[string]string{"service": "checkout"})
	require.True(t, ok)
	require.Equal(t, 0.0, v, "no incident yet")

	// The incident, through the real webhook: its alert started 5 minutes ago.
	labels := map[string]string{"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
	delivery, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}:{alertname="CheckoutErrors"}`, "status": "firing", "receiver": "sred",
		"groupLabels": map[string]string{"alertname": "CheckoutErrors"}, "commonLabels": labels,
		"alerts": []any{map[string]any{"status": "firing", "labels": labels, "annotations": map[string]string{"summary": "checkout 5xx"},
			"startsAt": ts(-5 * time.Minute), "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "c0ffee0000000001"}},
	})
	res := deliver(t, srv.URL, string(delivery))
	require.Len(t, res.Created, 1)
	id := res.Created[0]

	// The incident page and the post-mortem draft name the likely cause.
	const cause = "deploy change 1 of checkout (version v2.4.1, commit 3f2c1ab) by ci-bot via ci, succeeded 15m0s before the first alert"
	code, page := fetch(t, http.MethodGet, srv.URL+"/incidents/"+id, nil, nil)
	require.Equal(t, http.StatusOK, code, page)
	require.Contains(t, page, `<tr class="likely-cause"><th>Likely cause</th><td>`+cause+` (<a href="/api/v1/changes/1">change 1</a>)</td></tr>`)
	code, pm := fetch(t, http.MethodGet, srv.URL+"/api/v1/incidents/"+id+"/postmortem?format=markdown", nil, nil)
	require.Equal(t, http.StatusOK, code, pm)
	require.Contains(t, pm, "Likely cause (a change recorded shortly before the first alert):\n\n- D"+cause[1:]+"\n")

	// The change is failed; its incident is linked.
	var got change.Change
	code, _ = getJSON(t, srv.URL+"/api/v1/changes/1", nil, &got)
	require.Equal(t, http.StatusOK, code)
	require.True(t, got.Failed)
	require.Len(t, got.Incidents, 1)
	require.Equal(t, id, got.Incidents[0].IncidentID)
	require.Nil(t, got.Incidents[0].ResolvedAt)

	code, b = send(t, http.MethodPost, srv.URL+"/api/v1/incidents/"+id+"/resolve", `{"actor": "alice", "note": "rolled back"}`)
	require.Equal(t, http.StatusOK, code, "%s", b)
	inc := getIncident(t, srv.URL, id)
	require.NotNil(t, inc.ResolvedAt)
	restore := inc.ResolvedAt.Sub(inc.DetectedAt).Seconds() // from the first alert

	mfs, body := scrape(t, srv.URL)
	checkCatalogue(t, mfs, body)
	svc := map[string]string{"service": "checkout"}
	for _, m := range []struct {
		name string
		lbl  map[string]string
		want float64
	}{
		{change.MetricDeployments, map[string]string{"service": "checkout", "kind": "deploy", "result": "succeeded"}, 1},
		{change.MetricDeployments, map[string]string{"service": "checkout", "kind": "deploy", "result": "rolled_back"}, 0},
		{change.MetricRollbacks, svc, 0},
		{change.MetricFailures, svc, 1},
		{change.MetricFailureRatio, svc, 1},
		{change.MetricFrequency, svc, 1.0 / 7},
	} {
		v, ok := metricValue(mfs, m.name, m.lbl)
		require.True(t, ok, "%s%v missing", m.name, m.lbl)
		require.InDelta(t, m.want, v, 1e-9, "%s%v", m.name, m.lbl)
	}
	for _, h := range []struct {
		name string
		sum  float64
	}{{change.MetricLeadTime, 9600}, {change.MetricRestoreTime, restore}} {
		mf := mfs[h.name]
		require.NotNil(t, mf, h.name)
		require.Len(t, mf.GetMetric(), 1, h.name)
		hist := mf.GetMetric()[0].GetHistogram()
		require.Equal(t, uint64(1), hist.GetSampleCount(), h.name)
		require.InDelta(t, h.sum, hist.GetSampleSum(), 1e-6, h.name)
	}
}

// TestDORAPanelsOnPrometheus has the real Prometheus scrape sred after
// three changes of a service (two succeeded, one rolled back) and an
// incident that followed the last one, and evaluates the DORA panels of the
// committed Executive and Operations dashboards against the figures those
// changes give.
func TestDORAPanelsOnPrometheus(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testDORAPanels(t, backend) })
	}
}

func testDORAPanels(t *testing.T, backend string) {
	_, srv := runApp(t, backend, "{}\n", nil)
	now := time.Now().UTC().Truncate(time.Second)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	// Prometheus keeps a created timestamp's 0 only within the last hour:
	// the first change started 40 minutes ago.
	for _, c := range []struct {
		commit, start, end time.Duration
		outcome            string
	}{
		{-2 * time.Hour, -40 * time.Minute, -30 * time.Minute, "succeeded"}, // lead time 5400s
		{-90 * time.Minute, -25 * time.Minute, -20 * time.Minute, "rolled_back"},
		{-time.Hour, -15 * time.Minute, -10 * time.Minute, "succeeded"}, // lead time 3000s
	} {
		code, b := send(t, http.MethodPost, srv.URL+"/api/v1/changes", fmt.Sprintf(`{"service": "checkout", "commit_time": %q,
			"started_at": %q, "finished_at": %q, "outcome": %q}`, ts(c.commit), ts(c.start), ts(c.end), c.outcome))
		require.Equal(t, http.StatusCreated, code, "%s", b)
	}
	id := openIncident(t, srv.URL, "CheckoutDown", "checkout", "CRITICAL", time.Now())
	postJSON(t, srv.URL+"/api/v1/incidents/"+id+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
	inc := getIncident(t, srv.URL, id)
	restore := inc.ResolvedAt.Sub(inc.DetectedAt).Seconds() // from the first alert
	var c change.Change
	code, _ := getJSON(t, srv.URL+"/api/v1/changes/3", nil, &c)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, c.Incidents, 1, "the incident is linked to the latest change")

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
	at := lastScrape(t, papi, lastScrape(t, papi, time.Time{}))

	checkout := `{service="checkout"}`
	for _, w := range []struct {
		dashboard, panel string
		values           map[string]float64
	}{
		{"executive.json", "Deployment frequency", map[string]float64{"": 2.0 / 7}},
		{"executive.json", "Lead time for changes", map[string]float64{"": (5400.0 + 3000) / 2}},
		{"executive.json", "Change failure rate", map[string]float64{"": 2.0 / 3}},
		{"executive.json", "Time to restore", map[string]float64{"": restore}},
		{"operations.json", "Change failure rate", map[string]float64{checkout: 2.0 / 3}},
		{"operations.json", "Deployment frequency", map[string]float64{checkout: 2.0 / 7}},
	} {
		got := evalPanel(t, papi, panels, w.dashboard, w.panel, at)
		require.Len(t, got, len(w.values), "%s %q: %v", w.dashboard, w.panel, got)
		for k, v := range w.values {
			g, ok := got[k]
			require.True(t, ok, "%s %q has no series %s: %v", w.dashboard, w.panel, k, got)
			require.InDelta(t, v, g, 1e-6, "%s %q %s", w.dashboard, w.panel, k)
		}
	}
}

// A reload installs the changes section: an incident 10 minutes after a
// change is not linked with a 5m window, and is after a reload to 1h.
func TestChangesReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(file, []byte(s), 0o644)) }
	write("changes: {incident_link_window: 5m}\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	go func() { _ = a.reloadLoop(ctx) }()

	done := time.Now().Add(-10 * time.Minute)
	_, err = a.Changes.Record(ctx, change.Change{Service: "api", StartedAt: done.Add(-time.Minute), FinishedAt: &done})
	require.NoError(t, err)
	open := func() []change.Change {
		inc, err := a.Incidents.Create(ctx, incident.ManualIncident{Title: "api down", Service: "api", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		linked, err := a.Changes.LinkedTo(ctx, inc.ID)
		require.NoError(t, err)
		return linked
	}
	require.Empty(t, open(), "10 minutes is outside a 5m window")

	write("changes: {incident_link_window: 1h, yellow_max_changes_per_day: 2}\n")
	require.NoError(t, a.RequestReload(ctx))
	require.Equal(t, model.Duration(time.Hour), Changes.Of(a.Config()).IncidentLinkWindow)
	require.Equal(t, 2, Changes.Of(a.Config()).YellowMaxChangesPerDay)
	require.Len(t, open(), 1)

	write("changes: {incident_link_window: 10s}\n")
	require.ErrorContains(t, a.RequestReload(ctx), "changes: incident_link_window must be between 1m and 7d, got 10s")
	require.Equal(t, model.Duration(time.Hour), Changes.Of(a.Config()).IncidentLinkWindow, "a bad section changes nothing")
}
