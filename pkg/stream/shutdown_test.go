package stream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// TestShutdownEndsStreams: Shutdown ends every stream at once, so that a
// server shutting down is not held by idle streams and the clients know to
// reconnect elsewhere: the SSE stream ends with ": closed: shutting down",
// a WebSocket client (subscribed, or not yet) gets a close frame 1001
// (going away) with the reason "shutting down", not a dropped connection
// (1006). Shutdown returns once the handlers have returned, and new
// streams are refused 503; http.Server.Shutdown then finds the
// connections idle.
func TestShutdownEndsStreams(t *testing.T) {
	bus := events.NewBus(16, nil)
	reg := prometheus.NewRegistry()
	hub := stream.NewHub(bus, stream.HubOptions{Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(ctx) //nolint:errcheck
	sse := stream.New(bus, stream.Options{Registerer: reg, Heartbeat: time.Hour})
	mux := http.NewServeMux()
	hub.Register(mux)
	sse.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	sc := connect(t, srv.URL+"/api/v1/events")
	require.Equal(t, "subscribed", sc.next(t).Comment)
	ws := dial(t, srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, ws.next(t).Type)
	bus.Publish(ev(1, "checkout"))
	_, got := sc.nextEvent(t)
	require.Equal(t, "checkout", got.Service)
	require.Equal(t, "incident.updated", ws.next(t).Type)
	// A client that has not sent its subscribe message yet.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
	defer dcancel()
	quiet, _, err := websocket.Dial(dctx, strings.Replace(srv.URL, "http://", "ws://", 1)+"/api/v1/stream", nil)
	require.NoError(t, err)
	t.Cleanup(func() { quiet.CloseNow() })
	require.Eventually(t, func() bool { return hub.Clients() == 2 }, time.Minute, time.Millisecond,
		"the quiet client's handler runs")

	// Both shut down at once, as the app does; the deadline is a safety
	// net: Shutdown returns when the streams have ended.
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []interface{ Shutdown(context.Context) error }{sse, hub} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Shutdown(sctx) }()
	}

	var last message
	for m := range sc.msgs {
		last = m
	}
	require.Equal(t, message{Comment: "closed: shutting down"}, last)
	for _, c := range []*websocket.Conn{ws.c, quiet} {
		_, _, err := c.Read(dctx)
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, websocket.StatusGoingAway, ce.Code)
		require.Equal(t, "shutting down", ce.Reason)
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.Equal(t, 0, hub.Clients())
	// Counted as closed by sred while it stops: one SSE client, two
	// WebSocket clients (subscribed, and not yet).
	require.Equal(t, 1.0, byReason(t, reg, "sre_stream_closed_clients_total", "sse", "shutdown"))
	require.Equal(t, 2.0, byReason(t, reg, "sre_stream_closed_clients_total", "websocket", "shutdown"))

	// New streams are refused while the server shuts down.
	require.Equal(t, http.StatusServiceUnavailable, connect(t, srv.URL+"/api/v1/events").resp.StatusCode)
	_, resp, err := websocket.Dial(dctx, strings.Replace(srv.URL, "http://", "ws://", 1)+"/api/v1/stream", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// No stream holds the server's shutdown: it returns without its
	// deadline (a minute, a safety net).
	require.NoError(t, srv.Config.Shutdown(sctx))
	// Shutdown again waits for nothing.
	require.NoError(t, hub.Shutdown(sctx))
}
