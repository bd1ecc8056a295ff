package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestGateAnswerPathsShownToAdminsOnly: the deploy gate's answer when
// Prometheus cannot be queried holds Prometheus' error, here the path of a
// credentials file that cannot be read. A viewer or a responder reads its
// base name in the gate's answer (GET /api/v1/gate), the Flagger
// pre-rollout hook's answer and the gate's reason recorded with a change
// (the answer of POST /api/v1/changes, GET /api/v1/changes and
// /api/v1/changes/{id}); URLs stay whole; an admin reads the path whole.
func TestGateAnswerPathsShownToAdminsOnly(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "prom-token")
	require.NoError(t, os.WriteFile(creds, []byte("prom-secret\n"), 0o600))
	const override = "gate-override-token-0123456789"
	users := writeUsers(t, map[string]string{"ada": "admin", "vic": "viewer", "rob": "responder"})
	_, srv := runApp(t, "sqlite", fmt.Sprintf(`
prometheus:
  url: http://127.0.0.1:9/prom
  authorization: {credentials_file: %q}
slos:
  spec_files: [%q]
  gate: {override_tokens: [%s]}
analysis:
  spec_files: [%q]
auth:
  users_file: %s
`, creds, filepath.Join(tu.RepoRoot(t), "examples", "slos", "api.yml"), override, filepath.Join(tu.RepoRoot(t), "examples", "rollouts"), users), nil)
	// The file goes away: every query of Prometheus fails naming it.
	require.NoError(t, os.Remove(creds))

	do := func(method, path, user, body string, hdr map[string]string) (int, string) {
		t.Helper()
		return doAs(t, srv, method, path, user, body, hdr)
	}
	cut := func(body, who string) {
		t.Helper()
		require.NotContains(t, body, dir, who)
		require.Contains(t, body, "prom-token", who)
		require.Contains(t, body, "http://127.0.0.1:9/prom", who)
	}

	for _, user := range []string{"vic", "rob", "ada"} {
		code, body := do("GET", "/api/v1/gate?service=api", user, "", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"decision":"deny"`, user)
		require.Contains(t, body, `"prometheus_error":`, user)
		if user == "ada" {
			require.Contains(t, body, creds)
		} else {
			cut(body, user)
		}
	}

	flagger := `{"name":"api","namespace":"prod","phase":"Progressing","metadata":{"analysis":"api"}}`
	code, body := do("POST", "/api/v1/analysis/flagger/pre-rollout", "vic", flagger, nil)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, `"hook":"pre-rollout"`)
	cut(body, "flagger pre-rollout")
	code, body = do("POST", "/api/v1/analysis/flagger/pre-rollout", "ada", flagger, nil)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, creds)

	// A change let through by the emergency override records the gate's
	// reason, Prometheus' error in it.
	code, body = do("POST", "/api/v1/changes", "rob", `{"service":"api","version":"v9","description":"hotfix built in /srv/ci/api","override_reason":"outage fix"}`,
		map[string]string{budget.OverrideHeader: override})
	require.Equal(t, http.StatusCreated, code, body)
	cut(body, "submit")
	require.Contains(t, body, "/srv/ci/api", "what the caller wrote is shown as written")
	var created struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	for _, path := range []string{fmt.Sprintf("/api/v1/changes/%d", created.Data.ID), "/api/v1/changes?service=api"} {
		code, body = do("GET", path, "vic", "", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, "emergency override: cannot read error budgets", path)
		cut(body, path)
		code, body = do("GET", path, "ada", "", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, creds, path)
	}
}
