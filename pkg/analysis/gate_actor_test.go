package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// gateFixture is the real budget service on a backend, with the SLO of
// service api (99%) and a manual clock, behind a server of its gate API and
// the analysis API.
type gateFixture struct {
	clk  *clock.Manual
	gate *budget.Service
	srv  *httptest.Server
	sp   []*slo.Spec
	prom *budget.Prom
}

// newGateFixture starts a gateFixture on db at 2026-03-01 12:00 UTC, its
// Prometheus prom (nil: none, the gate's fail mode answers). The principal
// of a request is the viewer named by its X-Test-User header, as the
// authentication middleware would set it, or else the viewer user ("": no
// principal).
func newGateFixture(t *testing.T, db *store.DB, prom *budget.Prom, user string) *gateFixture {
	t.Helper()
	f := &gateFixture{clk: clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), prom: prom}
	f.gate = budget.New(budget.Options{DB: db, Clock: f.clk, Registerer: prometheus.NewRegistry()})
	sp, err := slo.Parse([]byte(fmt.Sprintf(sloSpec, "api", "99")), "api.yml")
	if err != nil {
		t.Fatal(err)
	}
	f.sp = sp
	f.update(t, budget.DefaultConfig)
	mux := http.NewServeMux()
	f.gate.Register(mux)
	NewService(Options{Gate: f.gate, Clock: f.clk}).Register(mux)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := user
		if h := r.Header.Get("X-Test-User"); h != "" {
			u = h
		}
		if u != "" {
			r = r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: u, Role: auth.RoleViewer}))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// update applies cfg to the gate, as a reload does.
