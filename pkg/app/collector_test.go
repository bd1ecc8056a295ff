package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/dashboards"
	"github.com/rootuip/sre/pkg/receiver"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestMetricsScrape runs sred in-process on a real store, feeds it alerts
// through the Alertmanager webhook, acknowledges and resolves the incidents
// through the API at known times, and checks the values /metrics exports,
// that promtool accepts the exposition and that every sre_ metric in it is
// in the catalogue (docs/metrics.md) with its type.
func TestMetricsScrape(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("{}\n"), 0o644))
	ctx := context.Background()
	a, err := New(ctx, Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	clock := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	a.Incidents.Now = func() time.Time { return clock }
	srv := httptest.NewServer(a.Mux)
	defer srv.Close()

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
	// Three alert groups of the api service, each opening a CRITICAL
	// incident; each alert started 1 minute before it reached sred.
	ids := make([]string, 3)
	for i := range ids {
		start := clock.Add(-time.Minute)
		key := fmt.Sprintf(`{}:{alertname="Down%d"}`, i)
		post(receiver.Path, map[string]any{
			"version": "4", "groupKey": key, "status": "firing", "receiver": "sred",
			"groupLabels":  map[string]string{"alertname": fmt.Sprintf("Down%d", i)},
			"commonLabels": map[string]string{"alertname": fmt.Sprintf("Down%d", i), "service": "api", "severity": "critical"},
			"alerts": []map[string]any{{
				"status":      "firing",
				"labels":      map[string]string{"alertname": fmt.Sprintf("Down%d", i), "service": "api", "severity": "critical"},
				"annotations": map[string]string{"summary": "api down"},
				"startsAt":    start.Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
				"fingerprint": fmt.Sprintf("%016x", i+1),
			}},
		})
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
				ids[i] = inc.ID
			}
		}
		require.NotEmpty(t, ids[i], "no incident for group %s in %+v", key, got)
	}
	// Acknowledged after 2, 5 and 10 minutes, resolved after 10, 15 and
	// 30 minutes: MTTA 340s, MTTR 1100s. The third stays open.
	created := clock
	for i, d := range []time.Duration{2 * time.Minute, 5 * time.Minute, 10 * time.Minute} {
		clock = created.Add(d)
		post("/api/v1/incidents/"+ids[i]+"/ack", map[string]string{"actor": "alice"})
	}
	for i, d := range []time.Duration{10 * time.Minute, 15 * time.Minute} {
		clock = created.Add(d)
		post("/api/v1/incidents/"+ids[i]+"/resolve", map[string]string{"actor": "alice", "note": "fixed"})
	}

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "parse /metrics")

	hist := func(name string) *dto.Histogram {
		mf := mfs[name]
		require.NotNil(t, mf, "%s missing from /metrics", name)
		for _, m := range mf.GetMetric() {
			if label(m, "service") == "api" && label(m, "severity") == "CRITICAL" {
				return m.GetHistogram()
			}
		}
		t.Fatalf("%s has no series for service api, severity CRITICAL", name)
		return nil
	}
	tta := hist("sre_incident_time_to_acknowledge_seconds")
	require.Equal(t, uint64(3), tta.GetSampleCount())
	require.Equal(t, 120.0+300+600, tta.GetSampleSum())
	ttr := hist("sre_incident_time_to_resolve_seconds")
	require.Equal(t, uint64(2), ttr.GetSampleCount())
	require.Equal(t, 600.0+900, ttr.GetSampleSum())
	det := hist("sre_incident_detection_seconds")
	require.Equal(t, uint64(3), det.GetSampleCount())
	require.Equal(t, 180.0, det.GetSampleSum())
	open := mfs["sre_incidents_open"]
	require.NotNil(t, open)
	require.Len(t, open.GetMetric(), 1)
	require.Equal(t, 1.0, open.GetMetric()[0].GetGauge().GetValue())
	stored := mfs["sre_incidents_stored_total"]
	require.NotNil(t, stored)
	require.Equal(t, 3.0, stored.GetMetric()[0].GetCounter().GetValue())
	for _, m := range mfs["sre_collector_scrape_success"].GetMetric() {
		require.Equal(t, 1.0, m.GetGauge().GetValue(), "collector part %s failed", label(m, "collector"))
	}

	// Every sre_ family is in the catalogue, with its type.
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

	// promtool lints the whole exposition.
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
