package app

import (
	"io"
	"net/http"
	"net/http/httptest"
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
