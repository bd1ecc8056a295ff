package app

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/envelope"
)

// writeUsers writes a users file of name: role (password name+"-pw") and
// returns its path.
func writeUsers(t *testing.T, roles map[string]string) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("users:\n")
	for name, role := range roles {
		h, err := bcrypt.GenerateFromPassword([]byte(name+"-pw"), bcrypt.MinCost)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "  %s: {password: '%s', role: %s}\n", name, h, role)
	}
	file := filepath.Join(t.TempDir(), "users.yml")
	require.NoError(t, os.WriteFile(file, []byte(sb.String()), 0o600))
	return file
}

// doAs sends a request to srv as user of a writeUsers file (basic auth)
// with body, as JSON when not empty, and the headers hdr, and returns the
// answer's status and body.
func doAs(t *testing.T, srv *httptest.Server, method, path, user, body string, hdr map[string]string) (int, string) {
	t.Helper()
	base := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+user+"-pw"))}
	if body != "" {
		base["Content-Type"] = "application/json"
	}
	return sendRequest(t, method, srv.URL+path, strings.NewReader(body), headers(base, hdr))
}

// TestRefusalsCountedNotAudited: requests refused 401, 403 and 429 add no
// row to the audit log; they are counted in
// sre_http_refused_requests_total by code and route pattern (never the raw
// path), and logged at most once per client per minute (of sred's clock),
// the next line saying how many were not logged.
func TestRefusalsCountedNotAudited(t *testing.T) {
	users := writeUsers(t, map[string]string{"ada": "admin", "vic": "viewer", "rob": "viewer"})
	logs := &logBuffer{}
	clk := clock.NewManual(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	o := appOptions(t, "sqlite", "auth:\n  users_file: "+users+"\n")
	o.Logger, o.Clock = logs.logger(), clk
	_, srv := runAppOptions(t, o, nil)

	do := func(method, path, user, password string) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		require.NoError(t, err)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	want := map[string]float64{} // code + " " + route -> count
	sent := 0
	// Wrong passwords: 401s, then 429s once over the failure limit.
	for range 12 {
		code := do("GET", "/api/v1/incidents", "vic", "guess")
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, code)
		want[fmt.Sprint(code)+" GET /api/v1/incidents"]++
		sent++
	}
	// No credentials on a path with a made-up ID: counted by its pattern.
	require.Equal(t, http.StatusUnauthorized, do("GET", "/api/v1/incidents/INC-made-up-4711", "", ""))
	want["401 GET /api/v1/incidents/{id}"]++
	sent++
	// A role too low.
	require.Equal(t, http.StatusForbidden, do("POST", "/-/reload", "rob", "rob-pw"))
	want["403 POST /-/reload"]++
	sent++
	require.Equal(t, http.StatusNotFound, do("POST", "/no/such/route", "", ""), "an unknown path is not a refusal")
	require.Equal(t, http.StatusUnauthorized, do("GET", "/metrics", "", ""))
	want["401 GET /metrics"]++
	sent++

	req, err := http.NewRequest("GET", srv.URL+"/metrics", nil)
	require.NoError(t, err)
	req.SetBasicAuth("ada", "ada-pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	mb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(mb), "made-up-4711", "a raw path never becomes a label value")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(mb))
	require.NoError(t, err)
	got := map[string]float64{}
	for _, m := range mfs[MetricHTTPRefusedRequests].GetMetric() {
		got[label(m, "code")+" "+label(m, "route")] = m.GetCounter().GetValue()
	}
	require.Equal(t, want, got)

	// Nothing of it is in the audit log.
	code, env := getJSON(t, srv.URL+"/api/v1/audit", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:ada-pw"))}, nil)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.JSONEq(t, `[]`, string(env.Data))

	// One line for the client so far, whatever the number of refusals.
	lines := logs.lines(t, "Request refused")
	require.Len(t, lines, 1, logs.String())
	require.Equal(t, "127.0.0.1", lines[0]["client"])
	require.Equal(t, float64(0), lines[0]["not_logged_before"])

	// A minute later the next refusal is logged with the count of those
	// that were not.
	clk.Advance(time.Minute)
	require.Equal(t, http.StatusForbidden, do("POST", "/-/reload", "rob", "rob-pw"))
	lines = logs.lines(t, "Request refused")
	require.Len(t, lines, 2, logs.String())
	require.Equal(t, float64(sent-1), lines[1]["not_logged_before"])
	require.Equal(t, "POST /-/reload", lines[1]["route"])
	require.Equal(t, float64(403), lines[1]["code"])
}

// TestDecisionsAreNotRefusals: an answer of 403 in the success envelope
// (the Flagger pre-rollout hook when the deploy gate denies: the decision
// asked for) is not counted as a refused request; a 403 error envelope of
// a handler is.
func TestDecisionsAreNotRefusals(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", func(a *App) {
		a.Mux.HandleFunc("POST /test/decision", func(w http.ResponseWriter, _ *http.Request) {
			envelope.JSON(w, http.StatusForbidden, map[string]bool{"allowed": false})
		})
		a.Mux.HandleFunc("POST /test/refusal", func(w http.ResponseWriter, _ *http.Request) {
			envelope.Error(w, http.StatusForbidden, "forbidden", "wrong secret")
		})
	})
	for _, path := range []string{"/test/decision", "/test/refusal"} {
		resp, err := http.Post(srv.URL+path, "application/json", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
	}
	mfs, _ := scrape(t, srv.URL)
	got := map[string]float64{}
	for _, m := range mfs[MetricHTTPRefusedRequests].GetMetric() {
		got[label(m, "code")+" "+label(m, "route")] = m.GetCounter().GetValue()
	}
	require.Equal(t, map[string]float64{"403 POST /test/refusal": 1}, got)
}
