package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// routeDecisions is who may use each route sred serves: "public" (no
// credentials), "webhook" (its own bearer token when webhook.bearer_token
// is set, else a responder), or the least role. It is written out here,
// apart from auth.Routes, so that a route added to sred, or a role changed
// in the table, fails TestEveryRouteRefusesLowerRoles until its decision is
// written here too.
var routeDecisions = map[string]string{
	// Probes, exporter, reload, profiles.
	"GET /-/healthy":           "public",
	"GET /-/ready":             "public",
	"POST /-/reload":           "admin",
	"GET /metrics":             "viewer",
	"GET /debug/pprof/":        "admin",
	"GET /debug/pprof/cmdline": "admin",
	"GET /debug/pprof/profile": "admin",
	"GET /debug/pprof/symbol":  "admin",
	"POST /debug/pprof/symbol": "admin",
	"GET /debug/pprof/trace":   "admin",

	// Alertmanager.
	"POST /api/v1/webhook/alertmanager": "webhook",
	"POST /api/v1/webhook/watchdog":     "webhook",

	// Acknowledge links (the link's token is the credential).
	"GET /ack/ack.css":  "public",
	"GET /ack/{token}":  "public",
	"POST /ack/{token}": "public",

	// Incidents.
	"GET /api/v1/incidents":                            "viewer",
	"POST /api/v1/incidents":                           "responder",
	"GET /api/v1/incidents/export":                     "viewer",
	"POST /api/v1/incidents/import":                    "admin",
	"GET /api/v1/incidents/{id}":                       "viewer",
	"GET /api/v1/incidents/{id}/timeline":              "viewer",
	"GET /api/v1/incidents/{id}/silences":              "viewer",
	"GET /api/v1/incidents/{id}/postmortem":            "viewer",
	"GET /api/v1/incidents/{id}/action-items":          "viewer",
	"POST /api/v1/incidents/{id}/ack":                  "responder",
	"POST /api/v1/incidents/{id}/investigate":          "responder",
	"POST /api/v1/incidents/{id}/assign":               "responder",
	"POST /api/v1/incidents/{id}/resolve":              "responder",
	"POST /api/v1/incidents/{id}/snooze":               "responder",
	"POST /api/v1/incidents/{id}/notes":                "responder",
	"POST /api/v1/incidents/{id}/impact":               "responder",
	"POST /api/v1/incidents/{id}/postmortem/complete":  "responder",
	"POST /api/v1/incidents/{id}/action-items":         "responder",
	"PATCH /api/v1/incidents/{id}/action-items/{item}": "responder",
	"POST /api/v1/incidents/{id}/status-updates":       "responder",
	"POST /api/v1/incidents/{id}/split":                "responder",
	"POST /api/v1/incidents/{id}/merge":                "responder",
	"GET /api/v1/services":                             "viewer",
	"GET /api/v1/services/{service}/events":            "viewer",
	"GET /api/v1/reports/noise":                        "viewer",
	"GET /api/v1/audit":                                "admin",

	// Live streams.
	"GET /api/v1/events": "viewer",
	"GET /api/v1/stream": "viewer",

	// Status page.
	"GET /api/v1/status":      "viewer",
	"GET /status":             "public",
	"GET /status.json":        "public",
	"GET /status/feed.atom":   "public",
	"GET /status/status.css":  "public",
	"GET /status/favicon.svg": "public",

	// Escalation and on-call.
	"GET /api/v1/escalation/incidents/{id}":                 "viewer",
	"POST /api/v1/escalation/incidents/{id}/escalate":       "responder",
	"GET /api/v1/escalation/maintenance":                    "viewer",
	"POST /api/v1/escalation/maintenance":                   "responder",
	"DELETE /api/v1/escalation/maintenance/{id}":            "responder",
	"POST /api/v1/escalation/simulate":                      "viewer",
	"GET /api/v1/oncall":                                    "viewer",
	"GET /api/v1/oncall/schedules":                          "viewer",
	"GET /api/v1/oncall/schedules/{name}/shifts":            "viewer",
	"GET /api/v1/oncall/schedules/{name}/gaps":              "viewer",
	"GET /api/v1/oncall/schedules/{name}/overrides":         "viewer",
	"PUT /api/v1/oncall/schedules/{name}/overrides":         "responder",
	"DELETE /api/v1/oncall/schedules/{name}/overrides/{id}": "responder",
	"PUT /api/oncall/schedule":                              "admin",

	// SLOs, budgets, SLA.
	"GET /api/v1/slos":                  "viewer",
	"GET /api/v1/slos/{service}/{slo}":  "viewer",
	"GET /api/v1/gate":                  "viewer",
	"GET /api/v1/sla/report/{customer}": "viewer",

	// Runbooks.
	"GET /api/v1/runbooks":                    "viewer",
	"GET /api/v1/runbooks/runs":               "viewer",
	"GET /api/v1/runbooks/runs/{id}":          "viewer",
	"POST /api/v1/runbooks/runs/{id}/approve": "responder",
	"POST /api/v1/runbooks/runs/{id}/cancel":  "responder",
	"GET /api/v1/runbooks/kill-switch":        "viewer",
	"PUT /api/v1/runbooks/kill-switch":        "admin",
	"GET /api/v1/runbooks/locks":              "viewer",
	"GET /api/v1/runbooks/coverage":           "viewer",

	// Changes and the rollout engines' notifications.
	"POST /api/v1/changes":               "responder",
	"GET /api/v1/changes":                "viewer",
	"GET /api/v1/changes/{id}":           "viewer",
	"POST /api/v1/changes/{id}/finish":   "responder",
	"POST /api/v1/changes/flagger":       "responder",
	"POST /api/v1/changes/argo-rollouts": "responder",
	"POST /api/v1/changes/flux":          "responder",

	// Rollout analysis (Argo Rollouts web provider, Flagger webhooks).
	"GET /api/v1/analysis":                            "viewer",
	"GET /api/v1/analysis/{name}":                     "viewer",
	"GET /api/v1/analysis/{name}/run":                 "viewer",
	"POST /api/v1/analysis/{name}/run":                "viewer",
	"POST /api/v1/analysis/flagger/pre-rollout":       "viewer",
	"POST /api/v1/analysis/flagger/confirm-promotion": "viewer",
	"POST /api/v1/analysis/flagger/rollback":          "viewer",

	// Chaos.
	"GET /api/v1/chaos/experiments":             "viewer",
	"POST /api/v1/chaos/validate":               "viewer",
	"GET /api/v1/chaos/experiments/{name}/plan": "viewer",
	"POST /api/v1/chaos/experiments/{name}/run": "admin",
	"GET /api/v1/chaos/runs":                    "viewer",
	"GET /api/v1/chaos/runs/{id}":               "viewer",
	"POST /api/v1/chaos/runs/{id}/stop":         "admin",
	"POST /api/v1/chaos/runs/{id}/approve":      "responder",
	"GET /api/v1/chaos/runs/{id}/report":        "viewer",
	"POST /api/v1/chaos/halt":                   "admin",

	// Scaling and rollouts.
	"GET /api/v1/scaling/policies":       "viewer",
	"GET /api/v1/scaling/decisions":      "viewer",
	"GET /api/v1/scaling/backtest":       "viewer",
	"GET /api/v1/rollouts/definitions":   "viewer",
	"GET /api/v1/rollouts":               "viewer",
	"POST /api/v1/rollouts":              "admin",
	"GET /api/v1/rollouts/{id}":          "viewer",
	"POST /api/v1/rollouts/{id}/promote": "admin",
	"POST /api/v1/rollouts/{id}/pause":   "responder",
	"POST /api/v1/rollouts/{id}/abort":   "responder",

	// Console.
	"GET /{$}":                                      "viewer",
	"GET /console/static/":                          "viewer",
	"GET /slos/{service}/{slo}":                     "viewer",
	"GET /incidents":                                "viewer",
	"GET /incidents/new":                            "viewer",
	"GET /incidents/{id}":                           "viewer",
	"POST /incidents":                               "responder",
	"POST /incidents/{id}/{action}":                 "responder",
	"POST /incidents/{id}/action-items/{item}/done": "responder",
	"GET /oncall":                                   "viewer",
	"GET /runbooks":                                 "viewer",
	"POST /runbooks/runs/{id}/{action}":             "responder",
	"GET /chaos":                                    "viewer",
	"GET /chaos/runs/{id}":                          "viewer",
	"POST /chaos/runs/{id}/approve":                 "responder",
	"GET /scaling":                                  "viewer",
	"GET /rollouts":                                 "viewer",
	"GET /audit":                                    "admin",
	"GET /changes":                                  "viewer",
	"GET /graph":                                    "viewer",
	"GET /noise":                                    "viewer",
}

