package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestCreateIncident opens incidents by hand on both backends: a valid body
// creates a triggered incident with its description on the timeline and
// publishes incident.created; bad bodies and viewers are refused and store
// nothing.
func TestCreateIncident(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		bus := events.NewBus(8, nil)
		evs, cancel := bus.Subscribe()
		defer cancel()
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		var role atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rl := auth.Role(role.Load()); rl != auth.RoleNone {
				r = r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "alice", Role: rl}))
			}
			mux.ServeHTTP(w, r)
		}))
		defer srv.Close()

		for _, c := range []struct{ name, body, err string }{
			{"empty", "", "missing body"},
			{"malformed", "{", "invalid JSON body"},
			{"unknown field", `{"title":"x","service":"api","severity":"high","labels":{}}`, `unknown field "labels"`},
			{"no title", `{"service":"api","severity":"high"}`, `"title" must not be empty`},
			{"no service", `{"title":"x","severity":"high"}`, `"service" must not be empty`},
			{"bad severity", `{"title":"x","service":"api","severity":"urgent"}`, `unknown severity "urgent"`},
			{"newline service", `{"title":"x","service":"a\nb","severity":"low"}`, `"service" must be one line`},
			{"huge", `{"title":"` + strings.Repeat("x", web.MaxBody) + `","service":"api","severity":"low"}`, "larger than"},
		} {
			code, resp := call(t, "POST", srv.URL+"/api/v1/incidents", c.body)
			want := http.StatusBadRequest
			if c.name == "huge" {
				want = http.StatusRequestEntityTooLarge
			}
			require.Equal(t, want, code, c.name)
			require.Contains(t, resp.Error, c.err, c.name)
		}
		role.Store(int32(auth.RoleViewer))
		code, resp := call(t, "POST", srv.URL+"/api/v1/incidents", `{"title":"x","service":"api","severity":"low"}`)
		require.Equal(t, http.StatusForbidden, code)
		require.Contains(t, resp.Error, "responder role")
		page, err := svc.List(context.Background(), incident.Filter{})
		require.NoError(t, err)
		require.Zero(t, page.Total, "refused requests stored nothing")

		role.Store(int32(auth.RoleResponder))
		code, resp = call(t, "POST", srv.URL+"/api/v1/incidents",
			`{"title":"Checkout slow for EU customers","service":"checkout","severity":"high","description":"Support reports timeouts","actor":"mallory"}`)
		require.Equal(t, http.StatusCreated, code, resp.Error)
		var inc incident.Incident
		b, _ := json.Marshal(resp.Data)
		require.NoError(t, json.Unmarshal(b, &inc))
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Equal(t, incident.SeverityHigh, inc.Severity)
		require.Equal(t, "checkout", inc.Service)
		require.Equal(t, "manual:"+inc.ID, inc.GroupKey)
		require.Equal(t, map[string]string{"service": "checkout", "severity": "high", "source": "manual"}, inc.Labels)
		tl, err := svc.Timeline(context.Background(), inc.ID)
		require.NoError(t, err)
		require.Len(t, tl, 1)
		require.Equal(t, "alice", tl[0].Actor, "the principal is the actor, not the body's actor")
		require.Equal(t, "opened by hand: Support reports timeouts", tl[0].Message)
		select {
		case ev := <-evs:
			require.Equal(t, "incident.created", ev.Type)
			require.Equal(t, inc.ID, ev.IncidentID)
		case <-time.After(60 * time.Second): // a safety net, not a timing
			t.Fatal("no incident.created event")
		}
		// The incident acts like any other.
		_, err = svc.Acknowledge(context.Background(), inc.ID, "alice")
		require.NoError(t, err)
		st, err := svc.Stats(context.Background(), time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, st.Created)
		require.Equal(t, 1, st.Acknowledged)
		require.NotNil(t, st.MTTA)
		require.Nil(t, st.MTTR)
		require.Equal(t, map[incident.Severity]int{incident.SeverityHigh: 1}, st.Open)
	})
}
