package app

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryRouteRefusesUnreadableQuery sends every route sred mounts
// (routeDecisions, which TestEveryRouteRefusesLowerRoles holds equal to
// the mounted routes) a query string Go cannot read: r.URL.Query() drops
// a bad % escape and a ';' separator without a word, and the route
// answered as if the parameter were not given (a list widened to
// everything). Each is a 400 naming the query and what is wrong: the
// API's error envelope under /api/, the console's error page on a console
// page, plain text elsewhere (the probes, /ack/, the status page).
func TestEveryRouteRefusesUnreadableQuery(t *testing.T) {
	a, srv := runApp(t, "sqlite", "", nil)
	param := regexp.MustCompile(`\{[^}]+\}`)
	patterns := make([]string, 0, len(routeDecisions))
	for p := range routeDecisions {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, pattern := range patterns {
		method, path, _ := strings.Cut(pattern, " ")
		path = param.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "x")
		t.Run(pattern, func(t *testing.T) {
			for _, tc := range []struct{ query, reason string }{
				{"service=x&pod=50%", `invalid URL escape "%"`},
				{"x=%zz", `invalid URL escape "%zz"`},
				{"a=1;b=2", "invalid semicolon separator in query"},
			} {
				var body io.Reader
				if isWriteMethod(method) {
					body = strings.NewReader("{}")
				}
				query := tc.query
				if path == "/debug/pprof/profile" || path == "/debug/pprof/trace" {
					// A second, should the bad pair be dropped.
					query = "seconds=1&" + query
				}
				want := fmt.Sprintf(`query %q: %s (escape '%%' as %%25 and ';' as %%3B)`, query, tc.reason)
				req, err := http.NewRequest(method, srv.URL+path+"?"+query, body)
				require.NoError(t, err)
				_, got := a.Mux.Handler(req)
				require.Equal(t, pattern, got, "the request of %s reaches it", pattern)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				if resp.StatusCode != http.StatusBadRequest {
					// Not read: a live stream let in goes on.
					resp.Body.Close()
					t.Fatalf("?%s: %d, want 400", query, resp.StatusCode)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				ct := resp.Header.Get("Content-Type")
				switch {
				case strings.HasPrefix(path, "/api/"):
					var env apiEnvelope
					require.NoError(t, json.Unmarshal(b, &env), "?%s: %s", query, b)
					require.Equal(t, "bad_data", env.ErrorType)
					require.Equal(t, want, env.Error)
				case routeDecisions[pattern] != "public" && !strings.HasPrefix(path, "/-/") && !strings.HasPrefix(path, "/debug/") && path != "/metrics":
					require.True(t, strings.HasPrefix(ct, "text/html"), "the console's error page, not %q: %s", ct, b)
					require.Contains(t, string(b), "400 Bad Request")
					require.Contains(t, html.UnescapeString(string(b)), want)
				default:
					require.True(t, strings.HasPrefix(ct, "text/plain"), "%q: %s", ct, b)
					require.Equal(t, want+"\n", string(b))
				}
			}
		})
	}
}
