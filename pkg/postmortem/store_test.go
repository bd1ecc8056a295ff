package postmortem

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

var migrations = [][]store.Migration{incident.Migrations, Migrations}

type env struct {
	svc   *incident.Service
	store *Store
	srv   *httptest.Server
	now   time.Time
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{now: at("14:30:00")}
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(16, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Now = func() time.Time { return e.now }
	e.svc = svc
	e.store = NewStore(db, svc, nil)
	e.store.Now = func() time.Time { return e.now }
	mux := http.NewServeMux()
	(&web.IncidentsAPI{Service: svc}).Register(mux)
	(&API{Store: e.store}).Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// lifecycle plays a known incident through the real incident service:
// alerts from 14:28, created 14:30, acknowledged 14:34:30, alerts resolved
// at 14:55 (auto-resolve at 15:00 when the resolve arrives).
func (e *env) lifecycle(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	alert := func(status string, ends time.Time) incident.NotifiedAlert {
		return incident.NotifiedAlert{Status: status, Fingerprint: "fa", StartsAt: at("14:28:00"), EndsAt: ends,
			Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical"}}
	}
	n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{alertname="HighErrorRate"}`,
		CommonLabels:      map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical"},
		CommonAnnotations: map[string]string{"summary": "API Service Degradation"},
		Alerts:            []incident.NotifiedAlert{alert("firing", time.Time{})}}
	res, err := e.svc.Ingest(ctx, n)
	require.NoError(t, err)
	id := res.Created[0]
	e.now = at("14:34:30")
	_, err = e.svc.Acknowledge(ctx, id, "alice")
	require.NoError(t, err)
	e.now = at("15:00:00")
	n.Status = "resolved"
	n.Alerts = []incident.NotifiedAlert{alert("resolved", at("14:55:00"))}
	_, err = e.svc.Ingest(ctx, n)
	require.NoError(t, err)
	return id
}

func do(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

type envelope[T any] struct {
	Status string `json:"status"`
	Data   T      `json:"data"`
	Error  string `json:"error"`
}

func TestPostmortemLifecycle(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		id := e.lifecycle(t)
		base := e.srv.URL + "/api/v1/incidents/" + id

		// No draft yet.
		var errOut envelope[any]
		require.Equal(t, 404, do(t, "GET", base+"/postmortem", "", &errOut))
		require.Equal(t, id+": no post-mortem draft yet: generate one with POST", errOut.Error)

		// Action items: validation, creation, update.
		for _, tc := range []struct{ body, err string }{
			{`{"owner":"bob"}`, `"title" must not be empty`},
			{`{"title":"x"}`, `"owner" must not be empty: every action item has an owner`},
			{`{"title":"x","owner":"bob","due":"next week"}`, `"due" "next week" is not a date (want YYYY-MM-DD)`},
			{`{"title":"x","owner":"bob","state":"maybe"}`, `"state" "maybe" is not one of open, in_progress, done, cancelled`},
			{`{"title":"x","owner":"bob","colour":"red"}`, `invalid JSON body: json: unknown field "colour"`},
			{`{"title":`, `invalid JSON body: unexpected EOF`},
		} {
			var out envelope[any]
			require.Equal(t, 400, do(t, "POST", base+"/action-items", tc.body, &out), tc.body)
			require.Equal(t, tc.err, out.Error, tc.body)
		}
		e.now = at("15:10:00")
		var item envelope[ActionItem]
		require.Equal(t, 201, do(t, "POST", base+"/action-items",
			`{"title":"Add canary analysis to deploys","owner":"bob","due":"2026-05-01","actor":"alice"}`, &item))
		require.Equal(t, ActionItem{ID: item.Data.ID, IncidentID: id, Title: "Add canary analysis to deploys", Owner: "bob",
			Due: "2026-05-01", State: StateOpen, CreatedBy: "alice", CreatedAt: at("15:10:00"), UpdatedAt: at("15:10:00")}, item.Data)
		require.Equal(t, 200, do(t, "PATCH", base+"/action-items/"+itoa(item.Data.ID), `{"state":"in_progress","actor":"bob"}`, &item))
		require.Equal(t, StateInProgress, item.Data.State)
		require.Equal(t, 404, do(t, "PATCH", base+"/action-items/999", `{"state":"done"}`, &errOut))
		require.Equal(t, "action item not found: #999 of "+id, errOut.Error)
		require.Equal(t, 400, do(t, "PATCH", base+"/action-items/x", `{}`, &errOut))
		require.Equal(t, `action item "x": want a positive number`, errOut.Error)
		require.Equal(t, 404, do(t, "POST", e.srv.URL+"/api/v1/incidents/INC-1999-0001/action-items", `{"title":"x","owner":"y"}`, &errOut))

		// Generate the draft.
		e.now = at("16:00:00")
		var draft envelope[map[string]any]
		require.Equal(t, 200, do(t, "POST", base+"/postmortem", `{"actor":"alice"}`, &draft))
		require.Equal(t, map[string]any{"time_to_detect_seconds": 120.0, "time_to_acknowledge_seconds": 270.0,
			"time_to_recover_seconds": 1620.0, "time_to_resolve_seconds": 1800.0}, draft.Data["durations"])
		md := draft.Data["markdown"].(string)
		require.Contains(t, md, "| Time to recover | first alert started | last alert ended | 27m |")
		require.Contains(t, md, "| Time to resolve | incident created | resolved | 30m |")
		require.Contains(t, md, "| "+itoa(item.Data.ID)+" | Add canary analysis to deploys | bob | 2026-05-01 | in_progress |")
		require.Contains(t, md, "| 2026-04-14 15:10:00 UTC | alice | action item #"+itoa(item.Data.ID)+" added: Add canary analysis to deploys (owner bob) |")

		// Stored: GET answers JSON and raw Markdown.
		stored, err := e.store.Draft(ctx, id)
		require.NoError(t, err)
		require.Equal(t, md, stored.Markdown)
		require.Equal(t, "alice", stored.GeneratedBy)
		require.Equal(t, at("16:00:00"), stored.GeneratedAt)
		resp, err := http.Get(base + "/postmortem?format=markdown")
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "text/markdown; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Equal(t, md, string(raw))

		// Completing the post-mortem goes through the incident service.
		var inc envelope[incident.Incident]
		require.Equal(t, 200, do(t, "POST", base+"/postmortem/complete", `{"actor":"alice"}`, &inc))
		require.Equal(t, incident.StatusPostmortemDone, inc.Data.Status)
		tl, err := e.svc.Timeline(ctx, id)
		require.NoError(t, err)
		kinds := map[string]int{}
		for _, en := range tl {
			kinds[en.Kind]++
		}
		require.Equal(t, 1, kinds["postmortem"])
		require.Equal(t, 2, kinds["action_item"])
	})
}

func TestPostmortemOpenIncidentConflict(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		res, err := e.svc.Ingest(context.Background(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{a="b"}`,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f", StartsAt: at("14:00:00"), Labels: map[string]string{"alertname": "X"}}}})
		require.NoError(t, err)
		id := res.Created[0]
		var out envelope[any]
		require.Equal(t, 409, do(t, "POST", e.srv.URL+"/api/v1/incidents/"+id+"/postmortem", "", &out))
		require.Equal(t, "cannot draft the post-mortem of incident "+id+": it is triggered, only a resolved incident has a post-mortem", out.Error)
		require.Equal(t, 404, do(t, "POST", e.srv.URL+"/api/v1/incidents/INC-1999-0001/postmortem", "", &out))
	})
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
