package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// manualClock is the replay-age clock of the tests.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type wsFixture struct {
	hub   *stream.Hub
	srv   *httptest.Server
	reg   *prometheus.Registry
	clock *manualClock
}

// serveBus runs a hub on bus, its metrics in a registry of its own, behind
// a test server, until the test ends.
func serveBus(tb testing.TB, bus *events.Bus) (*stream.Hub, *prometheus.Registry, *httptest.Server) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	hub := stream.NewHub(bus, stream.HubOptions{Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	go hub.Run(ctx) //nolint:errcheck
	mux := http.NewServeMux()
	hub.Register(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return hub, reg, srv
}

func startHub(t *testing.T, o stream.HubOptions) *wsFixture {
	t.Helper()
	f := &wsFixture{reg: prometheus.NewRegistry(), clock: &manualClock{now: time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)}}
	o.Registerer, o.Clock = f.reg, f.clock
	f.hub = stream.NewHub(nil, o)
	mux := http.NewServeMux()
	f.hub.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// as returns the URL of a server of f's hub that serves every request as
// a user of role (serveAs), until the test ends.
func (f *wsFixture) as(t *testing.T, role auth.Role) string {
	mux := http.NewServeMux()
	f.hub.Register(mux)
	return serveAs(t, mux, role).URL
}

// wsClient is a WebSocket client of the stream, as any tool would be.
type wsClient struct {
	c       *websocket.Conn
	batched []stream.Message // read but not yet returned (nextBatched)
}

func dial(t *testing.T, url string, sub string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1)+"/api/v1/stream", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(sub)))
	return &wsClient{c: c}
}

func (w *wsClient) next(t *testing.T) stream.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	var m stream.Message
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

func ev(i int, service string) events.Event {
	return events.Event{Type: "incident.updated", Service: service, IncidentID: fmt.Sprintf("INC-2026-%04d", i), Data: map[string]any{"n": i}}
}

// TestStreamWebSocketFilters subscribes with filters in the first message:
// only matching events arrive, each with an ID, after the acknowledgement.
func TestStreamWebSocketFilters(t *testing.T) {
	f := startHub(t, stream.HubOptions{})
	c := dial(t, f.srv.URL, `{"types":["budget."],"services":["checkout"]}`)
	ack := c.next(t)
	require.Equal(t, stream.TypeSubscribed, ack.Type)
	require.Equal(t, false, ack.Data["resumed"])
	require.Empty(t, ack.ID)

	f.hub.Ingest(events.Event{Type: "incident.created", Service: "checkout"})
	f.hub.Ingest(events.Event{Type: "budget.state_changed", Service: "search"})
	f.hub.Ingest(events.Event{Type: "budget.state_changed", Service: "checkout", Data: map[string]any{"to": "red"}})
	m := c.next(t)
	require.Equal(t, "budget.state_changed", m.Type)
	require.Equal(t, "checkout", m.Service)
	require.Equal(t, "red", m.Data["to"])
	require.True(t, strings.HasSuffix(m.ID, "-3"), m.ID)
	require.Equal(t, f.clock.Now().UTC(), m.Time, "the hub stamps events without a time")
}

// TestStreamWebSocketBadSubscribe: a subscribe message that is not what
// the protocol says gets a stream.error naming the problem, then a close.
func TestStreamWebSocketBadSubscribe(t *testing.T) {
	f := startHub(t, stream.HubOptions{})
	for _, c := range []struct{ name, msg, err string }{
		{"not JSON", `types=budget`, "subscribe message: invalid character"},
		{"unknown field", `{"type":["budget."]}`, `unknown field "type"`},
		{"empty filter", `{"services":[""]}`, "services: empty"},
		// Read as the HTTP API reads a JSON body (web.DecodeJSON).
		{"trailing value", `{}{"x":1}`, "subscribe message: trailing data after the JSON value"},
		{"trailing brace", `{"types":["budget."]}}`, "subscribe message: trailing data after the JSON value"},
		{"trailing text", `{} types=budget`, "subscribe message: trailing data after the JSON value"},
		{"NUL in a service", `{"services":["api\u0000x"]}`, "subscribe message: services[0]: NUL byte at offset 3"},
		{"NUL in a type", `{"types":["\u0000"]}`, "subscribe message: types[0]: NUL byte at offset 0"},
		{"NUL in the last event ID", `{"last_event_id":"1\u0000"}`, "subscribe message: last_event_id: NUL byte at offset 1"},
		{"invalid UTF-8", "{\"services\":[\"api\xff\"]}", "subscribe message: invalid UTF-8 at byte offset 17"},
		{"wrong type", `{"services":"api"}`, "subscribe message: services: want a list, got a string"},
		// encoding/json reads null as nothing: a subscription to everything.
		{"null", ` null `, "subscribe message: want a JSON object, got null"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := dial(t, f.srv.URL, c.msg)
			m := cl.next(t)
			require.Equal(t, stream.TypeError, m.Type)
			require.Contains(t, m.Data["error"], c.err)
			_, _, err := cl.c.Read(context.Background())
			require.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%v", err)
		})
	}
	require.Equal(t, 12.0, closedWS(t, f.reg, "bad_subscribe"), "the clients closed for their subscribe message are not counted")
	resp, err := http.Get(f.srv.URL + "/api/v1/stream?type=budget.")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "filters go in the first message")

	// A subscribe message over 64 KiB (a huge last_event_id) is not read:
	// the connection is closed with status 1009 (message too big), and
	// counted with the other subscribe messages sred cannot take.
	cl := dial(t, f.srv.URL, `{"last_event_id":"`+strings.Repeat("9", 64<<10)+`"}`)
	_, _, err = cl.c.Read(context.Background())
	require.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err), "%v", err)
	require.Eventually(t, func() bool { return closedWS(t, f.reg, "bad_subscribe") == 13 }, time.Minute, time.Millisecond,
		"the client closed for its subscribe message over 64 KiB is not counted")
}

