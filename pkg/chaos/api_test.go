package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

func TestAPI(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		payment := load(t, strings.Replace(strings.Replace(testExp, "service: api", "service: payment", 1), "name: api-latency", "name: pay", 1))
		if err := h.s.ApplyConfig(testConfig(), []*Experiment{load(t, testExp), payment}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.s.Routes(mux)
		as := func(role auth.Role) func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if role != auth.RoleNone {
						r = r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u-" + role.String(), Role: role}))
					}
					next.ServeHTTP(w, r)
				})
			}
		}
		do := func(role auth.Role, method, path, body string) (int, string) {
			rec := httptest.NewRecorder()
			as(role)(mux).ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
			b, _ := io.ReadAll(rec.Body)
			return rec.Code, string(b)
		}
		check := func(code int, body string, wantCode int, want string) {
			t.Helper()
			if code != wantCode || !strings.Contains(body, want) {
				t.Fatalf("got %d %s, want %d containing %q", code, body, wantCode, want)
			}
		}
		c, b := do(auth.RoleNone, "GET", "/api/v1/chaos/experiments", "")
		check(c, b, 401, "authentication required")
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/experiments", "")
		check(c, b, 200, `"name":"api-latency"`)
		c, b = do(auth.RoleViewer, "POST", "/api/v1/chaos/validate", "apiVersion: chaos.sre.rootuip.io/v1\nkind: Experiment\nname: x\nbogus: 1\n")
		check(c, b, 200, `"valid":false`)
		// The field, not the decoder's Go type ("field bogus not found
		// in type chaos.plain").
		check(c, b, 200, `request body:4:1: unknown field \"bogus\"`)
		if strings.Contains(b, "chaos.") || strings.Contains(b, "not found in type") {
			t.Fatalf("validate names a Go type: %s", b)
		}
		c, b = do(auth.RoleViewer, "POST", "/api/v1/chaos/validate", "apiVersion: chaos.sre.rootuip.io/v1\nkind: Experiment\nname: x\nduration: [1]\n")
		check(c, b, 200, `"valid":false`)
		if strings.Contains(b, "chaos.") || strings.Contains(b, "cannot unmarshal") {
			t.Fatalf("validate names a Go type: %s", b)
		}
		c, b = do(auth.RoleViewer, "POST", "/api/v1/chaos/validate", testExp)
		check(c, b, 200, `"valid":true`)
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/experiments/pay/plan", "")
		check(c, b, 200, `service \"payment\" is excluded`)
		c, b = do(auth.RoleResponder, "POST", "/api/v1/chaos/experiments/api-latency/run", "")
		check(c, b, 403, "role responder may not do this (needs admin)")
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/pay/run", "")
		check(c, b, 409, `"reasons":["service \"payment\" is excluded from chaos experiments"]`)
		check(c, b, 409, `"status":"error"`)
		check(c, b, 409, `"errorType":"refused","error":"refused: service \"payment\" is excluded from chaos experiments"`)
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/nope/run", "")
		check(c, b, 404, `no experiment \"nope\" is loaded`)
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/api-latency/run", "")
		check(c, b, 202, `"status":"running"`)
		var resp struct{ Data RunInfo }
		json.Unmarshal([]byte(b), &resp)
		id := resp.Data.ID
		h.blocked(t)
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/stop", "")
		check(c, b, 202, `"stop_requested_by":"u-admin"`)
		h.drain(t, 5*time.Second) // report's after-measurement
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs/"+id, "")
		check(c, b, 200, `"status":"aborted"`)
		check(c, b, 200, `manual stop: stopped by u-admin`)
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs/"+id+"/report?format=markdown", "")
		check(c, b, 200, "# Chaos experiment api-latency")
		for _, format := range []string{"markdown", "json"} {
			rec := httptest.NewRecorder()
			as(auth.RoleViewer)(mux).ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/chaos/runs/"+id+"/report?format="+format, nil))
			if cc, ns := rec.Header().Get("Cache-Control"), rec.Header().Get("X-Content-Type-Options"); cc != "no-store" || ns != "nosniff" {
				t.Fatalf("report as %s: Cache-Control %q, X-Content-Type-Options %q; want no-store, nosniff", format, cc, ns)
			}
		}
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs/"+id+"/report", "")
		check(c, b, 200, `"hypothesis_held": false`)
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs/nope/report", "")
		check(c, b, 404, "not found")
		c, b = do(auth.RoleResponder, "POST", "/api/v1/chaos/halt", "")
		check(c, b, 403, "needs admin")
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/halt", "")
		check(c, b, 200, `"stopped":0`)
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs", "")
		check(c, b, 200, id)
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs?limit=1", "")
		check(c, b, 200, `"status":"success"`)
		if n := strings.Count(b, `"experiment":`); n != 1 {
			t.Fatalf("limit=1 listed %d runs: %s", n, b)
		}
		// A limit or a report format that is not one is named, not ignored.
		for _, q := range []string{"abc", "0", "-5", "1001"} {
			c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs?limit="+q, "")
			check(c, b, 400, `"error":"limit \"`+q+`\": want an integer between 1 and 1000"`)
		}
		c, b = do(auth.RoleViewer, "GET", "/api/v1/chaos/runs/"+id+"/report?format=html", "")
		check(c, b, 400, `"error":"format \"html\": want markdown or json"`)
		if h.d.count() != 0 {
			t.Fatal("faults active")
		}
	})
}

