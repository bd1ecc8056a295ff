package runbook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth/authtest"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

func TestAPI(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		rec := &recorder{}
		rb := mustParse(t, `
name: gated
matchers: ['alertname="X"']
steps:
  - name: ask
    approval: {}
  - name: act
    exec: {command: [/bin/echo, done]}
`)
		e := newEngine(t, db, testConfig(), rec, rb)
		startEngine(t, e)
		mux := http.NewServeMux()
		e.Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		call := func(method, path, body string) (int, string) {
			req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, strings.TrimSpace(string(b))
		}

		code, body := call("GET", "/api/v1/runbooks", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"name":"gated"`)
		require.Contains(t, body, `"dry_run":false`)

		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		run := waitRun(t, e, "INC-1", RunWaitingApproval)
		runPath := "/api/v1/runbooks/runs/" + itoa(int(run.ID))

		for _, tc := range []struct {
			method, path, body string
			code               int
			want               string
		}{
			{"POST", runPath + "/approve", `{"by": "alice", "extra": 1}`, 400, `{"status":"error","errorType":"bad_data","error":"invalid JSON body: json: unknown field \"extra\""}`},
			{"POST", runPath + "/approve", `{"by": `, 400, `{"status":"error","errorType":"bad_data","error":"invalid JSON body: unexpected EOF"}`},
			{"POST", runPath + "/approve", `{"by": "  "}`, 400, `{"status":"error","errorType":"bad_data","error":"\"by\" (the approver) is required"}`},
			{"POST", runPath + "/approve", `{"by": "alice", "comment": "` + strings.Repeat("é", 25001) + `"}`, 400, `{"status":"error","errorType":"bad_data","error":"comment: at most 25000 characters, got 25001"}`},
			{"POST", runPath + "/approve", `{"by": "` + strings.Repeat("b", 201) + `"}`, 400, `{"status":"error","errorType":"bad_data","error":"by: at most 200 characters, got 201"}`},
			{"POST", runPath + "/approve", `{"by": "` + strings.Repeat("a", web.MaxBody) + `"}`, 413, `{"status":"error","errorType":"bad_data","error":"request body larger than 1048576 bytes"}`},
			{"POST", "/api/v1/runbooks/runs/abc/approve", `{"by": "alice"}`, 400, `{"status":"error","errorType":"bad_data","error":"run id \"abc\": want a positive integer"}`},
			{"POST", "/api/v1/runbooks/runs/999/approve", `{"by": "alice"}`, 404, `{"status":"error","errorType":"not_found","error":"run 999: not found"}`},
			{"GET", "/api/v1/runbooks/runs?limit=0", ``, 400, `{"status":"error","errorType":"bad_data","error":"limit \"0\": want an integer between 1 and 1000"}`},
			{"PUT", "/api/v1/runbooks/kill-switch", `{"enabled": true}`, 400, `{"status":"error","errorType":"bad_data","error":"\"by\" is required"}`},
		} {
			code, body := call(tc.method, tc.path, tc.body)
			require.Equal(t, tc.code, code, "%s %s: %s", tc.method, tc.path, body)
			require.Equal(t, tc.want, body)
		}

		code, body = call("POST", runPath+"/approve", `{"by": "alice", "comment": "ok"}`)
		require.Equal(t, 200, code, body)
		run = waitRun(t, e, "INC-1", RunSucceeded)
		code, body = call("POST", runPath+"/approve", `{"by": "alice"}`)
		require.Equal(t, 409, code)
		require.Equal(t, `{"status":"error","errorType":"conflict","error":"run 1 is succeeded, not waiting for approval: conflict"}`, body)

		code, body = call("GET", runPath, "")
		require.Equal(t, 200, code)
		var env struct{ Data Run }
		require.NoError(t, json.Unmarshal([]byte(body), &env))
		require.Equal(t, RunSucceeded, env.Data.Status)
		require.Equal(t, "done\n", stepAudit(t, &env.Data, "act").Output)

		code, body = call("PUT", "/api/v1/runbooks/kill-switch", `{"enabled": true, "by": "bob", "reason": "storm"}`)
		require.Equal(t, 200, code, body)
		code, body = call("GET", "/api/v1/runbooks/kill-switch", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"enabled":true,"by":"bob","reason":"storm"`)
		// A body without "enabled" (a note, a typo, null) is refused and
		// leaves the engaged switch engaged.
		for _, b := range []string{`{"by": "bob", "reason": "still storming"}`, `{"by": "bob", "enabled": null}`} {
			code, body = call("PUT", "/api/v1/runbooks/kill-switch", b)
			require.Equal(t, 400, code, body)
			require.Equal(t, `{"status":"error","errorType":"bad_data","error":"\"enabled\" is required: true engages the kill switch, false releases it"}`, body)
		}
		code, body = call("GET", "/api/v1/runbooks/kill-switch", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"enabled":true,"by":"bob","reason":"storm"`)

		code, body = call("GET", "/api/v1/runbooks/runs?incident=INC-1&status=succeeded", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"runbook":"gated"`)

		// dry_run: true in sred.yml makes every runbook a dry run: the list
		// shows the effective mode, not only the runbook file's.
		cfg, set := e.config()
		require.False(t, e.DryRun())
		cfg.DryRun = true
		require.NoError(t, e.Update(cfg, set))
		require.True(t, e.DryRun(), "the console's runbooks page reads it")
		code, body = call("GET", "/api/v1/runbooks", "")
		require.Equal(t, 200, code)
		require.Contains(t, body, `"dry_run":true`)
		require.NotContains(t, body, `"dry_run":false`)
	})
}

// TestRunPathsShownToAdminsOnly: a step that failed with a server path in
// its error (a program that is not there) is read by a viewer and a
// responder with the base name only, in the run's reason and its steps'
// error and input, through the API and the console's runbooks page; an
// admin reads the path whole, and so does the store.
func TestRunPathsShownToAdminsOnly(t *testing.T) {
	sretest.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		const prog = "/nonexistent/sred-test/bin/restart-app"
		rb := mustParse(t, `
name: restart
matchers: ['alertname="X"']
steps:
  - name: act
    exec: {command: [`+prog+`, --now]}
`)
		e := newEngine(t, db, testConfig(), &recorder{}, rb)
		startEngine(t, e)
		trigger(t, db, e, newIncident("INC-1", map[string]string{"alertname": "X"}), incident.ChangeCreated)
		stored := waitRun(t, e, "INC-1", RunFailed)
		require.Contains(t, runText(t, stored), prog, "the store keeps the whole path")

		mux := http.NewServeMux()
		e.Register(mux)
		get := authtest.Serve(t, mux).Get
		runPath := "/api/v1/runbooks/runs/" + itoa(int(stored.ID))
		for _, path := range []string{runPath, "/api/v1/runbooks/runs?incident=INC-1"} {
			for _, token := range []string{authtest.Viewer, authtest.Responder} {
				body := get(path, token)
				require.NotContains(t, body, "/nonexistent/", path+" as "+token)
				require.NotContains(t, body, "sred-test/bin", path+" as "+token)
				if path == runPath {
					require.Contains(t, body, `restart-app: no such file or directory`, token)
					require.Contains(t, body, `"argv":["restart-app","--now"]`, token)
				}
			}
			require.Contains(t, get(path, authtest.Admin), prog, path+" as admin")
		}
		require.Contains(t, runText(t, stored), prog, "reading does not change the run")
	})
}

// runText is run as the API encodes it.
func runText(t *testing.T, run *Run) string {
	t.Helper()
	b, err := json.Marshal(run)
	require.NoError(t, err)
	return string(b)
}
