package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// message is one Server-Sent Events message, or a comment.
type message struct {
	Event, Data, Comment string
}

// client reads a stream with plain net/http, as any SSE client would.
type client struct {
	resp   *http.Response
	msgs   chan message
	cancel context.CancelFunc
}

func connect(t *testing.T, url string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	c := &client{resp: resp, msgs: make(chan message, 64), cancel: cancel}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return c
	}
	go func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(resp.Body)
		var m message
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				c.msgs <- m
				m = message{}
			case strings.HasPrefix(line, ":"):
				m.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				m.Event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				m.Data += line[len("data: "):]
			}
		}
	}()
	return c
}

func (c *client) next(t *testing.T) message {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		require.True(t, ok, "stream ended")
		return m
	case <-time.After(60 * time.Second): // a safety net, not a timing
		t.Fatal("no message on the stream")
	}
	return message{}
}

// nextEvent skips comments (heartbeats) and decodes the next event.
func (c *client) nextEvent(t *testing.T) (string, events.Event) {
	t.Helper()
	for {
		m := c.next(t)
		if m.Comment != "" {
			continue
		}
		var ev events.Event
		require.NoError(t, json.Unmarshal([]byte(m.Data), &ev), m.Data)
		return m.Event, ev
	}
}

func start(t *testing.T, o stream.Options) (*events.Bus, *httptest.Server) {
	t.Helper()
	bus := events.NewBus(16, nil)
	mux := http.NewServeMux()
	stream.New(bus, o).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return bus, srv
}

func TestStreamFilters(t *testing.T) {
	bus, srv := start(t, stream.Options{Heartbeat: time.Hour})
	all := connect(t, srv.URL+"/api/v1/events")
	budget := connect(t, srv.URL+"/api/v1/events?type=budget.")
	api := connect(t, srv.URL+"/api/v1/events?type=incident.&type=budget.state&service=api&service=web")
	for _, c := range []*client{all, budget, api} {
		require.Equal(t, http.StatusOK, c.resp.StatusCode)
		require.Equal(t, "text/event-stream; charset=utf-8", c.resp.Header.Get("Content-Type"))
		// One principal's events: never cached, never sniffed.
		require.Equal(t, "no-store", c.resp.Header.Get("Cache-Control"))
		require.Equal(t, "nosniff", c.resp.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "subscribed", c.next(t).Comment)
	}
	at := time.Date(2026, 11, 27, 14, 30, 0, 0, time.UTC)
	published := []events.Event{
		{Type: "incident.created", Time: at, Service: "api", IncidentID: "INC-2026-0001", Data: map[string]any{"title": "API down\nnow"}},
		{Type: "budget.state_changed", Time: at, Service: "checkout", Data: map[string]any{"from": "green", "to": "yellow"}},
		{Type: "budget.gate_decision", Time: at, Service: "api", Data: map[string]any{"decision": "deny"}},
		{Type: "runbook.run_started", Time: at, IncidentID: "INC-2026-0001"},
		{Type: "budget.state_changed", Time: at, Service: "web", Data: map[string]any{"from": "yellow", "to": "red"}},
		// Every filter takes the last one: each client's stream ends with
		// it, so nothing a filter should drop came through before it (a
		// client receives events in the order they are published).
		{Type: "budget.state_changed", Time: at, Service: "api", Data: map[string]any{"from": "red", "to": "green"}},
	}
	for _, ev := range published {
		bus.Publish(ev)
	}
	for _, tc := range []struct {
		name string
		c    *client
		want []int
	}{
		{"all", all, []int{0, 1, 2, 3, 4, 5}},
		{"budget.", budget, []int{1, 2, 4, 5}},
		{"api and web, incidents and state changes", api, []int{0, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, i := range tc.want {
				typ, ev := tc.c.nextEvent(t)
				require.Equal(t, published[i].Type, typ)
				require.Equal(t, published[i].Type, ev.Type)
				require.Equal(t, published[i].Service, ev.Service)
				require.Equal(t, published[i].IncidentID, ev.IncidentID)
				require.Equal(t, published[i].Time, ev.Time)
				require.Equal(t, published[i].Data, ev.Data)
			}
		})
	}
}

func TestStreamHeartbeatAndDisconnect(t *testing.T) {
	reg := prometheus.NewRegistry()
	bus, srv := start(t, stream.Options{Heartbeat: 50 * time.Millisecond, Registerer: reg})
	c := connect(t, srv.URL+"/api/v1/events")
	require.Equal(t, "subscribed", c.next(t).Comment)
	require.Equal(t, "heartbeat", c.next(t).Comment)
	require.Equal(t, "heartbeat", c.next(t).Comment)
	require.Equal(t, 1.0, clients(t, reg))

	// The client leaves: the handler ends and unsubscribes.
	c.cancel()
	require.Eventually(t, func() bool { return clients(t, reg) == 0 }, 30*time.Second, 10*time.Millisecond)
	bus.Publish(events.Event{Type: "incident.created"}) // no subscriber left: nothing blocks
}

