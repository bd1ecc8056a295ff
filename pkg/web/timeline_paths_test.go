package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestTimelinePathsShownToAdminsOnly: a runbook step's entry in an
// incident's timeline, with the server's paths in its message, error,
// output and argv, is read by a viewer and a responder with base names
// only, in the timeline, the post-mortem draft and the export; an admin
// reads it whole. What a responder wrote is shown as it is.
func TestTimelinePathsShownToAdminsOnly(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		ctx := context.Background()
		res, err := svc.Ingest(ctx, notification("a", "checkout", "critical"))
		require.NoError(t, err)
		id := res.Created[0]
		const prog = "/nonexistent/sred-test/bin/restart-app"
		require.NoError(t, svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: id, Kind: "runbook_step", Actor: "runbook:restart",
			Message: "Runbook restart: step act failed: fork/exec " + prog + ": no such file or directory",
			Data: map[string]any{"error": "fork/exec " + prog + ": no such file or directory", "output": "ran " + prog,
				"input": map[string]any{"argv": []any{prog, "--now"}}}}))
		// What a responder wrote is shown as it is.
		require.NoError(t, svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: id, Kind: "note", Actor: "bob",
			Message: "tail /var/log/app/error.log on the host"}))

		sum := func(token string) string { d := sha256.Sum256([]byte(token)); return hex.EncodeToString(d[:]) }
		users, err := auth.ParseUsers([]byte(fmt.Sprintf("tokens:\n  - {name: vera, sha256: %s, role: viewer}\n  - {name: rita, sha256: %s, role: responder}\n  - {name: adam, sha256: %s, role: admin}\n",
			sum("tok-viewer"), sum("tok-responder"), sum("tok-admin"))))
		require.NoError(t, err)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := httptest.NewServer(auth.Middleware(auth.Options{
			Authenticator: auth.NewAuthenticator(users, auth.Limits{}),
			Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
		}, mux))
		defer srv.Close()
		var getPath func(path, token string) string
		get := func(token string) string { return getPath("/api/v1/incidents/"+id+"/timeline", token) }
		getPath = func(path, token string) string {
			req, err := http.NewRequest("GET", srv.URL+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			return string(b)
		}
		for _, token := range []string{"tok-viewer", "tok-responder"} {
			body := get(token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, "step act failed: fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, `"argv":["restart-app","--now"]`, token)
			require.Contains(t, body, `"output":"ran restart-app"`, token)
			require.Contains(t, body, "tail /var/log/app/error.log on the host", token)
		}
		require.Contains(t, get("tok-admin"), `"argv":["`+prog+`","--now"]`)

		// The post-mortem draft is written from the timeline its reader
		// may read.
		pm := "/api/v1/incidents/" + id + "/postmortem?format=markdown"
		for _, token := range []string{"tok-viewer", "tok-responder"} {
			body := getPath(pm, token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, "fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, "/var/log/app/error.log", token)
		}
		require.Contains(t, getPath(pm, "tok-admin"), prog)

		// So is the export of the incidents (JSON lines).
		for _, token := range []string{"tok-viewer", "tok-responder"} {
			body := getPath("/api/v1/incidents/export", token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, `"argv":["restart-app","--now"]`, token)
			require.Contains(t, body, "step act failed: fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, "/var/log/app/error.log", token)
		}
		require.Contains(t, getPath("/api/v1/incidents/export", "tok-admin"), `"argv":["`+prog+`","--now"]`)
	})
}
