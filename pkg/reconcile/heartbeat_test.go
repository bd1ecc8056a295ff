package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// postWebhook posts a delivery to sred's main webhook and returns the
// status code and the decoded data of the answer.
func postWebhook(t *testing.T, e *env, body string) (int, incident.IngestResult) {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Data incident.IngestResult }
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out.Data
}

func delivery(groupKey string, alerts ...string) string {
	return fmt.Sprintf(`{"version":"4","groupKey":%q,"status":"firing","receiver":"sred",
		"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","alerts":[%s]}`,
		groupKey, strings.Join(alerts, ","))
}

func alertJSON(fp string, labels string) string {
	return fmt.Sprintf(`{"status":"firing","labels":%s,"annotations":{"summary":"s"},"startsAt":"2026-03-01T10:00:00Z",
		"endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}`, labels, fp)
}

const watchdogAlert = `{"status":"firing","labels":{"alertname":"Watchdog","severity":"none"},"annotations":{},
	"startsAt":"2026-03-01T09:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"wd"}`

func heartbeatSource(t *testing.T, db *store.DB) string {
	t.Helper()
	var source string
	err := db.QueryRowContext(context.Background(), `SELECT source FROM reconcile_watchdog WHERE alertname = 'Watchdog'`).Scan(&source)
	if err != nil {
		return ""
	}
	return source
}

// TestHeartbeatInMainWebhook: the main webhook recognises the configured
// heartbeat alert in any delivery: a group made only of heartbeats opens
// nothing, a mixed group opens an incident without the heartbeat, and a
// repeat of it changes nothing. With the Watchdog off it is an ordinary
// alert.
func TestHeartbeatInMainWebhook(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)

		code, res := postWebhook(t, e, delivery(`{}:{alertname="Watchdog"}`, watchdogAlert))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, incident.IngestResult{Incidents: []string{}, Alerts: map[string]int{"heartbeat": 1}}, res)
		require.Equal(t, "webhook", heartbeatSource(t, db))
		page, err := e.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Zero(t, page.Total, "a group of heartbeats opens nothing")

		// A route grouping by service only puts the Watchdog with others.
		mixed := delivery(`{}:{service="checkout"}`,
			alertJSON("a1", `{"alertname":"HighLatency","service":"checkout","severity":"critical","instance":"c1"}`),
			watchdogAlert,
			alertJSON("a2", `{"alertname":"HighLatency","service":"checkout","severity":"critical","instance":"c2"}`))
		code, res = postWebhook(t, e, mixed)
		require.Equal(t, http.StatusOK, code)
		require.Len(t, res.Created, 1)
		require.Equal(t, map[string]int{"new": 2, "heartbeat": 1}, res.Alerts)
		inc, err := e.svc.Get(ctx, res.Created[0])
		require.NoError(t, err)
		require.Len(t, inc.Alerts, 2)
		for _, a := range inc.Alerts {
			require.Equal(t, "HighLatency", a.Labels["alertname"])
		}
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, "s", inc.Title, "common annotations are those of the alerts without the heartbeat")
		require.Equal(t, map[string]string{"alertname": "HighLatency", "service": "checkout", "severity": "critical"}, inc.Labels)

		code, res = postWebhook(t, e, mixed)
		require.Equal(t, http.StatusOK, code)
		require.True(t, res.Duplicate)
		require.Equal(t, map[string]int{"unchanged": 2, "heartbeat": 1}, res.Alerts)
		page, err = e.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Equal(t, 1, page.Total)

		// Bad input is still refused before anything is recorded.
		code, _ = postWebhook(t, e, delivery(`{}:{}`, strings.Replace(watchdogAlert, `"fingerprint":"wd"`, `"fingerprint":""`, 1)))
		require.Equal(t, http.StatusBadRequest, code)

		// Watchdog off: the alert is an ordinary one.
		e.watchdog.SetOptions(WatchdogOptions{})
		code, res = postWebhook(t, e, delivery(`{}:{alertname="Watchdog"}`, watchdogAlert))
		require.Equal(t, http.StatusOK, code)
		require.Len(t, res.Created, 1)
	})
}

// TestWatchdogRuleEndToEnd runs the documented setup with real servers:
// Prometheus evaluates examples/watchdog.rules.yml, Alertmanager routes with
// examples/alertmanager.yml (pointed at the test's sred), and the Watchdog
// reaches sred's main webhook: the heartbeat is recorded and no incident
// opens.
func TestWatchdogRuleEndToEnd(t *testing.T) {
	rules, err := os.ReadFile("../../examples/watchdog.rules.yml")
	require.NoError(t, err)
	amCfg, err := os.ReadFile("../../examples/alertmanager.yml")
	require.NoError(t, err)
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		cfg := strings.ReplaceAll(string(amCfg), "http://localhost:8095", e.srv.URL)
		require.NotEqual(t, string(amCfg), cfg)
		am := tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: cfg})
		tu.StartPrometheus(t, tu.PrometheusOptions{
			Config: fmt.Sprintf(`
global: {evaluation_interval: 1s}
rule_files: [watchdog.rules.yml]
alerting:
  alertmanagers:
  - static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(am.URL, "http://")),
			Files: map[string]string{"watchdog.rules.yml": string(rules)},
			// An alert evaluated before Prometheus knows its Alertmanager is
			// sent again only after the resend delay (1m by default).
			Args: []string{"--rules.alert.resend-delay=1s"},
		})
		require.Eventually(t, func() bool { return heartbeatSource(t, db) == "webhook" },
			30*time.Second, 100*time.Millisecond, "the Watchdog did not reach sred's main webhook: %s", metricsText(t, e))
		page, err := e.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Zero(t, page.Total)
		id, err := e.watchdog.Check(ctx)
		require.NoError(t, err)
		require.Empty(t, id, "the pipeline is healthy")
	})
}

func metricsText(t *testing.T, e *env) string {
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	var sb strings.Builder
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "sre_webhook") || strings.HasPrefix(mf.GetName(), "sre_watchdog") {
			fmt.Fprintln(&sb, mf.String())
		}
	}
	return sb.String()
}
