package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth/authtest"
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
		svc := newIncidentService(t, db)
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

		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		srv := authtest.Serve(t, mux)
		get := func(token string) string { return srv.Get("/api/v1/incidents/"+id+"/timeline", token) }
		for _, token := range []string{authtest.Viewer, authtest.Responder} {
			body := get(token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, "step act failed: fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, `"argv":["restart-app","--now"]`, token)
			require.Contains(t, body, `"output":"ran restart-app"`, token)
			require.Contains(t, body, "tail /var/log/app/error.log on the host", token)
		}
		require.Contains(t, get(authtest.Admin), `"argv":["`+prog+`","--now"]`)

		// The post-mortem draft is written from the timeline its reader
		// may read.
		pm := "/api/v1/incidents/" + id + "/postmortem?format=markdown"
		for _, token := range []string{authtest.Viewer, authtest.Responder} {
			body := srv.Get(pm, token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, "fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, "/var/log/app/error.log", token)
		}
		require.Contains(t, srv.Get(pm, authtest.Admin), prog)

		// So is the export of the incidents (JSON lines).
		for _, token := range []string{authtest.Viewer, authtest.Responder} {
			body := srv.Get("/api/v1/incidents/export", token)
			require.NotContains(t, body, "/nonexistent/", token)
			require.Contains(t, body, `"argv":["restart-app","--now"]`, token)
			require.Contains(t, body, "step act failed: fork/exec restart-app: no such file or directory", token)
			require.Contains(t, body, "/var/log/app/error.log", token)
		}
		require.Contains(t, srv.Get("/api/v1/incidents/export", authtest.Admin), `"argv":["`+prog+`","--now"]`)
	})
}