// TestEveryRouteRefusesLowerRoles attacks every route sred mounts (the
// access table, which TestEveryRouteDeclaresARole holds equal to the
// mounted routes) on a real sred (SQLite, the users of a users file) as
// an unauthenticated client, a viewer, a responder and an admin, each
// sending the request as a same-origin client would: a route is refused
// 401 without credentials and 403 to a role below its decision
// (routeDecisions), and reaches its handler otherwise. Every write is
// then sent cross-site by an admin's browser (Sec-Fetch-Site, or only
// Origin), which must be refused whatever the role, but on the public
// routes. The stream listener serves only the WebSocket stream and the
// status listener only the public status page.
func TestEveryRouteRefusesLowerRoles(t *testing.T) {
	var missing, extra []string
	for pattern, acc := range auth.Routes {
		d, ok := routeDecisions[pattern]
		if !ok {
			missing = append(missing, pattern)
			continue
		}
		got := acc.Role.String()
		switch {
		case acc.Webhook:
			got = "webhook"
		case acc.Public:
			got = "public"
		}
		require.Equal(t, d, got, "the access table's decision for %s", pattern)
	}
	for pattern := range routeDecisions {
		if _, ok := auth.Routes[pattern]; !ok {
			extra = append(extra, pattern)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	require.Empty(t, missing, "routes without a decision in routeDecisions")
	require.Empty(t, extra, "routeDecisions names routes sred does not serve")

	tokens := map[string]string{"viewer": "tok-vera", "responder": "tok-rita", "admin": "tok-adam"}
	var users strings.Builder
	users.WriteString("tokens:\n")
	for _, role := range []string{"viewer", "responder", "admin"} {
		d := sha256.Sum256([]byte(tokens[role]))
		fmt.Fprintf(&users, "  - {name: %s, sha256: %s, role: %s}\n", role+"-token", hex.EncodeToString(d[:]), role)
	}
	usersFile := filepath.Join(t.TempDir(), "users.yml")
	require.NoError(t, os.WriteFile(usersFile, []byte(users.String()), 0o600))
	a, srv := runApp(t, "sqlite", fmt.Sprintf("auth:\n  users_file: %s\n", usersFile), nil)
	streamSrv := httptest.NewServer(a.StreamHandler())
	t.Cleanup(streamSrv.Close)
	statusSrv := httptest.NewServer(a.StatusHandler())
	t.Cleanup(statusSrv.Close)

	rank := map[string]int{"viewer": 1, "responder": 2, "admin": 3, "webhook": 2}
	param := regexp.MustCompile(`\{[^}]+\}`)
	// send answers pattern's request as token ("" none) with hdr, reading
	// only the status and the start of the body (a live stream that is
	// let in goes on until the body is closed).
	send := func(t *testing.T, base, pattern, token string, hdr map[string]string) (int, string) {
		t.Helper()
		method, path, _ := strings.Cut(pattern, " ")
		path = param.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "x")
		if path == "/debug/pprof/profile" || path == "/debug/pprof/trace" {
			path += "?seconds=1"
		}
		var body io.Reader
		if isWriteMethod(method) {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequest(method, base+path, body)
		require.NoError(t, err)
		_, got := a.Mux.Handler(req)
		require.Equal(t, pattern, got, "the request of %s reaches it", pattern)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := io.ReadAtLeast(resp.Body, b, 1)
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			// No other site may frame a page of sred, nor run a script
			// in it.
			csp := resp.Header.Get("Content-Security-Policy")
			require.Contains(t, csp, "frame-ancestors 'none'", "the HTML page of %s (%d)", pattern, resp.StatusCode)
			require.Contains(t, csp, "default-src 'none'", "the HTML page of %s (%d)", pattern, resp.StatusCode)
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "the HTML page of %s", pattern)
			// Said also to the browsers and scanners that read only
			// X-Frame-Options.
			require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "the HTML page of %s (%d)", pattern, resp.StatusCode)
		}
		return resp.StatusCode, string(b[:n])
	}
	patterns := make([]string, 0, len(routeDecisions))
	for p := range routeDecisions {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, pattern := range patterns {
		decision := routeDecisions[pattern]
		method, _, _ := strings.Cut(pattern, " ")
		t.Run(pattern, func(t *testing.T) {
			for _, who := range []string{"", "viewer", "responder", "admin"} {
				code, body := send(t, srv.URL, pattern, tokens[who], nil)
				name := who
				if who == "" {
					name = "unauthenticated"
				}
				switch {
				case decision == "public":
					// The handler may refuse a forged link itself.
					require.NotEqual(t, http.StatusUnauthorized, code, "%s: %s", name, body)
					require.NotContains(t, body, "-token has role", name)
				case who == "":
					require.Equal(t, http.StatusUnauthorized, code, "%s: %s", name, body)
					require.Contains(t, body, "missing or wrong credentials")
				case rank[who] < rank[decision]:
					require.Equal(t, http.StatusForbidden, code, "%s: %s", name, body)
					require.Contains(t, body, fmt.Sprintf("%s-token has role %s; %s needs ", who, who, pattern))
				default:
					require.NotEqual(t, http.StatusUnauthorized, code, "%s: %s", name, body)
					require.NotContains(t, body, "-token has role", name)
					require.NotContains(t, body, "cross-origin", name)
				}
			}
			if isWriteMethod(method) {
				for _, hdr := range []map[string]string{
					{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
					{"Origin": "https://evil.example"},
				} {
					code, body := send(t, srv.URL, pattern, tokens["admin"], hdr)
					if decision == "public" {
						require.NotContains(t, body, "cross-origin request refused", "%v", hdr)
						continue
					}
					require.Equal(t, http.StatusForbidden, code, "%v: %s", hdr, body)
					require.Contains(t, body, "cross-origin request refused", "%v", hdr)
				}
			}
			// The listeners of their own serve their route only.
			code, body := send(t, streamSrv.URL, pattern, tokens["admin"], nil)
			if pattern == "GET "+StreamRoute {
				require.NotEqual(t, http.StatusNotFound, code, body)
			} else {
				require.Equal(t, http.StatusNotFound, code, "the stream listener serves %s: %s", pattern, body)
			}
			code, body = send(t, statusSrv.URL, pattern, "", nil)
			if strings.HasPrefix(pattern, "GET /status") {
				require.NotContains(t, []int{http.StatusNotFound, http.StatusUnauthorized}, code, body)
			} else {
				require.Equal(t, http.StatusNotFound, code, "the status listener serves %s: %s", pattern, body)
			}
		})
	}
}

func isWriteMethod(method string) bool {
	return method != http.MethodGet && method != http.MethodHead
}
