package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestDuplicateJSONKeysRefused: a JSON body giving a key twice (a proxy in
// front of sred may have checked the first, encoding/json keeps the last)
// is answered 400 naming the key; nothing is stored.
func TestDuplicateJSONKeysRefused(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	post := func(body string) (int, apiEnvelope) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/v1/incidents", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var env apiEnvelope
		require.NoError(t, json.Unmarshal(b, &env), "%s", b)
		return resp.StatusCode, env
	}
	code, env := post(`{"title":"db down","service":"db","service":"payments","severity":"high"}`)
	require.Equal(t, http.StatusBadRequest, code, env.Error)
	require.Equal(t, `invalid JSON body: the JSON body: key "service" given twice`, env.Error)
	var list struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	code, env = getJSON(t, srv.URL+"/api/v1/incidents", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Empty(t, list.Incidents, "%s", env.Data)

	code, env = post(`{"title":"db down","service":"db","severity":"high"}`)
	require.Equal(t, http.StatusCreated, code, env.Error)
	code, env = getJSON(t, srv.URL+"/api/v1/incidents", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Len(t, list.Incidents, 1, "%s", env.Data)
}

// TestFieldNameCaseRefused: a JSON body key naming a field only without
// regard to case ({"Title": ...}, which encoding/json would take for
// "title") is answered 400 naming the key and the field; nothing is
// stored. The labels of a body are a map: their keys keep their case.
func TestFieldNameCaseRefused(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	post := func(body string) (int, apiEnvelope) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/v1/incidents", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var env apiEnvelope
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		return resp.StatusCode, env
	}
	var list struct {
		Incidents []json.RawMessage `json:"incidents"`
	}
	for key, field := range map[string]string{"Title": "title", "SERVICE": "service", "Severity": "severity"} {
		body := strings.NewReplacer(`"`+field+`"`, `"`+key+`"`).Replace(`{"title":"db down","service":"db","severity":"high"}`)
		code, env := post(body)
		require.Equal(t, http.StatusBadRequest, code, env.Error)
		require.Equal(t, fmt.Sprintf(`invalid JSON body: the JSON body: unknown field %q: the field is %q (field names are case-sensitive)`, key, field), env.Error)
	}
	code, env := getJSON(t, srv.URL+"/api/v1/incidents", nil, &list)
	require.Equal(t, http.StatusOK, code, env.Error)
	require.Empty(t, list.Incidents, "%s", env.Data)
	code, env = post(`{"title":"db down","service":"db","severity":"high"}`)
	require.Equal(t, http.StatusCreated, code, env.Error)
}

// TestGateRefusesCrossSiteRequests: GET /api/v1/gate stores each decision
// in the name of the caller, so another site's page (an <img> pointing at
// it, sent with the browser's credentials) is refused as a cross-origin
// write is, and stores nothing; CI and same-origin requests are answered.
func TestGateRefusesCrossSiteRequests(t *testing.T) {
	f := startBudgetPrometheus(t)
	a, srv := runApp(t, "sqlite", fmt.Sprintf("prometheus:\n  url: %s\nslos:\n  spec_files: [%s]\n", f.prom.URL, f.specDir), nil)
	gate := func(site string) (int, apiEnvelope, budget.Decision) {
		t.Helper()
		var d budget.Decision
		hdr := map[string]string{}
		if site != "" {
			hdr["Sec-Fetch-Site"] = site
		}
		code, env := getJSON(t, srv.URL+"/api/v1/gate?service=web", hdr, &d)
		return code, env, d
	}
	code, env, first := gate("")
	require.Equal(t, http.StatusOK, code, env.Error)
	require.NotZero(t, first.ID)
	for _, site := range []string{"cross-site", "same-site"} {
		code, env, _ = gate(site)
		require.Equal(t, http.StatusForbidden, code, site)
		require.Equal(t, "cross-origin request refused: cross-origin request detected from Sec-Fetch-Site header", env.Error)
	}
	code, env, next := gate("same-origin")
	require.Equal(t, http.StatusOK, code, env.Error)
	// The same decision within a minute is counted in the first's row
	// (budget.DecisionRepeatWindow): once, for the same-origin request.
	require.Equal(t, first.ID, next.ID)
	recs, err := budget.ListDecisions(t.Context(), a.DB, "web", 10)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, 1, recs[0].Repeats, "the refused requests stored no decision")
}

