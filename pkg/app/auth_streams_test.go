package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
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
	a, srv, streamSrv := runStreamApp(t, users)
	basic := basicHeader
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
	reloadAt(t, srv.URL)

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
# HELP sre_auth_streams_revoked_total Live streams (/api/v1/events, /api/v1/stream) and running profiles (/debug/pprof/profile, /debug/pprof/trace) ended because a reload removed their user or token, changed its password or token, or changed its role (lowered or raised).
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

// TestReloadEndsStreamsOfChangedRoles: what a live stream shows depends on
// the role it was opened with (an admin's carries the server's paths
// whole). A reload that demotes an admin to viewer ends the admin's SSE
// and WebSocket streams (": closed: credentials revoked: the role of dora
// changed from admin to viewer", close 1008 with the same reason): an
// event with a server path published after the reload never reaches them
// whole, and the streams dora opens again show its base name. A promotion
// ends the stream too, and the new one shows paths whole.
func TestReloadEndsStreamsOfChangedRoles(t *testing.T) {
	users := newUsersFile(t)
	write := func(doraRole, vicRole string) { users.write("adam:admin", "dora:"+doraRole, "vic:"+vicRole) }
	write("admin", "viewer")
	a, srv, streamSrv := runStreamApp(t, users.path)
	basic := basicHeader
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const sub = `{"types":["runbook.step_failed"]}`
	dial := func(base string, hdr http.Header) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+StreamRoute, &websocket.DialOptions{HTTPHeader: hdr})
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(sub)))
		require.Equal(t, stream.TypeSubscribed, readWS(ctx, t, c).Type)
		return c
	}
	events1 := "/api/v1/events?type=runbook.step_failed"
	// publish publishes a runbook step's failure naming a file of the
	// server under dir and returns the error as an admin reads it.
	publish := func(dir string) string {
		msg := "open /etc/sred/" + dir + "/db-password: permission denied"
		a.Bus.Publish(events.Event{Type: "runbook.step_failed", Time: time.Now(), Data: map[string]any{"error": msg}})
		return msg
	}
	wsError := func(c *websocket.Conn) string {
		m := readWS(ctx, t, c)
		require.Equal(t, "runbook.step_failed", m.Type)
		return m.Data["error"].(string)
	}

	sseDora := connectSSEHeader(t, srv.URL+events1, basic("dora", "dora-pw"))
	sseVic := connectSSEHeader(t, srv.URL+events1, basic("vic", "vic-pw"))
	wsDora := dial(srv.URL, basic("dora", "dora-pw"))
	wsDora2 := dial(streamSrv.URL, basic("dora", "dora-pw"))

	// dora is an admin: the path whole; vic, a viewer, its base name.
	whole := publish("before")
	ev, _ := sseDora.waitEvent(t, "runbook.step_failed")
	require.Equal(t, whole, ev.Data["error"])
	ev, _ = sseVic.waitEvent(t, "runbook.step_failed")
	require.Equal(t, "open db-password: permission denied", ev.Data["error"])
	require.Equal(t, whole, wsError(wsDora))
	require.Equal(t, whole, wsError(wsDora2))

	// dora is demoted to viewer, vic promoted to admin.
	write("viewer", "admin")
	reloadAt(t, srv.URL)
	// Published once the reload answered: dora's old streams must not
	// carry it whole.
	after := publish("after-reload")

	demoted := "credentials revoked: the role of dora changed from admin to viewer"
	rest := sseDora.rest(t)
	require.NotEmpty(t, rest)
	for _, m := range rest {
		require.NotContains(t, m.data, "/etc/sred/", "the demoted admin's stream after the reload")
	}
	require.Equal(t, "closed: "+demoted, rest[len(rest)-1].comment)
	rest = sseVic.rest(t)
	require.NotEmpty(t, rest)
	require.Equal(t, "closed: credentials revoked: the role of vic changed from viewer to admin", rest[len(rest)-1].comment)
	for _, ws := range []*websocket.Conn{wsDora, wsDora2} {
		var err error
		for {
			var b []byte
			_, b, err = ws.Read(ctx)
			if err != nil {
				break
			}
			require.NotContains(t, string(b), "/etc/sred/", "the demoted admin's stream after the reload")
		}
		var ce websocket.CloseError
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
		require.Equal(t, demoted, ce.Reason)
	}

	// Reconnected, dora reads as a viewer, vic as an admin.
	sseDora = connectSSEHeader(t, srv.URL+events1, basic("dora", "dora-pw"))
	sseVic = connectSSEHeader(t, srv.URL+events1, basic("vic", "vic-pw"))
	wsDora = dial(streamSrv.URL, basic("dora", "dora-pw"))
	require.Equal(t, "open /etc/sred/after-reload/db-password: permission denied", after)
	whole = publish("reconnected")
	ev, _ = sseDora.waitEvent(t, "runbook.step_failed")
	require.Equal(t, "open db-password: permission denied", ev.Data["error"])
	require.Equal(t, "open db-password: permission denied", wsError(wsDora))
	ev, _ = sseVic.waitEvent(t, "runbook.step_failed")
	require.Equal(t, whole, ev.Data["error"])
}
