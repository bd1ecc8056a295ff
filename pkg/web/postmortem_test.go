package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./pkg/web -update")
	require.Equal(t, string(want), got)
}

// TestPostmortemAPI drives the status-update, impact, action-item and
// post-mortem endpoints over HTTP: success codes and bodies, and the exact
// error of each bad request.
func TestPostmortemAPI(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		clk := clock.NewManual(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC))
		svc.Clock = clk
		ctx := context.Background()
		n := notification("g1", "checkout", "critical")
		n.Alerts[0].StartsAt = clk.Now().Add(-4 * time.Minute)
		_, err := svc.Ingest(ctx, n)
		require.NoError(t, err)
		srv := incidentsServer(t, svc)
		const id = "INC-2026-0001"
		inc := "/api/v1/incidents/" + id

		type tc struct {
			name, method, path, body string
			at                       time.Duration // clock offset from 09:30
			code                     int
			errType, err             string
			data                     string // exact JSON of data, when set
			check                    func(t *testing.T, data json.RawMessage)
		}
		cases := []tc{
			// Status updates.
			{name: "status update bad JSON", method: "POST", path: inc + "/status-updates", body: `{`, code: 400, errType: "bad_data",
				err: "invalid JSON body: unexpected EOF"},
			{name: "status update unknown field", method: "POST", path: inc + "/status-updates", body: `{"impct":"x"}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: json: unknown field "impct"`},
			{name: "status update bad next_update", method: "POST", path: inc + "/status-updates", body: `{"next_update":"soon"}`, code: 400, errType: "bad_data",
				err: `next_update: cannot parse "soon" as a duration or RFC 3339 time`},
			{name: "status update huge body", method: "POST", path: inc + "/status-updates", body: `{"impact":"` + strings.Repeat("x", web.MaxBody) + `"}`, code: 413,
				errType: "bad_data", err: "request body larger than 1048576 bytes"},
			{name: "status update unknown incident", method: "POST", path: "/api/v1/incidents/INC-1999-0001/status-updates", body: `{}`, code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "status update defaults", method: "POST", path: inc + "/status-updates", code: 201,
				data: `{"text":"🚨 [CRITICAL] Incident: Down on checkout\nID: INC-2026-0001\nStatus: triggered\nStarted: 09:26 UTC\nImpact: under assessment\nActions: investigating\n"}`},
			{name: "ack", method: "POST", path: inc + "/ack", body: `{"actor":"alice"}`, at: 3 * time.Minute, code: 200},
			{name: "status update", method: "POST", path: inc + "/status-updates", at: 5 * time.Minute,
				body: `{"actor":"alice","impact":"15% of checkouts failing","actions":"rolling back release 42","next_update":"30m","status_page":"https://status.example.com"}`,
				code: 201,
				data: `{"text":"🚨 [CRITICAL] Incident: Down on checkout\nID: INC-2026-0001\nStatus: acknowledged\nStarted: 09:26 UTC\nImpact: 15% of checkouts failing\nActions: rolling back release 42\nNext Update: 10:05 UTC\nStatus Page: https://status.example.com\n"}`},
			{name: "status update RFC 3339 next_update", method: "POST", path: inc + "/status-updates", at: 6 * time.Minute,
				body: `{"actor":"alice","next_update":"2026-03-14T11:00:00Z"}`, code: 201,
				data: `{"text":"🚨 [CRITICAL] Incident: Down on checkout\nID: INC-2026-0001\nStatus: acknowledged\nStarted: 09:26 UTC\nImpact: 15% of checkouts failing\nActions: investigating\nNext Update: 11:00 UTC\n"}`},

			// Impact.
			{name: "impact empty", method: "POST", path: inc + "/impact", body: `{"impact":"  "}`, code: 400, errType: "bad_data", err: `"impact" must not be empty`},
			{name: "impact unknown field", method: "POST", path: inc + "/impact", body: `{"impacts":"x"}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: json: unknown field "impacts"`},
			{name: "impact unknown incident", method: "POST", path: "/api/v1/incidents/INC-1999-0001/impact", body: `{"impact":"x"}`, code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "impact", method: "POST", path: inc + "/impact", at: 7 * time.Minute, body: `{"actor":"bob","impact":"20% of checkouts failing for 12 minutes"}`, code: 200,
				check: func(t *testing.T, d json.RawMessage) {
					var got incident.Incident
					require.NoError(t, json.Unmarshal(d, &got))
					require.Equal(t, "20% of checkouts failing for 12 minutes", got.Impact)
				}},

			// Action items.
			{name: "action items none", method: "GET", path: inc + "/action-items", code: 200, data: `[]`},
			{name: "action items unknown incident", method: "GET", path: "/api/v1/incidents/INC-1999-0001/action-items", code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "add action item without title", method: "POST", path: inc + "/action-items", body: `{"owner":"bob"}`, code: 400, errType: "bad_data",
				err: `"title" must not be empty`},
			{name: "add action item bad state", method: "POST", path: inc + "/action-items", body: `{"title":"x","state":"later"}`, code: 400, errType: "bad_data",
				err: `unknown action item state "later" (want open, in_progress, done or wont_do)`},
			{name: "add action item bad due", method: "POST", path: inc + "/action-items", body: `{"title":"x","due":"next week"}`, code: 400, errType: "bad_data",
				err: `due: cannot parse "next week" as an RFC 3339 time or a Unix timestamp`},
			{name: "add action item NaN due", method: "POST", path: inc + "/action-items", body: `{"title":"x","due":"NaN"}`, code: 400, errType: "bad_data",
				err: `due: NaN is not a finite number`},
			{name: "add action item infinite due", method: "POST", path: inc + "/action-items", body: `{"title":"x","due":"-Inf"}`, code: 400, errType: "bad_data",
				err: `due: -Inf is not a finite number`},
			{name: "add action item due after 9999", method: "POST", path: inc + "/action-items", body: `{"title":"x","due":"1e15"}`, code: 400, errType: "bad_data",
				err: `due: "1e15" is after 9999-12-31T23:59:59Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "add action item due before year 1", method: "POST", path: inc + "/action-items", body: `{"title":"x","due":"0001-01-01T00:00:00+01:00"}`, code: 400, errType: "bad_data",
				err: `due: "0001-01-01T00:00:00+01:00" is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "add action item NUL title", method: "POST", path: inc + "/action-items", body: `{"title":"a\u0000b"}`, code: 400, errType: "bad_data",
				err: `title: NUL byte at offset 1`},
			{name: "add action item unknown field", method: "POST", path: inc + "/action-items", body: `{"title":"x","assignee":"bob"}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: json: unknown field "assignee"`},
			{name: "add action item no body", method: "POST", path: inc + "/action-items", code: 400, errType: "bad_data", err: `invalid JSON body: empty body: want a JSON object`},
			{name: "add action item unknown incident", method: "POST", path: "/api/v1/incidents/INC-1999-0001/action-items", body: `{"title":"x"}`, code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "add action item", method: "POST", path: inc + "/action-items", at: 20 * time.Minute,
				body: `{"actor":"alice","title":"Alert on p99 latency","owner":"bob","due":"2026-04-01T00:00:00Z"}`, code: 201,
				data: `{"id":1,"incident_id":"INC-2026-0001","title":"Alert on p99 latency","owner":"bob","state":"open","due_at":"2026-04-01T00:00:00Z","created_at":"2026-03-14T09:50:00Z","updated_at":"2026-03-14T09:50:00Z"}`},
			{name: "add action item in progress", method: "POST", path: inc + "/action-items", at: 20 * time.Minute,
				body: `{"title":"Canary releases","state":"in_progress"}`, code: 201,
				data: `{"id":2,"incident_id":"INC-2026-0001","title":"Canary releases","state":"in_progress","created_at":"2026-03-14T09:50:00Z","updated_at":"2026-03-14T09:50:00Z"}`},
			{name: "update action item bad id", method: "PATCH", path: inc + "/action-items/abc", body: `{"state":"done"}`, code: 400, errType: "bad_data",
				err: `invalid action item id "abc"`},
			{name: "update action item zero id", method: "PATCH", path: inc + "/action-items/0", body: `{"state":"done"}`, code: 400, errType: "bad_data",
				err: `invalid action item id "0"`},
			{name: "update action item bad state", method: "PATCH", path: inc + "/action-items/2", body: `{"state":"later"}`, code: 400, errType: "bad_data",
				err: `unknown action item state "later" (want open, in_progress, done or wont_do)`},
			{name: "update action item empty title", method: "PATCH", path: inc + "/action-items/2", body: `{"title":""}`, code: 400, errType: "bad_data",
				err: `"title" must not be empty`},
			{name: "update action item unknown field", method: "PATCH", path: inc + "/action-items/2", body: `{"due":"2026-04-01T00:00:00Z","status":"done"}`, code: 400,
				errType: "bad_data", err: `invalid JSON body: json: unknown field "status"`},
			// A PATCH took "due" and ignored it, answering 200 with the title
			// changed: the caller believed the due date set.
			{name: "update action item due", method: "PATCH", path: inc + "/action-items/2", body: `{"title":"renamed","due":"2026-04-01T00:00:00Z"}`, code: 400,
				errType: "bad_data", err: `"due" is set when the action item is created (POST) and cannot be changed: leave it out`},
			{name: "update action item bad due", method: "PATCH", path: inc + "/action-items/2", body: `{"due":"nope"}`, code: 400,
				errType: "bad_data", err: `"due" is set when the action item is created (POST) and cannot be changed: leave it out`},
			{name: "update unknown action item", method: "PATCH", path: inc + "/action-items/999", body: `{"state":"done"}`, code: 404, errType: "not_found",
				err: "action item not found: 999 of INC-2026-0001"},
			{name: "update action item of unknown incident", method: "PATCH", path: "/api/v1/incidents/INC-1999-0001/action-items/1", body: `{"state":"done"}`, code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "update action item", method: "PATCH", path: inc + "/action-items/2", at: 25 * time.Minute, body: `{"actor":"carol","state":"done","owner":"carol"}`, code: 200,
				data: `{"id":2,"incident_id":"INC-2026-0001","title":"Canary releases","owner":"carol","state":"done","created_at":"2026-03-14T09:50:00Z","updated_at":"2026-03-14T09:55:00Z"}`},
			{name: "action items", method: "GET", path: inc + "/action-items", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var items []incident.ActionItem
				require.NoError(t, json.Unmarshal(d, &items))
				require.Len(t, items, 2)
				require.Equal(t, []string{"Alert on p99 latency bob open", "Canary releases carol done"},
					[]string{items[0].Title + " " + items[0].Owner + " " + string(items[0].State), items[1].Title + " " + items[1].Owner + " " + string(items[1].State)})
			}},

			// Post-mortem.
			{name: "post-mortem unknown incident", method: "GET", path: "/api/v1/incidents/INC-1999-0001/postmortem", code: 404,
				errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "resolve", method: "POST", path: inc + "/resolve", at: 30 * time.Minute, body: `{"actor":"bob","note":"rolled back"}`, code: 200},
			{name: "post-mortem", method: "GET", path: inc + "/postmortem", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var pm struct {
					IncidentID  string                     `json:"incident_id"`
					Durations   map[string]json.RawMessage `json:"durations"`
					ActionItems []incident.ActionItem      `json:"action_items"`
					Markdown    string                     `json:"markdown"`
				}
				require.NoError(t, json.Unmarshal(d, &pm))
				require.Equal(t, id, pm.IncidentID)
				durations, err := json.Marshal(pm.Durations)
				require.NoError(t, err)
				// Created 09:30, acknowledged 09:33, resolved 10:00; the alert started 09:26 and has not ended.
				require.JSONEq(t, `{"detection_delay":240,"time_to_acknowledge":180,"time_to_resolve":1800}`, string(durations))
				require.Len(t, pm.ActionItems, 2)
				golden(t, "postmortem.md", pm.Markdown)
			}},
		}
		for _, c := range cases {
			clk.Set(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC).Add(c.at))
			code, resp := call(t, c.method, srv.URL+c.path, c.body)
			require.Equal(t, c.code, code, "%s: %+v", c.name, resp)
			if c.err != "" {
				require.Equal(t, "error", resp.Status, c.name)
				require.Equal(t, c.errType, resp.ErrorType, c.name)
				require.Equal(t, c.err, resp.Error, c.name)
				continue
			}
			require.Equal(t, "success", resp.Status, c.name)
			b, err := json.Marshal(resp.Data)
			require.NoError(t, err)
			if c.data != "" {
				require.JSONEq(t, c.data, string(b), c.name)
			}
			if c.check != nil {
				c.check(t, b)
			}
		}

		// ?format=markdown answers the same draft as Markdown.
		resp, err := http.Get(srv.URL + inc + "/postmortem?format=markdown")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/markdown; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		md, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		golden(t, "postmortem.md", string(md))

		// A format it does not write, or a misspelt parameter, answered
		// the JSON draft as if asked for.
		for q, want := range map[string]string{
			"?format=md":                         `format "md": want markdown or json`,
			"?fromat=markdown":                   `unknown parameter "fromat" (want format)`,
			"?format=markdown&format=json":       `parameter "format" given 2 times: give it once`,
			"?format=" + strings.Repeat("m", 99): `format "` + strings.Repeat("m", 61) + `…": want markdown or json`,
		} {
			code, resp := call(t, "GET", srv.URL+inc+"/postmortem"+q, "")
			require.Equal(t, http.StatusBadRequest, code, q)
			require.Equal(t, want, resp.Error, q)
		}

		resp2, err := http.Get(srv.URL + "/api/v1/incidents/INC-1999-0001/postmortem?format=markdown")
		require.NoError(t, err)
		defer resp2.Body.Close()
		require.Equal(t, http.StatusNotFound, resp2.StatusCode)
		body, _ := io.ReadAll(resp2.Body)
		require.JSONEq(t, `{"status":"error","errorType":"not_found","error":"incident not found: INC-1999-0001"}`, string(body))
	})
}
