package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPprofRoutes: the Go profiles are served under /debug/pprof/ on the
// mux that carries the API (so behind the same authentication).
func TestPprofRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mountPprof(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile: total",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/cmdline":           "",
		"/debug/pprof/symbol":            "num_symbols",
	} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err, path)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, string(body), want, path)
	}
	resp, err := http.Post(srv.URL+"/debug/pprof/heap", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "profiles are read with GET")
}

// TestReloadEndsPprofOfChangedRole: a CPU profile or execution trace of
// an admin (GET /debug/pprof/profile|trace?seconds=N) ends when a reload
// changes the admin's role, as the live streams do, and answers 403 with
// the cause, nothing of the profile. Before, it ran its N seconds and
// answered the profile to a user no longer an admin. A trace past
// heldLimit is streamed, and its revocation cuts the connection: the
// client reads a broken response, not a whole one.
func TestReloadEndsPprofOfChangedRole(t *testing.T) {
	users := newUsersFile(t)
	write := func(doraRole string) { users.write("adam:admin", "dora:"+doraRole) }
	write("admin")
	a, srv, _ := runStreamApp(t, users.path)
	for _, c := range []struct {
		path     string
		held     int // heldLimit; 0: as it is
		streamed bool
	}{
		{path: "/debug/pprof/profile?seconds=3600"},
		{path: "/debug/pprof/trace?seconds=3600"},
		{path: "/debug/pprof/trace?seconds=3600", held: 1, streamed: true},
	} {
		path := c.path
		t.Run(fmt.Sprintf("%s/held=%d", path, c.held), func(t *testing.T) {
			if c.held > 0 {
				old := heldLimit
				heldLimit = c.held
				t.Cleanup(func() { heldLimit = old })
			}
			write("admin")
			reloadAt(t, srv.URL)
			type answer struct {
				code int
				body string
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
				if err != nil {
					done <- answer{err: err}
					return
				}
				req.SetBasicAuth("dora", "dora-pw")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				done <- answer{code: resp.StatusCode, body: string(b), err: err}
			}()
			// The request is held as a stream once authenticated.
			for a.access.authn.Sessions() == 0 {
				runtime.Gosched()
			}
			write("viewer")
			reloadAt(t, srv.URL)
			got := <-done
			if c.streamed {
				require.Equal(t, http.StatusOK, got.code, "the trace's first bytes went out before the reload")
				require.ErrorIs(t, got.err, io.ErrUnexpectedEOF, "a revoked trace past heldLimit ends with a cut connection")
				require.Zero(t, a.access.authn.Sessions())
				return
			}
			require.NoError(t, got.err)
			require.Equal(t, http.StatusForbidden, got.code, got.body)
			require.JSONEq(t, `{"status":"error","errorType":"forbidden","error":"credentials revoked: the role of dora changed from admin to viewer"}`, got.body)
			require.Zero(t, a.access.authn.Sessions())
		})
	}
}

// reloadAt has the sred at base reload its configuration, as adam (an
// admin).
func reloadAt(t *testing.T, base string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/-/reload", nil)
	require.NoError(t, err)
	req.SetBasicAuth("adam", "adam-pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
