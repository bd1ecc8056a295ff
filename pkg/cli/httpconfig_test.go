package cli

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIncidentsHTTPConfigFile: --http.config.file gives the sred API client
// TLS trust and basic auth, on every command that talks to the sred API
// (incidents and runbook). The end-to-end test against a real sred behind
// --web.config.file is TestWebConfigFile in cmd/sred.
func TestIncidentsHTTPConfigFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/incidents":
			_, _ = w.Write([]byte(`{"status":"success","data":{"incidents":[],"total":0,"offset":0,"limit":50}}`))
		case "/api/v1/runbooks":
			_, _ = w.Write([]byte(`{"status":"success","data":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good := write("good.yml", "tls_config:\n  ca_file: "+ca+"\nbasic_auth:\n  username: alice\n  password: s3cret\n")
	wrong := write("wrong.yml", "tls_config:\n  ca_file: "+ca+"\nbasic_auth:\n  username: alice\n  password: nope\n")
	bad := write("bad.yml", "tls_config:\n  ca_fle: x\n")

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
		{"wrong password", []string{"incidents", "list", "--http.config.file=" + wrong}, 1, "", "srectl: sred answered 401: Unauthorized\n"},
		{"runbook wrong password", []string{"runbook", "list", "--http.config.file=" + wrong}, 1, "", "srectl: sred answered 401: Unauthorized\n"},
		{"invalid file", []string{"incidents", "list", "--http.config.file=" + bad}, 1, "",
			"srectl: load http.config.file " + bad + ": yaml: unmarshal errors:\n  line 2: field ca_fle not found in type config.plain\n"},
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
