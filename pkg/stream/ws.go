package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/web"
)

// Defaults of HubOptions.
const (
	DefaultReplayEvents    = 10000
	DefaultReplayAge       = 15 * time.Minute
	DefaultPing            = 15 * time.Second
	DefaultSubscribeWait   = 10 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultMaxWSClients    = 2048
	DefaultHubInputBuffer  = 16384
	maxSubscribeMessageLen = 64 << 10
	// batch bounds the entries a client copies out of the ring at once.
	batch = 256
)

// Control message types sent by the hub (never published on the bus).
const (
	TypeSubscribed = "stream.subscribed"
	TypeError      = "stream.error"
)

// HubOptions configure a Hub.
type HubOptions struct {
	Logger *slog.Logger
	// Registerer receives sre_stream_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	// ReplayEvents is the size of the replay ring: the last events kept
	// for clients resuming after a reconnect, and how far a client may lag
	// before it is dropped. Default 10,000.
	ReplayEvents int
	// ReplayAge bounds the age of replayed events. Default 15 minutes.
	ReplayAge time.Duration
	// Ping is the interval of WebSocket pings. Default 15s.
	Ping time.Duration
	// SubscribeWait bounds the wait for the subscribe message. Default 10s.
	SubscribeWait time.Duration
	// WriteTimeout bounds one write to a client. Default 30s.
	WriteTimeout time.Duration
	// MaxClients bounds concurrent WebSocket clients. Default 2048.
	MaxClients int
	// InputBuffer is unused: the hub numbers events inside Publish
	// (events.Bus.Attach), it has no buffer on the bus. Kept for
	// compatibility.
	InputBuffer int
	// Coalesce is the least interval between two wake-ups of the clients
	// during a burst (latency traded for throughput). Default 10ms.
	Coalesce time.Duration
	// Now is the clock of the replay age (time.Now when nil).
	Now func() time.Time
	// AcceptOptions are passed to websocket.Accept (nil: same origin only).
	AcceptOptions *websocket.AcceptOptions
}

// entry is one event of the ring, encoded once for every client.
type entry struct {
	seq uint64
	at  time.Time
	ev  events.Event
	msg []byte
}

// wsClient is one connected WebSocket client.
type wsClient struct {
	cursor atomic.Uint64 // last sequence number written (or skipped)
	cancel context.CancelCauseFunc
}

// errTooSlow is the cause of a client dropped for lagging.
var errTooSlow = errors.New("client too slow: it fell behind the replay buffer")

// Hub is the WebSocket side of the live stream: one actor reads the event
// bus, numbers every event, encodes it once and appends it to a bounded
// ring; each client reads the ring at its own pace from its own cursor.
// Publishing never waits for a client: a client whose cursor falls out of
// the ring (it lags more than ReplayEvents) is dropped and counted.
type Hub struct {
	o     HubOptions
	unsub func()
	epoch string
	// kick asks Run for a delayed wake-up of the clients.
	kick chan struct{}

	// Clients read the ring without a lock: the hub stores an entry,
	// then last, then swaps and closes notify; a client loads notify,
	// then last, then the entries, and checks each entry's sequence
	// number (a slot already overwritten means it lagged too far).
	ring   []atomic.Pointer[entry]
	last   atomic.Uint64 // sequence number of the newest entry (0: none)
	notify atomic.Pointer[chan struct{}]

	// mu serializes the hub's appends with client registration.
	mu       sync.Mutex
	pending  int // entries appended since the clients were last woken
	lastWake time.Time
	kicked   bool // a delayed wake-up is due
	clients  map[*wsClient]struct{}
	// minCursor is at most the lowest cursor of the clients: appends
	// look for clients to drop only when the entry they overwrite is
	// newer than it, not at every event.
	minCursor uint64

	nclients atomic.Int64
	dropped  prometheus.Counter
	sent     prometheus.Counter
	replayed prometheus.Counter
}