// TestStreamWebSocketSubscribeDeadline: a client that sends no subscribe
// message within SubscribeWait of its handshake is closed with status 1008
// and a reason saying so, not dropped without a word; the slot it held is
// free again. One that subscribes in time is not closed when the wait
// would have ended.
func TestStreamWebSocketSubscribeDeadline(t *testing.T) {
	const wait = 10 * time.Second
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	hub := stream.NewHub(nil, stream.HubOptions{Registerer: reg, Clock: clk, SubscribeWait: wait, Ping: time.Hour})
	mux := http.NewServeMux()
	hub.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := strings.Replace(srv.URL, "http://", "ws://", 1) + "/api/v1/stream"

	for i, c := range []struct {
		name    string
		advance time.Duration
	}{
		{"at the deadline", wait},
		{"well after it", 3 * wait},
	} {
		t.Run(c.name, func(t *testing.T) {
			silent, _, err := websocket.Dial(ctx, url, nil)
			require.NoError(t, err)
			t.Cleanup(func() { silent.CloseNow() })
			// Subscribed before the wait ends: kept.
			kept := &wsClient{c: dialConn(t, url)}
			require.NoError(t, kept.c.Write(ctx, websocket.MessageText, []byte(`{}`)))
			require.Equal(t, stream.TypeSubscribed, kept.next(t).Type)

			clk.Advance(c.advance)
			_, _, err = silent.Read(ctx)
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce, "the connection ended without a close frame")
			require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
			require.Equal(t, "no subscribe message within 10s", ce.Reason)
			require.Equal(t, float64(i+1), closedWS(t, reg, "no_subscribe"))

			hub.Ingest(ev(1, "api"))
			require.Equal(t, "INC-2026-0001", kept.next(t).IncidentID, "a subscribed client was closed")
			require.NoError(t, kept.c.Close(websocket.StatusNormalClosure, ""))
			require.Eventually(t, func() bool { return hub.Clients() == 0 }, time.Minute, time.Millisecond,
				"the slots are not freed")
		})
	}
}

