package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// TestReloadEndsRevokedStreams: the live streams (SSE and WebSocket, on
// the web listener and the stream listener) of a user removed from the
// users file, and of a token whose secret changed, end when POST
// /-/reload applies the file: the SSE stream with a last ": closed: <why>"
// comment, the WebSocket with a close frame 1008 <why>. The streams of an
// unchanged user go on.
func TestReloadEndsRevokedStreams(t *testing.T) {
	dir := t.TempDir()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		require.NoError(t, err)
		return string(h)
	}
	sha := func(tok string) string {
		d := sha256.Sum256([]byte(tok))
		return hex.EncodeToString(d[:])
	}
	users := filepath.Join(dir, "users.yml")
	adam, rita, vic := hash("adam-pw"), hash("rita-pw"), hash("vic-pw")
	write := func(withVic bool, ciToken string) {
		s := fmt.Sprintf("users:\n  adam: {password: '%s', role: admin}\n  rita: {password: '%s', role: viewer}\n", adam, rita)
		if withVic {
			s += fmt.Sprintf("  vic: {password: '%s', role: viewer}\n", vic)
		}
		s += fmt.Sprintf("tokens:\n  - {name: ci, sha256: %s, role: viewer}\n", sha(ciToken))
		require.NoError(t, os.WriteFile(users, []byte(s), 0o600))
	}
	write(true, "tok-ci")
	a, srv := runApp(t, "sqlite", fmt.Sprintf("auth:\n  users_file: %s\n", users), nil)
	streamSrv := httptest.NewServer(a.StreamHandler())
	t.Cleanup(streamSrv.Close)

	basic := func(user, pw string) http.Header {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pw)
		return r.Header
	}
	token := http.Header{"Authorization": {"Bearer tok-ci"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(base string, hdr http.Header) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+StreamRoute, &websocket.DialOptions{HTTPHeader: hdr})
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{}`)))
		require.Equal(t, stream.TypeSubscribed, readWS(ctx, t, c).Type)
		return c
	}
	sseVic := connectSSEHeader(t, srv.URL+"/api/v1/events", basic("vic", "vic-pw"))
	sseCI := connectSSEHeader(t, srv.URL+"/api/v1/events", token)
	sseRita := connectSSEHeader(t, srv.URL+"/api/v1/events", basic("rita", "rita-pw"))
	wsVic := dial(srv.URL, basic("vic", "vic-pw"))
	wsCI := dial(streamSrv.URL, token)
	wsRita := dial(streamSrv.URL, basic("rita", "rita-pw"))

	// vic leaves, ci's token is replaced.
	write(false, "tok-ci-2")
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/-/reload", nil)
	require.NoError(t, err)
	req.SetBasicAuth("adam", "adam-pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for _, c := range []struct {
		sse *sseClient
		why string
	}{
		{sseVic, "credentials revoked: vic no longer exists"},
		{sseCI, "credentials revoked: token ci changed"},
	} {
		rest := c.sse.rest(t)
		require.NotEmpty(t, rest)
		require.Equal(t, "closed: "+c.why, rest[len(rest)-1].comment)
	}
	for _, c := range []struct {
		ws  *websocket.Conn
		why string
	}{
		{wsVic, "credentials revoked: vic no longer exists"},
		{wsCI, "credentials revoked: token ci changed"},
	} {
		var err error
		for err == nil {
			_, _, err = c.ws.Read(ctx)
		}
		var ce websocket.CloseError
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
		require.Equal(t, c.why, ce.Reason)
	}
	require.NoError(t, testutil.GatherAndCompare(a.Registry, strings.NewReader(`
# HELP sre_auth_streams_revoked_total Live streams (/api/v1/events, /api/v1/stream) ended because a reload removed their user or token, changed its password or token, or lowered its role below the stream's.
# TYPE sre_auth_streams_revoked_total counter
sre_auth_streams_revoked_total 4
`), "sre_auth_streams_revoked_total"))

	// rita's streams go on.
	a.Bus.Publish(events.Event{Type: "test.after_reload", Time: time.Now()})
	sseRita.waitEvent(t, "test.after_reload")
	for readWS(ctx, t, wsRita).Type != "test.after_reload" {
		// Events of sred itself, published meanwhile.
	}
	code, _ := getJSON(t, srv.URL+"/api/v1/incidents", map[string]string{"Authorization": basic("vic", "vic-pw").Get("Authorization")}, nil)
	require.Equal(t, http.StatusUnauthorized, code)
}
