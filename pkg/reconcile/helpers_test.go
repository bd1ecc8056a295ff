package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/receiver"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

var migrations = [][]store.Migration{incident.Migrations, Migrations}

// env is sred's side of a test: the real incident service on a real store,
// the real webhook receiver and the Watchdog webhook on a real HTTP server.
type env struct {
	db       *store.DB
	svc      *incident.Service
	m        *Metrics
	reg      *prometheus.Registry
	watchdog *Watchdog
	silencer *Silencer
	srv      *httptest.Server
	hooks    []incident.Hook
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{db: db, reg: prometheus.NewRegistry()}
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return e.hooks },
		events.NewBus(64, nil), nil, e.reg)
	require.NoError(t, err)
	e.svc = svc
	e.m = NewMetrics(e.reg)
	e.watchdog = NewWatchdog(db, svc, WatchdogOptions{Alertname: "Watchdog", Timeout: 5 * time.Minute}, nil, e.m)
	mux := http.NewServeMux()
	main := receiver.NewHandler(svc, receiver.Options{}, nil, e.reg)
	main.SetHeartbeats(e.watchdog)
	mux.Handle("POST "+receiver.Path, main)
	mux.Handle("POST "+WatchdogPath, NewWatchdogHandler(e.watchdog, WebhookOptions{}))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// startAlertmanager runs the pinned Alertmanager, routing the Watchdog alert
// to sred's Watchdog webhook and everything else to the main webhook, with
// resolves not sent (send_resolved: false), so that sred misses them.
func startAlertmanager(t *testing.T, sredURL string) *tu.Process {
	t.Helper()
	cfg := fmt.Sprintf(`
route:
  receiver: sred
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
  - receiver: sred-watchdog
    matchers: ['alertname="Watchdog"']
    repeat_interval: 1m
receivers:
- name: sred
  webhook_configs:
  - url: %[1]s/api/v1/webhook/alertmanager
    send_resolved: false
- name: sred-watchdog
  webhook_configs:
  - url: %[1]s/api/v1/webhook/watchdog
    send_resolved: false
`, sredURL)
	return tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: cfg})
}

type amAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt,omitempty"`
}

// postAlerts sends alerts to Alertmanager's API, as Prometheus does.
func postAlerts(t *testing.T, amURL string, alerts ...amAlert) {
	t.Helper()
	b, err := json.Marshal(alerts)
	require.NoError(t, err)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func newClient(t *testing.T, amURL string) *Client {
	t.Helper()
	c, err := NewClient(amURL, commoncfg.DefaultHTTPClientConfig, 5*time.Second)
	require.NoError(t, err)
	return c
}

// waitIncident waits until an open incident with n alerts exists.
func waitIncident(t *testing.T, svc *incident.Service, n int) incident.Incident {
	t.Helper()
	var got incident.Incident
	require.Eventually(t, func() bool {
		page, err := svc.List(context.Background(), incident.Filter{WithAlerts: true})
		require.NoError(t, err)
		for _, inc := range page.Incidents {
			if len(inc.Alerts) == n {
				got = inc
				return true
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "no incident with %d alerts arrived through the webhook", n)
	return got
}

func timelineKinds(t *testing.T, svc *incident.Service, id string) map[string][]incident.TimelineEntry {
	t.Helper()
	tl, err := svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	out := map[string][]incident.TimelineEntry{}
	for _, e := range tl {
		out[e.Kind] = append(out[e.Kind], e)
	}
	return out
}

func alertStatus(inc *incident.Incident) map[string]string {
	out := map[string]string{}
	for _, a := range inc.Alerts {
		out[a.Labels["instance"]] = a.Status
	}
	return out
}

func contains(entries []incident.TimelineEntry, sub string) bool {
	for _, e := range entries {
		if strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}
