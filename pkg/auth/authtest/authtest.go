// Package authtest serves an API mux behind sred's authentication
// (auth.Middleware) to three users, a viewer, a responder and an admin,
// each with a bearer token, for tests of what each role reads.
package authtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// The bearer tokens of the users of Serve: vera, a viewer; rita, a
// responder; adam, an admin.
const (
	Viewer    = "tok-viewer"
	Responder = "tok-responder"
	Admin     = "tok-admin"
)

// Server is a test server of a mux behind auth.Middleware.
type Server struct {
	*httptest.Server
	t testing.TB
}

// Serve serves mux behind auth.Middleware to the users of Viewer,
// Responder and Admin until the test ends.
func Serve(t testing.TB, mux *http.ServeMux) *Server {
	t.Helper()
	sum := func(token string) string { d := sha256.Sum256([]byte(token)); return hex.EncodeToString(d[:]) }
	users, err := auth.ParseUsers([]byte(fmt.Sprintf("tokens:\n  - {name: vera, sha256: %s, role: viewer}\n  - {name: rita, sha256: %s, role: responder}\n  - {name: adam, sha256: %s, role: admin}\n",
		sum(Viewer), sum(Responder), sum(Admin))))
	require.NoError(t, err)
	srv := httptest.NewServer(auth.Middleware(auth.Options{
		Authenticator: auth.NewAuthenticator(users, auth.Limits{}),
		Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
	}, mux))
	t.Cleanup(srv.Close)
	return &Server{Server: srv, t: t}
}

// Get answers GET path with the bearer token, which must be 200 OK.
func (s *Server) Get(path, token string) string {
	t := s.t
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}
