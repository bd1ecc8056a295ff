package connlimit

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

	// A real client (a new connection, as Alertmanager's next delivery)
	// reads the refusal as an HTTP answer.
	over := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := over.Post("http://"+raw.Addr().String()+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(`{"alerts":[]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "too many open connections, retry in a moment\n", string(body))
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.refused))

	// A client that sends its request in pieces gets the answer too.
	raw503, err := net.Dial("tcp", raw.Addr().String())
	require.NoError(t, err)
	defer raw503.Close()
	_, err = io.WriteString(raw503, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	b, err := io.ReadAll(raw503) // the listener answers and closes
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "HTTP/1.1 503 Service Unavailable\r\n"), string(b))

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

// TestCapTLS: over TLS the connection beyond the cap completes its TLS
// handshake (with the server's certificate) and reads a proper 503 with
// Connection: close, as a plain HTTP client does; the held TLS connections
// keep being served.
func TestCapTLS(t *testing.T) {
	const max = 3
	reg := prometheus.NewRegistry()
	l := New(max, "web", reg)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Listener = l.ListenTLS(srv.Listener, func() *tls.Config { return srv.TLS })
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	var held []*tls.Conn
	for range max {
		c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"http/1.1"}})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	require.Eventually(t, func() bool { return l.Open() == max }, time.Minute, 10*time.Millisecond)

	// A new client, offering HTTP/2 as Go's client does, reads the 503.
	over := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}}}
	resp, err := over.Post(srv.URL+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(`{"alerts":[]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.True(t, resp.Close, "Connection: close")
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "too many open connections, retry in a moment\n", string(body))
	require.NotNil(t, resp.TLS, "answered over TLS")
	require.Equal(t, 1.0, testutil.ToFloat64(l.metrics.refused))

	// A held connection is still served.
	_, err = io.WriteString(held[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	r, err := http.ReadResponse(bufio.NewReader(held[0]), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	require.Equal(t, "ok", string(b))
}