// TestLongNamesCut: an answer refusing a name, id or value given in the
// path, the query or the body quotes it cut at 64 bytes (limits.Quote,
// "nnn…"), never the 5,000 characters whole.
func TestLongNamesCut(t *testing.T) {
	// The analysis api of examples/rollouts, and a Prometheus that is
	// never asked: a run's target is refused before any query.
	rollouts := filepath.Join(tu.RepoRoot(t), "examples", "rollouts")
	_, srv := runApp(t, "sqlite", "prometheus: {url: http://127.0.0.1:1}\nanalysis:\n  spec_files: ["+rollouts+"]\n", nil)
	long := strings.Repeat("n", 5000)
	cut := `"` + strings.Repeat("n", 61) + `…"`
	// A change under the longest key (512 bytes), which a change of
	// another service then reuses.
	key := strings.Repeat("n", 512)
	resp, err := http.Post(srv.URL+"/api/v1/changes", "application/json", strings.NewReader(`{"service":"api","kind":"deploy","key":"`+key+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300)
	fault := func(f string) string {
		return `{"apiVersion":"chaos.sre.rootuip.io/v1","kind":"Experiment","name":"x","hypothesis":{"description":"d","steadyState":[{"name":"p","promql":"up"}]},"target":{"service":"api","environment":"staging","instances":1,"totalInstances":4},"duration":"1m","faults":[` + f + `]}`
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/api/v1/analysis/" + long, "", 404, "no analysis named " + cut},
		{"GET", "/api/v1/analysis/" + long + "/run", "", 404, "no analysis named " + cut},
		{"GET", "/api/v1/chaos/experiments/" + long + "/plan", "", 404, "no experiment " + cut + " is loaded"},
		{"GET", "/api/v1/chaos/runs?limit=" + long, "", 400, "limit " + cut},
		{"GET", "/api/v1/escalation/incidents/" + long, "", 404, "incident " + cut + " has no escalation"},
		{"DELETE", "/api/v1/escalation/maintenance/" + long, "", 400, "invalid maintenance window id " + cut},
		{"GET", "/api/v1/services/" + long + "/events", "", 404, "service " + cut + " has no SLO"},
		{"GET", "/api/v1/services/api/events?" + long + "=1", "", 400, "unknown parameter " + cut},
		{"GET", "/api/v1/runbooks/runs/" + long, "", 400, "run id " + cut},
		{"GET", "/api/v1/runbooks/runs?limit=" + long, "", 400, "limit " + cut},
		{"GET", "/api/v1/rollouts/" + long, "", 400, "rollout id " + cut},
		{"GET", "/api/v1/rollouts?limit=" + long, "", 400, "got " + cut},
		{"GET", "/api/v1/changes/" + long, "", 400, "got " + cut},
		{"GET", "/api/v1/changes?" + long + "=1", "", 400, "unknown parameter " + cut},
		{"GET", "/api/v1/sla/report/" + long, "", 404, "customer " + cut},
		{"GET", "/api/v1/reports/noise?limit=" + long, "", 400, "got " + cut},
		{"GET", "/api/v1/incidents?status=" + long, "", 400, "unknown status " + cut},
		{"GET", "/api/v1/scaling/decisions?" + long + "=1", "", 400, "unknown parameter " + cut},
		{"GET", "/api/v1/scaling/backtest?policy=" + long, "", 404, "no scaling policy " + cut},
		{"GET", "/api/v1/audit?limit=" + long, "", 400, "limit: want an integer from 1 to 1000, got " + cut},
		{"GET", "/api/v1/audit?since=" + long, "", 400, "since: cannot parse " + cut + " as an RFC 3339 time or a Unix timestamp"},
		{"GET", "/api/v1/audit?before=" + long, "", 400, "before: want a non-negative integer, got " + cut},
		{"POST", "/api/v1/incidents", `{"title":"db down","service":"db","severity":"high","` + long + `":1}`, 400, "unknown field " + cut},
		{"GET", "/api/v1/incidents/" + long, "", 404, "incident not found: " + strings.Repeat("n", 61) + "…"},
		{"GET", "/api/v1/slos/" + long + "/" + long, "", 404, "SLO " + cut + " of service " + cut},
		{"GET", "/api/v1/gate?service=" + long, "", 404, "service " + cut + " has no SLO"},
		{"GET", "/api/v1/gate?service=api&change=" + long, "", 400, "got " + cut},
		{"GET", "/api/v1/services/api/events?before=" + long, "", 400, "invalid cursor " + cut},
		{"POST", "/api/v1/rollouts", `{"name":"` + long + `","version":"1.0.0"}`, 404, "no rollout definition " + cut + " is loaded"},
		{"POST", "/api/v1/escalation/incidents/" + long + "/escalate", `{}`, 404, "escalate " + strings.Repeat("n", 61) + "… now"},
		{"GET", "/api/v1/changes?kind=" + long, "", 400, "unknown change kind " + cut},
		{"GET", "/api/v1/changes?outcome=" + long, "", 400, "unknown outcome " + cut},
		{"POST", "/api/v1/changes", `{"service":"api","kind":"` + long + `"}`, 400, "unknown change kind " + cut},
		{"POST", "/api/v1/changes", `{"service":"db","kind":"deploy","key":"` + key + `"}`, 422, "key " + cut + " is change 1, a deploy of api, not a deploy of db"},
		{"POST", "/api/v1/analysis/api/run", `{"canary":{"` + long + `-":"x"}}`, 400, "canary label name " + cut + " is not a valid Prometheus label name"},
		{"POST", "/api/v1/analysis/api/run", `{"canary":{"track":"canary"},"baseline":{"__` + long + `":"x"}}`, 400, `baseline label name "__` + strings.Repeat("n", 59) + `…" is reserved`},
		{"POST", "/api/v1/analysis/api/run", `{"canary":{"` + long + `":""}}`, 400, "canary label " + strings.Repeat("n", 61) + "… has an empty value"},
		{"GET", "/api/v1/analysis/api/run?canary=" + long + "=1," + long + "=2", "", 400, "canary: label " + strings.Repeat("n", 61) + "… given twice"},
		{"POST", "/api/v1/analysis/flagger/confirm-promotion", `{"name":"api","namespace":"default","metadata":{"canary":"` + long + `="}}`, 400, "metadata.canary: label " + strings.Repeat("n", 61) + "… has an empty value"},
		{"POST", "/api/v1/chaos/validate", fault(`{"name":"` + long + `","type":"` + long + `"}`), 200, "faults[0] (" + cut[1:len(cut)-1] + "): type: " + cut + " is unknown"},
		{"POST", "/api/v1/chaos/validate", fault(`{"type":"disk-fill","size":"` + long + `","path":"/tmp"}`), 200, "size: invalid size " + cut},
		{"POST", "/api/v1/chaos/validate", strings.Replace(fault(`{"type":"latency","latency":"1s","proxy":"p"}`), `"duration":"1m"`, `"duration":"`+long+`"`, 1), 200, "not a valid duration string: " + cut},
		{"POST", "/api/v1/chaos/validate", fault(`{"type":"latency","latency":"` + long + `","proxy":"p"}`), 200, "not a valid duration string: " + cut},
		{"POST", "/api/v1/chaos/validate", fault(`{"type":"memory-stress","size":"` + strings.Repeat("0", 5000) + `1KiB"}`), 200, "size: " + strings.Repeat("0", 61) + "… (1024 bytes) is below the least memory-stress size"},
		{"POST", "/api/v1/chaos/validate", fault(`{"name":"` + long + `","type":"latency","driver":"` + long + `"}`), 200, "faults[0] (" + cut[1:len(cut)-1] + "): driver: " + cut + " cannot inject latency faults"},
		{"POST", "/api/v1/chaos/validate", strings.Replace(fault(`{"type":"latency","latency":"1s","proxy":"p"}`), `"name":"x"`, `"name":"`+long+`"`, 1), 200, "name " + cut + " must be lowercase letters"},
		{"POST", "/api/v1/chaos/validate", strings.Replace(fault(`{"type":"latency","latency":"1s","proxy":"p"}`), `"service":"api"`, `"service":"`+long+`"`, 1), 200, "target.service " + cut + " is not a plain name"},
	} {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			var env apiEnvelope
			require.NoError(t, json.Unmarshal(b, &env), "%s", b)
			require.Equal(t, tc.code, resp.StatusCode, env.Error)
			msg := env.Error
			if resp.StatusCode == http.StatusOK {
				// POST /api/v1/chaos/validate answers a spec's error in its data.
				var res struct {
					Valid bool   `json:"valid"`
					Error string `json:"error"`
				}
				require.NoError(t, json.Unmarshal(env.Data, &res), "%s", env.Data)
				require.False(t, res.Valid)
				msg = res.Error
			}
			require.True(t, strings.Contains(msg, tc.want), "want %s in the error, got %d bytes: %.200s", tc.want, len(msg), msg)
			require.NotContains(t, msg, strings.Repeat("n", 100), "the name comes back whole")
			require.NotContains(t, msg, strings.Repeat("0", 100), "the size comes back whole")
		})
	}
}

