package budget_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestRepeatedGateDecisionsStoredOnce: a viewer asking the gate in a loop
// adds one row per minute, not one per request: a decision identical to
// the last one of the same caller, service and change kind within
// DecisionRepeatWindow is counted in that row. A decision that differs
// (another answer, another caller, another change kind, an override) is a
// row of its own, so every change stays visible, on both backends.
func TestRepeatedGateDecisionsStoredOnce(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
		clk := clock.NewManual(start)
		bus := events.NewBus(1000, nil)
		evs, cancel := bus.Subscribe()
		defer cancel()
		s := budget.New(budget.Options{DB: db, Clock: clk, Bus: bus})
		// No Prometheus: the gate answers its on_prometheus_error mode,
		// which the test changes to change the answer.
		update := func(mode string) {
			cfg := budget.DefaultConfig
			cfg.Gate.OnPrometheusError = mode
			cfg.Gate.OverrideTokens = []commoncfg.Secret{token}
			require.NoError(t, s.Update(cfg, loadSpecs(t), nil, budget.ErrNoPrometheus))
		}
		update(budget.FailDeny)
		mux := http.NewServeMux()
		s.Register(mux)
		// The principal as the auth middleware sets it; X-Test-User names it.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := auth.Principal{Name: r.Header.Get("X-Test-User"), Role: auth.RoleViewer}
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
		}))
		t.Cleanup(srv.Close)
		gate := func(user, query string, hdr ...string) budget.Decision {
			t.Helper()
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/gate?service=web"+query, nil)
			require.NoError(t, err)
			req.Header.Set("X-Test-User", user)
			if len(hdr) == 2 {
				req.Header.Set(hdr[0], hdr[1])
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var env envelope
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			require.Equal(t, http.StatusOK, resp.StatusCode, env.Error)
			var d budget.Decision
			require.NoError(t, json.Unmarshal(env.Data, &d))
			return d
		}

		first := gate("viewer", "")
		require.Equal(t, "deny", first.Answer)
		for range 99 {
			clk.Advance(100 * time.Millisecond)
			require.Equal(t, first.ID, gate("viewer", "").ID, "an identical decision within a minute is the same row")
		}
		other := gate("ci", "")                        // another caller
		critical := gate("viewer", "&change=critical") // another change kind
		override := gate("viewer", "&reason=hotfix", budget.OverrideHeader, token)
		require.True(t, override.Override)
		afterOverride := gate("viewer", "") // differs from the last one: the override
		update(budget.FailAllow)
		allowed := gate("viewer", "") // the answer changed
		require.Equal(t, "allow", allowed.Answer)
		update(budget.FailDeny)
		deniedAgain := gate("viewer", "") // and changed back
		require.Equal(t, deniedAgain.ID, gate("viewer", "").ID)
		clk.Advance(budget.DecisionRepeatWindow)
		nextMinute := gate("viewer", "")
		ids := map[int64]bool{}
		for _, d := range []budget.Decision{first, other, critical, override, afterOverride, allowed, deniedAgain, nextMinute} {
			require.False(t, ids[d.ID], "decision %d recorded apart", d.ID)
			ids[d.ID] = true
		}

		recs, err := budget.ListDecisions(t.Context(), db, "web", 100)
		require.NoError(t, err)
		require.Len(t, recs, 8, "one row per distinct decision, not one per request")
		byID := map[int64]budget.GateRecord{}
		for _, r := range recs {
			byID[r.ID] = r
		}
		r := byID[first.ID]
		require.Equal(t, 99, r.Repeats)
		require.Equal(t, start, r.Time)
		require.NotNil(t, r.LastTime)
		require.Equal(t, start.Add(9900*time.Millisecond), *r.LastTime)
		require.Equal(t, "viewer", r.Actor)
		require.False(t, r.Allowed)
		require.Equal(t, 1, byID[deniedAgain.ID].Repeats)
		require.Zero(t, byID[other.ID].Repeats)
		require.Nil(t, byID[other.ID].LastTime)
		require.True(t, byID[allowed.ID].Allowed)
		require.True(t, byID[override.ID].Override)
		// The event stream announces the recorded decisions, not the repeats.
		var announced int
		for more := true; more; {
			select {
			case ev := <-evs:
				if ev.Type == "budget.gate_decision" {
					announced++
				}
			default:
				more = false
			}
		}
		require.Equal(t, len(recs), announced, "one event per recorded decision")
	})
}

// TestGateAnswerChangesStayRows: an answer that flips back and forth
// within DecisionRepeatWindow (Prometheus failing now and then, the gate
// failing closed) is a row per change, however many: the bound on a
// caller's rows (MaxSubjectDecisions) folds decisions that differ from the
// last one by their subject only, never a change of answer into an older
// row, so the newest row is always the answer last given, on both
// backends.
func TestGateAnswerChangesStayRows(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		clk := clock.NewManual(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC))
		s := budget.New(budget.Options{DB: db, Clock: clk})
		mux := http.NewServeMux()
		s.Register(mux)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := auth.Principal{Name: "ci", Role: auth.RoleViewer}
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
		}))
		t.Cleanup(srv.Close)
		gate := func(mode string) budget.Decision {
			t.Helper()
			cfg := budget.DefaultConfig
			cfg.Gate.OnPrometheusError = mode
			require.NoError(t, s.Update(cfg, loadSpecs(t), nil, budget.ErrNoPrometheus))
			resp, err := srv.Client().Get(srv.URL + "/api/v1/gate?service=web")
			require.NoError(t, err)
			defer resp.Body.Close()
			var env envelope
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			require.Equal(t, http.StatusOK, resp.StatusCode, env.Error)
			var d budget.Decision
			require.NoError(t, json.Unmarshal(env.Data, &d))
			return d
		}

		const changes = 3 * budget.MaxSubjectDecisions
		ids := map[int64]bool{}
		for i := range changes {
			clk.Advance(100 * time.Millisecond)
			mode := []string{budget.FailDeny, budget.FailAllow}[i%2]
			d := gate(mode)
			require.False(t, ids[d.ID], "change %d (%s) counted in row %d of an earlier answer", i, d.Answer, d.ID)
			ids[d.ID] = true
			recs, err := budget.ListDecisions(t.Context(), db, "web", 1)
			require.NoError(t, err)
			require.Equal(t, d.ID, recs[0].ID, "the newest row is the answer last given")
			require.Equal(t, mode == budget.FailAllow, recs[0].Allowed)
		}
		recs, err := budget.ListDecisions(t.Context(), db, "web", 1000)
		require.NoError(t, err)
		require.Len(t, recs, changes, "one row per change of answer")
	})
}
