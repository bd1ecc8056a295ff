package auth_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/web"
)

func hash(t testing.TB, s string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
	require.NoError(t, err)
	return string(h)
}

// sha is the hexadecimal SHA-256 of a token, as the users file gives it.
func sha(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

func testUsers(t testing.TB) *auth.UsersFile {
	f, err := auth.ParseUsers([]byte(fmt.Sprintf(`
users:
  vera: {password: %q, role: viewer}
  rita: {password: %q, role: responder, oncall: rita-oncall}
  adam: {password: %q, role: admin}
tokens:
  - {name: ci-token, sha256: %s, role: admin}
  - {name: bot, hash: %q, role: viewer}
`, hash(t, "vera-pw"), hash(t, "rita-pw"), hash(t, "adam-pw"), sha("tok-admin"), hash(t, "tok-viewer"))))
	require.NoError(t, err)
	return f
}

type written struct {
	actor, route string
	code         int
}

// server serves a mux of a few real route patterns behind the middleware;
// each handler answers the principal it saw as JSON.
func server(t *testing.T, noAuth, webhookToken bool) (*httptest.Server, *[]written) {
	mux := http.NewServeMux()
	echo := func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"name": p.Name, "role": p.Role.String(), "set": ok, "noauth": p.NoAuth, "oncall": p.OnCallID})
	}
	for _, p := range []string{"GET /-/healthy", "POST /-/reload", "GET /api/v1/incidents",
		"POST /api/v1/incidents/{id}/ack", "POST /api/v1/webhook/alertmanager", "POST /incidents/{id}/{action}",
		"POST /api/v1/undeclared", "POST /api/v1/chaos/validate"} {
		mux.HandleFunc(p, echo)
	}
	var log []written
	h := auth.Middleware(auth.Options{
		Authenticator: auth.NewAuthenticator(testUsers(t), auth.Limits{}),
		NoAuth:        noAuth,
		Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
		OnWrite: func(r *http.Request, p auth.Principal, route string, code int) {
			if pp, ok := auth.FromContext(r.Context()); ok {
				p = pp
			}
			log = append(log, written{p.Name, route, code})
		},
		WebhookToken: func() bool { return webhookToken },
	}, mux)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &log
}

type req struct {
	method, path, body string
	hdr                []string // key, value pairs
	user, pass, token  string
}

func do(t *testing.T, srv *httptest.Server, c req) (int, string, http.Header) {
	t.Helper()
	r, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if c.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(c.hdr); i += 2 {
		r.Header.Set(c.hdr[i], c.hdr[i+1])
	}
	if c.user != "" {
		r.SetBasicAuth(c.user, c.pass)
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, mustRead(t, resp))
	return resp.StatusCode, b.String(), resp.Header
}