// TestApproval runs an experiment with an approval gate through the API:
// nothing is injected before an allowed role approves; the approval is a
// step of the run; an unapproved run is refused at the timeout, and a run
// stopped while waiting is aborted without a fault.
func TestApproval(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		gated := load(t, testExp+"approval: {role: admin, timeout: 30s}\n")
		if err := h.s.ApplyConfig(testConfig(), []*Experiment{gated}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.s.Routes(mux)
		do := func(role auth.Role, method, path, body string) (int, string) {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req = req.WithContext(auth.NewContext(req.Context(), auth.Principal{Name: "u-" + role.String(), Role: role}))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}
		check := func(code int, body string, wantCode int, want string) {
			t.Helper()
			if code != wantCode || !strings.Contains(body, want) {
				t.Fatalf("got %d %s, want %d containing %q", code, body, wantCode, want)
			}
		}
		start := func() string {
			t.Helper()
			c, b := do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/api-latency/run", "")
			check(c, b, 202, `"status":"waiting_approval"`)
			var resp struct{ Data RunInfo }
			if err := json.Unmarshal([]byte(b), &resp); err != nil {
				t.Fatal(err)
			}
			h.blocked(t)
			return resp.Data.ID
		}
		steps := func(id string) string {
			r, err := h.s.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range r.Steps {
				names = append(names, s.Name+":"+s.Status)
			}
			return r.Status + " " + strings.Join(names, " ")
		}

		// 1. Approved by an admin: the run goes on.
		id := start()
		h.tick(t, 5*time.Second) // still waiting: leases renewed, nothing injected
		h.blocked(t)
		if n := h.d.count(); n != 0 {
			t.Fatalf("%d fault(s) injected before the approval", n)
		}
		if got := steps(id); got != "waiting_approval plan:ok validate:ok approval:running" {
			t.Fatalf("while waiting: %s", got)
		}
		c, b := do(auth.RoleResponder, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"comment":"go"}`)
		check(c, b, 403, "role responder may not approve run "+id+" (experiment api-latency needs admin)")
		// A comment the store could not keep (PostgreSQL refuses NUL) or
		// a body with trailing data is refused, as by every JSON body of
		// the API, and approves nothing.
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"comment":"a\u0000b"}`)
		check(c, b, 400, "comment: NUL byte")
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"comment":"go"}{"comment":"again"}`)
		check(c, b, 400, "trailing data")
		// A comment longer than an incident note (stored with the run,
		// shown to every viewer).
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"comment":"`+strings.Repeat("é", 25001)+`"}`)
		check(c, b, 400, "comment: at most 25000 characters, got 25001")
		if got := steps(id); got != "waiting_approval plan:ok validate:ok approval:running" {
			t.Fatalf("after refused approvals: %s", got)
		}
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"comment": "game day"}`)
		check(c, b, 200, `"approval":{"by":"u-admin","role":"admin","comment":"game day"`)
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", `{"bogus": 1}`)
		check(c, b, 400, `unknown field \"bogus\"`)
		h.drain(t, 5*time.Second)
		if got := steps(id); got != "succeeded plan:ok validate:ok approval:ok validate:ok execute:ok monitor:ok analyze:ok rollback:ok report:ok" {
			t.Fatalf("after approval: %s", got)
		}
		r, _ := h.s.Get(context.Background(), id)
		if d := r.Steps[2].Detail; d != "approved by u-admin (admin): game day" {
			t.Errorf("approval step detail %q", d)
		}
		if strings.Join(h.d.log, ",") != "inject a,inject b,revert b,revert a" {
			t.Errorf("driver log %v", h.d.log)
		}
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/approve", "")
		check(c, b, 409, "is succeeded, not waiting for approval")
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/nope/approve", "")
		check(c, b, 404, "not found")

		// 2. Nobody approves within the timeout: refused, nothing injected.
		h.d.log = nil
		id = start()
		h.drain(t, 5*time.Second)
		if got := steps(id); got != "refused plan:ok validate:ok approval:failed" {
			t.Fatalf("timeout: %s", got)
		}
		r, _ = h.s.Get(context.Background(), id)
		if r.Reason != "experiment refused: not approved within 30s" {
			t.Errorf("reason %q", r.Reason)
		}

		// 3. Stopped while waiting: aborted, nothing injected.
		id = start()
		c, b = do(auth.RoleAdmin, "POST", "/api/v1/chaos/runs/"+id+"/stop", "")
		check(c, b, 202, "stop_requested_by")
		h.s.Wait()
		if got := steps(id); got != "aborted plan:ok validate:ok approval:failed" {
			t.Fatalf("stop: %s", got)
		}
		if len(h.d.log) != 0 {
			t.Errorf("faults injected without approval: %v", h.d.log)
		}
	})
}