// TestStreamWebSocketPingFlood: each ping of a client costs sred a pong
// written to the socket, so a client has a budget of 16 pings, refilled by
// one a second: the pings within it are answered, before the subscribe
// message and after; the first beyond it is not, and the connection is
// closed with status 1008 and a reason naming the limit.
func TestStreamWebSocketPingFlood(t *testing.T) {
	for _, c := range []struct {
		name      string
		subscribe bool
	}{
		{"subscribed", true},
		{"before subscribing", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startHub(t, stream.HubOptions{Ping: time.Hour})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			conn := dialConn(t, strings.Replace(f.srv.URL, "http://", "ws://", 1)+"/api/v1/stream")
			// The client reads all the time (pongs are read while reading).
			msgs, ended := make(chan stream.Message, 16), make(chan error, 1)
			go func() {
				for {
					_, b, err := conn.Read(ctx)
					if err != nil {
						ended <- err
						return
					}
					var m stream.Message
					if json.Unmarshal(b, &m) == nil {
						msgs <- m
					}
				}
			}()
			if c.subscribe {
				require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{}`)))
				require.Equal(t, stream.TypeSubscribed, (<-msgs).Type)
			}
			for i := range 16 {
				require.NoError(t, conn.Ping(ctx), "ping %d of the burst", i+1)
			}
			// Two seconds later, two more.
			f.clock.Add(2 * time.Second)
			for i := range 2 {
				require.NoError(t, conn.Ping(ctx), "ping %d after the refill", i+1)
			}
			require.Error(t, conn.Ping(ctx), "a ping over the budget was answered")
			var ce websocket.CloseError
			require.ErrorAs(t, <-ended, &ce)
			require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
			require.Equal(t, "too many pings (at most 16, then one a second)", ce.Reason)
			require.Equal(t, 1.0, closedWS(t, f.reg, "ping_flood"))
			require.Eventually(t, func() bool { return f.hub.Clients() == 0 }, time.Minute, time.Millisecond,
				"the slot is not freed")
		})
	}
}

// dialConn opens a WebSocket connection to url, closed when the test ends.
func dialConn(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestStreamWebSocketReplay resumes after a reconnect from the last event
// ID received: the events missed are replayed in order, then live ones
// follow. An ID older than the ring, or of another sred process, gets what
// is kept with complete=false; events older than the replay age are not
// replayed.
func TestStreamWebSocketReplay(t *testing.T) {
	f := startHub(t, stream.HubOptions{ReplayEvents: 8, ReplayAge: 15 * time.Minute})
	c := dial(t, f.srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
	for i := 1; i <= 3; i++ {
		f.hub.Ingest(ev(i, "api"))
	}
	var last string
	for i := 1; i <= 3; i++ {
		m := c.next(t)
		require.Equal(t, float64(i), m.Data["n"])
		last = m.ID
	}
	c.c.CloseNow()

	// Missed while disconnected.
	for i := 4; i <= 6; i++ {
		f.hub.Ingest(ev(i, "api"))
	}
	c = dial(t, f.srv.URL, fmt.Sprintf(`{"last_event_id":%q}`, last))
	ack := c.next(t)
	require.Equal(t, stream.TypeSubscribed, ack.Type)
	require.Equal(t, true, ack.Data["resumed"])
	require.Equal(t, true, ack.Data["complete"])
	require.Equal(t, float64(3), ack.Data["replay"])
	for i := 4; i <= 6; i++ {
		require.Equal(t, float64(i), c.next(t).Data["n"], "replayed")
	}
	f.hub.Ingest(ev(7, "api"))
	m := c.next(t)
	require.Equal(t, float64(7), m.Data["n"], "live after the replay")

	// 7 events later the ring of 8 no longer holds event 1's successor 2.
	first := strings.Replace(m.ID, "-7", "-1", 1)
	for i := 8; i <= 14; i++ {
		f.hub.Ingest(ev(i, "api"))
	}
	for _, id := range []string{first, "0000-3"} {
		r := dial(t, f.srv.URL, fmt.Sprintf(`{"last_event_id":%q,"services":["api"]}`, id))
		ack = r.next(t)
		require.Equal(t, false, ack.Data["complete"], id)
		require.Equal(t, float64(8), ack.Data["replay"], id)
		for i := 7; i <= 14; i++ {
			require.Equal(t, float64(i), r.next(t).Data["n"], "the ones kept, from the oldest")
		}
	}

	// Twenty minutes later, the events before are too old to replay.
	f.clock.Add(20 * time.Minute)
	f.hub.Ingest(ev(15, "api"))
	r := dial(t, f.srv.URL, fmt.Sprintf(`{"last_event_id":%q}`, m.ID))
	ack = r.next(t)
	require.Equal(t, false, ack.Data["complete"])
	require.Equal(t, float64(1), ack.Data["replay"])
	require.Equal(t, float64(15), r.next(t).Data["n"])
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(counter(t, f.reg, "sre_stream_replayed_events_total")) == 3+8+8+1
	}, time.Minute, 10*time.Millisecond)
}

func counter(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "copy"})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// closedWS is sre_stream_closed_clients_total{transport="websocket",reason} in reg.
func closedWS(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	return byReason(t, reg, "sre_stream_closed_clients_total", "websocket", reason)
}

// TestStreamWebSocketSlowClientDropped: a client that stops reading is
// dropped once it lags by more than the replay ring, and counted; the hub
// never waits for it and the client that reads gets every event.
// The slow client takes every event, or (filtered) is in the index of
// the clients by service.
func TestStreamWebSocketSlowClientDropped(t *testing.T) {
	for _, sub := range []string{`{}`, `{"services":["api"]}`} {
		t.Run(sub, func(t *testing.T) { testSlowClientDropped(t, sub) })
	}
}

func testSlowClientDropped(t *testing.T, sub string) {
	f := startHub(t, stream.HubOptions{ReplayEvents: 16})
	fast := dial(t, f.srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, fast.next(t).Type)
	slow := dial(t, f.srv.URL, sub)
	require.Equal(t, stream.TypeSubscribed, slow.next(t).Type)

	// 64 KiB events: the slow client's socket buffers fill after a few
	// hundred; 2,000 events are 125 MiB.
	pad := strings.Repeat("x", 64<<10)
	dropped := func() float64 {
		return testutil.ToFloat64(counter(t, f.reg, "sre_stream_dropped_clients_total"))
	}
	i := 0
	for ; i < 2000 && dropped() == 0; i++ {
		f.hub.Ingest(events.Event{Type: "incident.updated", Service: "api", Data: map[string]any{"n": i, "pad": pad}})
		m := fast.next(t)
		require.Equal(t, float64(i), m.Data["n"])
	}
	require.Equal(t, float64(1), dropped(), "the slow client is dropped after %d events", i)
	require.Equal(t, 1.0, closedWS(t, f.reg, "slow"))
	// The slow client reads what its socket held, then the connection ends.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for n := 0; err == nil; n++ {
		_, _, err = slow.c.Read(ctx)
		require.Less(t, n, i)
	}
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	// The fast one goes on.
	f.hub.Ingest(events.Event{Type: "incident.updated", Service: "api", Data: map[string]any{"n": -1}})
	require.Equal(t, float64(-1), fast.next(t).Data["n"])
	require.Eventually(t, func() bool { return f.hub.Clients() == 1 }, time.Minute, 10*time.Millisecond)
}

// TestStreamWebSocketBatch: a client that asks for batches gets JSON arrays
// holding the same events, in the same order and with the same IDs, as a
// client reading one event per message, filtered alike; 600 events make
// more than one pass over the ring.
func TestStreamWebSocketBatch(t *testing.T) {
	f := startHub(t, stream.HubOptions{})
	single := dial(t, f.srv.URL, `{"services":["api"]}`)
	batched := dial(t, f.srv.URL, `{"services":["api"],"batch":true}`)
	require.Equal(t, stream.TypeSubscribed, single.next(t).Type)
	require.Equal(t, stream.TypeSubscribed, batched.next(t).Type)
	for i := range 600 {
		svc := "api"
		if i%2 == 1 {
			svc = "web"
		}
		f.hub.Ingest(events.Event{Type: "incident.updated", Service: svc, Data: map[string]any{"n": i}})
	}
	var want []stream.Message
	for len(want) < 300 {
		want = append(want, single.next(t))
	}
	var got []stream.Message
	messages := 0
	for len(got) < 300 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		typ, b, err := batched.c.Read(ctx)
		cancel()
		require.NoError(t, err)
		require.Equal(t, websocket.MessageText, typ)
		var ms []stream.Message
		require.NoError(t, json.Unmarshal(b, &ms), "a batch is a JSON array: %s", b)
		require.NotEmpty(t, ms)
		got = append(got, ms...)
		messages++
	}
	require.Equal(t, want, got)
	for i, m := range got {
		require.Equal(t, "api", m.Service)
		require.Equal(t, float64(2*i), m.Data["n"])
	}
	t.Logf("300 events in %d batched messages", messages)
}

// TestHubIngestsInPublish: the hub numbers an event inside Publish, on the
// publisher's goroutine, without Run being scheduled; after Run ends the
// hub has left the bus.
func TestHubIngestsInPublish(t *testing.T) {
	bus := events.NewBus(16, nil)
	hub := stream.NewHub(bus, stream.HubOptions{})
	bus.Publish(events.Event{Type: "incident.created", Service: "api"})
	require.Equal(t, uint64(1), hub.Last(), "numbered before Publish returned")
	bus.Publish(events.Event{Type: "incident.updated", Service: "api"})
	require.Equal(t, uint64(2), hub.Last())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, hub.Run(ctx))
	bus.Publish(events.Event{Type: "incident.resolved", Service: "api"})
	require.Equal(t, uint64(2), hub.Last(), "no longer attached")
}

// TestStreamWebSocketStalledClient: with a single writer, a client that
// stops reading does not hold it: once its socket is full, the rest of its
// write goes on its own goroutine and the client that reads gets every
// event. A stalled client that does not take its events within the write
// timeout is dropped and counted, while the ring still holds its events.
func TestStreamWebSocketStalledClient(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
	}{{"not dropped before the write timeout", time.Hour}, {"dropped after the write timeout", time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			f := startHub(t, stream.HubOptions{Writers: 1, StallTimeout: time.Millisecond, WriteTimeout: c.timeout})
			fast := dial(t, f.srv.URL, `{}`)
			require.Equal(t, stream.TypeSubscribed, fast.next(t).Type)
			slow := dial(t, f.srv.URL, `{}`)
			require.Equal(t, stream.TypeSubscribed, slow.next(t).Type)
			dropped := func() float64 {
				return testutil.ToFloat64(counter(t, f.reg, "sre_stream_dropped_clients_total"))
			}
			// 64 KiB events: 500 are 32 MiB, more than the slow client's
			// socket buffers hold; the ring (10,000) holds them all.
			pad := strings.Repeat("x", 64<<10)
			for i := range 500 {
				f.hub.Ingest(events.Event{Type: "incident.updated", Service: "api", Data: map[string]any{"n": i, "pad": pad}})
				require.Equal(t, float64(i), fast.next(t).Data["n"])
			}
			if c.timeout == time.Hour {
				require.Zero(t, dropped())
				require.Zero(t, closedWS(t, f.reg, "slow"))
				require.Equal(t, 2, f.hub.Clients())
				return
			}
			require.Eventually(t, func() bool { return dropped() == 1 && f.hub.Clients() == 1 }, time.Minute, 10*time.Millisecond)
			require.Equal(t, 1.0, closedWS(t, f.reg, "slow"))
			f.hub.Ingest(events.Event{Type: "incident.updated", Data: map[string]any{"n": -1}})
			require.Equal(t, float64(-1), fast.next(t).Data["n"])
		})
	}
}

// TestStreamWebSocketFrames: the hub frames events itself, once per event
// (or per batch), when no compression was negotiated. Events whose
// messages cross the frame header's length boundaries (125/126 bytes,
// 65,535/65,536 bytes) reach a client taking single events and a batching
// client intact, in order, with their IDs; a client that negotiated
// compression gets the same through the library's writer.
func TestStreamWebSocketFrames(t *testing.T) {
	f := startHub(t, stream.HubOptions{AcceptOptions: &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover}})
	single := dial(t, f.srv.URL, `{}`)
	batched := dial(t, f.srv.URL, `{"batch":true}`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, resp, err := websocket.Dial(ctx, strings.Replace(f.srv.URL, "http://", "ws://", 1)+"/api/v1/stream",
		&websocket.DialOptions{CompressionMode: websocket.CompressionContextTakeover})
	require.NoError(t, err)
	require.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	cc.SetReadLimit(1 << 20)
	t.Cleanup(func() { cc.CloseNow() })
	require.NoError(t, cc.Write(ctx, websocket.MessageText, []byte(`{}`)))
	compressed := &wsClient{c: cc}
	for _, c := range []*wsClient{single, batched, compressed} {
		require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
	}
	var pads []int
	for n := range 200 {
		pads = append(pads, n) // messages of about 100 to 300 bytes
	}
	for n := 65535 - 220; n < 65535-20; n++ {
		pads = append(pads, n) // messages of about 65,400 to 65,600 bytes
	}
	for i, n := range pads {
		f.hub.Ingest(events.Event{Type: "incident.updated", Service: "api", Data: map[string]any{"n": i, "pad": strings.Repeat("x", n)}})
	}
	check := func(t *testing.T, ms []stream.Message) {
		t.Helper()
		require.Len(t, ms, len(pads))
		for i, m := range ms {
			require.Equal(t, float64(i), m.Data["n"])
			require.Len(t, m.Data["pad"], pads[i])
			require.True(t, strings.HasSuffix(m.ID, fmt.Sprintf("-%d", i+1)), "id %s of event %d", m.ID, i)
		}
	}
	var got []stream.Message
	for len(got) < len(pads) {
		got = append(got, single.next(t))
	}
	check(t, got)
	got = got[:0]
	for len(got) < len(pads) {
		got = append(got, compressed.next(t))
	}
	check(t, got)
	got = got[:0]
	for len(got) < len(pads) {
		typ, b, err := batched.c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageText, typ)
		var ms []stream.Message
		require.NoError(t, json.Unmarshal(b, &ms), "a batch is a JSON array")
		require.NotEmpty(t, ms)
		if len(ms) > 1 {
			require.LessOrEqual(t, len(b), 64<<10, "a batch of several events is at most 64 KiB")
		}
		got = append(got, ms...)
	}
	check(t, got)
}

// TestStreamWebSocketLingerDelivers: during a burst (Run coalescing the
// wake-ups), a client following one service may be left lingering with
// its few events; they still reach it, in order and with the IDs every
// other client sees, also when the burst ends with its event and nothing
// is published after it.
func TestStreamWebSocketLingerDelivers(t *testing.T) {
	bus := events.NewBus(16, nil)
	_, reg, srv := serveBus(t, bus)
	follower := dial(t, srv.URL, `{"services":["b"]}`)
	all := dial(t, srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, follower.next(t).Type)
	require.Equal(t, stream.TypeSubscribed, all.next(t).Type)

	bus.Publish(ev(0, "b"))
	first := follower.next(t)
	require.Equal(t, all.next(t), first)
	const burst = 500
	for i := 1; i <= burst; i++ {
		svc := "a"
		if i == burst/2 || i == burst {
			svc = "b"
		}
		bus.Publish(ev(i, svc))
	}
	var bs []stream.Message
	for i := 1; i <= burst; i++ {
		m := all.next(t)
		require.Equal(t, fmt.Sprintf("INC-2026-%04d", i), m.IncidentID)
		if m.Service == "b" {
			bs = append(bs, m)
		}
	}
	require.Len(t, bs, 2)
	for _, want := range bs {
		require.Equal(t, want, follower.next(t), "the follower's events, in order, with the same IDs")
	}
	t.Logf("%v writes for %v deliveries", testutil.ToFloat64(counter(t, reg, "sre_stream_writes_total")), testutil.ToFloat64(counter(t, reg, "sre_stream_messages_sent_total")))
}

// TestStreamWebSocketIndex: the hub hands each event only to the clients
// filtered on its service and to those with no service filter; every
// client still gets exactly the events its filter takes, in order, with
// the IDs every client sees: a client on one service never sees another's,
// a client on several services (one named twice) gets each of their
// events once, clients filtered by type only or by nothing get theirs, and
// a client resuming from an event ID gets its service's events after it,
// replayed, then live. Events come one wake-up each (Ingest), and in
// bursts of 1,500 coalesced by Run, more than a client's list of pending
// events holds (maxPend, 512) for the clients taking most of them.
func TestStreamWebSocketIndex(t *testing.T) {
	subs := []string{
		`{"services":["a"]}`,
		`{"services":["b"]}`,
		`{"services":["a","b","a"]}`,
		`{}`,
		`{"types":["budget."]}`,
		`{"types":["budget."],"services":["a"]}`,
		`{"services":["c"],"batch":true}`,
	}
	// Event i: service a, b, c or none, type incident. or budget.
	event := func(i int) events.Event {
		e := ev(i, []string{"a", "b", "c", "", "a", "b"}[i%6])
		if i%5 == 0 {
			e.Type = "budget.state_changed"
		}
		return e
	}
	for _, c := range []struct {
		name   string
		events int
	}{{"one wake-up per event", 120}, {"bursts", 3000}} {
		t.Run(c.name, func(t *testing.T) {
			bus := events.NewBus(16, nil)
			hub, _, srv := serveBus(t, bus)
			publish := func(i int) { bus.Publish(event(i)) }
			if c.events < 1000 {
				publish = func(i int) { hub.Ingest(event(i)) }
			}
			var clients []*wsClient
			var filters []stream.Filter
			for _, sub := range subs {
				cl := dial(t, srv.URL, sub)
				require.Equal(t, stream.TypeSubscribed, cl.next(t).Type)
				var s stream.Subscribe
				require.NoError(t, json.Unmarshal([]byte(sub), &s))
				clients = append(clients, cl)
				filters = append(filters, stream.Filter{Types: s.Types, Services: s.Services})
			}
			half := c.events / 2
			for i := range half {
				publish(i)
			}
			// The client taking everything tells the ID of the last
			// event of the first half.
			var resumeID string
			for range half {
				resumeID = clients[3].next(t).ID
			}
			for i := half; i < c.events; i++ {
				publish(i)
			}
			resumed := dial(t, srv.URL, fmt.Sprintf(`{"services":["b"],"last_event_id":%q}`, resumeID))
			ack := resumed.next(t)
			require.Equal(t, true, ack.Data["complete"])
			// One last event each for the services, every filter takes
			// one of them: nothing misrouted can come after it.
			publish(c.events*10 + 0) // budget., a
			publish(c.events*10 + 1) // incident., b
			publish(c.events*10 + 2) // incident., c
			all := make([]int, 0, c.events+3)
			for i := range c.events {
				all = append(all, i)
			}
			all = append(all, c.events*10, c.events*10+1, c.events*10+2)
			read := func(cl *wsClient, batch bool) stream.Message {
				if !batch {
					return cl.next(t)
				}
				return cl.nextBatched(t)
			}
			for k, cl := range clients {
				var want []int
				for _, i := range all {
					if filters[k].Match(event(i)) && (k != 3 || i >= half) {
						want = append(want, i)
					}
				}
				for _, i := range want {
					m := read(cl, k == 6)
					require.Equal(t, event(i).IncidentID, m.IncidentID, "client %s", subs[k])
				}
			}
			var want []int
			for _, i := range all {
				if i >= half && event(i).Service == "b" {
					want = append(want, i)
				}
			}
			for _, i := range want {
				require.Equal(t, event(i).IncidentID, resumed.next(t).IncidentID, "resumed client")
			}
		})
	}
}

// nextBatched returns the next event of a batching client.
func (w *wsClient) nextBatched(t *testing.T) stream.Message {
	t.Helper()
	if len(w.batched) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, b, err := w.c.Read(ctx)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &w.batched), "%s", b)
		require.NotEmpty(t, w.batched)
	}
	m := w.batched[0]
	w.batched = w.batched[1:]
	return m
}

// TestStreamWebSocketPingsIdleConnections: the hub pings a connection only
// after Ping without a write: a client idle for Ping gets a ping, one that
// was written an event within the last Ping gets none until it has been
// idle for Ping again (during a burst the events keep a connection alive,
// and the hub spends no ping on it). The clock is a manual one: the hub's
// ping waits on it.
func TestStreamWebSocketPingsIdleConnections(t *testing.T) {
	const ping = 15 * time.Second
	clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
	hub := stream.NewHub(nil, stream.HubOptions{Clock: clk, Ping: ping})
	mux := http.NewServeMux()
	hub.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var pings atomic.Int64
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http://", "ws://", 1)+"/api/v1/stream", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{}`)))
	// The client reads all the time (pings are answered while reading).
	msgs := make(chan stream.Message, 16)
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				close(msgs)
				return
			}
			var m stream.Message
			if json.Unmarshal(b, &m) == nil {
				msgs <- m
			}
		}
	}()
	next := func() stream.Message {
		t.Helper()
		select {
		case m, ok := <-msgs:
			require.True(t, ok, "the connection ended")
			return m
		case <-ctx.Done():
			t.Fatal("no message")
		}
		return stream.Message{}
	}
	require.Equal(t, stream.TypeSubscribed, next().Type)

	// Idle for Ping: one ping. The hub waits on the clock again only
	// after the pong, so the count is settled when it does.
	require.NoError(t, clk.WaitWaiters(ctx, 1))
	clk.Advance(ping)
	require.NoError(t, clk.WaitWaiters(ctx, 1))
	require.EqualValues(t, 1, pings.Load())

	// An event half a Ping later: the next Ping after the first ping
	// finds the connection written half a Ping ago, no ping.
	clk.Advance(ping / 2)
	hub.Ingest(ev(1, "api"))
	require.Equal(t, "INC-2026-0001", next().IncidentID)
	clk.Advance(ping / 2)
	require.NoError(t, clk.WaitWaiters(ctx, 1))
	require.EqualValues(t, 1, pings.Load(), "a connection written within Ping was pinged")

	// Idle for Ping since the event: pinged again.
	clk.Advance(ping / 2)
	require.NoError(t, clk.WaitWaiters(ctx, 1))
	require.EqualValues(t, 2, pings.Load(), "an idle connection was not pinged")
}

