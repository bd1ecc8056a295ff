package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/stream"
)

// TestNoAuthStreamsPerClient: without authentication (the trial mode)
// every client is the same anonymous principal, so the streams are bounded
// by the client's address: one address holds at most
// stream.DefaultMaxPerKey streams of each kind, the next is refused 429
// and counted in sre_stream_refused_clients_total{reason="user_limit"},
// and another address is still served. Before, no-auth clients had no key
// and one host could hold every slot by reconnecting.
func TestNoAuthStreamsPerClient(t *testing.T) {
	a, srv := runApp(t, "sqlite", "", nil)
	require.True(t, a.NoAuth())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsURL := strings.Replace(srv.URL, "http://", "ws://", 1) + StreamRoute
	sseURL := srv.URL + "/api/v1/events"

	for range stream.DefaultMaxPerKey {
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		connectSSE(t, sseURL)
	}
	_, resp, err := websocket.Dial(ctx, wsURL, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	resp, err = http.Get(sseURL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "too many event streams for")
	require.Contains(t, string(body), "127.0.0.1")

	mfs, _ := scrape(t, srv.URL)
	for _, transport := range []string{"websocket", "sse"} {
		v, ok := metricValue(mfs, "sre_stream_refused_clients_total", map[string]string{"transport": transport, "reason": "user_limit"})
		require.True(t, ok, transport)
		require.Equal(t, 1.0, v, transport)
		v, ok = metricValue(mfs, "sre_stream_refused_clients_total", map[string]string{"transport": transport, "reason": "limit"})
		require.True(t, ok, transport)
		require.Zero(t, v, transport)
	}

	// Another address (127.0.0.2, loopback too) has slots of its own.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	t.Cleanup(other.CloseIdleConnections)
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: other})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	c.CloseNow()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sseURL, nil)
	require.NoError(t, err)
	resp, err = other.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
