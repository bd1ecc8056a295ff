package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	tu "github.com/rootuip/sre/pkg/testutil"
)

const tlsSpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: checkout
slos:
  - name: availability
    objective: 99.9
    period: 1d
    sli:
      events:
        errorSelector: http_requests_total{job="checkout",code=~"5.."}
        totalSelector: http_requests_total{job="checkout"}
`

// selfSigned writes a self-signed certificate for 127.0.0.1 (its own CA)
// and its key as PEM files in dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prometheus test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "prometheus.crt"), filepath.Join(dir, "prometheus.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, pool
}

// TestBudgetsPrometheusTLSAuth runs the pinned Prometheus behind
// --web.config.file with TLS (a certificate generated here) and basic auth,
// loaded with the generated rules and scraping a target whose counters the
// test drives (1 failed request in 4000: 25% of a 99.9% budget spent). sred
// reads the budgets with the credentials and CA of its `prometheus:`
// section; with a wrong password, or without the CA, /api/v1/slos answers
// 503 saying why, and the gate fails closed.
func TestBudgetsPrometheusTLSAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	const user, password = "sred", "correct horse battery staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	require.NoError(t, err)
	webConfig := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webConfig, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n",
		certFile, keyFile, user, hash), 0o644))

	// The target: each scrape sees 3999 more good requests and 1 more error.
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests."}, []string{"code"})
	reg.MustRegister(reqs)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.WithLabelValues("200").Add(3999)
		reqs.WithLabelValues("500").Add(1)
		metrics.ServeHTTP(w, r)
	}))
	defer target.Close()

	// Prometheus with the generated rules.
	specs, err := slo.Parse([]byte(tlsSpec), "checkout.yml")
	require.NoError(t, err)
	files, err := rulegen.Generate(specs)
	require.NoError(t, err)
	promCfg := "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files:\n"
	for _, f := range files {
		b, err := f.Marshal()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), b, 0o644))
		promCfg += "  - " + filepath.Join(dir, f.Name) + "\n"
	}
	promCfg += fmt.Sprintf("scrape_configs:\n  - job_name: checkout\n    static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(target.URL, "http://"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promCfg), 0o644))
	promURL := startTLSPrometheus(t, dir, webConfig, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, user, password)

	specDir := filepath.Join(dir, "slos")
	require.NoError(t, os.MkdirAll(specDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(specDir, "checkout.yml"), []byte(tlsSpec), 0o644))
	passwordFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(passwordFile, []byte(password), 0o600))
	config := func(auth string) string {
		return fmt.Sprintf("prometheus:\n  url: %s\n%sslos:\n  spec_files: [%s]\n  poll_interval: 1s\n", promURL, auth, specDir)
	}

	good := fmt.Sprintf("  basic_auth: {username: %s, password_file: %s}\n  tls_config: {ca_file: %s}\n", user, passwordFile, certFile)
	_, srv := runApp(t, "sqlite", config(good), nil)
	var list budget.SLOList
	waitFor(t, func() bool {
		list = budget.SLOList{}
		code, env := getJSON(t, srv.URL+"/api/v1/slos", nil, &list)
		require.Equal(t, http.StatusOK, code, env.Error)
		// The budget and the SLI achieved come from different series,
		// which Prometheus's first evaluations may fill one after the
		// other: wait for both.
		return len(list.SLOs) == 1 && list.SLOs[0].Budget.RemainingRatio != nil && list.SLOs[0].SLIAchieved != nil
	}, "no budget and SLI read through TLS and basic auth")
	st := list.SLOs[0]
	nearPtr(t, 0.75, st.Budget.RemainingRatio, "1 error in 4000 spends a quarter of a 0.1% budget")
	nearPtr(t, 0.99975, st.SLIAchieved, "SLI achieved")
	require.Equal(t, "green", string(st.State))

	for _, tc := range []struct {
		name, auth, reason string
	}{
		{"wrong password", fmt.Sprintf("  basic_auth: {username: %s, password: wrong}\n  tls_config: {ca_file: %s}\n", user, certFile), "HTTP 401 Unauthorized: Prometheus refused the credentials (check basic_auth, authorization or oauth2 in the prometheus section of sred.yml)"},
		{"no CA", fmt.Sprintf("  basic_auth: {username: %s, password_file: %s}\n", user, passwordFile), "x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := runApp(t, "sqlite", config(tc.auth), nil)
			code, env := getJSON(t, srv.URL+"/api/v1/slos", nil, nil)
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.Equal(t, "unavailable", env.ErrorType)
			require.True(t, strings.HasPrefix(env.Error, "error budget of checkout/availability: Prometheus at "+promURL+" unavailable: query "), env.Error)
			require.Contains(t, env.Error, tc.reason)
			var d budget.Decision
			code, env = getJSON(t, srv.URL+"/api/v1/gate?service=checkout", nil, &d)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, "deny", d.Answer)
			require.Contains(t, d.PrometheusError, tc.reason)
		})
	}
}

// startTLSPrometheus runs the pinned Prometheus with --web.config.file.
// testutil.StartPrometheus waits for readiness over plain HTTP without
// credentials, which this server refuses: the wait here uses TLS and basic
// auth.
func startTLSPrometheus(t *testing.T, dir, webConfig string, client *http.Client, user, password string) string {
	t.Helper()
	port := tu.FreePort(t)
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	var out strings.Builder
	cmd := exec.Command(tu.Tool(t, "prometheus"),
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--web.config.file="+webConfig,
		"--log.level=warn")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- prometheus output ---\n%s", out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("prometheus exited during start:\n%s", out.String())
		default:
		}
		req, err := http.NewRequest(http.MethodGet, url+"/-/ready", nil)
		require.NoError(t, err)
		req.SetBasicAuth(user, password)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready at %s after 60s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