func mustRead(t *testing.T, resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

func TestMiddleware(t *testing.T) {
	srv, log := server(t, false, true)
	ack := "/api/v1/incidents/INC-1/ack"
	cases := []struct {
		name string
		req  req
		code int
		want string // substring of the body
	}{
		{"probe needs no credentials", req{method: "GET", path: "/-/healthy"}, 200, `"set":false`},
		{"api without credentials", req{method: "GET", path: "/api/v1/incidents"}, 401, "missing or wrong credentials"},
		{"wrong password", req{method: "GET", path: "/api/v1/incidents", user: "vera", pass: "nope"}, 401, "missing or wrong credentials"},
		{"unknown user", req{method: "GET", path: "/api/v1/incidents", user: "mallory", pass: "vera-pw"}, 401, "missing or wrong credentials"},
		{"wrong token", req{method: "GET", path: "/api/v1/incidents", token: "tok-nope"}, 401, "missing or wrong credentials"},
		{"viewer reads", req{method: "GET", path: "/api/v1/incidents", user: "vera", pass: "vera-pw"}, 200, `"name":"vera","noauth":false,"oncall":"","role":"viewer"`},
		{"viewer token reads", req{method: "GET", path: "/api/v1/incidents", token: "tok-viewer"}, 200, `"name":"bot"`},
		{"token scheme in lower case", req{method: "GET", path: "/api/v1/incidents", hdr: []string{"Authorization", "bearer tok-admin"}}, 200, `"name":"ci-token"`},
		{"viewer may not ack", req{method: "POST", path: ack, body: `{}`, user: "vera", pass: "vera-pw"}, 403, "vera has role viewer; POST /api/v1/incidents/{id}/ack needs responder"},
		{"responder acks", req{method: "POST", path: ack, body: `{"actor":"the-boss"}`, user: "rita", pass: "rita-pw"}, 200, `"name":"rita","noauth":false,"oncall":"rita-oncall","role":"responder"`},
		{"responder acks without body", req{method: "POST", path: ack, user: "rita", pass: "rita-pw"}, 200, `"name":"rita"`},
		{"text/plain body refused", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Type", "text/plain"}, user: "rita", pass: "rita-pw"}, 415, `Content-Type must be application/json, got \"text/plain\"`},
		{"form body refused on JSON route", req{method: "POST", path: ack, body: `a=b`, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, user: "rita", pass: "rita-pw"}, 415, "Content-Type must be application/json"},
		{"YAML spec file accepted", req{method: "POST", path: "/api/v1/chaos/validate", body: "name: x\n", hdr: []string{"Content-Type", "application/yaml"}, user: "vera", pass: "vera-pw"}, 200, `"name":"vera"`},
		{"text/plain spec file refused", req{method: "POST", path: "/api/v1/chaos/validate", body: "name: x\n", hdr: []string{"Content-Type", "text/plain"}, user: "vera", pass: "vera-pw"}, 415, `Content-Type must be application/yaml or application/json, got \"text/plain\"`},
		{"YAML refused on a JSON route", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Type", "application/yaml"}, user: "rita", pass: "rita-pw"}, 415, `Content-Type must be application/json, got \"application/yaml\"`},
		{"cross-site fetch refused", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Sec-Fetch-Site", "cross-site"}, user: "rita", pass: "rita-pw"}, 403, "cross-origin request refused"},
		{"cross-origin Origin refused", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Origin", "https://evil.example"}, user: "rita", pass: "rita-pw"}, 403, "cross-origin request refused"},
		{"same-origin fetch allowed", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Sec-Fetch-Site", "same-origin"}, user: "rita", pass: "rita-pw"}, 200, `"name":"rita"`},
		{"cross-site console form refused", req{method: "POST", path: "/incidents/INC-1/ack", body: "actor=x", hdr: []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"}, user: "rita", pass: "rita-pw"}, 403, "cross-origin request refused"},
		{"console form allowed", req{method: "POST", path: "/incidents/INC-1/ack", body: "actor=x", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, user: "rita", pass: "rita-pw"}, 200, `"name":"rita"`},
		{"responder may not reload", req{method: "POST", path: "/-/reload", user: "rita", pass: "rita-pw"}, 403, "needs admin"},
		{"cross-site reload refused", req{method: "POST", path: "/-/reload", hdr: []string{"Sec-Fetch-Site", "cross-site"}, user: "adam", pass: "adam-pw"}, 403, "cross-origin"},
		{"admin token reloads", req{method: "POST", path: "/-/reload", token: "tok-admin"}, 200, `"name":"ci-token","noauth":false,"oncall":"","role":"admin"`},
		{"undeclared route needs admin", req{method: "POST", path: "/api/v1/undeclared", user: "rita", pass: "rita-pw"}, 403, "needs admin"},
		{"undeclared route allowed to admin", req{method: "POST", path: "/api/v1/undeclared", user: "adam", pass: "adam-pw"}, 200, `"name":"adam"`},
		{"webhook with own token skips user auth", req{method: "POST", path: "/api/v1/webhook/alertmanager", body: `{}`, token: "the-webhook-token"}, 200, `"set":false`},
		{"unknown path is 404", req{method: "GET", path: "/nope"}, 404, "404 page not found"},
		// No handler decompresses a body: a gzip body was read as its
		// compressed bytes (400 "invalid UTF-8 at byte offset 1").
		{"gzip body refused", req{method: "POST", path: ack, body: "\x1f\x8b\x08", hdr: []string{"Content-Encoding", "gzip"}, user: "rita", pass: "rita-pw"}, 415, `Content-Encoding \"gzip\" is not supported: send the body uncompressed`},
		{"gzip webhook refused", req{method: "POST", path: "/api/v1/webhook/alertmanager", body: "\x1f\x8b\x08", hdr: []string{"Content-Encoding", "gzip"}, token: "the-webhook-token"}, 415, "is not supported: send the body uncompressed"},
		{"gzip console form refused", req{method: "POST", path: "/incidents/INC-1/ack", body: "\x1f\x8b\x08", hdr: []string{"Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip"}, user: "rita", pass: "rita-pw"}, 415, `Content-Encoding "gzip" is not supported`},
		{"identity body served", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Encoding", "identity"}, user: "rita", pass: "rita-pw"}, 200, `"name":"rita"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := do(t, srv, c.req)
			require.Equal(t, c.code, code, body)
			require.Contains(t, body, c.want)
			if code == 401 {
				require.Equal(t, `Basic realm="sred", charset="UTF-8"`, hdr.Get("WWW-Authenticate"))
			}
			if code == 415 && slices.Contains(c.req.hdr, "Content-Encoding") {
				require.Equal(t, "identity", hdr.Get("Accept-Encoding"))
			}
		})
	}
	// Every write that reached its handler is recorded, with the
	// authenticated actor (never the body's); refused ones, webhook
	// deliveries and queries (vera's spec check) are not.
	require.Equal(t, []written{
		{"rita", "POST /api/v1/incidents/{id}/ack", 200},
		{"rita", "POST /api/v1/incidents/{id}/ack", 200},
		{"rita", "POST /api/v1/incidents/{id}/ack", 200},
		{"rita", "POST /incidents/{id}/{action}", 200},
		{"ci-token", "POST /-/reload", 200},
		{"adam", "POST /api/v1/undeclared", 200},
		{"rita", "POST /api/v1/incidents/{id}/ack", 200},
	}, *log)
}

// TestTooManyFailedAttempts: over its limit of failed attempts a client is
// answered 429 with Retry-After, in the API's envelope under /api/, plain
// text elsewhere, whatever its credentials; once the time has passed it
// may try again.
func TestTooManyFailedAttempts(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	mux := http.NewServeMux()
	for _, p := range []string{"GET /api/v1/incidents", "GET /metrics"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	}
	srv := httptest.NewServer(auth.Middleware(auth.Options{
		Authenticator: auth.NewAuthenticator(testUsers(t), auth.Limits{FailureBurst: 2, FailureEvery: time.Minute, Clock: clk}),
		Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
	}, mux))
	t.Cleanup(srv.Close)
	api, metrics := "/api/v1/incidents", "/metrics"
	for i, c := range []struct {
		advance    time.Duration
		req        req
		code       int
		retryAfter string
		body       string
	}{
		{0, req{method: "GET", path: api, user: "vera", pass: "nope"}, 401, "", "missing or wrong credentials"},
		{0, req{method: "GET", path: api, token: "tok-nope"}, 401, "", "missing or wrong credentials"},
		{0, req{method: "GET", path: api, user: "vera", pass: "nope"}, 401, "", "missing or wrong credentials"},
		{0, req{method: "GET", path: api, user: "vera", pass: "nope"}, 429, "60",
			`{"status":"error","errorType":"too_many_requests","error":"too many failed authentication attempts for this user from this address: retry in 1m0s"}`},
		{0, req{method: "GET", path: metrics, user: "vera", pass: "vera-pw"}, 429, "60", "too many failed authentication attempts for this user from this address: retry in 1m0s\n"},
		{59 * time.Second, req{method: "GET", path: api, user: "vera", pass: "vera-pw"}, 429, "1", "retry in 1s"},
		{time.Second, req{method: "GET", path: api, user: "vera", pass: "vera-pw"}, 200, "", "ok"},
		{0, req{method: "GET", path: api, user: "vera", pass: "nope"}, 401, "", "missing or wrong credentials"},
		{0, req{method: "GET", path: api, user: "vera", pass: "nope"}, 429, "60", "retry in 1m0s"},
	} {
		clk.Advance(c.advance)
		code, body, hdr := do(t, srv, c.req)
		require.Equal(t, c.code, code, "step %d: %s", i, body)
		require.Equal(t, c.retryAfter, hdr.Get("Retry-After"), "step %d", i)
		require.Contains(t, body, c.body, "step %d", i)
	}
}

// TestWebhookWithoutOwnToken: without webhook.bearer_token, a delivery
// authenticates as a user (as Alertmanager's basic_auth does) with the
// responder role.
func TestWebhookWithoutOwnToken(t *testing.T) {
	srv, _ := server(t, false, false)
	for _, c := range []struct {
		name string
		req  req
		code int
	}{
		{"no credentials", req{method: "POST", path: "/api/v1/webhook/alertmanager", body: `{}`}, 401},
		{"viewer", req{method: "POST", path: "/api/v1/webhook/alertmanager", body: `{}`, user: "vera", pass: "vera-pw"}, 403},
		{"responder", req{method: "POST", path: "/api/v1/webhook/alertmanager", body: `{}`, user: "rita", pass: "rita-pw"}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(t, srv, c.req)
			require.Equal(t, c.code, code, body)
		})
	}
}

// TestNoAuthMode: every request acts as the anonymous admin, flagged NoAuth
// for the console; cross-origin writes are still refused.
func TestNoAuthMode(t *testing.T) {
	srv, log := server(t, true, false)
	code, body, _ := do(t, srv, req{method: "POST", path: "/-/reload"})
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"name":"anonymous","noauth":true,"oncall":"","role":"admin","set":true`)
	code, body, _ = do(t, srv, req{method: "POST", path: "/api/v1/webhook/alertmanager", body: `{}`})
	require.Equal(t, 200, code, body)
	code, body, _ = do(t, srv, req{method: "POST", path: "/-/reload", hdr: []string{"Sec-Fetch-Site", "cross-site"}})
	require.Equal(t, 403, code, body)
	require.Equal(t, []written{{"anonymous", "POST /-/reload", 200}}, *log)
}

func TestActorOf(t *testing.T) {
	ctx := t.Context()
	require.Equal(t, "claimed", auth.ActorOf(ctx, "claimed", "api"), "no principal: the claim")
	require.Equal(t, "api", auth.ActorOf(ctx, "", "api"))
	require.Equal(t, "claimed", auth.ActorOf(auth.NewContext(ctx, auth.Anonymous), "claimed", "api"), "no-auth mode: the claim")
	require.Equal(t, "anonymous", auth.ActorOf(auth.NewContext(ctx, auth.Anonymous), "", "anonymous"))
	rita := auth.NewContext(ctx, auth.Principal{Name: "rita", Role: auth.RoleResponder})
	require.Equal(t, "rita", auth.ActorOf(rita, "the-boss", "api"), "authenticated: the body cannot choose")
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestRefusalBodies pins the answers of refused requests
// (testdata/refusals.golden): under /api/ the API's error envelope, the
// same bytes web.Error writes for the same code, type and message, so a
// client reads a 401 or 403 of the middleware as any other API error;
// plain text elsewhere (the console, /-/ endpoints).
func TestRefusalBodies(t *testing.T) {
	srv, _ := server(t, false, true)
	ack := "/api/v1/incidents/INC-1/ack"
	var out strings.Builder
	for _, c := range []struct {
		name string
		req  req
	}{
		{"api without credentials", req{method: "GET", path: "/api/v1/incidents"}},
		{"api wrong token", req{method: "GET", path: "/api/v1/incidents", token: "tok-nope"}},
		{"api role too low", req{method: "POST", path: ack, body: `{}`, user: "vera", pass: "vera-pw"}},
		{"api text body", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Type", "text/plain"}, user: "rita", pass: "rita-pw"}},
		{"reload without credentials", req{method: "POST", path: "/-/reload"}},
		{"console role too low", req{method: "POST", path: "/incidents/INC-1/ack", body: "actor=x", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, user: "vera", pass: "vera-pw"}},
	} {
		code, body, hdr := do(t, srv, c.req)
		fmt.Fprintf(&out, "== %s: %s %s\n%d %s\n", c.name, c.req.method, c.req.path, code, hdr.Get("Content-Type"))
		if v := hdr.Get("WWW-Authenticate"); v != "" {
			fmt.Fprintf(&out, "WWW-Authenticate: %s\n", v)
		}
		out.WriteString(body)
		if !strings.HasPrefix(c.req.path, "/api/") {
			continue
		}
		var env web.Response
		require.NoError(t, json.Unmarshal([]byte(body), &env), c.name)
		rec := httptest.NewRecorder()
		web.Error(rec, code, env.ErrorType, errors.New(env.Error))
		require.Equal(t, rec.Body.String(), body, "%s: the middleware's envelope differs from the API's", c.name)
		require.Equal(t, rec.Header().Get("Content-Type"), hdr.Get("Content-Type"), c.name)
	}
	golden := filepath.Join("testdata", "refusals.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String(), "go test ./pkg/auth -run TestRefusalBodies -update rewrites %s", golden)
}

// TestPublicWritesRecordedWhenTheyAct: a write to a public route (an
// acknowledgement link, whose token is its credential) is recorded when it
// acted, and not when its handler refused it: anyone may post forged or
// expired links without credentials, as fast as they like, and each would
// otherwise add a row to the audit log.
func TestPublicWritesRecordedWhenTheyAct(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ack/{token}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("token") {
		case "good":
			_, _ = io.WriteString(w, "acknowledged")
		case "gone":
			http.Error(w, "conflict", http.StatusConflict)
		default:
			http.Error(w, "invalid acknowledge token", http.StatusForbidden)
		}
	})
	srv, log := recording(t, mux)
	for _, c := range []struct {
		token string
		code  int
	}{{"forged", 403}, {"good", 200}, {"forged", 403}, {"gone", 409}, {"good", 200}} {
		code, body, _ := do(t, srv, req{method: "POST", path: "/ack/" + c.token})
		require.Equal(t, c.code, code, body)
	}
	require.Equal(t, []written{{"", "POST /ack/{token}", 200}, {"", "POST /ack/{token}", 200}}, *log)
}

// TestQueriesNotRecorded: a POST that only computes an answer (the
// escalation simulation, a spec check, a canary analysis run and the Flagger
// hooks that Flagger calls at every analysis interval) changes nothing and
// is not recorded as a write, so a viewer cannot grow the audit log by
// looping on it; a real write still is.
func TestQueriesNotRecorded(t *testing.T) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") }
	queries := []string{
		"/api/v1/escalation/simulate",
		"/api/v1/chaos/validate",
		"/api/v1/analysis/{name}/run",
		"/api/v1/analysis/flagger/confirm-promotion",
		"/api/v1/analysis/flagger/rollback",
	}
	for _, q := range queries {
		mux.HandleFunc("POST "+q, ok)
	}
	mux.HandleFunc("POST /api/v1/incidents/{id}/ack", ok)
	srv, log := recording(t, mux)
	for range 3 {
		for _, q := range queries {
			code, body, _ := do(t, srv, req{method: "POST", path: strings.ReplaceAll(q, "{name}", "api-canary"), body: `{}`, user: "vera", pass: "vera-pw"})
			require.Equal(t, 200, code, body)
		}
	}
	code, body, _ := do(t, srv, req{method: "POST", path: "/api/v1/incidents/INC-1/ack", body: `{}`, user: "rita", pass: "rita-pw"})
	require.Equal(t, 200, code, body)
	require.Equal(t, []written{{"rita", "POST /api/v1/incidents/{id}/ack", 200}}, *log)
}

// recording serves mux behind the middleware with the test users, and
// returns the writes it records (Options.OnWrite).
func recording(t *testing.T, mux *http.ServeMux) (*httptest.Server, *[]written) {
	t.Helper()
	var log []written
	h := auth.Middleware(auth.Options{
		Authenticator: auth.NewAuthenticator(testUsers(t), auth.Limits{}),
		Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
		OnWrite: func(r *http.Request, p auth.Principal, route string, code int) {
			log = append(log, written{p.Name, route, code})
		},
	}, mux)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, &log
}

// TestChunkedRequestClosesConnection: a request carrying both
// Transfer-Encoding: chunked and Content-Length (a smuggling attempt: a
// proxy in front framing it by Content-Length reads the rest as a second
// request) is answered with Connection: close and its connection closed,
// nothing after it served (RFC 9112 section 6.3); a Content-Length request
// keeps its connection alive. Raw requests on one TCP connection, pipelined.
func TestChunkedRequestClosesConnection(t *testing.T) {
	srv, _ := server(t, false, true)
	const basic = "Basic cml0YTpyaXRhLXB3" // rita:rita-pw
	post := func(framing, body string) string {
		return "POST /api/v1/incidents/INC-1/ack HTTP/1.1\r\nHost: sred\r\nAuthorization: " + basic +
			"\r\nContent-Type: application/json\r\n" + framing + "\r\n" + body
	}
	const next = "GET /api/v1/incidents HTTP/1.1\r\nHost: sred\r\nAuthorization: " + basic + "\r\n\r\n"
	for _, tc := range []struct {
		name, first string
		closed      bool
	}{
		{"chunked with Content-Length", post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), true},
		{"chunked", post("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), true},
		{"chunked to an unknown route", "POST /nowhere HTTP/1.1\r\nHost: sred\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", true},
		{"Content-Length", post("Content-Length: 2\r\n", "{}"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, tc.first+next)
			require.NoError(t, err)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.closed, resp.Close, "Connection: %q", resp.Header.Get("Connection"))
			second, err := http.ReadResponse(br, nil)
			if tc.closed {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the request after a chunked one was served on its connection")
				rest, err := io.ReadAll(br)
				require.NoError(t, err)
				require.Empty(t, rest)
				return
			}
			require.NoError(t, err, "the connection of a Content-Length request was closed")
			defer second.Body.Close()
			require.Equal(t, http.StatusOK, second.StatusCode)
			require.False(t, second.Close)
		})
	}
}

// TestRefusedHeadersCut: a Content-Type or Content-Encoding of thousands
// of bytes is named in the 415 cut at 64 bytes ending with "…", as every
// refused value, on JSON routes, spec routes and console forms alike.
func TestRefusedHeadersCut(t *testing.T) {
	srv, _ := server(t, false, true)
	long := strings.Repeat("q", 20000)
	cut := `"` + strings.Repeat("q", 61) + `…"`
	ack := "/api/v1/incidents/INC-1/ack"
	for _, c := range []struct {
		name string
		req  req
		want string
	}{
		{"Content-Type on a JSON route", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Type", long}, user: "rita", pass: "rita-pw"},
			`Content-Type must be application/json, got ` + cut},
		{"Content-Type on a spec route", req{method: "POST", path: "/api/v1/chaos/validate", body: "name: x\n", hdr: []string{"Content-Type", long}, user: "vera", pass: "vera-pw"},
			`Content-Type must be application/yaml or application/json, got ` + cut},
		{"Content-Encoding on a JSON route", req{method: "POST", path: ack, body: `{}`, hdr: []string{"Content-Encoding", long}, user: "rita", pass: "rita-pw"},
			`Content-Encoding ` + cut + ` is not supported: send the body uncompressed`},
		{"Content-Encoding on a console form", req{method: "POST", path: "/incidents/INC-1/ack", body: "a=b", hdr: []string{"Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", long}, user: "rita", pass: "rita-pw"},
			`Content-Encoding ` + cut + ` is not supported: send the body uncompressed`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(t, srv, c.req)
			require.Equal(t, http.StatusUnsupportedMediaType, code, "%.200s", body)
			// Under /api/ the error is a JSON string: its quotes escaped.
			require.Contains(t, strings.ReplaceAll(body, `\"`, `"`), c.want)
			require.NotContains(t, body, strings.Repeat("q", 100), "the header comes back whole")
		})
	}
}

// TestRefusalsOfUncleanAPIPaths: an API route reached by a path the mux
// cleans (a doubled slash, a dot segment) is refused as the route it
// matches, with the API's error envelope, not in plain text.
func TestRefusalsOfUncleanAPIPaths(t *testing.T) {
	srv, log := server(t, false, true)
	for _, c := range []struct {
		req  req
		code int
	}{
		{req{method: "GET", path: "//api/v1/incidents"}, http.StatusUnauthorized},
		{req{method: "POST", path: "//api/v1/incidents/INC-1/ack", body: `{}`, user: "vera", pass: "vera-pw"}, http.StatusForbidden},
		{req{method: "POST", path: "/x/../api/v1/incidents/INC-1/ack", body: `{}`, user: "vera", pass: "vera-pw"}, http.StatusForbidden},
		{req{method: "POST", path: "/api/./v1//incidents/INC-1/ack", body: `{}`, token: "tok-nope"}, http.StatusUnauthorized},
	} {
		code, body, hdr := do(t, srv, c.req)
		require.Equal(t, c.code, code, "%s %s: %s", c.req.method, c.req.path, body)
		require.Equal(t, "application/json", hdr.Get("Content-Type"), "%s %s", c.req.method, c.req.path)
		var env web.Response
		require.NoError(t, json.Unmarshal([]byte(body), &env), "%s %s: %s", c.req.method, c.req.path, body)
		require.Equal(t, "error", string(env.Status))
	}
	require.Empty(t, *log, "nothing refused reached a handler")
}

// TestAuthorizationHeaderTricks: what a client may put in its
// Authorization header, or beside it, to be taken for someone else. Two
// Authorization headers are refused, whichever comes first, since a proxy
// in front may have read the other one (before, the first was taken: a
// valid token followed by any other header, or a wrong one followed by a
// valid one, were read differently by sred and by a proxy reading the
// last); and so is a bearer token the webhooks would read (BearerToken).
func TestAuthorizationHeaderTricks(t *testing.T) {
	srv, _ := server(t, false, false)
	long := "tok-viewer" + strings.Repeat("x", 60<<10)
	for _, c := range []struct {
		name string
		hdr  []string // Authorization values, in order
		path string   // "" for /api/v1/incidents
		code int
		want string
	}{
		{"token", []string{"Bearer tok-viewer"}, "", 200, `"name":"bot"`},
		{"spaces after the scheme", []string{"Bearer    tok-viewer"}, "", 200, `"name":"bot"`},
		{"scheme in capitals", []string{"BEARER tok-viewer"}, "", 200, `"name":"bot"`},
		{"scheme in mixed case", []string{"bEaReR tok-viewer"}, "", 200, `"name":"bot"`},
		{"no space after the scheme", []string{"Bearertok-viewer"}, "", 401, "missing or wrong credentials"},
		{"empty bearer", []string{"Bearer"}, "", 401, "missing or wrong credentials"},
		{"empty bearer and spaces", []string{"Bearer   "}, "", 401, "missing or wrong credentials"},
		{"two tokens in one header", []string{"Bearer tok-viewer, Bearer tok-admin"}, "", 401, "missing or wrong credentials"},
		{"token with a suffix", []string{"Bearer tok-viewer tok-admin"}, "", 401, "missing or wrong credentials"},
		{"very long token", []string{"Bearer " + long}, "", 401, "missing or wrong credentials"},
		{"unknown scheme", []string{"Token tok-viewer"}, "", 401, "missing or wrong credentials"},
		{"token in the query string", nil, "/api/v1/incidents?access_token=tok-viewer&token=tok-viewer", 401, "missing or wrong credentials"},
		{"valid token then a wrong one", []string{"Bearer tok-viewer", "Bearer nope"}, "", 401, `missing or wrong credentials (basic auth or Authorization: Bearer \u003ctoken\u003e): 2 Authorization headers, send one`},
		{"wrong token then a valid one", []string{"Bearer nope", "Bearer tok-viewer"}, "", 401, "2 Authorization headers, send one"},
		{"viewer token then admin basic auth", []string{"Bearer tok-viewer", "Basic " + base64.StdEncoding.EncodeToString([]byte("adam:adam-pw"))}, "/-/reload", 401, "2 Authorization headers, send one"},
		{"the same token twice", []string{"Bearer tok-viewer", "Bearer tok-viewer"}, "", 401, "2 Authorization headers, send one"},
		{"basic auth", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("vera:vera-pw"))}, "", 200, `"name":"vera"`},
		{"basic scheme in lower case", []string{"basic " + base64.StdEncoding.EncodeToString([]byte("vera:vera-pw"))}, "", 200, `"name":"vera"`},
		{"NUL after the user name", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("vera\x00:vera-pw"))}, "", 401, "missing or wrong credentials"},
		{"newline after the user name", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("vera\n:vera-pw"))}, "", 401, "missing or wrong credentials"},
		{"NUL after the password", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("vera:vera-pw\x00"))}, "", 401, "missing or wrong credentials"},
		{"newline after the password", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("vera:vera-pw\n"))}, "", 401, "missing or wrong credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = "/api/v1/incidents"
			}
			method := http.MethodGet
			if path == "/-/reload" {
				method = http.MethodPost
			}
			r, err := http.NewRequest(method, srv.URL+path, nil)
			require.NoError(t, err)
			for _, v := range c.hdr {
				r.Header.Add("Authorization", v)
			}
			resp, err := http.DefaultClient.Do(r)
			require.NoError(t, err)
			defer resp.Body.Close()
			body := mustRead(t, resp)
			require.Equal(t, c.code, resp.StatusCode, body)
			require.Contains(t, body, c.want)
			tok, ok := auth.BearerToken(r.Header)
			if len(c.hdr) > 1 {
				require.False(t, ok, "a webhook reads no token of two headers, got %q", tok)
			}
		})
	}
}
