package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
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