// TestStreamWebSocketUnansweredPing: a client whose connection stays up
// but that answers no ping (its peer gone without closing, a half-open
// connection) is closed once the ping's write timeout passes, its slot
// freed, and counted in sre_stream_closed_clients_total{reason="no_pong"};
// a client that answers is pinged and kept.
func TestStreamWebSocketUnansweredPing(t *testing.T) {
	const ping = 15 * time.Second
	for _, c := range []struct {
		name    string
		answers bool
	}{{"answers", true}, {"silent", false}} {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewManual(time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC))
			reg := prometheus.NewRegistry()
			// The write timeout bounds the wait for the pong: the silent
			// client never answers, however long it is, so a second ends
			// its wait; the answering client's pong may come late on a
			// busy machine, so it is given a minute.
			wait := time.Minute
			if !c.answers {
				wait = time.Second
			}
			hub := stream.NewHub(nil, stream.HubOptions{Registerer: reg, Clock: clk, Ping: ping, WriteTimeout: wait})
			mux := http.NewServeMux()
			hub.Register(mux)
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var pinged atomic.Int64
			conn, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http://", "ws://", 1)+"/api/v1/stream", &websocket.DialOptions{
				OnPingReceived: func(context.Context, []byte) bool { pinged.Add(1); return true },
			})
			require.NoError(t, err)
			t.Cleanup(func() { conn.CloseNow() })
			require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{}`)))
			cl := &wsClient{c: conn}
			require.Equal(t, stream.TypeSubscribed, cl.next(t).Type)
			if c.answers {
				// Pongs are written while the client reads.
				go func() {
					for {
						if _, _, err := conn.Read(ctx); err != nil {
							return
						}
					}
				}()
			}

			require.NoError(t, clk.WaitWaiters(ctx, 1))
			clk.Advance(ping)
			if c.answers {
				// The hub waits on the clock again once the pong came.
				require.NoError(t, clk.WaitWaiters(ctx, 1))
				require.EqualValues(t, 1, pinged.Load())
				require.Equal(t, 1, hub.Clients())
				require.Zero(t, closedWS(t, reg, "no_pong"))
				return
			}
			require.Eventually(t, func() bool { return hub.Clients() == 0 }, time.Minute, time.Millisecond,
				"a client that answers no ping keeps its slot")
			require.Equal(t, 1.0, closedWS(t, reg, "no_pong"))
			for _, r := range []string{"slow", "revoked", "shutdown", "ping_flood"} {
				require.Zero(t, closedWS(t, reg, r), r)
			}
		})
	}
}

// TestStreamWebSocketEventsPerWrite: the events pending for a client when
// it is woken go out in one write (one system call), every event framed
// once in the ring: 200 events published before the hub's first wake-up
// reach a client taking everything and one following their service in one
// write each (sre_stream_writes_total 2, sre_stream_messages_sent_total
// 400), as separate messages with the same IDs and bytes for both.
func TestStreamWebSocketEventsPerWrite(t *testing.T) {
	bus := events.NewBus(16, nil)
	reg := prometheus.NewRegistry()
	hub := stream.NewHub(bus, stream.HubOptions{Registerer: reg})
	mux := http.NewServeMux()
	hub.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	all := dial(t, srv.URL, `{}`)
	one := dial(t, srv.URL, `{"services":["api"]}`)
	require.Equal(t, stream.TypeSubscribed, all.next(t).Type)
	require.Equal(t, stream.TypeSubscribed, one.next(t).Type)
	// Each subscription ends with a pass of its own (serve's endPass),
	// which writes whatever has been published by then: published during
	// the loop below, part of the events would go in it and the rest in
	// Run's, a write more than the burst takes (seen on a busy machine).
	require.Eventually(t, func() bool { return hub.Settled(2) }, time.Minute, time.Millisecond)
	const n = 200 // fewer than a pass takes
	for i := range n {
		bus.Publish(ev(i, "api"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(ctx) //nolint:errcheck
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	for i := range n {
		_, a, err := all.c.Read(rctx)
		require.NoError(t, err)
		_, b, err := one.c.Read(rctx)
		require.NoError(t, err)
		require.Equal(t, string(a), string(b), "event %d", i)
		require.Contains(t, string(a), fmt.Sprintf(`"incident_id":"INC-2026-%04d"`, i))
	}
	// The counters move once the write has returned.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(counter(t, reg, "sre_stream_messages_sent_total")) == 2*n
	}, time.Minute, time.Millisecond)
	require.Equal(t, float64(2), testutil.ToFloat64(counter(t, reg, "sre_stream_writes_total")), "writes for %d events to 2 clients", n)
}

// TestStreamWebSocketPathsShownToAdminsOnly: a runbook step's event with
// the server's paths in its data reaches a viewer's WebSocket stream (one
// event per message or batched) with the base names only and an admin's
// whole, under the same ID; an alert's event is sent as published.
func TestStreamWebSocketPathsShownToAdminsOnly(t *testing.T) {
	f := startHub(t, stream.HubOptions{})
	viewer, batched, admin := dial(t, f.as(t, auth.RoleViewer), `{}`), dial(t, f.as(t, auth.RoleViewer), `{"batch":true}`), dial(t, f.as(t, auth.RoleAdmin), `{}`)
	for _, c := range []*wsClient{viewer, batched, admin} {
		require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
	}
	const prog = "/nonexistent/sred-test/bin/restart-app"
	step := events.Event{Type: "runbook.step", IncidentID: "INC-2026-0001", Data: map[string]any{"error": "fork/exec " + prog + ": no such file or directory",
		"input": map[string]any{"argv": []any{prog, "--now"}}}}
	alert := events.Event{Type: "incident.created", IncidentID: "INC-2026-0002", Data: map[string]any{"title": "GET /v2/orders/list failing"}}
	f.hub.Ingest(step)
	f.hub.Ingest(alert)
	redacted := map[string]any{"error": "fork/exec restart-app: no such file or directory", "input": map[string]any{"argv": []any{"restart-app", "--now"}}}
	m := admin.next(t)
	require.Equal(t, step.Data, m.Data)
	id := m.ID
	require.Equal(t, alert.Data, admin.next(t).Data)
	m = viewer.next(t)
	require.Equal(t, redacted, m.Data)
	require.Equal(t, id, m.ID, "the same event, the same ID")
	require.Equal(t, alert.Data, viewer.next(t).Data)
	require.Equal(t, redacted, batched.nextBatched(t).Data)
	require.Equal(t, alert.Data, batched.nextBatched(t).Data)
}

// TestStreamWebSocketHandshakeRefusals: a handshake the WebSocket library
// refuses (a page of another origin, a request without Upgrade, another
// protocol version) is answered in the API's envelope with its errorType,
// as the route's other refusals (401, 429, 503) are, not in the library's
// plain text.
func TestStreamWebSocketHandshakeRefusals(t *testing.T) {
	f := startHub(t, stream.HubOptions{})
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range upgrade {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	host := strings.TrimPrefix(f.srv.URL, "http://")
	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		code    int
		errType string
		err     string
	}{
		{"another origin", with(map[string]string{"Origin": "https://evil.example"}), http.StatusForbidden, "forbidden",
			fmt.Sprintf(`cross-origin WebSocket refused: request Origin "evil.example" is not authorized for Host %q`, host)},
		{"no upgrade", nil, http.StatusUpgradeRequired, "bad_data",
			`WebSocket handshake refused: WebSocket protocol violation: Connection header "" does not contain Upgrade`},
		{"another version", with(map[string]string{"Sec-WebSocket-Version": "8"}), http.StatusBadRequest, "bad_data",
			`WebSocket handshake refused: unsupported WebSocket protocol version (only 13 is supported): "8"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/api/v1/stream", nil)
			require.NoError(t, err)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var env struct {
				Status, ErrorType, Error string
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			require.Equal(t, "error", env.Status)
			require.Equal(t, tc.errType, env.ErrorType)
			require.Equal(t, tc.err, env.Error)
		})
	}
	// A same-origin upgrade is served as before.
	c := dial(t, f.srv.URL, `{}`)
	require.Equal(t, stream.TypeSubscribed, c.next(t).Type)
}