// paramCase is a request of the parameter tests: the query (or path)
// after the base URL, the status wanted and the error (empty for none).
type paramCase struct {
	query string
	code  int
	err   string
}

// checkParams asks base+query of every case and checks its status and
// error.
func checkParams(t *testing.T, base string, cases []paramCase) {
	t.Helper()
	for _, tc := range cases {
		code, env := getJSON(t, base+tc.query, nil, nil)
		require.Equal(t, tc.code, code, "%.80s: %s", tc.query, env.Error)
		require.Equal(t, tc.err, env.Error, "%.80s", tc.query)
	}
}

// TestRolloutListParams: GET /api/v1/rollouts answers 400 for a parameter
// it does not read (a misspelt ?actve=true would list every rollout) or
// one given twice, naming it and the ones accepted.
func TestRolloutListParams(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	checkParams(t, srv.URL+"/api/v1/rollouts", []paramCase{
		{"", 200, ""},
		{"?active=true&name=api-canary&limit=5", 200, ""},
		{"?actve=true", 400, `unknown parameter "actve" (want active, name, limit)`},
		{"?q=api", 400, `unknown parameter "q" (want active, name, limit)`},
		{"?name=a&name=b", 400, `parameter "name" given 2 times: give it once`},
		{"?" + strings.Repeat("x", 5000) + "=1", 400, `unknown parameter "` + strings.Repeat("x", 61) + `…" (want active, name, limit)`},
	})
}

