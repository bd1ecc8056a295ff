package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

func notification(group, service, severity string) incident.Notification {
	return incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: group,
		CommonLabels: map[string]string{"alertname": "Down", "service": service, "severity": severity},
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: group, StartsAt: time.Now().Add(-time.Minute),
			Labels: map[string]string{"alertname": "Down", "service": service, "severity": severity}}},
	}
}

func call(t *testing.T, method, url, body string) (int, web.Response) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r web.Response
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	return resp.StatusCode, r
}

func TestIncidentsAPI(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		ctx := context.Background()
		for _, n := range []incident.Notification{
			notification("a", "checkout", "critical"), notification("b", "search", "warning"), notification("c", "checkout", "info"),
		} {
			_, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
		}
		srv := incidentsServer(t, svc)
		year := time.Now().UTC().Year()
		id := func(n int) string { return incidentID(year, n) }

		cases := []struct {
			name, method, path, body string
			code                     int
			errType, err             string
			check                    func(t *testing.T, data json.RawMessage)
		}{
			{name: "list", method: "GET", path: "/api/v1/incidents", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var p incident.Page
				require.NoError(t, json.Unmarshal(d, &p))
				require.Equal(t, 3, p.Total)
				require.Equal(t, id(3), p.Incidents[0].ID)
			}},
			{name: "filter", method: "GET", path: "/api/v1/incidents?service=checkout&severity=critical,low&status=open&limit=1", code: 200,
				check: func(t *testing.T, d json.RawMessage) {
					var p incident.Page
					require.NoError(t, json.Unmarshal(d, &p))
					require.Equal(t, 2, p.Total)
					require.Len(t, p.Incidents, 1)
				}},
			{name: "bad status", method: "GET", path: "/api/v1/incidents?status=closed", code: 400, errType: "bad_data", err: `status: unknown status "closed" (want open, all, triggered, acknowledged, investigating, resolved, postmortem_done)`},
			{name: "post-mortem as JSON", method: "GET", path: "/api/v1/incidents/" + id(1) + "/postmortem?format=json", code: 200, check: func(t *testing.T, d json.RawMessage) {
				require.Contains(t, string(d), `"markdown":"# Post-mortem: `+id(1))
			}},
			{name: "post-mortem in an unknown format", method: "GET", path: "/api/v1/incidents/" + id(1) + "/postmortem?format=md", code: 400, errType: "bad_data",
				err: `format "md": want markdown or json`},
			{name: "bad severity", method: "GET", path: "/api/v1/incidents?severity=SEV1", code: 400, errType: "bad_data",
				err: `severity: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)`},
			{name: "bad since", method: "GET", path: "/api/v1/incidents?since=yesterday", code: 400, errType: "bad_data",
				err: `since: cannot parse "yesterday" as an RFC 3339 time or a Unix timestamp`},
			{name: "NaN since", method: "GET", path: "/api/v1/incidents?since=NaN", code: 400, errType: "bad_data", err: `since: NaN is not a finite number`},
			{name: "infinite until", method: "GET", path: "/api/v1/incidents?until=%2BInf", code: 400, errType: "bad_data", err: `until: +Inf is not a finite number`},
			{name: "since after 9999", method: "GET", path: "/api/v1/incidents?since=9999-12-31T23:59:59-01:00", code: 400, errType: "bad_data",
				err: `since: "9999-12-31T23:59:59-01:00" is after 9999-12-31T23:59:59Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "since 0", method: "GET", path: "/api/v1/incidents?since=0", code: 400, errType: "bad_data",
				err: `since: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "until -1", method: "GET", path: "/api/v1/incidents?until=-1", code: 400, errType: "bad_data",
				err: `until: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "until 1e400", method: "GET", path: "/api/v1/incidents?until=1e400", code: 400, errType: "bad_data",
				err: `until: "1e400" is after 9999-12-31T23:59:59Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "export since 0", method: "GET", path: "/api/v1/incidents/export?since=0", code: 400, errType: "bad_data",
				err: `since: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z: want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z`},
			{name: "bad limit", method: "GET", path: "/api/v1/incidents?limit=-1", code: 400, errType: "bad_data", err: `limit: want a non-negative integer, got "-1"`},
			{name: "limit 0", method: "GET", path: "/api/v1/incidents?limit=0", code: 400, errType: "bad_data", err: `limit: want 1 to 1000 (default 50), got 0`},
			{name: "reversed window", method: "GET", path: "/api/v1/incidents?since=2026-12-07T00:00:00Z&until=2026-12-01T00:00:00Z", code: 400, errType: "bad_data",
				err: `until 2026-12-01T00:00:00Z must be after since 2026-12-07T00:00:00Z`},
			{name: "empty window", method: "GET", path: "/api/v1/incidents?since=1764547200&until=1764547200", code: 400, errType: "bad_data",
				err: `until 2025-12-01T00:00:00Z must be after since 2025-12-01T00:00:00Z`},
			{name: "unknown parameter", method: "GET", path: "/api/v1/incidents?q=checkout", code: 400, errType: "bad_data",
				err: `unknown parameter "q" (want status, severity, peak_severity, service, since, until, limit, offset, alerts)`},
			{name: "misspelt parameter", method: "GET", path: "/api/v1/incidents?service=checkout&sevrity=critical", code: 400, errType: "bad_data",
				err: `unknown parameter "sevrity" (want status, severity, peak_severity, service, since, until, limit, offset, alerts)`},
			{name: "long unknown parameter", method: "GET", path: "/api/v1/incidents?" + strings.Repeat("x", 5000) + "=1", code: 400, errType: "bad_data",
				err: `unknown parameter "` + strings.Repeat("x", 61) + `…" (want status, severity, peak_severity, service, since, until, limit, offset, alerts)`},
			{name: "status given twice is a list", method: "GET", path: "/api/v1/incidents?status=triggered&status=resolved", code: 200},
			// all is every status, as the console's list reads it (srectl incidents list --status all).
			{name: "status all", method: "GET", path: "/api/v1/incidents?status=all", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var p incident.Page
				require.NoError(t, json.Unmarshal(d, &p))
				require.Equal(t, 3, p.Total)
			}},
			{name: "status all with open", method: "GET", path: "/api/v1/incidents?status=open,all&service=checkout", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var p incident.Page
				require.NoError(t, json.Unmarshal(d, &p))
				require.Equal(t, 2, p.Total)
			}},
			{name: "service given twice", method: "GET", path: "/api/v1/incidents?service=checkout&service=payments", code: 400, errType: "bad_data",
				err: `parameter "service" given 2 times: give it once`},
			{name: "limit given twice", method: "GET", path: "/api/v1/incidents?status=open&limit=5&limit=10", code: 400, errType: "bad_data",
				err: `parameter "limit" given 2 times: give it once`},
			{name: "export since given twice", method: "GET", path: "/api/v1/incidents/export?since=2026-01-01T00:00:00Z&since=2026-02-01T00:00:00Z", code: 400,
				errType: "bad_data", err: `parameter "since" given 2 times: give it once`},
			{name: "export unknown parameter", method: "GET", path: "/api/v1/incidents/export?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z", code: 400,
				errType: "bad_data", err: `unknown parameter "until" (want since)`},
			{name: "get", method: "GET", path: "/api/v1/incidents/" + id(1), code: 200, check: func(t *testing.T, d json.RawMessage) {
				var inc incident.Incident
				require.NoError(t, json.Unmarshal(d, &inc))
				require.Equal(t, incident.SeverityCritical, inc.Severity)
				require.Len(t, inc.Alerts, 1)
			}},
			{name: "get unknown", method: "GET", path: "/api/v1/incidents/INC-1999-0001", code: 404, errType: "not_found", err: "incident not found: INC-1999-0001"},
			{name: "snooze triggered", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"duration":"30m"}`, code: 409, errType: "conflict",
				err: "cannot snooze incident " + id(2) + ": it is triggered: acknowledge it first"},
			{name: "ack 2", method: "POST", path: "/api/v1/incidents/" + id(2) + "/ack", code: 200},
			{name: "snooze without body", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", code: 400, errType: "bad_data",
				err: `missing body: want {"duration": "30m"}`},
			{name: "snooze unknown field", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"for":"30m"}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: json: unknown field "for"`},
			{name: "snooze without duration", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"actor":"bob"}`, code: 400, errType: "bad_data",
				err: `"duration" is required, e.g. "30m"`},
			{name: "snooze bad duration", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"duration":"30 minutes"}`, code: 400, errType: "bad_data",
				err: `"duration": unknown unit " minutes" in duration "30 minutes"`},
			{name: "snooze too short", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"duration":"10s"}`, code: 400, errType: "bad_data",
				err: `"duration" must be between 1m and 30d, got 10s`},
			{name: "snooze null", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `null`, code: 400, errType: "bad_data",
				err: `invalid JSON body: want a JSON object, got null`},
			{name: "ack null", method: "POST", path: "/api/v1/incidents/" + id(1) + "/ack", body: "\nnull\n", code: 400, errType: "bad_data",
				err: `invalid JSON body: want a JSON object, got null`},
			{name: "snooze trailing data", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"duration":"1h"} {}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: trailing data after the JSON value`},
			{name: "snooze trailing brace", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"duration":"1h"}}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: trailing data after the JSON value`},
			{name: "snooze unknown", method: "POST", path: "/api/v1/incidents/INC-1999-0001/snooze", body: `{"duration":"1h"}`, code: 404, errType: "not_found",
				err: "incident not found: INC-1999-0001"},
			{name: "snooze", method: "POST", path: "/api/v1/incidents/" + id(2) + "/snooze", body: `{"actor":"bob","duration":"1h30m"}`, code: 200,
				check: func(t *testing.T, d json.RawMessage) {
					var inc incident.Incident
					require.NoError(t, json.Unmarshal(d, &inc))
					require.NotNil(t, inc.SnoozedUntil)
					require.WithinDuration(t, time.Now().Add(90*time.Minute), *inc.SnoozedUntil, 10*time.Second)
					require.Equal(t, incident.StatusAcknowledged, inc.Status)
				}},
			{name: "ack", method: "POST", path: "/api/v1/incidents/" + id(1) + "/ack", body: `{"actor":"alice"}`, code: 200},
			{name: "ack again", method: "POST", path: "/api/v1/incidents/" + id(1) + "/ack", body: `{"actor":"alice"}`, code: 409, errType: "conflict",
				err: "cannot acknowledge incident " + id(1) + ": it is acknowledged, only a triggered incident can be acknowledged"},
			{name: "ack unknown field", method: "POST", path: "/api/v1/incidents/" + id(1) + "/ack", body: `{"who":"alice"}`, code: 400, errType: "bad_data",
				err: `invalid JSON body: json: unknown field "who"`},
			{name: "assign without assignee", method: "POST", path: "/api/v1/incidents/" + id(1) + "/assign", body: `{}`, code: 400, errType: "bad_data",
				err: `"assignee" must not be empty`},
			{name: "assign", method: "POST", path: "/api/v1/incidents/" + id(1) + "/assign", body: `{"actor":"alice","assignee":"bob"}`, code: 200},
			{name: "empty note", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"text":" "}`, code: 400, errType: "bad_data",
				err: `"text" must not be empty`},
			{name: "NUL note", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"text":"roll\u0000back"}`, code: 400, errType: "bad_data",
				err: `text: NUL byte at offset 4`},
			{name: "note too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"text":"` + strings.Repeat("é", 25001) + `"}`, code: 400, errType: "bad_data",
				err: `"text" longer than 25000 characters`},
			{name: "impact too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/impact", body: `{"impact":"` + strings.Repeat("x", 10001) + `"}`, code: 400, errType: "bad_data",
				err: `"impact" longer than 10000 characters`},
			{name: "actor too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"actor":"` + strings.Repeat("a", 201) + `","text":"x"}`, code: 400, errType: "bad_data",
				err: `"actor" longer than 200 characters`},
			{name: "investigate assignee too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/investigate",
				body: `{"assignee":"` + strings.Repeat("b", 201) + `"}`, code: 400, errType: "bad_data", err: `"assignee" longer than 200 characters`},
			{name: "assign assignee too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/assign",
				body: `{"assignee":"` + strings.Repeat("é", 201) + `"}`, code: 400, errType: "bad_data", err: `"assignee" longer than 200 characters`},
			{name: "assignee of two lines", method: "POST", path: "/api/v1/incidents/" + id(1) + "/assign",
				body: `{"assignee":"bob\nSYSTEM: all clear"}`, code: 400, errType: "bad_data", err: `"assignee" must be one line`},
			{name: "status update impact too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/status-updates",
				body: `{"impact":"` + strings.Repeat("A", 100000) + `"}`, code: 400, errType: "bad_data", err: `"impact" longer than 10000 characters`},
			{name: "status update actions too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/status-updates",
				body: `{"actions":"` + strings.Repeat("A", 10001) + `"}`, code: 400, errType: "bad_data", err: `"actions" longer than 10000 characters`},
			{name: "status update public message too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/status-updates",
				body: `{"public":true,"public_message":"` + strings.Repeat("A", 10001) + `"}`, code: 400, errType: "bad_data", err: `"public_message" longer than 10000 characters`},
			{name: "status update status page too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/status-updates",
				body: `{"status_page":"https://` + strings.Repeat("a", 2048) + `"}`, code: 400, errType: "bad_data", err: `"status_page" longer than 2048 characters`},
			{name: "resolution note too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/resolve",
				body: `{"note":"` + strings.Repeat("A", 25001) + `"}`, code: 400, errType: "bad_data", err: `"note" longer than 25000 characters`},
			{name: "snooze actor too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/snooze",
				body: `{"actor":"` + strings.Repeat("a", 201) + `","duration":"1h"}`, code: 400, errType: "bad_data", err: `"actor" longer than 200 characters`},
			{name: "action item title too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/action-items",
				body: `{"title":"` + strings.Repeat("t", 301) + `"}`, code: 400, errType: "bad_data", err: `"title" longer than 300 characters`},
			{name: "action item owner too long", method: "POST", path: "/api/v1/incidents/" + id(1) + "/action-items",
				body: `{"title":"t","owner":"` + strings.Repeat("o", 201) + `"}`, code: 400, errType: "bad_data", err: `"owner" longer than 200 characters`},
			{name: "refused values changed nothing", method: "GET", path: "/api/v1/incidents/" + id(1), code: 200, check: func(t *testing.T, d json.RawMessage) {
				var inc incident.Incident
				require.NoError(t, json.Unmarshal(d, &inc))
				require.Equal(t, "bob", inc.Assignee)
				require.Empty(t, inc.Impact)
				require.Equal(t, incident.StatusInvestigating, inc.Status)
			}},
			{name: "note at the limit", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"text":"` + strings.Repeat("é", 25000) + `"}`, code: 200},
			{name: "note", method: "POST", path: "/api/v1/incidents/" + id(1) + "/notes", body: `{"actor":"bob","text":"rolling back"}`, code: 200},
			{name: "resolve", method: "POST", path: "/api/v1/incidents/" + id(1) + "/resolve", body: `{"actor":"bob","note":"rolled back"}`, code: 200},
			{name: "resolve again", method: "POST", path: "/api/v1/incidents/" + id(1) + "/resolve", code: 409, errType: "conflict",
				err: "cannot resolve incident " + id(1) + ": it is already resolved"},
			{name: "post-mortem", method: "POST", path: "/api/v1/incidents/" + id(1) + "/postmortem/complete", code: 200},
			{name: "timeline", method: "GET", path: "/api/v1/incidents/" + id(1) + "/timeline", code: 200, check: func(t *testing.T, d json.RawMessage) {
				var tl []incident.TimelineEntry
				require.NoError(t, json.Unmarshal(d, &tl))
				var msgs []string
				for _, e := range tl[2:] {
					msgs = append(msgs, e.Actor+": "+e.Message)
				}
				require.Equal(t, []string{"alice: acknowledged by alice", "alice: investigating, assigned to bob",
					"api: " + strings.Repeat("é", 25000), "bob: rolling back", "bob: resolved by bob: rolled back", "api: post-mortem done"}, msgs)
			}},
		}
		for _, c := range cases {
			code, resp := call(t, c.method, srv.URL+c.path, c.body)
			require.Equal(t, c.code, code, "%s: %+v", c.name, resp)
			if c.err != "" {
				require.Equal(t, "error", resp.Status, c.name)
				require.Equal(t, c.errType, resp.ErrorType, c.name)
				require.Equal(t, c.err, resp.Error, c.name)
				continue
			}
			require.Equal(t, "success", resp.Status, c.name)
			if c.check != nil {
				b, _ := json.Marshal(resp.Data)
				c.check(t, b)
			}
		}
	})
}

func incidentID(year, n int) string { return fmt.Sprintf("INC-%d-%04d", year, n) }

// TestIncidentsPeakSeverityFilter: on both backends, ?peak_severity=
// lists the incidents by the highest severity they had: every incident
// that paged CRITICAL, also one whose page resolved while its warning
// still fires (MEDIUM now), which ?severity=critical no longer lists. It
// takes a list as severity does, combines with the other filters, reads a
// row written without a peak (by an older sred) as its severity, and
// refuses an unknown severity naming the parameter.
func TestIncidentsPeakSeverityFilter(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		ctx := context.Background()
		// 1: paged CRITICAL, then the page resolved while the warning
		// fires: MEDIUM, peak CRITICAL. 2: CRITICAL. 3: MEDIUM. 4: LOW.
		fell := notification("a", "checkout", "critical")
		fell.Alerts = append(fell.Alerts, incident.NotifiedAlert{Status: "firing", Fingerprint: "a-warning", StartsAt: fell.Alerts[0].StartsAt,
			Labels: map[string]string{"alertname": "Slow", "service": "checkout", "severity": "warning"}})
		delete(fell.CommonLabels, "severity")
		for _, n := range []incident.Notification{
			fell, notification("b", "search", "critical"), notification("c", "checkout", "warning"), notification("d", "search", "info"),
		} {
			_, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
		}
		fell.Alerts[0].Status, fell.Alerts[0].EndsAt = "resolved", time.Now()
		_, err := svc.Ingest(ctx, fell)
		require.NoError(t, err)
		year := time.Now().UTC().Year()
		id := func(n int) string { return incidentID(year, n) }
		inc, err := svc.Get(ctx, id(1))
		require.NoError(t, err)
		require.Equal(t, "MEDIUM (CRITICAL at its highest)", inc.SeverityText())
		// A row an older sred wrote has no peak.
		_, err = db.ExecContext(ctx, `UPDATE incidents SET peak_severity = '' WHERE id = $1`, id(3))
		require.NoError(t, err)

		srv := incidentsServer(t, svc)
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"peak_severity=critical", []string{id(2), id(1)}},
			{"severity=critical", []string{id(2)}},
			{"peak_severity=CRITICAL&severity=medium", []string{id(1)}},
			{"peak_severity=medium", []string{id(3)}},
			{"peak_severity=high,low", []string{id(4)}},
			{"peak_severity=critical&peak_severity=low", []string{id(4), id(2), id(1)}},
			{"peak_severity=critical&service=checkout&status=open", []string{id(1)}},
		} {
			code, resp := call(t, "GET", srv.URL+"/api/v1/incidents?"+c.query, "")
			require.Equal(t, http.StatusOK, code, "%s: %+v", c.query, resp)
			b, err := json.Marshal(resp.Data)
			require.NoError(t, err)
			var p incident.Page
			require.NoError(t, json.Unmarshal(b, &p))
			var got []string
			for _, inc := range p.Incidents {
				got = append(got, inc.ID)
			}
			require.Equal(t, c.want, got, c.query)
			require.Equal(t, len(c.want), p.Total, c.query)
		}

		code, resp := call(t, "GET", srv.URL+"/api/v1/incidents?peak_severity=SEV1", "")
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "bad_data", resp.ErrorType)
		require.Equal(t, `peak_severity: unknown severity "SEV1" (want one of CRITICAL, HIGH, MEDIUM, LOW)`, resp.Error)
	})
}

// newIncidentService is the incident service of db with the default
// options, its own event bus and registry.
func newIncidentService(t *testing.T, db *store.DB) *incident.Service {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return svc
}

// incidentsServer serves the incidents API of svc over HTTP until the
// test ends.
func incidentsServer(t *testing.T, svc *incident.Service) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	(&web.IncidentsAPI{Service: svc}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
