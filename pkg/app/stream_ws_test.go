package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/rootuip/sre/pkg/stream"
)

// TestStreamWebSocketAuth: GET /api/v1/stream needs a viewer like every
// read route (401 without credentials), refuses cross-origin browser
// upgrades, and a viewer sees an incident a responder opens by hand. The
// stream listener's handler (--web.stream-address) serves only the stream,
// with the same authentication.
func TestStreamWebSocketAuth(t *testing.T) {
	users := newUsersFile(t)
	users.write("vic:viewer", "rita:responder")
	_, srv, streamSrv := runStreamApp(t, users.path)
	basic := basicHeader
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsURL := func(base string) string { return strings.Replace(base, "http://", "ws://", 1) + StreamRoute }

	for _, base := range []string{srv.URL, streamSrv.URL} {
		_, resp, err := websocket.Dial(ctx, wsURL(base), nil)
		require.Error(t, err)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, base)
		_, resp, err = websocket.Dial(ctx, wsURL(base), &websocket.DialOptions{HTTPHeader: basic("vic", "wrong")})
		require.Error(t, err)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		// A page of another origin cannot use the browser's credentials.
		h := basic("vic", "vic-pw")
		h.Set("Origin", "https://evil.example")
		_, resp, err = websocket.Dial(ctx, wsURL(base), &websocket.DialOptions{HTTPHeader: h})
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
	// The stream listener serves nothing else.
	req, err := http.NewRequest(http.MethodGet, streamSrv.URL+"/api/v1/incidents", nil)
	require.NoError(t, err)
	req.SetBasicAuth("vic", "vic-pw")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	var conns []*websocket.Conn
	for _, base := range []string{srv.URL, streamSrv.URL} {
		c, resp, err := websocket.Dial(ctx, wsURL(base), &websocket.DialOptions{HTTPHeader: basic("vic", "vic-pw")})
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		t.Cleanup(func() { c.CloseNow() })
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"types":["incident.created"]}`)))
		require.Equal(t, stream.TypeSubscribed, readWS(ctx, t, c).Type)
		conns = append(conns, c)
	}

	req, err = http.NewRequest(http.MethodPost, srv.URL+"/api/v1/incidents",
		strings.NewReader(`{"title":"Checkout slow","service":"checkout","severity":"HIGH","description":"p99 over 2s"}`))
	require.NoError(t, err)
	req.SetBasicAuth("rita", "rita-pw")
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	for _, c := range conns {
		m := readWS(ctx, t, c)
		require.Equal(t, "incident.created", m.Type)
		require.Equal(t, "checkout", m.Service)
		require.NotEmpty(t, m.ID)
	}
}

// TestStreamListenerConsoleOrigin: on a stream listener of its own
// (--web.stream-address, another port), the WebSocket stream lets in a
// page of the console, whose origin is the web listener's (same host,
// the web listener's port) or global.external_url, and still refuses
// every other site: another host on the web port, the same host on
// another port or scheme, an external URL's look-alike. Before, the
// console's origin was refused as cross-origin.
func TestStreamListenerConsoleOrigin(t *testing.T) {
	users := newUsersFile(t)
	users.write("vic:viewer")
	a, srv := runApp(t, "sqlite", fmt.Sprintf("global:\n  external_url: https://sre.example.com/sred\nauth:\n  users_file: %s\n", users.path), nil)
	streamSrv := httptest.NewServer(a.StreamHandler(srv.Listener.Addr().String()))
	t.Cleanup(streamSrv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, webPort, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	_, streamPort, err := net.SplitHostPort(streamSrv.Listener.Addr().String())
	require.NoError(t, err)

	dial := func(base, origin string) (*websocket.Conn, *http.Response, error) {
		h := basicHeader("vic", "vic-pw")
		h.Set("Origin", origin)
		return websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+StreamRoute, &websocket.DialOptions{HTTPHeader: h})
	}
	for _, origin := range []string{srv.URL, "https://sre.example.com", "https://SRE.example.com"} {
		c, resp, err := dial(streamSrv.URL, origin)
		require.NoError(t, err, origin)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode, origin)
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{}`)))
		require.Equal(t, stream.TypeSubscribed, readWS(ctx, t, c).Type, origin)
		c.CloseNow()
	}
	for _, origin := range []string{
		"http://evil.example:" + webPort,
		"http://localhost:" + webPort,
		"https://127.0.0.1:" + webPort,
		"http://127.0.0.1:1",
		"http://sre.example.com",
		"https://sre.example.com.evil.example",
		"https://sre.example.com:8443",
		"null",
	} {
		_, resp, err := dial(streamSrv.URL, origin)
		require.Error(t, err, origin)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
	// On the web listener the console has the stream's own origin; a page
	// of the stream listener's port or of the external URL is another
	// site there, as before.
	for _, origin := range []string{"http://127.0.0.1:" + streamPort, "https://sre.example.com"} {
		_, resp, err := dial(srv.URL, origin)
		require.Error(t, err, origin)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
	}
	c, _, err := dial(srv.URL, srv.URL)
	require.NoError(t, err)
	c.CloseNow()
}

