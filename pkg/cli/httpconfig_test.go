package cli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIncidentsHTTPConfigFile: --http.config.file gives the sred API client
// TLS trust and basic auth, on every command that talks to the sred API
// (incidents and runbook). The end-to-end test against a real sred behind
// --web.config.file is TestWebConfigFile in cmd/sred.
func TestIncidentsHTTPConfigFile(t *testing.T) {
	srv, good, wrong, bad := tlsBasicAuthServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/incidents":
			_, _ = w.Write([]byte(`{"status":"success","data":{"incidents":[],"total":0,"offset":0,"limit":50}}`))
		case "/api/v1/runbooks":
			_, _ = w.Write([]byte(`{"status":"success","data":[]}`))
		default:
			http.NotFound(w, r)
		}
	})
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"incidents list", []string{"incidents", "list", "--http.config.file=" + good}, 0,
			"ID  SEVERITY  STATUS  SERVICE  CREATED  ASSIGNEE  TITLE\n", ""},
		{"runbook list", []string{"runbook", "list", "--http.config.file=" + good}, 0, "", ""},
		{"wrong password", []string{"incidents", "list", "--http.config.file=" + wrong}, 4, "", "srectl: sred answered 401: Unauthorized\n"},
		{"runbook wrong password", []string{"runbook", "list", "--http.config.file=" + wrong}, 4, "", "srectl: sred answered 401: Unauthorized\n"},
		{"invalid file", []string{"incidents", "list", "--http.config.file=" + bad}, 1, "",
			"srectl: load http.config.file " + bad + ": yaml: unmarshal errors:\n  line 2: unknown field \"ca_fle\"\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{c.args[0], "--sred.url=" + srv.URL}, c.args[1:]...)
			require.Equal(t, c.code, Main(args, &stdout, &stderr), stderr.String())
			if c.stdout != "" {
				require.Equal(t, c.stdout, stdout.String())
			}
			require.Equal(t, c.stderr, stderr.String())
		})
	}
	// Without the file the server's certificate is not trusted.
	var stdout, stderr bytes.Buffer
	require.Equal(t, 3, Main([]string{"incidents", "--sred.url=" + srv.URL, "list"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "x509: certificate signed by unknown authority")
}

// tlsBasicAuthServer starts an HTTPS server that answers with handler (JSON)
// only to the basic auth alice:s3cret, and writes HTTP client configuration
// files: good (trusts the server's certificate, right password), wrong (wrong
// password) and bad (unknown field).
func tlsBasicAuthServer(t *testing.T, handler http.HandlerFunc) (srv *httptest.Server, good, wrong, bad string) {
	t.Helper()
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good = write("good.yml", "tls_config:\n  ca_file: "+ca+"\nbasic_auth:\n  username: alice\n  password: s3cret\n")
	wrong = write("wrong.yml", "tls_config:\n  ca_file: "+ca+"\nbasic_auth:\n  username: alice\n  password: nope\n")
	bad = write("bad.yml", "tls_config:\n  ca_fle: x\n")
	return srv, good, wrong, bad
}

// TestBudgetHTTPConfigFile: budget, gate and sla reach sred through the same
// client as incidents: --http.config.file gives them TLS trust and basic
// auth, and they keep their own exit codes (gate: 0 allow, 1 deny, 2 usage
// error, 3 sred unreachable or failing, 4 request refused).
func TestBudgetHTTPConfigFile(t *testing.T) {
	srv, good, wrong, bad := tlsBasicAuthServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/slos":
			_, _ = w.Write([]byte(`{"status":"success","data":{"time":"2026-11-01T00:00:00Z","slos":[]}}`))
		case "/api/v1/gate":
			q := r.URL.Query()
			allowed := q.Get("service") == "web"
			answer := map[bool]string{true: "allow", false: "deny"}[allowed]
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{
				"service": q.Get("service"), "change": q.Get("change"), "allowed": allowed, "decision": answer,
				"state":  map[bool]string{true: "green", false: "exhausted"}[allowed],
				"reason": q.Get("change") + " change " + answer + " for " + q.Get("service") + " by " + q.Get("actor"),
			}})
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"status":"error","errorType":"not_found","error":"not found"}`))
		}
	})
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"budget", []string{"budget", "--http.config.file=" + good}, 0,
			"SERVICE  SLO  GROUP  OBJECTIVE  PERIOD  COVERED  SLI  REMAINING  REMAINING MIN  STATE  BURN  EXHAUSTED IN\n", ""},
		{"gate allows", []string{"gate", "--http.config.file=" + good, "--service=web", "--actor=bob"}, 0,
			"allow: normal change allow for web by bob\n", ""},
		{"gate denies", []string{"gate", "--http.config.file=" + good, "--service=checkout", "--actor=bob"}, 1,
			"deny: normal change deny for checkout by bob\n", ""},
		{"sla unknown customer", []string{"sla", "report", "--http.config.file=" + good, "--customer=NOPE"}, 4, "",
			"srectl: sred answered 404: not found\n"},
		{"budget wrong password", []string{"budget", "--http.config.file=" + wrong}, 4, "", "srectl: sred answered 401: Unauthorized\n"},
		{"gate wrong password", []string{"gate", "--http.config.file=" + wrong, "--service=web"}, 4, "", "srectl: sred answered 401: Unauthorized\n"},
		{"gate invalid file", []string{"gate", "--http.config.file=" + bad, "--service=web"}, 1, "",
			"srectl: load http.config.file " + bad + ": yaml: unmarshal errors:\n  line 2: unknown field \"ca_fle\"\n"},
		{"gate invalid url", []string{"gate", "--service=web", "--sred.url=ftp://sred"}, 2, "", "srectl: invalid --sred.url \"ftp://sred\": want an http or https URL (http://localhost:8095)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := c.args
			if !strings.Contains(strings.Join(args, " "), "--sred.url") {
				args = append(args, "--sred.url="+srv.URL)
			}
			require.Equal(t, c.code, Main(args, &stdout, &stderr), stderr.String())
			require.Equal(t, c.stdout, stdout.String())
			require.Equal(t, c.stderr, stderr.String())
		})
	}
	// Without the file the server's certificate is not trusted: sred is unreachable.
	for _, args := range [][]string{{"gate", "--service=web"}, {"budget"}} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 3, Main(append(args, "--sred.url="+srv.URL), &stdout, &stderr))
		require.Contains(t, stderr.String(), "srectl: reach sred: ")
		require.Contains(t, stderr.String(), "x509: certificate signed by unknown authority")
	}
}