// clients reads sre_event_stream_clients from the registry.
func clients(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "sre_event_stream_clients" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no sre_event_stream_clients")
	return 0
}

func TestStreamErrors(t *testing.T) {
	_, srv := start(t, stream.Options{MaxClients: 1, Heartbeat: time.Hour})
	for _, tc := range []struct {
		query string
		code  int
		err   string
	}{
		{"?typ=budget.", 400, `unknown parameter "typ" (want type or service)`},
		{"?type=", 400, "empty type or service filter"},
		{"?service=" + strings.Repeat("a", 257), 400, "filter longer than 256 bytes"},
		{"?type=a" + strings.Repeat("&type=a", 32), 400, "at most 32 type and 32 service filters"},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/events" + tc.query)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, tc.code, resp.StatusCode, tc.query)
		var env struct{ ErrorType, Error string }
		require.NoError(t, json.Unmarshal(b, &env))
		require.Equal(t, "bad_data", env.ErrorType)
		require.Equal(t, tc.err, env.Error, tc.query)
	}

	// One client at most here: the second is told so.
	c := connect(t, srv.URL+"/api/v1/events")
	require.Equal(t, "subscribed", c.next(t).Comment)
	resp, err := http.Get(srv.URL + "/api/v1/events")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, string(b), `"error":"too many event stream clients (at most 1)"`)

	resp, err = http.Post(srv.URL+"/api/v1/events", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestFormat(t *testing.T) {
	at := time.Date(2026, 11, 27, 14, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		ev   events.Event
		want string
	}{
		{events.Event{Type: "budget.state_changed", Time: at, Service: "api", Data: map[string]any{"to": "red"}},
			"event: budget.state_changed\ndata: {\"type\":\"budget.state_changed\",\"time\":\"2026-11-27T14:30:00Z\",\"service\":\"api\",\"data\":{\"to\":\"red\"}}\n\n"},
		// Line breaks stay inside the JSON; a hostile type cannot forge a message.
		{events.Event{Type: "x\nevent: forged", Time: at, Data: map[string]any{"m": "a\n\nb"}},
			"event: message\ndata: {\"type\":\"x\\nevent: forged\",\"time\":\"2026-11-27T14:30:00Z\",\"data\":{\"m\":\"a\\n\\nb\"}}\n\n"},
	} {
		got, err := stream.Format(tc.ev)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

// serveAs serves h to every request as user u of role; the server
// closes at the end of the test.
func serveAs(t *testing.T, h http.Handler, role auth.Role) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), auth.Principal{Name: "u", Role: role})))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// viewerAndAdmin connects a viewer's and an admin's event stream
// (GET /api/v1/events) of bus, each subscribed.
func viewerAndAdmin(t *testing.T, bus *events.Bus) (viewer, admin *client) {
	t.Helper()
	mux := http.NewServeMux()
	stream.New(bus, stream.Options{Heartbeat: time.Hour}).Register(mux)
	viewer, admin = connect(t, serveAs(t, mux, auth.RoleViewer).URL+"/api/v1/events"), connect(t, serveAs(t, mux, auth.RoleAdmin).URL+"/api/v1/events")
	for _, c := range []*client{viewer, admin} {
		require.Equal(t, http.StatusOK, c.resp.StatusCode)
		require.Equal(t, "subscribed", c.next(t).Comment)
	}
	return viewer, admin
}

// TestStreamPathsShownToAdminsOnly: a runbook step's event and a timeline
// entry sred wrote, with the server's paths in their data, reach a
// viewer's stream with the base names only and an admin's whole; an
// alert's event is sent as published.
func TestStreamPathsShownToAdminsOnly(t *testing.T) {
	bus := events.NewBus(16, nil)
	viewer, admin := viewerAndAdmin(t, bus)
	const prog = "/nonexistent/sred-test/bin/restart-app"
	at := time.Date(2026, 11, 27, 14, 30, 0, 0, time.UTC)
	published := []events.Event{
		{Type: "runbook.step", Time: at, IncidentID: "INC-2026-0001", Data: map[string]any{"error": "fork/exec " + prog + ": no such file or directory",
			"input": map[string]any{"argv": []any{prog, "--now"}}}},
		{Type: "incident.timeline", Time: at, IncidentID: "INC-2026-0001", Data: map[string]any{"kind": "runbook_step", "actor": "runbook:restart", "message": "step failed: fork/exec " + prog}},
		{Type: "incident.created", Time: at, IncidentID: "INC-2026-0002", Data: map[string]any{"title": "GET /v2/orders/list failing"}},
	}
	for _, ev := range published {
		bus.Publish(ev)
	}
	want := []map[string]any{
		{"error": "fork/exec restart-app: no such file or directory", "input": map[string]any{"argv": []any{"restart-app", "--now"}}},
		{"kind": "runbook_step", "actor": "runbook:restart", "message": "step failed: fork/exec restart-app"},
		published[2].Data,
	}
	for i := range published {
		_, ev := viewer.nextEvent(t)
		require.Equal(t, want[i], ev.Data, published[i].Type)
		_, ev = admin.nextEvent(t)
		require.Equal(t, published[i].Data, ev.Data, published[i].Type)
	}
	require.Equal(t, "fork/exec "+prog+": no such file or directory", published[0].Data["error"], "the published event is not changed")
}

