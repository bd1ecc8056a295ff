package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// InputBuffer is the hub's buffer on the bus. Default 16,384 events.
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
	in    <-chan events.Event
	unsub func()
	epoch string

	// Clients read the ring without a lock: the hub stores an entry,
	// then last, then swaps and closes notify; a client loads notify,
	// then last, then the entries, and checks each entry's sequence
	// number (a slot already overwritten means it lagged too far).
	ring   []atomic.Pointer[entry]
	last   atomic.Uint64 // sequence number of the newest entry (0: none)
	notify atomic.Pointer[chan struct{}]

	// mu serializes the hub's appends with client registration.
	mu      sync.Mutex
	pending int // entries appended since the clients were last woken
	clients map[*wsClient]struct{}

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
	}
	ch := make(chan struct{})
	h.notify.Store(&ch)
	if bus != nil {
		h.in, h.unsub = bus.SubscribeBuffer(o.InputBuffer)
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

// Run reads the bus until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	if h.in == nil {
		<-ctx.Done()
		return nil
	}
	defer h.unsub()
	// During a burst, clients are woken at most once per Coalesce (and
	// once per batch of events), not once per event: a thousand clients
	// woken for every event would starve the hub of CPU. The first event
	// after a quiet period wakes them at once.
	var flush <-chan time.Time
	var lastWake time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-flush:
			flush = nil
			h.mu.Lock()
			h.wake()
			h.mu.Unlock()
			lastWake = time.Now()
		case ev, ok := <-h.in:
			if !ok {
				return nil
			}
			e := h.encode(ev)
			if e == nil {
				continue
			}
			h.mu.Lock()
			h.append(e)
			since := time.Since(lastWake)
			woke := h.pending >= batch || since >= h.o.Coalesce
			if woke {
				h.wake()
			}
			h.mu.Unlock()
			switch {
			case woke:
				lastWake = time.Now()
			case flush == nil:
				flush = time.After(h.o.Coalesce - since)
			}
		}
	}
}

// Message is what a client receives: an event with its ID, or a control
// message (type stream.subscribed or stream.error).
type Message struct {
	ID string `json:"id,omitempty"`
	events.Event
}

// Ingest numbers ev, appends it to the ring and wakes the clients, as Run
// does for the events of the bus; for tests and benchmarks.
func (h *Hub) Ingest(ev events.Event) {
	e := h.encode(ev)
	if e == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.append(e)
	h.wake()
}

// wake tells the clients waiting for events that there are new ones.
func (h *Hub) wake() {
	if h.pending == 0 {
		return
	}
	h.pending = 0
	ch := make(chan struct{})
	close(*h.notify.Swap(&ch))
}

// encode numbers ev and encodes it, outside the lock: only the hub's
// goroutine (or Ingest) writes h.last.
func (h *Hub) encode(ev events.Event) *entry {
	now := h.o.Now()
	if ev.Time.IsZero() {
		ev.Time = now.UTC()
	}
	seq := h.last.Load() + 1
	msg, err := json.Marshal(Message{ID: h.id(seq), Event: ev})
	if err != nil {
		h.o.Logger.Warn("event stream: encode event", "type", ev.Type, "err", err)
		return nil
	}
	return &entry{seq: seq, at: now, ev: ev, msg: msg}
}

// append adds e to the ring (h.mu held), dropping the clients that have
// not yet written the entry it overwrites: they can no longer catch up.
func (h *Hub) append(e *entry) {
	n := uint64(len(h.ring))
	if e.seq > n {
		lost := e.seq - n
		for c := range h.clients {
			if c.cursor.Load() < lost {
				delete(h.clients, c)
				c.cancel(errTooSlow)
				h.dropped.Inc()
			}
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
}

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
	return h.pump(ctx, c, cl, f, start, last)
}

// pump writes the ring to the client from its cursor on.
func (h *Hub) pump(ctx context.Context, c *websocket.Conn, cl *wsClient, f Filter, cursor, replayEnd uint64) error {
	ping := time.NewTicker(h.o.Ping)
	defer ping.Stop()
	buf := make([]*entry, 0, batch)
	for {
		notify := *h.notify.Load()
		last := h.last.Load()
		buf = buf[:0]
		n := uint64(len(h.ring))
		lagged := false
		for s := cursor + 1; s <= last && len(buf) < batch; s++ {
			e := h.ring[s%n].Load()
			if e == nil || e.seq != s {
				lagged = true // overwritten: the client was dropped
				break
			}
			buf = append(buf, e)
		}
		if lagged {
			return errTooSlow
		}
		if err := context.Cause(ctx); err != nil {
			return err
		}
		if len(buf) == 0 {
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
		for _, e := range buf {
			if f.Match(e.ev) {
				wctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
				err := c.Write(wctx, websocket.MessageText, e.msg)
				cancel()
				if err != nil {
					if cause := context.Cause(ctx); cause != nil {
						return cause
					}
					return err
				}
				h.sent.Inc()
				if e.seq <= replayEnd {
					h.replayed.Inc()
				}
			}
			cursor = e.seq
			cl.cursor.Store(cursor)
		}
	}
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
