package app

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/status"
)

// TestStatusPage runs sred with authentication, a status_page section and a
// webhook channel for status updates. An alert opens a CRITICAL incident on
// checkout; a responder adds an internal note, an internal status update and
// a public one. The page (HTML, JSON, Atom), served without credentials on
// the web listener and on the status listener's handler, shows Checkout in
// major outage with the public update only, and none of the incident's
// internals: ID, title, labels, annotations, responder, note, internal
// update. GET /api/v1/status needs a viewer. Both status updates reach the
// webhook channel through the notification outbox.
func TestStatusPage(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("rita-pw"), bcrypt.MinCost)
	require.NoError(t, err)
	users := filepath.Join(dir, "users.yml")
	require.NoError(t, os.WriteFile(users, fmt.Appendf(nil, "users:\n  rita: {password: '%s', role: responder}\n", h), 0o600))
	start := time.Now().UTC().Add(time.Hour)
	a, srv := runApp(t, "sqlite", fmt.Sprintf(`auth:
  users_file: %s
webhook:
  bearer_token: hook-token
notifications:
  webhook: {url: %s, secret: s3cret}
status_page:
  title: Example status
  url: https://status.example.com
  notify: [webhook]
  components:
    - {name: Checkout, description: Buying things, services: [checkout, payments]}
    - {name: Search, services: [search]}
  maintenance:
    - {title: Database upgrade, components: [Search], start: %s, end: %s}
escalation:
  maintenance_windows:
    - {name: internal-window-xyz, matchers: ['service="search"'], start: %[3]s, end: %[4]s}
`, users, hook.URL, start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339)), nil)
	statusSrv := httptest.NewServer(a.StatusHandler())
	defer statusSrv.Close()

	do := func(method, path, body string, user bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if user {
			req.SetBasicAuth("rita", "rita-pw")
		}
		if strings.HasPrefix(path, "/api/v1/webhook") {
			req.Header.Set("Authorization", "Bearer hook-token")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Before any incident: all operational, the maintenance announced.
	code, body := do("GET", "/status.json", "", false)
	require.Equal(t, http.StatusOK, code, body)
	var p status.Page
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	require.Equal(t, status.Operational, p.Status)
	require.Len(t, p.Components, 2)
	require.Len(t, p.Components[0].Uptime, status.DefaultUptimeDays)
	require.Equal(t, 1.0, p.Components[0].UptimeRatio)
	require.Len(t, p.Maintenance, 1)
	require.False(t, p.Maintenance[0].InProgress)

	// The escalation maintenance window is internal: never on the page.
	secrets := []string{"internal-window-xyz", "SecretCheckoutAlert", "db-primary-7", "hunter2-annotation", "rita", "internal-note-xyz", "internal-update-xyz"}
	delivery := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"SecretCheckoutAlert\"}","status":"firing","receiver":"sred",
		"groupLabels":{"alertname":"SecretCheckoutAlert"},"commonLabels":{"alertname":"SecretCheckoutAlert","service":"checkout","severity":"critical","instance":"db-primary-7"},
		"alerts":[{"status":"firing","labels":{"alertname":"SecretCheckoutAlert","service":"checkout","severity":"critical","instance":"db-primary-7"},
		"annotations":{"summary":"hunter2-annotation"},"startsAt":%q,"fingerprint":"c0ffee"}]}`, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	code, body = do("POST", "/api/v1/webhook/alertmanager", delivery, false)
	require.Equal(t, http.StatusOK, code, body)
	var created struct {
		Data struct{ Created []string } `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	require.Len(t, created.Data.Created, 1)
	id := created.Data.Created[0]
	secrets = append(secrets, id)

	code, body = do("POST", "/api/v1/incidents/"+id+"/notes", `{"text":"internal-note-xyz"}`, true)
	require.Equal(t, http.StatusOK, code, body)
	code, body = do("POST", "/api/v1/incidents/"+id+"/status-updates", `{"impact":"internal-update-xyz"}`, true)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = do("POST", "/api/v1/incidents/"+id+"/status-updates", `{"public_message":"x"}`, true)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "public_message: set public: true")
	code, body = do("POST", "/api/v1/incidents/"+id+"/status-updates",
		`{"public":true,"public_message":"Payments fail for some customers; we are rolling back.","impact":"db-primary-7 down"}`, true)
	require.Equal(t, http.StatusCreated, code, body)

	for _, base := range []string{srv.URL, statusSrv.URL} {
		get := func(path string) string {
			t.Helper()
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s%s: %s", base, path, b)
			// Public, meant to be cached: not the API's no-store; for
			// what is left of the page's 15 seconds.
			require.Regexp(t, `^public, max-age=([0-9]|1[0-5])$`, resp.Header.Get("Cache-Control"), path)
			require.NotEmpty(t, resp.Header.Get("ETag"), path)
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
			return string(b)
		}
		html, js, atom := get("/status"), get("/status.json"), get("/status/feed.atom")
		for _, doc := range []string{html, js, atom} {
			require.Contains(t, doc, "Payments fail for some customers; we are rolling back.")
			for _, s := range secrets {
				require.NotContains(t, doc, s, "the public page leaks %q", s)
			}
		}
		require.Contains(t, html, "Major outage of Checkout")
		require.Contains(t, html, "Database upgrade")
		// The icon the page links is public on both listeners (without it
		// the browser asks for /favicon.ico: 404, a console error).
		require.Contains(t, html, `<link rel="icon" href="/status/favicon.svg"`)
		resp, err := http.Get(base + "/status/favicon.svg")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, base)
		require.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
		p = status.Page{}
		require.NoError(t, json.Unmarshal([]byte(js), &p))
		require.Equal(t, status.MajorOutage, p.Status)
		require.Equal(t, status.MajorOutage, p.Components[0].Status)
		require.Equal(t, status.Operational, p.Components[1].Status)
		require.Len(t, p.Incidents, 1)
		require.Equal(t, "investigating", p.Incidents[0].Stage)
		require.Len(t, p.Incidents[0].Updates, 1)
		var feed struct {
			Entries []struct {
				Title   string `xml:"title"`
				Content string `xml:"content"`
			} `xml:"entry"`
		}
		require.NoError(t, xml.Unmarshal([]byte(atom), &feed))
		require.Len(t, feed.Entries, 2, atom)
		require.Equal(t, "Major outage of Checkout (investigating)", feed.Entries[0].Title)
		require.Equal(t, "Scheduled maintenance: Database upgrade", feed.Entries[1].Title)
	}
	// The status listener serves nothing else.
	resp, err := http.Get(statusSrv.URL + "/api/v1/incidents")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	// The API form needs a viewer.
	code, _ = do("GET", "/api/v1/status", "", false)
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = do("GET", "/api/v1/status", "", true)
	require.Equal(t, http.StatusOK, code, body)
	// The API's answers, refusals included, are for one principal: never
	// cached, never sniffed.
	for _, user := range []bool{false, true} {
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/status", nil)
		require.NoError(t, err)
		if user {
			req.SetBasicAuth("rita", "rita-pw")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "credentials: %v", user)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "credentials: %v", user)
	}

	// Both status updates went out on the webhook channel.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range hooks {
			if strings.Contains(b, "status_update") {
				n++
			}
		}
		return n == 2
	}, "the status updates did not reach the webhook channel")
	mu.Lock()
	for _, b := range hooks {
		if strings.Contains(b, "status_update") {
			require.Contains(t, b, "Status Page: https://status.example.com", "the status update links to the page")
		}
	}
	mu.Unlock()

	// Resolved, the incident stays under past incidents; Checkout is back.
	code, body = do("POST", "/api/v1/incidents/"+id+"/resolve", `{}`, true)
	require.Equal(t, http.StatusOK, code, body)
	code, body = do("GET", "/status.json", "", false)
	require.Equal(t, http.StatusOK, code)
	p = status.Page{}
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	require.Equal(t, status.Operational, p.Components[0].Status)
	require.Len(t, p.Incidents, 1)
	require.Equal(t, "resolved", p.Incidents[0].Stage)
	require.Less(t, p.Components[0].UptimeRatio, 1.0)
}
