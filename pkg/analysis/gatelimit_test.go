package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestGateRequestLimit: each gate request queries Prometheus, and any
// viewer may ask GET /api/v1/gate or the Flagger pre-rollout hook at will;
// a client and principal may send slos.gate.request_limit.burst of them in
// a row, the two endpoints together, then one per every: beyond, 429 with
// Retry-After, nothing queried and nothing recorded. Another principal has
// its own count; a reload with the same limit keeps the counts, one with
// another starts them over. The real budget service on both backends, its
// Prometheus a server that counts the queries and fails them (the gate
// answers its fail mode).
func TestGateRequestLimit(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{budget.Migrations}, func(t *testing.T, db *store.DB) {
		var queries atomic.Int64
		promSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			queries.Add(1)
			http.Error(w, "unavailable for the test", http.StatusServiceUnavailable)
		}))
		defer promSrv.Close()
		prom, err := budget.NewProm(promSrv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		f := newGateFixture(t, db, prom, "")
		clk, srv := f.clk, f.srv
		limit := func(l budget.RequestLimit) {
			t.Helper()
			cfg := budget.DefaultConfig
			cfg.Gate.RequestLimit = l
			f.update(t, cfg)
		}
		limit(budget.RequestLimit{Burst: 4, Every: model.Duration(2 * time.Second)})

		type answer struct {
			code       int
			retryAfter string
			err        string
		}
		ask := func(user, endpoint string) answer {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/gate?service=api", nil)
			if endpoint == "hook" {
				b, _ := json.Marshal(map[string]any{"name": "podinfo", "namespace": "shop", "phase": "Progressing",
					"metadata": map[string]string{"service": "api"}})
				req, _ = http.NewRequest(http.MethodPost, srv.URL+FlaggerPreRollout, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("X-Test-User", user)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				ErrorType string `json:"errorType"`
				Error     string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			a := answer{resp.StatusCode, resp.Header.Get("Retry-After"), env.Error}
			if env.ErrorType == "refused" {
				// The hook's refusal: the gate's decision, its reason
				// (Prometheus' random address) as the error.
				if env.Error == "" {
					t.Errorf("%s %s: refused without a reason", user, endpoint)
				}
				a.err = "refused"
			}
			return a
		}
		// Answered with the fail mode (deny): GET 200, the hook 403.
		served := map[string]answer{"get": {code: http.StatusOK}, "hook": {code: http.StatusForbidden, err: "refused"}}
		limited := func(secs int) answer {
			return answer{http.StatusTooManyRequests, fmt.Sprint(secs),
				fmt.Sprintf("too many deploy gate requests from this client: retry in %ds (slos.gate.request_limit)", secs)}
		}
		expect := func(user, endpoint string, want answer) {
			t.Helper()
			before := queries.Load()
			if got := ask(user, endpoint); got != want {
				t.Fatalf("%s %s: %+v, want %+v", user, endpoint, got, want)
			}
			if q := queries.Load() - before; (want.code == http.StatusTooManyRequests) != (q == 0) {
				t.Errorf("%s %s answered %d after %d queries", user, endpoint, want.code, q)
			}
		}

		for _, e := range []string{"get", "hook", "get", "hook"} {
			expect("viewer", e, served[e])
		}
		expect("viewer", "get", limited(2))
		expect("viewer", "hook", limited(2))
		expect("ci", "get", served["get"]) // another principal
		clk.Advance(time.Second)
		expect("viewer", "hook", limited(1))
		clk.Advance(time.Second)
		expect("viewer", "hook", served["hook"]) // one more every 2s
		expect("viewer", "get", limited(2))
		limit(budget.RequestLimit{Burst: 4, Every: model.Duration(2 * time.Second)})
		expect("viewer", "get", limited(2)) // the same limit: the counts hold
		limit(budget.RequestLimit{Burst: 1, Every: model.Duration(time.Minute)})
		expect("viewer", "get", served["get"]) // another: they start over
		expect("viewer", "get", limited(60))

		// The refused requests recorded nothing: the rows count the 7
		// answered.
		recs, err := budget.ListDecisions(t.Context(), db, "api", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			n += 1 + r.Repeats
		}
		if n != 7 {
			t.Errorf("%d decisions recorded (rows and repeats), want the 7 answered: %+v", n, recs)
		}
	})
}