// TestRunPathsShownToAdminsOnly: a run whose fault failed with a server
// path in its error (a pid file) is read by a viewer with the base name
// only, in the run, its list and its reports; an admin reads it whole.
func TestRunPathsShownToAdminsOnly(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		const pidFile = "/run/sred-test/app/app.pid"
		h.d.fail = errors.New("pid file " + pidFile + ": open " + pidFile + ": no such file or directory")
		if err := h.s.ApplyConfig(testConfig(), []*Experiment{load(t, testExp)}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.s.Routes(mux)
		do := func(role auth.Role, method, path string) (int, string) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(method, path, nil)
			r = r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u-" + role.String(), Role: role}))
			mux.ServeHTTP(rec, r)
			b, _ := io.ReadAll(rec.Body)
			return rec.Code, string(b)
		}
		c, b := do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/api-latency/run")
		if c != http.StatusAccepted {
			t.Fatalf("run: %d %s", c, b)
		}
		var resp struct{ Data RunInfo }
		if err := json.Unmarshal([]byte(b), &resp); err != nil {
			t.Fatal(err)
		}
		h.drain(t, 5*time.Second)
		id := resp.Data.ID
		for _, path := range []string{"/api/v1/chaos/runs/" + id, "/api/v1/chaos/runs", "/api/v1/chaos/runs/" + id + "/report", "/api/v1/chaos/runs/" + id + "/report?format=markdown"} {
			c, admin := do(auth.RoleAdmin, "GET", path)
			if c != http.StatusOK || !strings.Contains(admin, pidFile) {
				t.Fatalf("%s as admin: %d %s; want the whole path", path, c, admin)
			}
			c, viewer := do(auth.RoleViewer, "GET", path)
			if c != http.StatusOK || strings.Contains(viewer, "/run/sred-test") || !strings.Contains(viewer, "pid file app.pid: open app.pid: no such file or directory") {
				t.Fatalf("%s as viewer: %d %s; want the base name only", path, c, viewer)
			}
			if strings.HasSuffix(path, "/report") && !json.Valid([]byte(viewer)) {
				t.Fatalf("%s as viewer is not JSON: %s", path, viewer)
			}
		}
	})
}

// TestPlanPathsShownToAdminsOnly: an experiment stopping a process by its
// pid file shows a viewer the file's base name only, in the plan, in its
// run's fault record and in the lock the run took; an admin reads the
// whole path.
func TestPlanPathsShownToAdminsOnly(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		const pidFile = "/run/sred-test/app/app.pid"
		h := newHarness(t, db, "r1")
		h.s = New(Options{DB: db, Registerer: prometheus.NewRegistry(), Bus: h.bus, Budgets: h.b, Prom: h.q, Clock: h.clock, Owner: "r1",
			Drivers: map[string]Driver{DriverProcess: h.d}})
		exp := strings.Replace(testExp, "  - {name: a, type: latency, proxy: p, latency: 300ms}\n  - {name: b, type: cpu-stress, cpuPercent: 50}\n",
			"  - {name: a, type: process-stop, pidFile: "+pidFile+"}\n", 1)
		if err := h.s.ApplyConfig(testConfig(), []*Experiment{load(t, exp)}); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.s.Routes(mux)
		do := func(role auth.Role, method, path string) (int, string) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(method, path, nil)
			mux.ServeHTTP(rec, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u-" + role.String(), Role: role})))
			b, _ := io.ReadAll(rec.Body)
			return rec.Code, string(b)
		}
		check := func(path, base string) {
			t.Helper()
			c, admin := do(auth.RoleAdmin, "GET", path)
			if c != http.StatusOK || !strings.Contains(admin, pidFile) {
				t.Fatalf("%s as admin: %d %s; want the whole path", path, c, admin)
			}
			c, viewer := do(auth.RoleViewer, "GET", path)
			if c != http.StatusOK || strings.Contains(viewer, "/run/sred-test") || !strings.Contains(viewer, base) {
				t.Fatalf("%s as viewer: %d %s; want %q, no path", path, c, viewer, base)
			}
		}
		check("/api/v1/chaos/experiments/api-latency/plan", "stop the process of app.pid")
		c, b := do(auth.RoleAdmin, "POST", "/api/v1/chaos/experiments/api-latency/run")
		if c != http.StatusAccepted {
			t.Fatalf("run: %d %s", c, b)
		}
		var resp struct{ Data RunInfo }
		if err := json.Unmarshal([]byte(b), &resp); err != nil {
			t.Fatal(err)
		}
		h.blocked(t)
		check("/api/v1/chaos/runs/"+resp.Data.ID, `"pidFile":"app.pid"`)
		check("/api/v1/chaos/runs/"+resp.Data.ID, "locked staging/api, pidfile:app.pid")
		h.drain(t, 5*time.Second)
	})
}
