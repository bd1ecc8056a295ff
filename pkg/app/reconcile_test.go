package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestReconcileModule starts the whole app against a real Alertmanager and
// checks the reconcile module is wired: silences created on acknowledge by
// the silencer actor (and the reconciler, polling every second, leaving an
// alert Alertmanager still has alone), and the Watchdog webhook.
func TestReconcileModule(t *testing.T) {
	am := tu.StartAlertmanager(t, tu.AlertmanagerOptions{Config: "route: {receiver: x}\nreceivers: [{name: x}]\n"})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
alertmanager:
  url: %s
  reconcile_interval: 1s
  silence_on_ack: true
  watchdog: {alertname: Heartbeat, timeout: 1h}
`, am.URL)), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Options{ConfigFile: cfgFile, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	done := make(chan struct{})
	var running int
	for _, act := range a.Actors() {
		if strings.HasPrefix(act.Name, "alertmanager-") || act.Name == "watchdog" {
			running++
			go func() { _ = act.Execute(ctx); done <- struct{}{} }()
		}
	}
	require.Equal(t, 3, running)
	defer func() {
		cancel()
		for range running {
			<-done
		}
	}()
	srv := httptest.NewServer(a.Mux)
	defer srv.Close()

	// The alert is in Alertmanager (else the reconciler, polling every
	// second, would resolve it) and reaches sred as a webhook would bring it.
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	labels := map[string]string{"alertname": "X", "service": "api"}
	alerts, _ := json.Marshal([]map[string]any{{"labels": labels, "startsAt": start, "endsAt": start.Add(time.Hour)}})
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", strings.NewReader(string(alerts)))
	require.NoError(t, err)
	resp.Body.Close()
	var fp string
	require.Eventually(t, func() bool {
		var got []struct{ Fingerprint string }
		r, err := http.Get(am.URL + "/api/v2/alerts")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		_ = json.NewDecoder(r.Body).Decode(&got)
		if len(got) == 1 {
			fp = got[0].Fingerprint
		}
		return fp != ""
	}, 60*time.Second, 50*time.Millisecond)
	res, err := a.Incidents.Ingest(ctx, incident.Notification{Receiver: "x", Status: "firing", GroupKey: `{}:{alertname="X"}`,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: fp, StartsAt: start, Labels: labels}}})
	require.NoError(t, err)
	id := res.Created[0]
	resp, err = http.Post(srv.URL+"/api/v1/incidents/"+id+"/ack", "application/json", strings.NewReader(`{"actor":"alice"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Eventually(t, func() bool {
		var out struct{ Data []struct{ State string } }
		r, err := http.Get(srv.URL + "/api/v1/incidents/" + id + "/silences")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		_ = json.NewDecoder(r.Body).Decode(&out)
		return len(out.Data) == 1 && out.Data[0].State == "active"
	}, 15*time.Second, 100*time.Millisecond, "the silencer actor did not create the silence")

	body := `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"w","alerts":[{"status":"firing",
		"labels":{"alertname":"Heartbeat"},"startsAt":"2026-03-01T10:00:00Z","fingerprint":"ab"}]}`
	resp, err = http.Post(srv.URL+"/api/v1/webhook/watchdog", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}
