package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentLongIDCut: an incident id, alert group, severity, state or
// duration of 5,000 characters in the path or the body comes back in the
// error cut at 64 bytes ending with "…" (limits.MaxEchoBytes), never whole.
func TestIncidentLongIDCut(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		res, err := svc.Ingest(context.Background(), notification("a", "checkout", "critical"))
		require.NoError(t, err)
		known := res.Incidents[0]
		// A stored group key may hold up to limits.MaxGroupKeyBytes.
		longGroup := strings.Repeat("g", 1000)
		_, err = svc.Ingest(context.Background(), notification(longGroup, "payments", "critical"))
		require.NoError(t, err)
		srv := incidentsServer(t, svc)

		long := strings.Repeat("n", 5000)
		cut := strings.Repeat("n", 61) + "…"
		unknown := "incident not found: " + cut
		for _, tc := range []struct {
			method, path, body string
			code               int
			err                string
		}{
			{"GET", "/api/v1/incidents/" + long, "", 404, unknown},
			{"GET", "/api/v1/incidents/" + long + "/timeline", "", 404, "incident not found"},
			{"POST", "/api/v1/incidents/" + long + "/ack", "", 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/investigate", "", 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/assign", `{"assignee":"bob"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/resolve", "", 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/snooze", `{"duration":"1h"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/notes", `{"text":"x"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/impact", `{"impact":"x"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/postmortem/complete", "", 404, unknown},
			{"GET", "/api/v1/incidents/" + long + "/postmortem", "", 404, unknown},
			{"GET", "/api/v1/incidents/" + long + "/action-items", "", 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/action-items", `{"title":"x"}`, 404, unknown},
			{"PATCH", "/api/v1/incidents/" + long + "/action-items/1", `{"title":"x"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/status-updates", `{"impact":"x"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + long + "/split", `{"group_key":"a"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + known + "/split", `{"group_key":"` + long + `"}`, 404, "alert group not found: " + cut},
			{"POST", "/api/v1/incidents/" + known + "/split", `{"group_key":"` + longGroup + `"}`, 409,
				"cannot split " + strings.Repeat("g", 61) + "… out of incident " + known + ": the alert group is not on this incident"},
			{"POST", "/api/v1/incidents/" + known + "/merge", `{"from":"` + long + `"}`, 404, unknown},
			{"POST", "/api/v1/incidents/" + known + "/snooze", `{"duration":"` + long + `"}`, 400, `"duration": not a valid duration string: "` + cut + `"`},
			{"PATCH", "/api/v1/incidents/" + known + "/action-items/1", `{"state":"` + long + `"}`, 400,
				`unknown action item state "` + cut + `" (want open, in_progress, done or wont_do)`},
			{"GET", "/api/v1/incidents?severity=" + long, "", 400, `unknown severity "` + cut + `" (want one of CRITICAL, HIGH, MEDIUM, LOW)`},
			{"GET", "/api/v1/incidents?since=" + long, "", 400, `since: cannot parse "` + cut + `" as an RFC 3339 time or a Unix timestamp`},
			{"GET", "/api/v1/incidents?alerts=" + long, "", 400, `alerts: want true or false, got "` + cut + `"`},
			{"GET", "/api/v1/incidents?alerts=yes", "", 400, `alerts: want true or false, got "yes"`},
			{"POST", "/api/v1/incidents", `{"title":"db down","service":"db","severity":"` + long + `"}`, 400, `unknown severity "` + cut + `"`},
			{"POST", "/api/v1/incidents/import", `{"incident":{"id":"` + long + `"}}` + "\n", 400, `field incident.id: "` + cut + `" is not an incident ID`},
			{"POST", "/api/v1/incidents/import", `{"` + long + `":1}` + "\n", 400, `import line 1: json: unknown field "` + cut + `"`},
			{"POST", "/api/v1/incidents/import", `{"incident":{"` + long + `":1}}` + "\n", 400, `import line 1: json: unknown field "` + cut + `"`},
		} {
			t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)]+" "+tc.body[:min(len(tc.body), 20)], func(t *testing.T) {
				code, r := call(t, tc.method, srv.URL+tc.path, tc.body)
				require.Equal(t, tc.code, code, "%.200s", r.Error)
				require.Contains(t, r.Error, tc.err)
				require.NotContains(t, r.Error, strings.Repeat("n", 100), "the value comes back whole")
				require.NotContains(t, r.Error, strings.Repeat("g", 100), "the group key comes back whole")
			})
		}
	})
}
