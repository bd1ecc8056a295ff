package stream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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