// NewHub subscribes to bus; Run must then run for the hub to see events.
func NewHub(bus *events.Bus, o HubOptions) *Hub {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReplayEvents <= 0 {
		o.ReplayEvents = DefaultReplayEvents
	}
	if o.ReplayAge <= 0 {
		o.ReplayAge = DefaultReplayAge
	}
	if o.Ping <= 0 {
		o.Ping = DefaultPing
	}
	if o.SubscribeWait <= 0 {
		o.SubscribeWait = DefaultSubscribeWait
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxWSClients
	}
	if o.InputBuffer <= 0 {
		o.InputBuffer = DefaultHubInputBuffer
	}
	if o.Coalesce <= 0 {
		o.Coalesce = 10 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hub{
		o:       o,
		epoch:   strconv.FormatInt(o.Now().UnixNano(), 36),
		ring:    make([]atomic.Pointer[entry], o.ReplayEvents),
		clients: map[*wsClient]struct{}{},
		kick:    make(chan struct{}, 1),
	}
	ch := make(chan struct{})
	h.notify.Store(&ch)
	if bus != nil {
		h.unsub = bus.Attach(h.publish)
	}
	f := promauto.With(o.Registerer)
	h.dropped = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_dropped_clients_total",
		Help: "WebSocket stream clients disconnected because they fell behind the replay buffer.",
	})
	h.sent = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_messages_sent_total",
		Help: "Events written to WebSocket stream clients (replayed ones included).",
	})
	h.replayed = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_replayed_events_total",
		Help: "Events replayed to WebSocket stream clients resuming from an event ID.",
	})
	if o.Registerer != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sre_stream_clients",
			Help: "Clients connected to the WebSocket stream (GET /api/v1/stream).",
		}, func() float64 { return float64(h.nclients.Load()) })
	}
	return h
}

// Run wakes the clients for the events numbered during a burst, until ctx
// ends; then the hub leaves the bus.
//
// Events are numbered into the ring inside events.Bus.Publish (the hub
// is attached to the bus), on the publisher's goroutine: ingestion never
// waits for this goroutine, or any other, to be scheduled, however many
// clients compete for the CPU. The first event after a quiet period wakes
// the clients at once; during a burst they are woken at most once per
// Coalesce, by Run: a thousand clients woken for every event would take
// the CPU from the publishers.
func (h *Hub) Run(ctx context.Context) error {
	if h.unsub != nil {
		defer h.unsub()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.kick:
		}
		h.mu.Lock()
		d := h.o.Coalesce - time.Since(h.lastWake)
		h.mu.Unlock()
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		h.mu.Lock()
		h.kicked = false
		h.wake()
		h.mu.Unlock()
	}
}