// TestGateParams: GET /api/v1/gate answers 400 for a parameter it does not
// read (a misspelt ?chnage=emergency was decided, and recorded, as a
// normal change) or one given twice (?service=api&service=db was decided
// for api alone), naming it and the ones accepted, before deciding.
func TestGateParams(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	checkParams(t, srv.URL+"/api/v1/gate", []paramCase{
		{"?service=api&chnage=emergency", 400, `unknown parameter "chnage" (want service, change, actor, reason)`},
		{"?service=api&reasn=hotfix", 400, `unknown parameter "reasn" (want service, change, actor, reason)`},
		{"?service=api&service=db", 400, `parameter "service" given 2 times: give it once`},
		{"?service=api&change=normal&change=emergency", 400, `parameter "change" given 2 times: give it once`},
		{"?service=api&" + strings.Repeat("x", 5000) + "=1", 400, `unknown parameter "` + strings.Repeat("x", 61) + `…" (want service, change, actor, reason)`},
	})
	// The parameters it reads still reach the gate (no SLO here: 404).
	code, env := getJSON(t, srv.URL+"/api/v1/gate?service=api&change=normal&actor=ci&reason=x", nil, nil)
	require.Equal(t, http.StatusNotFound, code, env.Error)
}

// TestAuditParams: GET /api/v1/audit answers 400 for a parameter it does
// not read (a misspelt ?user=alice answered every actor's entries) or one
// given twice (?actor=alice&actor=bob answered alice's alone), naming it
// and the ones accepted.
func TestAuditParams(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	checkParams(t, srv.URL+"/api/v1/audit", []paramCase{
		{"?actor=alice&since=2026-12-01T00:00:00Z&before=10&limit=5", 200, ""},
		{"?user=alice", 400, `unknown parameter "user" (want actor, since, before, limit)`},
		{"?actor=alice&actor=bob", 400, `parameter "actor" given 2 times: give it once`},
		{"?limit=5&limit=1000", 400, `parameter "limit" given 2 times: give it once`},
		{"?" + strings.Repeat("x", 5000) + "=1", 400, `unknown parameter "` + strings.Repeat("x", 61) + `…" (want actor, since, before, limit)`},
	})
}

// TestNoiseReportParams: GET /api/v1/reports/noise answers 400 for a
// parameter it does not read (a misspelt ?sinc=7d answered the default 30
// days) or one given twice, naming it and the ones accepted.
func TestNoiseReportParams(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	checkParams(t, srv.URL+"/api/v1/reports/noise", []paramCase{
		{"?since=7d&until=1d&short=5m&limit=3", 200, ""},
		{"?sinc=7d", 400, `unknown parameter "sinc" (want since, until, short, limit)`},
		{"?since=7d&since=30d", 400, `parameter "since" given 2 times: give it once`},
	})
}

