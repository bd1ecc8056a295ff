package chaos

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestRunRefusesInput: POST /api/v1/chaos/experiments/{name}/run takes
// neither parameters nor a body (the experiment file is the run). One that
// asked for less (?dry_run=true, {"dryRun": true}, {"duration": "10s"})
// was ignored, and the experiment's faults injected in full. Each is a 400
// naming what was given and pointing at the plan; no run starts and no
// fault is injected. Over a real listener, as an admin.
func TestRunRefusesInput(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		if err := h.s.ApplyConfig(testConfig(), []*Experiment{load(t, testExp)}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.s.Routes(mux)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "ada", Role: auth.RoleAdmin})))
		}))
		defer srv.Close()
		post := func(query, body string) (int, string) {
			t.Helper()
			resp, err := http.Post(srv.URL+"/api/v1/chaos/experiments/api-latency/run"+query, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var env struct {
				Error string  `json:"error"`
				Data  RunInfo `json:"data"`
			}
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("answer: %v: %s", err, b)
			}
			if resp.StatusCode == http.StatusAccepted {
				return resp.StatusCode, env.Data.ID
			}
			return resp.StatusCode, env.Error
		}
		const plan = ": the experiment file defines the run; GET /api/v1/chaos/experiments/api-latency/plan shows what it would do"
		for _, tc := range []struct{ query, body, err string }{
			{"?dry_run=true", "", `unknown parameter "dry_run" (want none)` + plan},
			{"", `{"dryRun": true}`, "the route takes no body, got 16 bytes" + plan},
			{"", `{"duration": "10s"}`, "the route takes no body, got 19 bytes" + plan},
		} {
			if code, msg := post(tc.query, tc.body); code != http.StatusBadRequest || msg != tc.err {
				t.Errorf("run%s %s: %d %q, want 400 %q", tc.query, tc.body, code, msg, tc.err)
			}
		}
		runs, err := h.s.List(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 0 {
			t.Fatalf("refused requests started %d runs", len(runs))
		}
		h.d.mu.Lock()
		injected := len(h.d.log)
		h.d.mu.Unlock()
		if injected != 0 {
			t.Fatalf("refused requests reached the driver: %q", h.d.log)
		}

		// Without either (white space is no body), the run starts.
		code, id := post("", " \n")
		if code != http.StatusAccepted {
			t.Fatalf("run: %d %q, want 202", code, id)
		}
		h.blocked(t)
		if err := h.s.Stop(t.Context(), id, "ada"); err != nil {
			t.Fatal(err)
		}
		h.drain(t, 5*time.Second)
	})
}
