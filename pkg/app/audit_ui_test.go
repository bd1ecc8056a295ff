package app

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAuditConsolePage: the console's audit log page (GET /audit) lists
// the write actions with who did them and from where, for admins only; a
// responder gets 403 and sees no link to it.
func TestAuditConsolePage(t *testing.T) {
	users := writeUsers(t, map[string]string{"ada": "admin", "rita": "responder"})
	_, srv := runApp(t, "sqlite", "auth:\n  users_file: "+users+"\n", nil)
	do := func(method, path, user string) (int, string) {
		t.Helper()
		return doAs(t, srv, method, path, user, "", nil)
	}
	code, body := do("POST", "/-/reload", "ada")
	require.Equal(t, http.StatusOK, code, body)
	code, body = do("POST", "/-/reload", "rita")
	require.Equal(t, http.StatusForbidden, code, body)

	code, body = do("GET", "/audit", "ada")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "<td>ada</td><td>admin</td><td>POST /-/reload</td><td>/-/reload</td><td>127.0.0.1:")
	require.Contains(t, body, `href="/audit" aria-current="page">Audit log</a>`)
	code, body = do("GET", "/audit?actor=rita", "ada")
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "<td>ada</td>")

	code, body = do("GET", "/audit", "rita")
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = do("GET", "/incidents", "rita")
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, `href="/audit"`, "a responder sees no link to the audit log")
}
