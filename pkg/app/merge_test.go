package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

// postAction posts body to sred and returns the status and the envelope's data.
func postAction(t *testing.T, url, body string, data any) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK && data != nil {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(b, &env), "%s", b)
		require.NoError(t, json.Unmarshal(env.Data, data), "%s", b)
	}
	return resp.StatusCode, string(b)
}

// TestSplitAndMerge runs the wired sred on both backends: a group that
// correlation attached is split out by a responder into an incident of its
// own (which pages), then merged back; each is recorded in both timelines,
// asking twice changes nothing, and Alertmanager's redeliveries of the
// group follow it.
func TestSplitAndMerge(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			sink := &pageSink{pages: map[string]int{}}
			hooks := httptest.NewServer(sink)
			defer hooks.Close()
			a, srv := runApp(t, backend, fmt.Sprintf(stormConfig, hooks.URL), nil)
			start := time.Now().Add(-2 * time.Minute)
			db := amGroup{alertname: "PostgresDown", service: "db", starts: start}
			api := amGroup{alertname: "HighErrorRate", service: "api", starts: start}
			search := amGroup{alertname: "SearchLatency", service: "search", starts: start}
			idA := deliver(t, srv.URL, db.payload("firing", time.Time{})).Created[0]
			require.Equal(t, []string{idA}, deliver(t, srv.URL, api.payload("firing", time.Time{})).Incidents)
			require.Equal(t, []string{idA}, deliver(t, srv.URL, search.payload("firing", time.Time{})).Incidents)
			base := srv.URL + "/api/v1/incidents/"

			// Split the search group out.
			var split incident.SplitResult
			code, body := postAction(t, base+idA+"/split", fmt.Sprintf(`{"actor":"alice","group_key":%q}`, search.groupKey()), &split)
			require.Equal(t, http.StatusOK, code, body)
			require.False(t, split.Duplicate)
			idB := split.Incident.ID
			require.NotEqual(t, idA, idB)
			require.Equal(t, "search", split.Incident.Service)
			require.Equal(t, []string{"api", "db"}, split.From.Services)
			b := getIncident(t, srv.URL, idB)
			require.Equal(t, incident.StatusTriggered, b.Status)
			require.Len(t, b.Alerts, 1)
			require.Equal(t, []string{"search"}, b.Services)
			require.Equal(t, "split", b.Links[0].Reason)
			require.Len(t, getIncident(t, srv.URL, idA).Alerts, 2)
			require.Contains(t, timelineOf(t, srv.URL, idA, "correlation"), "split by alice: the alert group of search moved to "+idB)
			require.Equal(t, []string{"incident created: alert group of search split out of " + idA + " by alice"},
				timelineOf(t, srv.URL, idB, "correlation"))

			// Asking again, and Alertmanager redelivering the group, change nothing.
			code, body = postAction(t, base+idA+"/split", fmt.Sprintf(`{"actor":"alice","group_key":%q}`, search.groupKey()), &split)
			require.Equal(t, http.StatusOK, code, body)
			require.True(t, split.Duplicate)
			require.Equal(t, idB, split.Incident.ID)
			res := deliver(t, srv.URL, search.payload("firing", time.Time{}))
			require.True(t, res.Duplicate)
			require.Equal(t, []string{idB}, res.Incidents)
			require.Len(t, listIncidents(t, srv.URL), 2)

			// The split-out incident paged on its own.
			waitFor(t, func() bool { return sink.count("alice") >= 2 && pagesSettled(t, a) }, "the split-out incident did not page")
			require.Equal(t, 2, sink.count("alice"))

			// Bad requests name the problem.
			code, body = postAction(t, base+idA+"/split", `{"actor":"alice"}`, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, body, `\"group_key\" must name the alert group to split out`)
			code, body = postAction(t, base+idA+"/split", `{"actor":"alice","group_key":"nope"}`, nil)
			require.Equal(t, http.StatusNotFound, code, body)
			code, body = postAction(t, base+idB+"/split", fmt.Sprintf(`{"actor":"alice","group_key":%q}`, search.groupKey()), nil)
			require.Equal(t, http.StatusConflict, code, body)
			require.Contains(t, body, "it is the incident's only alert group")
			code, body = postAction(t, base+idA+"/merge", `{"actor":"alice"}`, nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, body, `\"from\" must name the incident to merge into this one`)
			code, _ = postAction(t, base+idA+"/merge", fmt.Sprintf(`{"actor":"alice","from":%q}`, idA), nil)
			require.Equal(t, http.StatusBadRequest, code)

			// Merge it back.
			var merge incident.MergeResult
			code, body = postAction(t, base+idA+"/merge", fmt.Sprintf(`{"actor":"bob","from":%q}`, idB), &merge)
			require.Equal(t, http.StatusOK, code, body)
			require.False(t, merge.Duplicate)
			require.Equal(t, []string{"api", "db", "search"}, merge.Incident.Services)
			bInc := getIncident(t, srv.URL, idB)
			require.Equal(t, incident.StatusResolved, bInc.Status)
			require.Equal(t, idA, bInc.MergedInto)
			require.Empty(t, bInc.Alerts)
			aInc := getIncident(t, srv.URL, idA)
			require.Len(t, aInc.Alerts, 3)
			require.Equal(t, "db", aInc.RootService)
			require.Contains(t, timelineOf(t, srv.URL, idA, "correlation"), "merged "+idB+" into this incident (by bob): services api, db, search")
			require.Contains(t, timelineOf(t, srv.URL, idB, "status"), "merged into "+idA+" by bob")

			code, body = postAction(t, base+idA+"/merge", fmt.Sprintf(`{"actor":"bob","from":%q}`, idB), &merge)
			require.Equal(t, http.StatusOK, code, body)
			require.True(t, merge.Duplicate)
			code, body = postAction(t, base+idB+"/merge", fmt.Sprintf(`{"actor":"bob","from":%q}`, idA), nil)
			require.Equal(t, http.StatusConflict, code, body)
			res = deliver(t, srv.URL, search.payload("firing", time.Time{}))
			require.True(t, res.Duplicate)
			require.Equal(t, []string{idA}, res.Incidents)

			// The merged incident resolves with its last group.
			for _, g := range []amGroup{db, api, search} {
				deliver(t, srv.URL, g.payload("resolved", time.Now()))
			}
			require.Equal(t, incident.StatusResolved, getIncident(t, srv.URL, idA).Status)
			require.Equal(t, 2, sink.count("alice"), "merging paged nobody")
		})
	}
}