func (f *gateFixture) update(t *testing.T, cfg budget.Config) {
	t.Helper()
	if err := f.gate.Update(cfg, f.sp, f.prom, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPreRolloutRecordsPrincipal: the Flagger pre-rollout hook records its
// gate decision with the authenticated principal as the actor, not a name
// made of the body's canary (which any caller writes); the canary is the
// decision's subject, answered and recorded at the end of its reason.
// Without a principal the actor is "flagger". Names longer than
// Kubernetes allows are refused. The real budget service on both backends,
// without Prometheus (its fail mode answers, recorded as any decision).
func TestPreRolloutRecordsPrincipal(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		srv := newGateFixture(t, db, nil, "").srv

		post := func(user, name, namespace string) (int, FlaggerAnswer, string) {
			t.Helper()
			b, _ := json.Marshal(map[string]any{"name": name, "namespace": namespace, "phase": "Progressing",
				"metadata": map[string]string{"service": "api"}})
			req, _ := http.NewRequest("POST", srv.URL+FlaggerPreRollout, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if user != "" {
				req.Header.Set("X-Test-User", user)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var env struct {
				Data  FlaggerAnswer `json:"data"`
				Error string        `json:"error"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("answer: %v: %s", err, body)
			}
			return resp.StatusCode, env.Data, env.Error
		}

		for _, tc := range []struct {
			name, user, canary, namespace string
			code                          int
			actor, err                    string
		}{
			{name: "principal", user: "flagger-prod", canary: "podinfo", namespace: "test", code: http.StatusForbidden, actor: "flagger-prod"},
			{name: "a body naming someone else", user: "flagger-prod", canary: "admin", namespace: "kube-system", code: http.StatusForbidden, actor: "flagger-prod"},
			{name: "no principal", canary: "podinfo", namespace: "test", code: http.StatusForbidden, actor: "flagger"},
			{name: "name too long", user: "flagger-prod", canary: strings.Repeat("n", 254), namespace: "test", code: http.StatusBadRequest,
				err: "flagger webhook: name and namespace of the canary are Kubernetes names: at most 253 and 63 bytes"},
			{name: "namespace too long", user: "flagger-prod", canary: "podinfo", namespace: strings.Repeat("n", 64), code: http.StatusBadRequest,
				err: "flagger webhook: name and namespace of the canary are Kubernetes names: at most 253 and 63 bytes"},
			// A name that would make the recorded reason say more.
			{name: "name forging the record", user: "flagger-prod", canary: "podinfo) allowed by admin (for flagger canary test/x", namespace: "test", code: http.StatusBadRequest,
				err: `flagger webhook: name "podinfo) allowed by admin (for flagger canary test/x" of the canary is not a Kubernetes name: `},
			{name: "namespace with a newline", user: "flagger-prod", canary: "podinfo", namespace: "test\nadmin", code: http.StatusBadRequest,
				err: `flagger webhook: namespace "test\nadmin" of the canary is not a Kubernetes namespace: `},
		} {
			code, ans, msg := post(tc.user, tc.canary, tc.namespace)
			if code != tc.code {
				t.Fatalf("%s: code %d, want %d (%s)", tc.name, code, tc.code, msg)
			}
			if tc.err != "" {
				if !strings.HasPrefix(msg, tc.err) {
					t.Errorf("%s: error %q, want it to start with %q", tc.name, msg, tc.err)
				}
				continue
			}
			subject := "flagger canary " + tc.namespace + "/" + tc.canary
			if ans.Decision == nil || ans.Decision.Actor != tc.actor || ans.Decision.Subject != subject {
				t.Errorf("%s: decision %+v, want actor %q, subject %q", tc.name, ans.Decision, tc.actor, subject)
			}
			recs, err := budget.ListDecisions(t.Context(), db, "api", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Actor != tc.actor || !strings.HasSuffix(recs[0].Reason, " (for "+subject+")") {
				t.Errorf("%s: recorded %+v, want actor %q and the reason ending with the subject %q", tc.name, recs, tc.actor, subject)
			}
		}
		recs, err := budget.ListDecisions(t.Context(), db, "api", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 {
			t.Errorf("%d decisions recorded, want 3 (refused requests record none)", len(recs))
		}
	})
}

// TestPreRolloutSubjectsBounded: a caller varying the canary's name (any
// viewer may call the hook) adds at most budget.MaxSubjectDecisions rows a
// minute, each naming who asked for which canary; the decisions beyond are
// counted in one row for the other subjects, while every answer still
// names its own canary. Another caller, and the next minute, have rows of
// their own. The real budget service on both backends.
func TestPreRolloutSubjectsBounded(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		f := newGateFixture(t, db, nil, "")
		clk, srv := f.clk, f.srv
		post := func(user, canary string) {
			t.Helper()
			b, _ := json.Marshal(map[string]any{"name": canary, "namespace": "test", "phase": "Progressing",
				"metadata": map[string]string{"service": "api"}})
			req, _ := http.NewRequest("POST", srv.URL+FlaggerPreRollout, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Test-User", user)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Data FlaggerAnswer `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if want := "flagger canary test/" + canary; resp.StatusCode != http.StatusForbidden || env.Data.Decision == nil || env.Data.Decision.Subject != want {
				t.Fatalf("%s for %s: %d %+v, want 403 naming %s", user, canary, resp.StatusCode, env.Data.Decision, want)
			}
		}
		rows := func() []budget.GateRecord {
			t.Helper()
			recs, err := budget.ListDecisions(t.Context(), db, "api", 1000)
			if err != nil {
				t.Fatal(err)
			}
			return recs
		}

		const requests = 100
		for i := range requests {
			clk.Advance(100 * time.Millisecond)
			post("viewer", fmt.Sprintf("c%d", i))
		}
		recs := rows()
		if len(recs) != budget.MaxSubjectDecisions+1 {
			t.Fatalf("%d rows for %d canaries within a minute, want %d", len(recs), requests, budget.MaxSubjectDecisions+1)
		}
		others, named := recs[0], map[string]bool{}
		if !strings.HasSuffix(others.Reason, " (for "+budget.OtherSubjects+")") || others.Repeats != requests-budget.MaxSubjectDecisions-1 {
			t.Errorf("latest row %+v, want the one of the other subjects counting %d repeats", others, requests-budget.MaxSubjectDecisions-1)
		}
		for _, r := range recs[1:] {
			if r.Actor != "viewer" || r.Repeats != 0 {
				t.Errorf("row %+v, want viewer's, no repeats", r)
			}
			named[r.Reason[strings.LastIndex(r.Reason, " (for "):]] = true
		}
		for i := range budget.MaxSubjectDecisions {
			if s := fmt.Sprintf(" (for flagger canary test/c%d)", i); !named[s] {
				t.Errorf("no row ends with %q: %v", s, named)
			}
		}

		// Another caller has rows of its own; so has the next minute.
		post("flagger-prod", "podinfo")
		clk.Advance(budget.DecisionRepeatWindow)
		post("viewer", "c1000")
		recs = rows()
		if len(recs) != budget.MaxSubjectDecisions+3 || recs[1].Actor != "flagger-prod" ||
			!strings.HasSuffix(recs[0].Reason, " (for flagger canary test/c1000)") {
			t.Errorf("rows after another caller and the next minute: %+v", recs[:3])
		}
	})
}

// TestPreRolloutCanariesInTurn: a Flagger checking two canaries of one
// service in turn (A, B, A, B...) adds a row per canary and answer, not
// one per request: a decision is counted in the latest row of its subject
// within the minute when it is the same, whatever the caller asked for
// another canary in between. A change of answer for a canary is a row of
// its own, and so is the change back (the latest row of the canary is the
// other answer). The real budget service on both backends, without
// Prometheus: its fail mode answers, and changes with it.
func TestPreRolloutCanariesInTurn(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		f := newGateFixture(t, db, nil, "flagger-prod")
		clk, srv := f.clk, f.srv
		failMode := func(mode string) {
			t.Helper()
			cfg := budget.DefaultConfig
			cfg.Gate.OnPrometheusError = mode
			f.update(t, cfg)
		}
		failMode(budget.FailDeny)
		post := func(canary string, code int) int64 {
			t.Helper()
			clk.Advance(100 * time.Millisecond)
			b, _ := json.Marshal(map[string]any{"name": canary, "namespace": "shop", "phase": "Progressing",
				"metadata": map[string]string{"service": "api"}})
			req, _ := http.NewRequest("POST", srv.URL+FlaggerPreRollout, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Data FlaggerAnswer `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != code || env.Data.Decision == nil {
				t.Fatalf("%s: %d %+v, want %d", canary, resp.StatusCode, env.Data.Decision, code)
			}
			return env.Data.Decision.ID
		}

		// In turn, denied: one row per canary.
		a, b := post("a", http.StatusForbidden), post("b", http.StatusForbidden)
		for range 19 {
			if id := post("a", http.StatusForbidden); id != a {
				t.Fatalf("canary a counted in row %d, want its row %d", id, a)
			}
			if id := post("b", http.StatusForbidden); id != b {
				t.Fatalf("canary b counted in row %d, want its row %d", id, b)
			}
		}
		// Allowed, then denied again: each change a row of its own, and
		// the repeats of each answer counted in its latest row.
		failMode(budget.FailAllow)
		aAllowed, bAllowed := post("a", http.StatusOK), post("b", http.StatusOK)
		failMode(budget.FailDeny)
		aAgain, bAgain := post("a", http.StatusForbidden), post("b", http.StatusForbidden)
		if id := post("a", http.StatusForbidden); id != aAgain {
			t.Errorf("canary a denied again counted in row %d, want %d", id, aAgain)
		}
		ids := map[int64]bool{}
		for _, id := range []int64{a, b, aAllowed, bAllowed, aAgain, bAgain} {
			if ids[id] {
				t.Errorf("row %d recorded twice: %d %d %d %d %d %d", id, a, b, aAllowed, bAllowed, aAgain, bAgain)
			}
			ids[id] = true
		}

		recs, err := budget.ListDecisions(t.Context(), db, "api", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]budget.GateRecord{}
		for _, r := range recs {
			got[r.ID] = r
		}
		if len(recs) != 6 {
			t.Fatalf("%d rows for 2 canaries and 3 answers, want 6: %+v", len(recs), recs)
		}
		for _, w := range []struct {
			id      int64
			canary  string
			allowed bool
			repeats int
		}{{a, "a", false, 19}, {b, "b", false, 19}, {aAllowed, "a", true, 0}, {bAllowed, "b", true, 0}, {aAgain, "a", false, 1}, {bAgain, "b", false, 0}} {
			r, subject := got[w.id], "flagger canary shop/"+w.canary
			if r.Subject != subject || !strings.HasSuffix(r.Reason, " (for "+subject+")") || r.Allowed != w.allowed || r.Repeats != w.repeats {
				t.Errorf("row %d: %+v, want %s, allowed %v, %d repeats", w.id, r, subject, w.allowed, w.repeats)
			}
		}
	})
}

// TestFlaggerHooksRefuseAmbiguousKeys: Flagger's webhook payload is read
// leniently (fields Flagger adds are ignored), but a key given twice
// (encoding/json keeps the last, or merges two metadata maps, where a
// proxy in front of sred may have read the first and let the request
// through for another service) or a key naming a field only without
// regard to case ("Name") is answered 400 naming the key, on every hook,
// and the gate records no decision. A value of the wrong type is named by
// its path, not by a Go type. The real budget service on both backends.
func TestFlaggerHooksRefuseAmbiguousKeys(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		srv := newGateFixture(t, db, nil, "flagger-prod").srv
		post := func(path, body string) (int, string) {
			t.Helper()
			resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var env struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("answer: %v: %s", err, b)
			}
			return resp.StatusCode, env.Error
		}
		for _, tc := range []struct{ body, err string }{
			{`{"name": "podinfo", "namespace": "test", "metadata": {"service": "api"}, "metadata": {"service": "checkout"}}`,
				`flagger webhook: the JSON body: key "metadata" given twice`},
			{`{"name": "podinfo", "namespace": "test", "metadata": {"service": "api", "service": "checkout"}}`,
				`flagger webhook: metadata: key "service" given twice`},
			{`{"name": "podinfo", "namespace": "test", "name": "api", "metadata": {"service": "api"}}`,
				`flagger webhook: the JSON body: key "name" given twice`},
			{`{"Name": "podinfo", "namespace": "test", "metadata": {"service": "api"}}`,
				`flagger webhook: the JSON body: unknown field "Name": the field is "name" (field names are case-sensitive)`},
			{`{"name": "podinfo", "namespace": "test", "metadata": {"service": 1}}`,
				`flagger webhook: metadata.service: want a string, got a number`},
			{`[]`, `flagger webhook: want an object, got a list`},
			{``, `flagger webhook: empty body: want a JSON object`},
		} {
			for _, path := range []string{FlaggerPreRollout, FlaggerConfirmPromotion, FlaggerRollback} {
				code, msg := post(path, tc.body)
				if code != http.StatusBadRequest || msg != tc.err {
					t.Errorf("%s %s: %d %q, want 400 %q", path, tc.body, code, msg, tc.err)
				}
			}
		}
		for _, svc := range []string{"api", "checkout"} {
			recs, err := budget.ListDecisions(t.Context(), db, svc, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 0 {
				t.Errorf("%d decisions recorded for %s, want none: %+v", len(recs), svc, recs)
			}
		}
		// Fields Flagger adds are ignored, as before: the gate answers.
		code, msg := post(FlaggerPreRollout, `{"name": "podinfo", "namespace": "test", "phase": "Progressing", "addedLater": {"x": 1}, "metadata": {"service": "api"}}`)
		if code != http.StatusForbidden {
			t.Fatalf("pre-rollout with an unknown field: %d %q, want 403 (no Prometheus: the gate fails closed)", code, msg)
		}
		recs, err := budget.ListDecisions(t.Context(), db, "api", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 {
			t.Errorf("%d decisions recorded, want 1", len(recs))
		}
	})
}
