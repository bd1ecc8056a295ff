package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
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

// TestShutdownClosesStreams: SIGTERM ends the live event streams before
// the web servers shut down: a WebSocket client, on either listener and
// subscribed or not yet, gets a close frame 1001 (going away), not a
// dropped connection (1006); an SSE stream ends with ": closed: shutting
// down" rather than holding the shutdown until its deadline; then sred
// exits cleanly.
func TestShutdownClosesStreams(t *testing.T) {
	port := testutil.FreePort(t)
	s := start(t, fmt.Sprintf("--web.stream-address=127.0.0.1:%d", port), "--storage.path="+t.TempDir(), "--config.file=/dev/null")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net
	defer cancel()

	sse := subscribeSSE(ctx, t, s.url+"/api/v1/events")

	var conns []*websocket.Conn
	for _, base := range []string{strings.TrimPrefix(s.url, "http://"), fmt.Sprintf("127.0.0.1:%d", port)} {
		for _, sub := range []string{`{}`, ""} {
			c, _, err := websocket.Dial(ctx, "ws://"+base+"/api/v1/stream", nil)
			require.NoError(t, err)
			defer c.CloseNow()
			if sub != "" {
				require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(sub)))
				_, b, err := c.Read(ctx)
				require.NoError(t, err)
				require.Contains(t, string(b), `"stream.subscribed"`)
			}
			conns = append(conns, c)
		}
	}
	// Each handler runs: the upgrade (and the acknowledgement) came from it.
	require.Equal(t, "4", metric(t, s, "sre_stream_clients"))

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	for i, c := range conns {
		_, _, err := c.Read(ctx)
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce, "client %d", i)
		require.Equal(t, websocket.StatusGoingAway, ce.Code, "client %d", i)
		require.Equal(t, "shutting down", ce.Reason)
	}
	rest, err := io.ReadAll(sse)
	require.NoError(t, err)
	require.Equal(t, "\n: closed: shutting down\n\n", string(rest), "the end of the comment : subscribed, then the last comment")
	select {
	case <-s.exited:
	case <-ctx.Done():
		t.Fatal("sred did not exit after SIGTERM")
	}
	require.Equal(t, 0, s.cmd.ProcessState.ExitCode(), s.output())
	require.NotContains(t, s.output(), "End the event streams")
}

// TestStreamAcrossReplicaProcesses runs two sred processes on one
// PostgreSQL schema: an SSE client of replica B gets the incident.created
// of an Alertmanager delivery posted to replica A (the event relay of
// package relay, run in the process's run group), and both replicas stop
// cleanly on SIGTERM, the relay included.
func TestStreamAcrossReplicaProcesses(t *testing.T) {
	replicas := newReplicaSet(t, t.TempDir(), "global:\n  incident_id_prefix: INC\n")
	a, b := replicas.start(t), replicas.start(t)
	for _, s := range []*sred{a, b} {
		require.Eventually(t, func() bool { return strings.Contains(s.output(), "Listening for the other replicas' events") },
			30*time.Second, 10*time.Millisecond, "the relay did not listen:\n%s", s.output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety net
	defer cancel()
	sse := subscribeSSE(ctx, t, b.url+"/api/v1/events?type=incident.created")

	code, body := a.do(t, http.MethodPost, "/api/v1/webhook/alertmanager", payload(t, "am-firing.json"))
	require.Equal(t, http.StatusOK, code, body)
	var res struct {
		Data struct {
			Created []string `json:"created"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Len(t, res.Data.Created, 1, body)
	var line string
	for !strings.HasPrefix(line, "data: ") {
		var err error
		line, err = sse.ReadString('\n')
		require.NoError(t, err, "replica B's stream ended before the event:\n%s", b.output())
	}
	var ev struct {
		Type       string `json:"type"`
		IncidentID string `json:"incident_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev), line)
	require.Equal(t, "incident.created", ev.Type)
	require.Equal(t, res.Data.Created[0], ev.IncidentID)

	for _, s := range []*sred{a, b} {
		require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-s.exited:
		case <-ctx.Done():
			t.Fatalf("sred did not exit after SIGTERM:\n%s", s.output())
		}
		require.Equal(t, 0, s.cmd.ProcessState.ExitCode(), s.output())
		require.NotContains(t, s.output(), "connection lost", "the relay's stop is not a lost connection")
	}
}

// subscribeSSE opens the SSE stream at url, closed with the test, and
// returns it after its ": subscribed" comment.
func subscribeSSE(ctx context.Context, t *testing.T, url string) *bufio.Reader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sse := bufio.NewReader(resp.Body)
	line, err := sse.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, ": subscribed\n", line)
	return sse
}