// TestStreamGateDecisionPathsShownToAdminsOnly: a deploy gate decision
// whose reason holds Prometheus' error with the path of a credentials file
// reaches a viewer's stream, over SSE and over WebSocket, with the base
// name only (as GET /api/v1/gate answers it); its other fields, what the
// caller gave, are sent as published, and an admin reads it whole.
func TestStreamGateDecisionPathsShownToAdminsOnly(t *testing.T) {
	bus := events.NewBus(16, nil)
	viewer, admin := viewerAndAdmin(t, bus)
	const creds = "/nonexistent/sred-test/secrets/prom-token"
	data := map[string]any{"change": "normal", "decision": "deny", "state": "unknown", "override": false, "actor": "vic", "subject": "deploy of /srv/ci/api",
		"reason": `cannot read error budgets, gate fails closed (deny): Post "http://prom:9090/api/v1/query": unable to read authorization credentials: open ` + creds + `: no such file or directory`}
	bus.Publish(events.Event{Type: "budget.gate_decision", Time: time.Date(2026, 11, 27, 14, 30, 0, 0, time.UTC), Service: "api", Data: data})
	want := maps.Clone(data)
	want["reason"] = `cannot read error budgets, gate fails closed (deny): Post "http://prom:9090/api/v1/query": unable to read authorization credentials: open prom-token: no such file or directory`
	_, ev := viewer.nextEvent(t)
	require.Equal(t, want, ev.Data)
	_, ev = admin.nextEvent(t)
	require.Equal(t, data, ev.Data)

	// The WebSocket stream sends the same.
	f := startHub(t, stream.HubOptions{})
	wsViewer, wsAdmin := dial(t, f.as(t, auth.RoleViewer), `{}`), dial(t, f.as(t, auth.RoleAdmin), `{}`)
	for _, c := range []*wsClient{wsViewer, wsAdmin} {
		require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
	}
	f.hub.Ingest(events.Event{Type: "budget.gate_decision", Service: "api", Data: data})
	require.Equal(t, data, wsAdmin.next(t).Data)
	require.Equal(t, want, wsViewer.next(t).Data)
	require.Contains(t, data["reason"], creds, "the published event is not changed")
}

// TestStreamStalledClientDisconnected: a client that stops reading fills
// its socket's buffers, and the write that no longer goes through is given
// up after the write timeout: the client is disconnected and its slot (the
// only one here) is free for another, instead of being held for as long as
// the stalled connection stays up.
func TestStreamStalledClientDisconnected(t *testing.T) {
	reg := prometheus.NewRegistry()
	bus := events.NewBus(16, nil)
	mux := http.NewServeMux()
	stream.New(bus, stream.Options{Registerer: reg, MaxClients: 1, Heartbeat: time.Hour, WriteTimeout: time.Second}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A client that reads the answer's head, then nothing.
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.(*net.TCPConn).SetReadBuffer(4<<10))
	_, err = io.WriteString(nc, "GET /api/v1/events HTTP/1.1\r\nHost: sred\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReaderSize(nc, 256), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1.0, clients(t, reg))

	// 64 KiB events until the handler has given up on it: far more than
	// the socket buffers hold.
	pad := strings.Repeat("x", 64<<10)
	require.Eventually(t, func() bool {
		bus.Publish(events.Event{Type: "incident.updated", Data: map[string]any{"pad": pad}})
		return clients(t, reg) == 0
	}, time.Minute, time.Millisecond, "a client that stopped reading holds its slot")

	// Counted as closed by sred for being slow; nothing else is.
	require.Eventually(t, func() bool {
		return byReason(t, reg, "sre_stream_closed_clients_total", "sse", "slow") == 1
	}, time.Minute, time.Millisecond)
	for _, r := range []string{"revoked", "shutdown"} {
		require.Zero(t, byReason(t, reg, "sre_stream_closed_clients_total", "sse", r), r)
	}

	// The slot is free: another client is served.
	c := connect(t, srv.URL+"/api/v1/events")
	require.Equal(t, http.StatusOK, c.resp.StatusCode)
	require.Equal(t, "subscribed", c.next(t).Comment)
}
