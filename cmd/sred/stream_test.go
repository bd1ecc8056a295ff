package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestStreamListener runs sred with --web.stream-address and
// --web.status-address: the WebSocket
// stream answers on the second port (and nothing else does), and carries
// an incident opened through the web listener.
func TestStreamListener(t *testing.T) {
	port, statusPort := testutil.FreePort(t), testutil.FreePort(t)
	s := start(t, fmt.Sprintf("--web.stream-address=127.0.0.1:%d", port), fmt.Sprintf("--web.status-address=127.0.0.1:%d", statusPort),
		"--storage.path="+t.TempDir(), "--config.file=/dev/null")
	base := fmt.Sprintf("127.0.0.1:%d", port)

	// The status listener serves the public page and nothing else.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status.json", statusPort))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/stream", statusPort))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	resp, err = http.Get("http://" + base + "/api/v1/incidents")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the stream listener serves the stream only")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+base+"/api/v1/stream", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"types":["incident.created"]}`)))
	var m struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Service string `json:"service"`
	}
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, "stream.subscribed", m.Type)

	code, body := s.do(t, http.MethodPost, "/api/v1/incidents", []byte(`{"title":"Checkout slow","service":"checkout","severity":"HIGH"}`))
	require.Equal(t, http.StatusCreated, code, body)
	_, b, err = c.Read(ctx)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, "incident.created", m.Type)
	require.Equal(t, "checkout", m.Service)
	require.NotEmpty(t, m.ID)
}
