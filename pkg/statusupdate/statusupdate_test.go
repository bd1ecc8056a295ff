package statusupdate

import (
	"context"
	"encoding/json"
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
	tu "github.com/rootuip/sre/pkg/testutil"
)

var migrations = [][]store.Migration{incident.Migrations}

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-04-14 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

type env struct {
	svc *incident.Service
	srv *httptest.Server
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	now := at("14:30:00")
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(16, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Now = func() time.Time { return now }
	mux := http.NewServeMux()
	(&Handler{Service: svc, Now: func() time.Time { return now }}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{svc: svc, srv: srv}
}

type envelope[T any] struct {
	Status string `json:"status"`
	Data   T      `json:"data"`
	Error  string `json:"error"`
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
	require.NoError(t, json.Unmarshal(b, out), string(b))
	return resp.StatusCode
}

func TestStatusUpdate(t *testing.T) {
	tu.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		res, err := e.svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{a="b"}`,
			CommonAnnotations: map[string]string{"summary": "API Service Degradation"},
			CommonLabels:      map[string]string{"severity": "critical"},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f", StartsAt: at("14:30:00"),
				Labels: map[string]string{"alertname": "HighErrorRate", "severity": "critical"}}}})
		require.NoError(t, err)
		id := res.Created[0]
		var out envelope[Update]
		require.Equal(t, 200, do(t, "POST", e.srv.URL+"/api/v1/incidents/"+id+"/status-update",
			`{"actor":"alice","impact":"15% of API requests failing","actions":"Investigating root cause, scaling API service",
			  "next_update":"30m","status_page":"https://status.rootuip.com"}`, &out))
		want := "🚨 [CRITICAL] Incident: API Service Degradation\nID: " + id + "\nStatus: triggered\nStarted: 14:30 UTC\n" +
			"Impact: 15% of API requests failing\nActions: Investigating root cause, scaling API service\n" +
			"Next Update: 15:00 UTC\nStatus Page: https://status.rootuip.com\n"
		require.Equal(t, want, out.Data.Text)
		tl, err := e.svc.Timeline(ctx, id)
		require.NoError(t, err)
		last := tl[len(tl)-1]
		require.Equal(t, "status_update", last.Kind)
		require.Equal(t, "alice", last.Actor)
		require.Equal(t, want, last.Message)

		var bad envelope[any]
		for body, msg := range map[string]string{
			`{"next_update":"soon"}`:                         `"next_update" "soon" is neither an RFC 3339 time nor a duration like 30m`,
			`{"impact":"` + strings.Repeat("x", 2001) + `"}`: `"impact" is longer than 2000 bytes`,
			`{"nope":1}`: `invalid JSON body: json: unknown field "nope"`,
			`{"actions":"` + strings.Repeat("x", 70<<10) + `"}`: "request body larger than 65536 bytes",
		} {
			require.Equal(t, 400, do(t, "POST", e.srv.URL+"/api/v1/incidents/"+id+"/status-update", body, &bad), msg)
			require.Equal(t, msg, bad.Error)
		}
		require.Equal(t, 404, do(t, "POST", e.srv.URL+"/api/v1/incidents/INC-1999-0001/status-update", `{}`, &bad))
	})
}
