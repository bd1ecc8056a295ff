package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// buildSrectl compiles cmd/srectl once per test binary.
var buildSrectl = sync.OnceValues(func() (string, error) { return goBuild("srectl", "../srectl") })

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sred test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "sred.crt"), filepath.Join(dir, "sred.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestWebConfigFile runs sred behind --web.config.file with TLS and basic
// auth: requests without credentials get 401 on the API and on the webhook,
// requests with them get 200, and srectl reaches it with --http.config.file.
func TestWebConfigFile(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	require.NoError(t, err)
	webCfg := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webCfg, []byte(fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
basic_auth_users:
  alice: %s
`, certFile, keyFile, hash)), 0o600))
	cfg := filepath.Join(dir, "sred.yml")
	writeConfig(t, cfg, "INC")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	s := startWith(t, &sred{url: "https://", client: client, user: "alice", password: "s3cret-pass"},
		"--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"), "--web.config.file="+webCfg)

	// Plain HTTP is refused: the listener speaks TLS only.
	resp, err := http.Get(strings.Replace(s.url, "https://", "http://", 1) + "/api/v1/incidents")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	cases := []struct {
		name, method, path string
		body               []byte
		user, password     string
		code               int
	}{
		{"api without credentials", http.MethodGet, "/api/v1/incidents", nil, "", "", http.StatusUnauthorized},
		{"api with wrong password", http.MethodGet, "/api/v1/incidents", nil, "alice", "wrong", http.StatusUnauthorized},
		{"webhook without credentials", http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"), "", "", http.StatusUnauthorized},
		{"webhook with credentials", http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"), "alice", "s3cret-pass", http.StatusOK},
		{"api with credentials", http.MethodGet, "/api/v1/incidents", nil, "alice", "s3cret-pass", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			as := *s
			as.user, as.password = c.user, c.password
			code, body := as.do(t, c.method, c.path, c.body)
			require.Equal(t, c.code, code, body)
			if c.code == http.StatusUnauthorized {
				require.JSONEq(t, `{"status":"error","errorType":"unauthorized","error":"missing or wrong credentials (basic auth or Authorization: Bearer <token>)"}`, body)
			}
		})
	}
	// Only the authenticated delivery was stored.
	ids := incidentIDs(t, s)
	require.Len(t, ids, 1)
	require.Regexp(t, `^INC-\d{4}-0001 triggered$`, ids[0])

	srectl, err := buildSrectl()
	require.NoError(t, err)
	httpCfg := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good := httpCfg("http-good.yml", fmt.Sprintf("tls_config:\n  ca_file: %s\nbasic_auth:\n  username: alice\n  password: s3cret-pass\n", certFile))
	noAuth := httpCfg("http-noauth.yml", fmt.Sprintf("tls_config:\n  ca_file: %s\n", certFile))
	bad := httpCfg("http-bad.yml", "basic_auth:\n  usernme: alice\n")
	run := func(args ...string) (int, string) {
		cmd := exec.Command(srectl, append([]string{"incidents", "--sred.url=" + s.url, "--actor=bob"}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}

	code, out := run("list", "-o", "json", "--http.config.file="+good)
	require.Equal(t, 0, code, out)
	var page struct {
		Total     int `json:"total"`
		Incidents []struct {
			ID string `json:"id"`
		} `json:"incidents"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Equal(t, 1, page.Total)
	id := page.Incidents[0].ID
	code, out = run("ack", id, "--http.config.file="+good)
	require.Equal(t, 0, code, out)
	require.Equal(t, id+" is now acknowledged\n", out)

	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no http config: unknown CA", []string{"list"}, 3, "x509: certificate signed by unknown authority"},
		{"TLS but no credentials", []string{"list", "--http.config.file=" + noAuth}, 4, "srectl: sred answered 401: missing or wrong credentials (basic auth or Authorization: Bearer <token>)\n"},
		{"invalid http config", []string{"list", "--http.config.file=" + bad}, 1, "srectl: load http.config.file " + bad + ": yaml: unmarshal errors:\n  line 2: unknown field \"usernme\"\n"},
		{"missing http config", []string{"list", "--http.config.file=" + filepath.Join(dir, "nope.yml")}, 1, "no such file or directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := run(c.args...)
			require.Equal(t, c.code, code, out)
			require.Contains(t, out, c.out)
		})
	}
}
