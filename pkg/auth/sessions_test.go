package auth_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
)

// TestStreamsEndWhenCredentialsRevoked: a stream route's request (Access
// .Stream) is ended by the reload (SetUsers) that removes its user or
// token, changes its password or token, or changes its role in any way,
// lowered (even to one the route still allows) or raised; the cause says
// which. Other reloads leave it open.
func TestStreamsEndWhenCredentialsRevoked(t *testing.T) {
	users := func(rita, ritaRole, ci, bot string) string {
		s := "users:\n  vera: {password: '" + hash(t, "vera-pw") + "', role: viewer}\n"
		if rita != "" {
			s += "  rita: {password: '" + rita + "', role: " + ritaRole + "}\n"
		}
		s += "tokens:\n"
		if ci != "" {
			s += "  - {name: ci, sha256: " + ci + ", role: responder}\n"
		}
		if bot != "" {
			s += "  - {name: bot, hash: '" + bot + "', role: admin}\n"
		}
		return s
	}
	ritaHash, botHash := hash(t, "rita-pw"), hash(t, "tok-bot")
	before := users(ritaHash, "responder", sha("tok-ci"), botHash)
	streams := []req{
		{method: "GET", path: "/stream", user: "rita", pass: "rita-pw"},
		{method: "GET", path: "/stream", token: "tok-ci"},
		{method: "GET", path: "/stream", token: "tok-bot"},
	}
	for _, c := range []struct {
		name  string
		after string
		// ended are the causes of the streams of rita, ci and bot ("":
		// still open).
		ended [3]string
	}{
		{"same users", before, [3]string{}},
		{"vera removed", strings.Replace(before, "  vera:", "  vera2:", 1), [3]string{}},
		{"rita removed", users("", "", sha("tok-ci"), botHash), [3]string{"credentials revoked: rita no longer exists"}},
		{"rita's password changed", users(hash(t, "rita-pw"), "responder", sha("tok-ci"), botHash), [3]string{"credentials revoked: the password of rita changed"}},
		// What a stream shows depends on the role it was opened with (an
		// admin's carries the server's paths whole): any change of role
		// ends it, so that its client reconnects under the new one.
		{"rita lowered to viewer", users(ritaHash, "viewer", sha("tok-ci"), botHash), [3]string{"credentials revoked: the role of rita changed from responder to viewer"}},
		{"rita raised to admin", users(ritaHash, "admin", sha("tok-ci"), botHash), [3]string{"credentials revoked: the role of rita changed from responder to admin"}},
		{"bot lowered to responder", strings.Replace(before, "role: admin}", "role: responder}", 1), [3]string{"", "", "credentials revoked: the role of bot changed from admin to responder"}},
		{"tokens removed", users(ritaHash, "responder", "", ""), [3]string{"", "credentials revoked: ci no longer exists", "credentials revoked: bot no longer exists"}},
		{"tokens changed", users(ritaHash, "responder", sha("tok-ci-2"), hash(t, "tok-bot")), [3]string{"", "credentials revoked: token ci changed", "credentials revoked: token bot changed"}},
		{"nobody", "", [3]string{"credentials revoked: rita no longer exists", "credentials revoked: ci no longer exists", "credentials revoked: bot no longer exists"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := auth.ParseUsers([]byte(before))
			require.NoError(t, err)
			a := auth.NewAuthenticator(f, auth.Limits{})
			opened := make(chan context.Context, len(streams))
			mux := http.NewServeMux()
			mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "open\n")
				http.NewResponseController(w).Flush() //nolint:errcheck
				opened <- r.Context()
				<-r.Context().Done()
				_, _ = fmt.Fprintf(w, "closed: %v\n", context.Cause(r.Context()))
			})
			srv := httptest.NewServer(auth.Middleware(auth.Options{
				Authenticator: a,
				Routes:        map[string]auth.Access{"GET /stream": {Role: auth.RoleResponder, Stream: true}},
				Route:         func(r *http.Request) string { _, p := mux.Handler(r); return p },
			}, mux))
			t.Cleanup(srv.Close)

			bodies := make([]*bufio.Reader, len(streams))
			ctxs := make([]context.Context, len(streams))
			for i, s := range streams {
				r, err := http.NewRequestWithContext(t.Context(), s.method, srv.URL+s.path, nil)
				require.NoError(t, err)
				if s.user != "" {
					r.SetBasicAuth(s.user, s.pass)
				} else {
					r.Header.Set("Authorization", "Bearer "+s.token)
				}
				resp, err := http.DefaultClient.Do(r)
				require.NoError(t, err)
				t.Cleanup(func() { resp.Body.Close() })
				require.Equal(t, http.StatusOK, resp.StatusCode)
				bodies[i] = bufio.NewReader(resp.Body)
				line, err := bodies[i].ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, "open\n", line)
				ctxs[i] = await(t, opened, "the stream's handler")
			}
			require.Equal(t, 3, a.Sessions())

			next, err := auth.ParseUsers([]byte(c.after))
			require.NoError(t, err)
			a.SetUsers(next)
			open := 0
			for i, cause := range c.ended {
				if cause == "" {
					// SetUsers ends the streams it revokes before it
					// returns: this one is open.
					require.NoError(t, ctxs[i].Err(), "stream %d", i)
					open++
					continue
				}
				require.ErrorIs(t, context.Cause(ctxs[i]), auth.ErrRevoked)
				rest, err := io.ReadAll(bodies[i])
				require.NoError(t, err, "the stream ends")
				require.Equal(t, "closed: "+cause+"\n", string(rest))
			}
			require.Equal(t, open, a.Sessions())
		})
	}
}
