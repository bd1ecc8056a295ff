package app

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// TestAuditConsolePage: the console's audit log page (GET /audit) lists
// the write actions with who did them and from where, for admins only; a
// responder gets 403 and sees no link to it.
func TestAuditConsolePage(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yml")
	var sb strings.Builder
	sb.WriteString("users:\n")
	for _, u := range []struct{ name, role string }{{"ada", "admin"}, {"rita", "responder"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.name+"-pw"), bcrypt.MinCost)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "  %s: {password: '%s', role: %s}\n", u.name, h, u.role)
	}
	require.NoError(t, os.WriteFile(users, []byte(sb.String()), 0o600))
	_, srv := runApp(t, "sqlite", "auth:\n  users_file: "+users+"\n", nil)
	do := func(method, path, user string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, user+"-pw")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