// publish is the hub's hook on the bus: it numbers ev into the ring and
// wakes the clients now, or asks Run to within Coalesce.
func (h *Hub) publish(ev events.Event) {
	at, body := h.encode(ev)
	if body == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.append(ev, at, body)
	if time.Since(h.lastWake) >= h.o.Coalesce {
		h.wake()
		return
	}
	if !h.kicked {
		h.kicked = true
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

// Message is what a client receives: an event with its ID, or a control
// message (type stream.subscribed or stream.error).
type Message struct {
	ID string `json:"id,omitempty"`
	events.Event
}

// Ingest numbers ev, appends it to the ring and wakes the clients at once,
// as the bus hook does for the first event after a quiet period; for tests
// and benchmarks.
func (h *Hub) Ingest(ev events.Event) {
	at, body := h.encode(ev)
	if body == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.append(ev, at, body)
	h.wake()
}

// wake tells the clients waiting for events that there are new ones (h.mu
// held).
func (h *Hub) wake() {
	h.lastWake = time.Now()
	if h.pending == 0 {
		return
	}
	h.pending = 0
	ch := make(chan struct{})
	close(*h.notify.Swap(&ch))
}

// encode encodes ev once for every client, before the lock; append adds
// its ID.
func (h *Hub) encode(ev events.Event) (time.Time, []byte) {
	now := h.o.Now()
	if ev.Time.IsZero() {
		ev.Time = now.UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil || len(b) < 2 || b[0] != '{' {
		h.o.Logger.Warn("event stream: encode event", "type", ev.Type, "err", err)
		return now, nil
	}
	return now, b
}

// append numbers the encoded event, adds it to the ring (h.mu held) and
// drops the clients that have not yet written the entry it overwrites:
// they can no longer catch up. The message is the event's JSON object
// with its "id" first, as Message encodes it.
func (h *Hub) append(ev events.Event, at time.Time, body []byte) {
	seq := h.last.Load() + 1
	id := h.id(seq)
	msg := make([]byte, 0, len(body)+len(id)+8)
	msg = append(msg, `{"id":"`...)
	msg = append(msg, id...)
	msg = append(msg, `",`...)
	msg = append(msg, body[1:]...)
	e := &entry{seq: seq, at: at, ev: ev, msg: msg}
	n := uint64(len(h.ring))
	if e.seq > n {
		if lost := e.seq - n; lost > h.minCursor {
			low := uint64(math.MaxUint64)
			for c := range h.clients {
				cur := c.cursor.Load()
				if cur < lost {
					delete(h.clients, c)
					c.cancel(errTooSlow)
					h.dropped.Inc()
					continue
				}
				low = min(low, cur)
			}
			h.minCursor = low
		}
	}
	h.ring[e.seq%n].Store(e)
	h.last.Store(e.seq)
	h.pending++
}

func (h *Hub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// parseID returns the sequence number of an event ID of this process.
func (h *Hub) parseID(id string) (uint64, bool) {
	ep, s, ok := strings.Cut(id, "-")
	if !ok || ep != h.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// Subscribe is the first message of a client.
type Subscribe struct {
	// Types are event type prefixes ("incident.", "budget.state_changed").
	Types []string `json:"types"`
	// Services are exact service names.
	Services []string `json:"services"`
	// LastEventID resumes after this event (the id of the last event the
	// client received before it was disconnected).
	LastEventID string `json:"last_event_id"`
	// Batch asks for several events per WebSocket message: a JSON array
	// of the events ready when the client is written to (at most
	// maxBatchBytes of them, always at least one), instead of one object
	// per message. Fewer frames and system calls when events come in bursts.
	Batch bool `json:"batch"`
}

// maxBatchBytes bounds one batched message (a single larger event is sent
// alone, in an array of one).
const maxBatchBytes = 64 << 10

func (s Subscribe) check() error {
	if len(s.Types) > maxFilters || len(s.Services) > maxFilters {
		return fmt.Errorf("at most %d types and %d services", maxFilters, maxFilters)
	}
	for _, v := range s.Types {
		if v == "" || len(v) > maxFilterLen {
			return fmt.Errorf("types: empty or longer than %d bytes", maxFilterLen)
		}
	}
	for _, v := range s.Services {
		if v == "" || len(v) > maxFilterLen {
			return fmt.Errorf("services: empty or longer than %d bytes", maxFilterLen)
		}
	}
	return nil
}

// Register mounts GET /api/v1/stream on mux.
func (h *Hub) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/stream", h)
}

// ServeHTTP upgrades to WebSocket and streams events until the client leaves.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		web.Error(w, http.StatusBadRequest, "bad_data", errors.New("no query parameters: send the filters in the first message"))
		return
	}
	if n := h.nclients.Add(1); n > int64(h.o.MaxClients) {
		h.nclients.Add(-1)
		web.Error(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("too many stream clients (at most %d)", h.o.MaxClients))
		return
	}
	defer h.nclients.Add(-1)
	// The connection outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			h.o.Logger.Debug("event stream: clear deadline", "err", err)
		}
	}
	c, err := websocket.Accept(w, r, h.o.AcceptOptions)
	if err != nil {
		h.o.Logger.Debug("event stream: websocket accept", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer c.CloseNow() //nolint:errcheck // closing a connection that may be gone
	err = h.serve(r.Context(), c)
	var ce websocket.CloseError
	switch {
	case errors.Is(err, errTooSlow):
		c.Close(websocket.StatusPolicyViolation, "too slow") //nolint:errcheck
	case errors.As(err, &ce), errors.Is(err, context.Canceled):
	case err != nil:
		h.o.Logger.Debug("event stream ended", "remote", r.RemoteAddr, "err", err)
	}
}

func (h *Hub) serve(ctx context.Context, c *websocket.Conn) error {
	c.SetReadLimit(maxSubscribeMessageLen)
	sctx, cancel := context.WithTimeout(ctx, h.o.SubscribeWait)
	typ, b, err := c.Read(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("read subscribe message: %w", err)
	}
	var sub Subscribe
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err == nil && typ != websocket.MessageText {
		err = errors.New("the subscribe message must be a text message")
	}
	if err == nil {
		if derr := dec.Decode(&sub); derr != nil {
			err = fmt.Errorf("subscribe message: %w", derr)
		} else {
			err = sub.check()
		}
	}
	if err != nil {
		h.writeControl(ctx, c, TypeError, map[string]any{"error": err.Error()})
		c.Close(websocket.StatusPolicyViolation, "bad subscribe message") //nolint:errcheck
		return err
	}
	f := Filter{Types: sub.Types, Services: sub.Services}
	// From now on the reader only answers pings and notices the close.
	ctx = c.CloseRead(ctx)
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	cl := &wsClient{cancel: cancelCause}

	h.mu.Lock()
	last := h.last.Load()
	oldest := uint64(1)
	if n := uint64(len(h.ring)); last > n {
		oldest = last - n + 1
	}
	start, resumed, complete := last, false, true
	if sub.LastEventID != "" {
		resumed = true
		seq, ok := h.parseID(sub.LastEventID)
		switch {
		case !ok || seq > last:
			// Another process's ID (sred restarted) or unknown: replay
			// what is kept.
			start, complete = oldest-1, false
		case seq+1 < oldest:
			start, complete = oldest-1, false
		default:
			start = seq
		}
		// Skip what is older than the replay age.
		cut := h.o.Now().Add(-h.o.ReplayAge)
		for start < last {
			e := h.ring[(start+1)%uint64(len(h.ring))].Load()
			if !e.at.Before(cut) {
				break
			}
			start++
			if start > seq {
				complete = false
			}
		}
	}
	cl.cursor.Store(start)
	h.clients[cl] = struct{}{}
	h.minCursor = min(h.minCursor, start)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, cl)
		h.mu.Unlock()
	}()

	lastID := ""
	if last > 0 {
		lastID = h.id(last)
	}
	ack := map[string]any{"last_event_id": lastID, "resumed": resumed}
	if resumed {
		// complete is false when events after the client's ID were lost
		// (too old, or sred restarted): the client should reload state.
		ack["complete"] = complete
		ack["replay"] = last - start
	}
	if err := h.writeControl(ctx, c, TypeSubscribed, ack); err != nil {
		return err
	}
	return h.pump(ctx, c, cl, f, sub.Batch, start, last)
}

