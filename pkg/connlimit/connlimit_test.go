package connlimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestCap holds max idle keep-alive connections open to a real HTTP
// server: the next connection is answered 503 by the listener, the held
// connections keep being served, and once one closes a new connection is
// served again.
func TestCap(t *testing.T) {
	const max = 5
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	l := New(max, "web", reg)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), ReadHeaderTimeout: time.Minute}
	go srv.Serve(l.Listen(raw)) //nolint:errcheck // closed below
	t.Cleanup(func() { srv.Close() })

	get := func(c net.Conn) string {
		t.Helper()
		_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
		resp.Body.Close()
		return resp.Status + " " + string(b)
	}
	var held []net.Conn
	for range max {
		c, err := net.Dial("tcp", raw.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.Equal(t, "200 OK ok", get(c))
		held = append(held, c)
	}
	require.Equal(t, max, l.Open())

	over, err := net.Dial("tcp", raw.Addr().String())
	require.NoError(t, err)
	defer over.Close()
	b, err := io.ReadAll(over) // the listener answers and closes
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "HTTP/1.1 503 Service Unavailable\r\n"), string(b))
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, "too many open connections, retry in a moment\n", string(body))
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.refused))

	// The held connections are still served.
	require.Equal(t, "200 OK ok", get(held[0]))

	// One closes: a new connection is served once the server saw it close.
	held[1].Close()
	require.Eventually(t, func() bool { return l.Open() == max-1 }, time.Minute, 10*time.Millisecond)
	c, err := net.Dial("tcp", raw.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "200 OK ok", get(c))
	require.Equal(t, float64(max), testutil.ToFloat64(l.metrics.open))
}