// TestSplitManualLink: the link of an incident opened by hand
// (manual:<id>), its own or one merged into another incident, is not an
// alert group: splitting it off answers a 409 in the API's error shape
// saying so, on both backends, and changes nothing.
func TestSplitManualLink(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			hooks := httptest.NewServer(&pageSink{pages: map[string]int{}})
			defer hooks.Close()
			_, srv := runApp(t, backend, fmt.Sprintf(stormConfig, hooks.URL), nil)
			base := srv.URL + "/api/v1/incidents"
			open := func(body string) incident.Incident {
				t.Helper()
				code, body := postAction(t, base, body, nil)
				require.Equal(t, http.StatusCreated, code, body)
				var env struct{ Data incident.Incident }
				require.NoError(t, json.Unmarshal([]byte(body), &env), body)
				return env.Data
			}
			manual := open(`{"actor":"alice","title":"Checkout slow","service":"checkout","severity":"high"}`)
			other := open(`{"actor":"alice","title":"Cache cold","service":"cache","severity":"low"}`)
			checkout := amGroup{alertname: "CheckoutErrors", service: "checkout", starts: time.Now().Add(-time.Minute)}
			require.Equal(t, []string{manual.ID}, deliver(t, srv.URL, checkout.payload("firing", time.Time{})).Incidents)
			code, body := postAction(t, base+"/"+manual.ID+"/merge", fmt.Sprintf(`{"actor":"alice","from":%q}`, other.ID), nil)
			require.Equal(t, http.StatusOK, code, body)

			for _, c := range []struct{ key, want string }{
				{"manual:" + manual.ID, "cannot split manual:" + manual.ID + " out of incident " + manual.ID +
					": it is the incident's own link (it was opened by hand), not an alert group; only an alert group can be split off"},
				{"manual:" + other.ID, "cannot split manual:" + other.ID + " out of incident " + manual.ID +
					": it is the link of " + other.ID + ", an incident opened by hand, not an alert group; only an alert group can be split off"},
			} {
				code, body = postAction(t, base+"/"+manual.ID+"/split", fmt.Sprintf(`{"actor":"alice","group_key":%q}`, c.key), nil)
				require.Equal(t, http.StatusConflict, code, body)
				var env struct{ Status, ErrorType, Error string }
				require.NoError(t, json.Unmarshal([]byte(body), &env), body)
				require.Equal(t, "error", env.Status)
				require.Equal(t, "conflict", env.ErrorType)
				require.Equal(t, c.want, env.Error)
			}
			inc := getIncident(t, srv.URL, manual.ID)
			require.True(t, inc.Status.Open())
			require.Len(t, inc.Links, 3)
			require.Len(t, listIncidents(t, srv.URL), 2, "a split opened an incident")
		})
	}
}