// pump writes the ring to the client from its cursor on. Each event was
// encoded once by the hub; a pass over the ring writes what matches under
// one write deadline, one message per event or, for a client that asked
// for batches, a few JSON arrays assembled in the client's own buffer.
func (h *Hub) pump(ctx context.Context, c *websocket.Conn, cl *wsClient, f Filter, batched bool, cursor, replayEnd uint64) error {
	ping := time.NewTicker(h.o.Ping)
	defer ping.Stop()
	buf := make([]*entry, 0, batch)
	var out []byte // the batched message being assembled
	for {
		notify := *h.notify.Load()
		last := h.last.Load()
		buf = buf[:0]
		n := uint64(len(h.ring))
		lagged := false
		scanned := cursor
		for s := cursor + 1; s <= last && len(buf) < batch; s++ {
			e := h.ring[s%n].Load()
			if e == nil || e.seq != s {
				lagged = true // overwritten: the client was dropped
				break
			}
			scanned = s
			if f.Match(e.ev) {
				buf = append(buf, e)
			}
		}
		if lagged {
			return errTooSlow
		}
		if err := context.Cause(ctx); err != nil {
			return err
		}
		if scanned == cursor {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-notify:
			case <-ping.C:
				pctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
				err := c.Ping(pctx)
				cancel()
				if err != nil {
					return errors.Join(context.Cause(ctx), err)
				}
			}
			continue
		}
		if len(buf) > 0 {
			var err error
			if batched {
				out, err = h.writeBatches(ctx, c, buf, out)
			} else {
				err = h.writeEach(ctx, c, buf)
			}
			if err != nil {
				if cause := context.Cause(ctx); cause != nil {
					return cause
				}
				return err
			}
			for _, e := range buf {
				if e.seq <= replayEnd {
					h.replayed.Inc()
				}
			}
		}
		cursor = scanned
		cl.cursor.Store(cursor)
	}
}

// writeEach writes one message per event, under one write deadline.
func (h *Hub) writeEach(ctx context.Context, c *websocket.Conn, es []*entry) error {
	wctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
	defer cancel()
	for _, e := range es {
		if err := c.Write(wctx, websocket.MessageText, e.msg); err != nil {
			return err
		}
	}
	h.sent.Add(float64(len(es)))
	return nil
}

// writeBatches writes the events as JSON arrays of at most maxBatchBytes,
// assembled from their encodings in out (reused across calls).
func (h *Hub) writeBatches(ctx context.Context, c *websocket.Conn, es []*entry, out []byte) ([]byte, error) {
	wctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
	defer cancel()
	for len(es) > 0 {
		out = append(out[:0], '[')
		k := 0
		for ; k < len(es) && (k == 0 || len(out)+len(es[k].msg)+2 <= maxBatchBytes); k++ {
			if k > 0 {
				out = append(out, ',')
			}
			out = append(out, es[k].msg...)
		}
		out = append(out, ']')
		if err := c.Write(wctx, websocket.MessageText, out); err != nil {
			return out, err
		}
		h.sent.Add(float64(k))
		es = es[k:]
	}
	if cap(out) > 4*maxBatchBytes {
		out = nil // do not keep a buffer grown by one huge event
	}
	return out, nil
}

func (h *Hub) writeControl(ctx context.Context, c *websocket.Conn, typ string, data map[string]any) error {
	b, err := json.Marshal(Message{Event: events.Event{Type: typ, Time: h.o.Now().UTC(), Data: data}})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b)
}

// Last returns the sequence number of the newest event ingested (0: none).
func (h *Hub) Last() uint64 { return h.last.Load() }

// Clients returns the number of connected WebSocket clients.
func (h *Hub) Clients() int { return int(h.nclients.Load()) }