// TestListParamsRefused: the on-call and runbook run lists answer 400 for
// a parameter they do not read (a misspelt ?servce=api answered every
// schedule's on-call, ?incidnet= every incident's runs) or one given
// twice, naming it and the ones accepted.
func TestListParamsRefused(t *testing.T) {
	_, srv := runApp(t, "sqlite", primarySchedule, nil)
	checkParams(t, srv.URL, []paramCase{
		{"/api/v1/oncall?days=1", 200, ""},
		{"/api/v1/oncall?servce=api", 400, `unknown parameter "servce" (want service, schedule, at, days)`},
		{"/api/v1/oncall?service=api&service=db", 400, `parameter "service" given 2 times: give it once`},
		{"/api/v1/oncall/schedules/primary/shifts?days=1", 200, ""},
		{"/api/v1/oncall/schedules/primary/shifts?form=2026-12-01T00:00:00Z", 400, `unknown parameter "form" (want from, to, days)`},
		{"/api/v1/oncall/schedules/primary/overrides?days=1&days=2", 400, `parameter "days" given 2 times: give it once`},
		{"/api/v1/runbooks/runs?limit=5", 200, ""},
		{"/api/v1/runbooks/runs?incidnet=INC-2026-0001", 400, `unknown parameter "incidnet" (want incident, runbook, status, limit)`},
		{"/api/v1/runbooks/runs?incident=a&incident=b", 400, `parameter "incident" given 2 times: give it once`},
		{"/api/v1/runbooks/coverage?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", 200, ""},
		{"/api/v1/runbooks/coverage?form=2026-01-01T00:00:00Z", 400, `unknown parameter "form" (want from, to)`},
		{"/api/v1/runbooks/coverage?from=2026-12-07T00:00:00Z&to=2026-01-01T00:00:00Z", 400, `to 2026-01-01T00:00:00Z must be after from 2026-12-07T00:00:00Z`},
		{"/api/v1/chaos/runs?limit=5", 200, ""},
		{"/api/v1/chaos/runs?limt=5", 400, `unknown parameter "limt" (want limit)`},
		{"/api/v1/chaos/runs?limit=5&limit=1", 400, `parameter "limit" given 2 times: give it once`},
		{"/api/v1/chaos/runs/1/report?fromat=markdown", 400, `unknown parameter "fromat" (want format)`},
	})
}

// primarySchedule is sred.yml with one schedule, primary, of one user.
const primarySchedule = `oncall:
  users: [{name: alice, email: alice@example.com}]
  schedules:
    - name: primary
      time_zone: UTC
      layers: [{name: weekly, rotation: weekly, start: "2026-01-05T09:00", users: [alice]}]
`

// TestOverrideAndMatcherCut: an override's unknown user and a maintenance
// window's matcher that does not parse are named in the 400 cut at 64
// bytes ending with "…" (the regexp's error too), never whole.
func TestOverrideAndMatcherCut(t *testing.T) {
	_, srv := runApp(t, "sqlite", primarySchedule, nil)
	long := strings.Repeat("n", 5000)
	cut := `"` + strings.Repeat("n", 61) + `…"`
	for _, tc := range []struct {
		method, path, body, want string
	}{
		{"PUT", "/api/v1/oncall/schedules/primary/overrides", `{"overrides":[{"user":"` + long + `","start":"2026-12-08T00:00:00Z","end":"2026-12-09T00:00:00Z"}]}`,
			"override 0: override: unknown user " + cut},
		{"POST", "/api/v1/escalation/maintenance", `{"name":"m","matchers":["a=~` + long + `("],"start":"2026-12-08T00:00:00Z","end":"2026-12-09T00:00:00Z"}`,
			`maintenance window "m": matcher "a=~` + strings.Repeat("n", 58) + `…": error parsing regexp: missing closing ): `},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		var env apiEnvelope
		require.NoError(t, json.Unmarshal(b, &env), "%.200s", b)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%.200s", env.Error)
		require.True(t, strings.HasPrefix(env.Error, tc.want), "want %s at the start, got %.300s", tc.want, env.Error)
		require.NotContains(t, env.Error, strings.Repeat("n", 100), "the value comes back whole")
	}
}
