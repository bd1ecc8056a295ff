package stream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// byUserAgent keys streams by User-Agent, standing in for the principal
// sred keys them by.
func byUserAgent(r *http.Request) string { return r.UserAgent() }

// TestStreamsPerKey: one principal holds at most MaxPerKey event streams
// at once (429 naming it beyond), so it cannot take every slot of
// MaxClients; another principal is still served, and a slot given back is
// free again.
func TestStreamsPerKey(t *testing.T) {
	_, srv := start(t, stream.Options{MaxClients: 10, MaxPerKey: 2, ClientKey: byUserAgent, Heartbeat: time.Hour})
	url := srv.URL + "/api/v1/events"
	first := connect(t, url)
	require.Equal(t, "subscribed", first.next(t).Comment)
	second := connect(t, url)
	require.Equal(t, "subscribed", second.next(t).Comment)

	resp, err := http.Get(url)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusTooManyRequests {
		resp.Body.Close() // a stream: reading it would not end
		t.Fatalf("a third stream of one principal: %s, want 429", resp.Status)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `too many event streams for \"Go-http-client/1.1\" (at most 2 at once)`)

	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "someone-else")
	other, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	other.Body.Close()
	require.Equal(t, http.StatusOK, other.StatusCode, "another principal is served")

	first.cancel()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 10*time.Millisecond, "the slot given back is free again")
}

// TestWebSocketClientsPerKey: the same bound on the WebSocket stream.
func TestWebSocketClientsPerKey(t *testing.T) {
	f := startHub(t, stream.HubOptions{MaxPerKey: 1, ClientKey: byUserAgent})
	c := dial(t, f.srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(f.srv.URL, "http://", "ws://", 1)+"/api/v1/stream", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
}

// TestWebSocketRefusalsCounted: every client refused before the handshake
// is answered in the API's envelope naming the limit, and counted in
// sre_stream_refused_clients_total by reason, so that an operator sees
// from /metrics that users are turned away.
func TestWebSocketRefusalsCounted(t *testing.T) {
	for _, c := range []struct {
		reason string
		o      stream.HubOptions
		first  bool // a first client holds the only slot
		stop   bool // the hub is shut down first
		code   int
		msg    string
	}{
		{"limit", stream.HubOptions{MaxClients: 1}, true, false, http.StatusServiceUnavailable, "too many stream clients (at most 1)"},
		{"user_limit", stream.HubOptions{MaxPerKey: 1, ClientKey: byUserAgent}, true, false, http.StatusTooManyRequests, "too many event streams for"},
		{"shutdown", stream.HubOptions{}, false, true, http.StatusServiceUnavailable, "event stream: shutting down"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			f := startHub(t, c.o)
			if c.first {
				require.Equal(t, stream.TypeSubscribed, dial(t, f.srv.URL, `{}`).next(t).Type)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if c.stop {
				require.NoError(t, f.hub.Shutdown(ctx))
			}
			_, resp, err := websocket.Dial(ctx, strings.Replace(f.srv.URL, "http://", "ws://", 1)+"/api/v1/stream", nil)
			require.Error(t, err)
			require.Equal(t, c.code, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Contains(t, string(body), c.msg)
			for _, r := range []string{"limit", "user_limit", "shutdown"} {
				want := 0.0
				if r == c.reason {
					want = 1
				}
				require.Equal(t, want, refused(t, f.reg, r), "reason %s", r)
			}
		})
	}
}

// refused is sre_stream_refused_clients_total{transport="websocket",reason} in reg.
func refused(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	return byReason(t, reg, "sre_stream_refused_clients_total", "websocket", reason)
}

// byReason is the counter name{transport, reason} in reg; a test fails
// when it is not there.
func byReason(t *testing.T, reg *prometheus.Registry, name, transport, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["transport"] == transport && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{transport=%q,reason=%q}", name, transport, reason)
	return 0
}

// TestStreamRefusalsCounted: the SSE clients refused (at the limit of
// clients at once, of one user, while sred stops) are counted in
// sre_stream_refused_clients_total with transport="sse", as the
// WebSocket's are with transport="websocket".
func TestStreamRefusalsCounted(t *testing.T) {
	for _, c := range []struct {
		reason string
		o      stream.Options
		first  bool // a first client holds the only slot
		stop   bool // the handler is shut down first
		code   int
		msg    string
	}{
		{"limit", stream.Options{MaxClients: 1}, true, false, http.StatusServiceUnavailable, "too many event stream clients (at most 1)"},
		{"user_limit", stream.Options{MaxPerKey: 1, ClientKey: byUserAgent}, true, false, http.StatusTooManyRequests, "too many event streams for"},
		{"shutdown", stream.Options{}, false, true, http.StatusServiceUnavailable, "event stream: shutting down"},
	} {
		t.Run(c.reason, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c.o.Registerer, c.o.Heartbeat = reg, time.Hour
			h := stream.New(events.NewBus(16, nil), c.o)
			// The WebSocket hub shares the metric, with a transport of its own.
			stream.NewHub(nil, stream.HubOptions{Registerer: reg})
			mux := http.NewServeMux()
			h.Register(mux)
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			url := srv.URL + "/api/v1/events"
			if c.first {
				require.Equal(t, "subscribed", connect(t, url).next(t).Comment)
			}
			if c.stop {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				require.NoError(t, h.Shutdown(ctx))
			}
			resp, err := http.Get(url)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, c.code, resp.StatusCode)
			require.Contains(t, string(body), c.msg)
			for _, r := range []string{"limit", "user_limit", "shutdown"} {
				want := 0.0
				if r == c.reason {
					want = 1
				}
				require.Equal(t, want, byReason(t, reg, "sre_stream_refused_clients_total", "sse", r), "reason %s", r)
				require.Zero(t, byReason(t, reg, "sre_stream_refused_clients_total", "websocket", r), "reason %s", r)
			}
		})
	}
}
