package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAPIUnmatchedEnvelope: a path under /api/ that no route serves, or a
// method its routes do not take, is answered with the API's error envelope
// (the mux answered "404 page not found" in plain text), 405 with the
// methods allowed; outside /api/ the mux's plain answers stay, and a
// route's own answers are not touched.
func TestAPIUnmatchedEnvelope(t *testing.T) {
	_, srv := runApp(t, "sqlite", "", nil)
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		method, path string
		code         int
		errType, err string
		allow        string
	}{
		{"GET", "/api/v1/nothing", 404, "not_found", `no API route "/api/v1/nothing"`, ""},
		{"GET", "/api/v1/" + long, 404, "not_found", `no API route "/api/v1/` + strings.Repeat("x", 53) + `…"`, ""},
		{"PUT", "/api/v1/incidents", 405, "bad_data", `method "PUT" not allowed on "/api/v1/incidents" (allowed: GET, HEAD, POST)`, "GET, HEAD, POST"},
		{"DELETE", "/api/v1/slos", 405, "bad_data", `method "DELETE" not allowed on "/api/v1/slos" (allowed: GET, HEAD)`, "GET, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, tc.code, resp.StatusCode, "%s %.80s: %s", tc.method, tc.path, body)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %.80s", tc.method, tc.path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "%s %.80s", tc.method, tc.path)
		require.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %.80s", tc.method, tc.path)
		var env struct{ Status, ErrorType, Error string }
		require.NoError(t, json.Unmarshal(body, &env), "%s", body)
		require.Equal(t, "error", env.Status)
		require.Equal(t, tc.errType, env.ErrorType)
		require.Equal(t, tc.err, env.Error)
	}

	// Outside /api/ the mux's plain answers stay.
	resp, err := http.Get(srv.URL + "/-/nothing")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "404 page not found\n", string(body))

	// A route's own 404 is its own envelope.
	resp, err = http.Get(srv.URL + "/api/v1/incidents/INC-1999-0001")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, string(body), `"errorType":"not_found"`)
	require.Contains(t, string(body), "INC-1999-0001")
}
