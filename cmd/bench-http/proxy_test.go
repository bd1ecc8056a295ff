package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// backend is a server behind the proxy: it answers with its name, the
// status the request's X-Status asks for (200 when none) and the request's
// body.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := http.StatusOK
		if s := r.Header.Get("X-Status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.Header().Set("X-Backend", name)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// downAddr is a loopback address where nothing listens: a port FreePort
// reserved, which no listener on port 0 and no other test is given.
func downAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

// conn is one client connection to the proxy, sending requests one at a
// time on it (keep-alive).
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *proxy) *conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &conn{c: c, r: bufio.NewReader(c)}
}

// do posts body and returns the answer, or the error of reading it.
func (c *conn) do(body []byte, status int) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://backend/api/v1/webhook/alertmanager", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if status != 0 {
		req.Header.Set("X-Status", strconv.Itoa(status))
	}
	if err := req.Write(c.c); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.r, req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// TestProxyRoundRobin: every new connection goes to the next backend in
// turn, and every request of one connection to the same backend.
func TestProxyRoundRobin(t *testing.T) {
	a, b, c := backend(t, "a"), backend(t, "b"), backend(t, "c")
	p, err := startProxy([]string{hostOf(a), hostOf(b), hostOf(c)})
	require.NoError(t, err)
	defer p.Close()
	var got []string
	for i := range 7 {
		cn := dial(t, p)
		var names []string
		for j := range 3 {
			resp, body, err := cn.do(fmt.Appendf(nil, "delivery %d.%d", i, j), 0)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, fmt.Sprintf("delivery %d.%d", i, j), string(body))
			names = append(names, resp.Header.Get("X-Backend"))
		}
		require.Equal(t, []string{names[0], names[0], names[0]}, names, "connection %d: one backend for all its requests", i)
		got = append(got, names[0])
	}
	require.Equal(t, []string{"a", "b", "c", "a", "b", "c", "a"}, got)
}

// TestProxyForwards: the request's body and the answer's status and body
// cross the proxy unchanged, whatever their size.
func TestProxyForwards(t *testing.T) {
	p, err := startProxy([]string{hostOf(backend(t, "a"))})
	require.NoError(t, err)
	defer p.Close()
	big := bytes.Repeat([]byte(`{"alerts":[{"status":"firing"}]}`), 64<<10) // 2 MiB
	tests := []struct {
		name   string
		body   []byte
		status int
	}{
		{name: "empty", body: nil, status: http.StatusOK},
		{name: "delivery", body: []byte(`{"version":"4","status":"firing"}`), status: http.StatusOK},
		{name: "created", body: []byte("x"), status: http.StatusCreated},
		{name: "refused", body: []byte(`{"error":"bad"}`), status: http.StatusBadRequest},
		{name: "unavailable", body: []byte("busy"), status: http.StatusServiceUnavailable},
		{name: "large", body: big, status: http.StatusOK},
	}
	cn := dial(t, p)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := cn.do(tt.body, tt.status)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, len(tt.body), len(body))
			require.True(t, bytes.Equal(tt.body, body), "body changed on the way")
		})
	}
}

// TestProxyBackendDown: a connection handed to a backend that refuses is
// closed without an answer, and the next connection goes to the next
// backend, which answers.
func TestProxyBackendDown(t *testing.T) {
	up := backend(t, "up")
	p, err := startProxy([]string{hostOf(up), downAddr(t)})
	require.NoError(t, err)
	defer p.Close()
	for i, wantUp := range []bool{true, false, true, false, true} {
		cn := dial(t, p)
		resp, _, err := cn.do([]byte("delivery"), 0)
		if wantUp {
			require.NoError(t, err, "connection %d", i)
			require.Equal(t, "up", resp.Header.Get("X-Backend"))
			continue
		}
		// Either the write or the read of the answer fails: the proxy
		// closed the connection.
		require.Error(t, err, "connection %d went to the backend that is down", i)
	}
}

// TestProxyClose: Close closes the connections it carries (so that the
// load generator's keep-alive connections do not hold it) and then
// refuses new ones.
func TestProxyClose(t *testing.T) {
	p, err := startProxy([]string{hostOf(backend(t, "a"))})
	require.NoError(t, err)
	cn := dial(t, p)
	_, _, err = cn.do([]byte("delivery"), 0)
	require.NoError(t, err)
	addr := p.Addr()
	p.Close()
	_, err = cn.r.ReadByte()
	require.Error(t, err, "the idle client connection is closed")
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("the proxy still accepts at %s", addr)
	}
}

// TestDelayProxy: through a proxy with a delay, what is sent arrives
// unchanged and in order, and a round trip takes at least the delay each
// way.
func TestDelayProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }() // echo
		}
	}()
	const delay = 20 * time.Millisecond
	p, err := startDelayProxy([]string{ln.Addr().String()}, delay)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()

	start := time.Now()
	msg := []byte("ping")
	_, err = c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	require.GreaterOrEqual(t, time.Since(start), 2*delay, "a round trip crosses the delay both ways")

	// Ten messages sent at once come back in order.
	var want bytes.Buffer
	for i := range 10 {
		m := fmt.Sprintf("message %d;", i)
		want.WriteString(m)
		_, err := c.Write([]byte(m))
		require.NoError(t, err)
	}
	got = make([]byte, want.Len())
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, want.String(), string(got))
}
