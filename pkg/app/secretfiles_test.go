package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestSecretFilesRotateWithoutReload runs sred with the webhook bearer token
// and a gate override token in files, rotates both files while it runs
// and, without a reload, checks that the old tokens are refused and the
// new ones accepted: by the Alertmanager webhook, the Watchdog webhook and
// the deploy gate. A token file that disappears makes the webhooks answer
// 503 (Alertmanager retries), never let a delivery through unchecked.
func TestSecretFilesRotateWithoutReload(t *testing.T) {
	dir := t.TempDir()
	webhookToken := filepath.Join(dir, "webhook-token")
	gateToken := filepath.Join(dir, "gate-token")
	// Each rotation changes the file's size: the test does not depend on
	// the file system's timestamp granularity.
	write := func(file, token string) { require.NoError(t, os.WriteFile(file, []byte(token+"\n"), 0o600)) }
	write(webhookToken, "webhook-token-1")
	write(gateToken, "gate-override-token-1")
	a, srv := runApp(t, "sqlite", fmt.Sprintf(`
webhook: {bearer_token_file: %q}
alertmanager:
  watchdog: {alertname: Heartbeat, timeout: 1h}
slos:
  spec_files: [%q]
  gate: {override_token_files: [%q]}
`, webhookToken, filepath.Join(tu.RepoRoot(t), "examples", "slos", "api.yml"), gateToken), nil)

	post := func(path, token, body string) (int, string) {
		t.Helper()
		return sendRequest(t, http.MethodPost, srv.URL+path, strings.NewReader(body),
			map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token})
	}
	webhook := func(token string) (int, string) {
		return post("/api/v1/webhook/alertmanager", token, alert("api", "critical", "f1"))
	}
	heartbeat := func(token string) (int, string) {
		return post("/api/v1/webhook/watchdog", token, `{"version":"4","groupKey":"{}:{}","status":"firing","receiver":"w",
			"alerts":[{"status":"firing","labels":{"alertname":"Heartbeat"},"startsAt":"2026-03-01T10:00:00Z","fingerprint":"ab"}]}`)
	}
	gate := func(token string) (int, apiEnvelope) {
		t.Helper()
		return getJSON(t, srv.URL+"/api/v1/gate?service=api&reason=hotfix", map[string]string{budget.OverrideHeader: token}, nil)
	}
	checkWebhooks := func(good, bad string) {
		t.Helper()
		code, body := webhook(good)
		require.Equal(t, http.StatusOK, code, body)
		code, body = heartbeat(good)
		require.Equal(t, http.StatusOK, code, body)
		code, body = webhook(bad)
		require.Equal(t, http.StatusUnauthorized, code, body)
		require.Contains(t, body, "missing or wrong bearer token")
		code, body = heartbeat(bad)
		require.Equal(t, http.StatusUnauthorized, code, body)
	}
	checkGate := func(good, bad string) {
		t.Helper()
		code, env := gate(good)
		require.Equal(t, http.StatusOK, code, env.Error)
		code, env = gate(bad)
		require.Equal(t, http.StatusForbidden, code)
		require.Equal(t, "invalid emergency override token", env.Error)
	}

	checkWebhooks("webhook-token-1", "webhook-token-2")
	checkGate("gate-override-token-1", "gate-override-token-22")

	// Rotated in place.
	write(webhookToken, "webhook-token-22")
	write(gateToken, "gate-override-token-22")
	checkWebhooks("webhook-token-22", "webhook-token-1")
	checkGate("gate-override-token-22", "gate-override-token-1")

	// Rotated by renaming a new file into place (as Kubernetes and most
	// secret managers do).
	next := filepath.Join(dir, "next")
	write(next, "webhook-token-333")
	require.NoError(t, os.Rename(next, webhookToken))
	write(next, "gate-override-token-333")
	require.NoError(t, os.Rename(next, gateToken))
	checkWebhooks("webhook-token-333", "webhook-token-22")
	checkGate("gate-override-token-333", "gate-override-token-22")
	require.Equal(t, webhookToken, a.Config().Webhook.BearerTokenFile, "no reload happened")

	// A token file that cannot be read fails closed: 503 for the webhooks
	// (Alertmanager retries), without the file's path; the gate cannot
	// call a token invalid that may be the right one.
	require.NoError(t, os.Remove(webhookToken))
	require.NoError(t, os.Remove(gateToken))
	for _, send := range []func(string) (int, string){webhook, heartbeat} {
		for _, token := range []string{"webhook-token-333", ""} {
			code, body := send(token)
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			require.Contains(t, body, "the webhook's bearer token cannot be read (webhook.bearer_token_file; see sred's log)")
			require.NotContains(t, body, dir)
		}
	}
	code, env := gate("gate-override-token-333")
	require.Equal(t, http.StatusServiceUnavailable, code, env.Error)
	require.Equal(t, budget.ErrOverrideTokenUnavailable.Error(), env.Error)
	require.NotContains(t, env.Error, dir)

	// An empty token file is no token: refused too, not compared with "".
	write(webhookToken, "")
	code, body := webhook("")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	write(webhookToken, "webhook-token-4444")
	checkWebhooks("webhook-token-4444", "webhook-token-333")
}
