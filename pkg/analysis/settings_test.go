package analysis

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// postEngine posts body to u as the engines do (Content-Type:
// application/json) and returns the status and the answer's error.
func postEngine(t *testing.T, u, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
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

// TestRunRefusesURLParameters: POST /api/v1/analysis/{name}/run (Argo
// Rollouts' web provider with method POST) reads the run from its JSON
// body. A parameter in its URL, as GET takes them (?service=payments in
// the AnalysisTemplate's url), was ignored: the spec's service was judged
// and the engine promoted on its verdict. It is a 400 naming the
// parameter, and Prometheus is not asked.
func TestRunRefusesURLParameters(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	body := `{"canary": {"app": "api"}, "baseline": {"app": "api-primary"}}`
	for _, tc := range []struct{ query, err string }{
		{"service=payments", `unknown parameter "service" (want none): POST takes service, canary, baseline and time in its JSON body`},
		{"canary=app%3Dother", `unknown parameter "canary" (want none): POST takes service, canary, baseline and time in its JSON body`},
		{"time=1764936000&time=1764936060", `unknown parameter "time" (want none): POST takes service, canary, baseline and time in its JSON body`},
	} {
		code, msg := postEngine(t, srv.URL+"/api/v1/analysis/api/run?"+tc.query, body)
		if code != http.StatusBadRequest || msg != tc.err {
			t.Errorf("?%s: %d %q, want 400 %q", tc.query, code, msg, tc.err)
		}
	}
	if len(q.queries) != 0 {
		t.Fatalf("refused runs queried Prometheus: %q", q.queries)
	}
	if code, msg := postEngine(t, srv.URL+"/api/v1/analysis/api/run", body); code != http.StatusOK {
		t.Fatalf("the same body without parameters: %d %q, want 200", code, msg)
	}
}

// TestListRefusesParameters: GET /api/v1/analysis and
// /api/v1/analysis/{name} take no parameter. ?name=api was ignored and
// every spec listed; each is a 400 naming the parameter, and the routes
// answer without one.
func TestListRefusesParameters(t *testing.T) {
	srv := newServer(t, NewEvaluator(&recordingQuerier{}, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	for _, path := range []string{"/api/v1/analysis", "/api/v1/analysis/api"} {
		for _, tc := range []struct{ query, err string }{
			{"name=api", `unknown parameter "name" (want none)`},
			{"service=payments&service=db", `unknown parameter "service" (want none)`},
		} {
			resp, err := http.Get(srv.URL + path + "?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var env struct{ Error string }
			err = json.NewDecoder(resp.Body).Decode(&env)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusBadRequest || env.Error != tc.err {
				t.Errorf("%s?%s: %d %q (%v), want 400 %q", path, tc.query, resp.StatusCode, env.Error, err, tc.err)
			}
		}
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d, want 200", path, resp.StatusCode)
		}
	}
}

// TestFlaggerHooksRefuseUnreadSettings: Flagger posts a hook's metadata as
// the Canary writes it, and its URL as written. A misspelt metadata key
// (anaylsis: strict) was ignored and its default taken, the spec named
// after the canary, whose verdict promoted it or rolled it back; so was a
// setting given in the URL (?analysis=strict). Each is a 400 naming the
// key or parameter and the ones read: nothing is queried, and the gate
// records no decision (the real budget service on both backends).
func TestFlaggerHooksRefuseUnreadSettings(t *testing.T) {
	q := &recordingQuerier{}
	runs := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	const (
		misspelt = `flagger webhook: metadata key "anaylsis" is not one sred reads (want analysis, service, canary, baseline, change)`
		inURL    = `flagger webhook: unknown parameter "analysis" (want none): the hook reads its settings from the webhook's metadata`
	)
	good := `{"name": "podinfo", "namespace": "test", "phase": "Progressing", "metadata": {"analysis": "api", "canary": "app=api", "baseline": "app=api-primary"}}`
	bad := strings.Replace(good, `"analysis": "api"`, `"anaylsis": "api"`, 1)
	for _, hook := range []string{FlaggerConfirmPromotion, FlaggerRollback} {
		if code, msg := postEngine(t, runs.URL+hook, bad); code != http.StatusBadRequest || msg != misspelt {
			t.Errorf("%s, metadata.anaylsis: %d %q, want 400 %q", hook, code, msg, misspelt)
		}
		if code, msg := postEngine(t, runs.URL+hook+"?analysis=api", good); code != http.StatusBadRequest || msg != inURL {
			t.Errorf("%s?analysis=api: %d %q, want 400 %q", hook, code, msg, inURL)
		}
	}
	if len(q.queries) != 0 {
		t.Fatalf("refused hooks queried Prometheus: %q", q.queries)
	}
	// The five keys are read; a Canary may give each hook all of them.
	all := `{"name": "podinfo", "namespace": "test", "metadata": {"analysis": "api", "service": "api", "canary": "app=api", "baseline": "app=api-primary", "change": "normal"}}`
	for _, hook := range []string{FlaggerConfirmPromotion, FlaggerRollback} {
		if code, msg := postEngine(t, runs.URL+hook, all); code == http.StatusBadRequest {
			t.Errorf("%s with every key: 400 %q", hook, msg)
		}
	}
	if len(q.queries) == 0 {
		t.Fatal("the hooks with every key ran no analysis")
	}

	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		srv := newGateFixture(t, db, nil, "flagger-prod").srv
		wantMsg := strings.Replace(misspelt, "anaylsis", "servce", 1)
		if code, msg := postEngine(t, srv.URL+FlaggerPreRollout, `{"name": "podinfo", "namespace": "test", "metadata": {"servce": "api"}}`); code != http.StatusBadRequest || msg != wantMsg {
			t.Errorf("pre-rollout, metadata.servce: %d %q, want 400 %q", code, msg, wantMsg)
		}
		wantMsg = strings.Replace(inURL, `"analysis"`, `"service"`, 1)
		if code, msg := postEngine(t, srv.URL+FlaggerPreRollout+"?service=api", `{"name": "podinfo", "namespace": "test"}`); code != http.StatusBadRequest || msg != wantMsg {
			t.Errorf("pre-rollout?service=api: %d %q, want 400 %q", code, msg, wantMsg)
		}
		for _, svc := range []string{"api", "podinfo"} {
			recs, err := budget.ListDecisions(t.Context(), db, svc, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 0 {
				t.Errorf("%d decisions recorded for %s, want none: %+v", len(recs), svc, recs)
			}
		}
		// The same hook, spelt right, is answered and recorded.
		if code, msg := postEngine(t, srv.URL+FlaggerPreRollout, `{"name": "podinfo", "namespace": "test", "metadata": {"service": "api"}}`); code != http.StatusForbidden {
			t.Fatalf("pre-rollout: %d %q, want 403 (no Prometheus: the gate fails closed)", code, msg)
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

// TestRunQueryUnreadable: Argo Rollouts' web provider with method GET
// sends its url as written, unescaped. A pair Go cannot read (a bad %
// escape, pod=50%; a ';') was dropped from the query, and the run refused
// for want of the canary labels the URL gave ("canary labels are
// required"). It is a 400 naming the query and what is wrong in it;
// Prometheus is not asked.
func TestRunQueryUnreadable(t *testing.T) {
	q := &recordingQuerier{}
	srv := newServer(t, NewEvaluator(q, nil), nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	for _, tc := range []struct{ query, err string }{
		{"canary=job=api,pod=50%&baseline=job=api", `query "canary=job=api,pod=50%&baseline=job=api": invalid URL escape "%" (escape '%' as %25 and ';' as %3B)`},
		{"canary=job=api;pod=x&baseline=job=api", `query "canary=job=api;pod=x&baseline=job=api": invalid semicolon separator in query (escape '%' as %25 and ';' as %3B)`},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/analysis/api/run?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var env struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("answer: %v: %s", err, b)
		}
		if resp.StatusCode != http.StatusBadRequest || env.Error != tc.err {
			t.Errorf("?%s: %d %q, want 400 %q", tc.query, resp.StatusCode, env.Error, tc.err)
		}
	}
	if len(q.queries) != 0 {
		t.Fatalf("refused runs queried Prometheus: %q", q.queries)
	}
}