func readWS(ctx context.Context, t *testing.T, c *websocket.Conn) stream.Message {
	t.Helper()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	var m stream.Message
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

// TestShutdownEndsStreams: Shutdown ends the WebSocket streams of the web
// listener and of the stream listener's handler with a close frame 1001
// (going away) and the SSE stream with ": closed: shutting down", then
// refuses new streams 503.
func TestShutdownEndsStreams(t *testing.T) {
	a, srv := runApp(t, "sqlite", "", nil)
	streamSrv := httptest.NewServer(a.StreamHandler())
	t.Cleanup(streamSrv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var conns []*websocket.Conn
	for _, base := range []string{srv.URL, streamSrv.URL} {
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+StreamRoute, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{}`)))
		require.Equal(t, stream.TypeSubscribed, readWS(ctx, t, c).Type)
		conns = append(conns, c)
	}

	require.NoError(t, a.Shutdown(ctx))
	for _, c := range conns {
		_, _, err := c.Read(ctx)
		require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, ": subscribed\n\n: closed: shutting down\n\n", string(b))

	r2, err := http.Get(srv.URL + "/api/v1/events")
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, r2.StatusCode)
	_, r3, err := websocket.Dial(ctx, strings.Replace(streamSrv.URL, "http://", "ws://", 1)+StreamRoute, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r3.StatusCode)
}

// runStreamApp runs sred on SQLite with the users file users and its
// stream listener beside the web one (a.StreamHandler).
func runStreamApp(t *testing.T, users string) (*App, *httptest.Server, *httptest.Server) {
	t.Helper()
	a, srv := runApp(t, "sqlite", fmt.Sprintf("auth:\n  users_file: %s\n", users), nil)
	streamSrv := httptest.NewServer(a.StreamHandler())
	t.Cleanup(streamSrv.Close)
	return a, srv, streamSrv
}

// usersFile writes a users file whose users' passwords are "<name>-pw",
// each hashed once: a rewrite changes only the roles it names, never a
// hash (a reload would take a new hash for a changed password).
type usersFile struct {
	t      *testing.T
	path   string
	hashes map[string]string
}

func newUsersFile(t *testing.T) *usersFile {
	return &usersFile{t: t, path: filepath.Join(t.TempDir(), "users.yml"), hashes: map[string]string{}}
}

// write writes the users, each "name:role", in order.
func (u *usersFile) write(users ...string) {
	u.t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, nr := range users {
		name, role, _ := strings.Cut(nr, ":")
		h, ok := u.hashes[name]
		if !ok {
			hb, err := bcrypt.GenerateFromPassword([]byte(name+"-pw"), bcrypt.MinCost)
			require.NoError(u.t, err)
			h = string(hb)
			u.hashes[name] = h
		}
		fmt.Fprintf(&b, "  %s: {password: '%s', role: %s}\n", name, h, role)
	}
	require.NoError(u.t, os.WriteFile(u.path, []byte(b.String()), 0o600))
}

// basicHeader is the header of a request with basic auth user:pw.
func basicHeader(user, pw string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pw)
	return r.Header
}
