package stream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

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

// refused is sre_stream_refused_clients_total{reason} in reg.
func refused(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "sre_stream_refused_clients_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no sre_stream_refused_clients_total{reason=%q}", reason)
	return 0
}
