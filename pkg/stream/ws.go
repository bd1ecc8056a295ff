package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// Defaults of HubOptions.
const (
	DefaultReplayEvents    = 10000
	DefaultReplayAge       = 15 * time.Minute
	DefaultPing            = 15 * time.Second
	DefaultSubscribeWait   = 10 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultStallTimeout    = 100 * time.Millisecond
	DefaultCoalesce        = 50 * time.Millisecond
	DefaultLinger          = time.Second
	DefaultMaxWSClients    = 2048
	DefaultHubInputBuffer  = 16384
	maxSubscribeMessageLen = 64 << 10
	// batch bounds the events written to a client in one pass of a writer.
	batch = 512
	// maxPassBytes bounds the bytes of one pass (a single larger event is
	// written alone).
	maxPassBytes = 256 << 10
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
	// Ping is how long a connection may go without a write before the
	// hub pings it: a client written to more often (events in a burst)
	// gets no ping, one idle for Ping gets one. Default 15s.
	Ping time.Duration
	// SubscribeWait bounds the wait for the subscribe message. Default 10s.
	SubscribeWait time.Duration
	// WriteTimeout bounds a write to a client (a pass of events, a ping);
	// a client that does not take its events within it is dropped and
	// counted. Default 30s.
	WriteTimeout time.Duration
	// Writers is the number of goroutines writing events to the clients,
	// the fan-out's share of the CPU: default max(1, GOMAXPROCS-1), so
	// that the fan-out can never take every core from ingestion.
	Writers int
	// StallTimeout is how long a writer waits for a client's connection
	// to take a pass of events before it hands the rest of the write to a
	// goroutine of the client's own (bounded by WriteTimeout) and moves on
	// to the next client, on a connection that is not a socket of the
	// system (TLS); on a TCP socket the writer never waits: what the socket
	// does not take at once is handed over. Default 100ms.
	StallTimeout time.Duration
	// MaxClients bounds concurrent WebSocket clients. Default 2048.
	MaxClients int
	// ClientKey and MaxPerKey bound the clients of one principal at once,
	// as Options' (more are answered 429).
	ClientKey func(*http.Request) string
	MaxPerKey int
	// InputBuffer is unused: the hub numbers events inside Publish
	// (events.Bus.Attach), it has no buffer on the bus. Kept for
	// compatibility.
	InputBuffer int
	// Coalesce is the least interval between two wake-ups of the clients
	// during a burst (latency traded for throughput): each wake-up writes a
	// client all its pending events in one system call. The first event
	// after a quiet Coalesce wakes them at once. Default 50ms.
	Coalesce time.Duration
	// Linger is how long, during a burst, a client with only a few events
	// pending (fewer than 512 matching its filter) may wait to be written,
	// counted from its last wake-up: a tool following one service gets
	// that service's events of a burst in a few writes instead of one
	// write (one system call) per event. Outside bursts (the first event
	// after a quiet Coalesce) every client is written at once. Default 1s.
	Linger time.Duration
	// Clock tells the time of the replay age and of the pings (clock.Real
	// when nil); the pings wait on it when it is a clock.Timer, else on
	// the wall clock.
	Clock clock.Clock
	// AcceptOptions are passed to websocket.Accept (nil: same origin only).
	AcceptOptions *websocket.AcceptOptions
	// AllowOrigin, when set, is asked about a handshake that has an
	// Origin: true lets it in even though the Origin is not the request's
	// host (sred's stream listener lets in the console's own origins this
	// way); false leaves the decision to AcceptOptions.
	AllowOrigin func(*http.Request) bool
}

// entry is one event of the ring, encoded once for every client: frame
// is the WebSocket text frame of the event (header and payload), msg its
// payload (the JSON object), written as is to every client that takes
// single events on an uncompressed connection.
//
// redacted, when set, is the same event as a client who is not an admin
// reads it (RedactEvent: an event of sred's own work whose data names the
// server's paths), encoded once too.
type entry struct {
	seq      uint64
	at       time.Time
	ev       events.Event
	frame    []byte
	msg      []byte
	redacted *entry
}

// forClient is e as c reads it.
func (e *entry) forClient(c *wsClient) *entry {
	if c.redact && e.redacted != nil {
		return e.redacted
	}
	return e
}

// wsClient is one connected WebSocket client.
type wsClient struct {
	cursor atomic.Uint64 // last sequence number written (or skipped)
	// queued is set while the client waits in the writers' queue or a
	// writer (or its own goroutine finishing a stalled write) writes to
	// it: at most one pass at a time, and a client is queued once.
	queued atomic.Bool
	// missed is set by a wake-up that found the client queued: the end
	// of its pass queues it again for the events the wake-up was about.
	missed atomic.Bool
	ctx    context.Context
	cancel context.CancelCauseFunc
	// req is the context of the request: it ends, before ctx, when a
	// reload revokes the client's credentials (end then closes).
	req  context.Context
	conn *websocket.Conn
	cork *corkConn // nil when the connection could not be corked
	// raw is set when the hub writes its frames straight to cork (no
	// compression was negotiated): the frames encoded once in the ring,
	// without the library's writer.
	raw   bool
	f     Filter
	batch bool
	// redact is set for a client who is not an admin: it reads the
	// redacted entries (entry.redacted).
	redact bool
	// replayEnd is the last event that was a replay for this client.
	replayEnd uint64
	// woken is when a wake-up last queued the client (h.imu).
	woken time.Time
	// all is set when the filter takes every event: the client reads the
	// ring from its cursor, the index never lists its events.
	all bool
	// dirty is set while the client is in the hub's list of clients the
	// next wake-up looks at (h.imu).
	dirty bool
	// written is when the hub last wrote to the client (events or a ping,
	// UnixNano of Clock): the ping waits until the connection has been
	// idle for Ping.
	written atomic.Int64

	// pmu guards scanTo and pend, the client's share of the index: the
	// events after the cursor up to scanTo are read from the ring and
	// matched against the filter by the pass (a replay, an unfiltered
	// client, or a pend that overflowed); after scanTo, pend holds the
	// sequence numbers of the events that match, in order, up to the
	// hub's distributed.
	pmu    sync.Mutex
	scanTo uint64
	pend   []uint64
}

// maxPend bounds a client's pend: beyond it the client's events are read
// from the ring and matched by its pass (as a replay is), so the index
// holds at most maxPend sequence numbers per client.
const maxPend = 512

// errTooSlow is the cause of a client dropped for lagging.
// errNoSubscribe ends a connection whose subscribe message did not come
// within SubscribeWait.
var errNoSubscribe = errors.New("no subscribe message")

var errTooSlow = errors.New("client too slow: it fell behind the replay buffer")

// Hub is the WebSocket side of the live stream: every event published on
// the bus is numbered, encoded once and appended to a bounded ring, on the
// publisher's goroutine. A client taking every event reads the ring from
// its own cursor; the others are indexed by service: a wake-up (at most
// once per Coalesce during a burst, on Run's goroutine) lists each new
// event's sequence number in the pend of the clients filtered on its
// service, and of those without a service filter, whose filters take it,
// and looks only at the clients that got events. The fan-out is
// background work of a bounded pool of writers (Writers): a writer takes
// a client from the queue of clients with events to read and writes all
// its pending events in one system call. Publishing never waits for a
// client, a wake-up or a writer: a client whose oldest pending event falls
// out of the ring (it lags more than ReplayEvents), or whose socket does
// not take its events within WriteTimeout, is dropped and counted.
type Hub struct {
	o      HubOptions
	perKey *perKey
	life   *life
	unsub  func()
	epoch  string
	// kick asks Run for a delayed wake-up of the clients.
	kick chan struct{}

	// Writers read the ring without a lock: the hub stores an entry,
	// then last; a writer loads last, then the entries, and checks each
	// entry's sequence number (a slot already overwritten means the client
	// lagged too far).
	ring []atomic.Pointer[entry]
	last atomic.Uint64 // sequence number of the newest entry (0: none)

	// mu serializes the hub's appends with client registration.
	mu       sync.Mutex
	pending  int // entries appended since the clients were last woken
	lastWake time.Time
	kicked   bool // a delayed wake-up is due
	clients  map[*wsClient]struct{}
	// minCursor is at most the lowest position of the clients (need):
	// appends look for clients to drop only when the entry they overwrite
	// is newer than it, not at every event.
	minCursor uint64

	// imu guards the index of the clients, which the wake-ups use to visit
	// only the clients an event is for: the clients filtered by service
	// under each of their services (bySvc), those filtered by type only
	// (anySvc), those taking every event (every); and the clients the next
	// wake-up looks at (dirty). Lock order: mu, imu, a client's pmu, qmu.
	imu    sync.Mutex
	bySvc  map[string][]*wsClient
	anySvc []*wsClient
	every  []*wsClient
	dirty  []*wsClient
	spare  []*wsClient // the previous dirty list, reused
	// distributed is the last event whose sequence number is in the pend
	// of every client it matches (written under imu).
	distributed atomic.Uint64

	// qmu guards the writers' queue of clients and the writer count.
	qmu     sync.Mutex
	queue   []*wsClient
	writers int
	bufs    sync.Pool // *writerBuf

	nclients atomic.Int64
	dropped  prometheus.Counter
	sent     prometheus.Counter
	writes   prometheus.Counter
	replayed prometheus.Counter
	refused  *prometheus.CounterVec
	closed   *prometheus.CounterVec
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
	if o.Writers <= 0 {
		o.Writers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Coalesce <= 0 {
		o.Coalesce = DefaultCoalesce
	}
	if o.Linger <= 0 {
		o.Linger = DefaultLinger
	}
	o.Clock = clock.OrReal(o.Clock)
	h := &Hub{
		o:       o,
		epoch:   strconv.FormatInt(o.Clock.Now().UnixNano(), 36),
		ring:    make([]atomic.Pointer[entry], o.ReplayEvents),
		clients: map[*wsClient]struct{}{},
		bySvc:   map[string][]*wsClient{},
		kick:    make(chan struct{}, 1),
		perKey:  newPerKey(o.ClientKey, o.MaxPerKey),
		life:    newLife(),
	}
	if bus != nil {
		h.unsub = bus.Attach(h.publish)
	}
	f := promauto.With(o.Registerer)
	h.dropped = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_dropped_clients_total",
		Help: "WebSocket clients disconnected because they lagged more than the replay buffer (10,000 events) behind.",
	})
	h.sent = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_messages_sent_total",
		Help: "Events written to WebSocket clients, replayed ones included.",
	})
	h.writes = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_writes_total",
		Help: "Writes to WebSocket clients; a write carries one or more events (during a burst a client's pending events go in one write).",
	})
	h.replayed = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_stream_replayed_events_total",
		Help: "Events replayed to WebSocket clients resuming from an event ID.",
	})
	h.refused, h.closed = clientCounters(o.Registerer, transportWS)
	if o.Registerer != nil {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sre_stream_clients",
			Help: "Clients connected to the WebSocket stream (GET /api/v1/stream).",
		}, func() float64 { return float64(h.nclients.Load()) })
	}
	return h
}

// Run wakes the clients for the events published on the bus, until ctx
// ends; then the hub leaves the bus.
//
// Events are numbered into the ring inside events.Bus.Publish (the hub
// is attached to the bus), on the publisher's goroutine, which then only
// signals Run (once until Run has woken the clients): ingestion never
// waits for this goroutine, a writer or a client to be scheduled, and
// does no work per client. The first event after a quiet period wakes
// the clients at once; during a burst they are woken at most once per
// Coalesce, and every wake-up writes all the events a client has pending.
// A wake-up hands each new event only to the clients it is for (by the
// index of the clients by service) and looks only at those clients.
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
		pending := h.pending
		h.pending = 0
		h.lastWake = time.Now()
		h.mu.Unlock()
		// Publishers go on meanwhile: the wake-up holds imu, not mu.
		if pending > 0 && h.wake(d > 0) {
			// Clients left lingering: wake them again after Coalesce,
			// even if no event comes.
			h.mu.Lock()
			h.pending++
			h.kicked = true
			select {
			case h.kick <- struct{}{}:
			default:
			}
			h.mu.Unlock()
		}
	}
}

// publish is the hub's hook on the bus: it numbers ev into the ring and
// asks Run to wake the clients.
func (h *Hub) publish(ev events.Event) {
	at, body := h.encode(ev)
	if body == nil {
		return
	}
	rev, rbody := h.encodeRedacted(ev, at, body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.appendEntry(ev, at, body, rev, rbody)
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
// without Run; for tests and benchmarks.
func (h *Hub) Ingest(ev events.Event) {
	at, body := h.encode(ev)
	if body == nil {
		return
	}
	rev, rbody := h.encodeRedacted(ev, at, body)
	h.mu.Lock()
	h.appendEntry(ev, at, body, rev, rbody)
	h.pending = 0
	h.lastWake = time.Now()
	h.mu.Unlock()
	h.wake(false)
}

// wakeScan is the number of matching pending events that gets a client
// written at the next wake-up even in a burst: a full pass (batch), so
// that in a burst a client taking every event is written once per 512
// events (one system call for the hub, one wake-up for the client)
// rather than once per 256: a write's fixed cost (the system call, the
// TCP send and the reader's wake-up) is most of its cost at these sizes.
const wakeScan = batch

// wake hands the new events to the clients they are for (distribute) and
// queues for the writers the clients that got some: a client none of whose
// filters takes a new event (a tool following one service during
// another's burst) is not even looked at. In a burst (linger), a client
// with fewer than wakeScan matching events, woken less than Linger ago and
// lagging less than half the ring, is left for a later wake-up; wake
// reports whether it left any.
func (h *Hub) wake(linger bool) (lingering bool) {
	now := time.Now()
	last := h.last.Load()
	n := uint64(len(h.ring))
	h.imu.Lock()
	defer h.imu.Unlock()
	h.distribute(last)
	for _, c := range h.every {
		h.markDirty(c)
	}
	cur := h.dirty
	h.dirty = h.spare[:0]
	for i, c := range cur {
		cur[i] = nil
		c.dirty = false
		if c.ctx.Err() != nil {
			continue
		}
		if c.queued.Load() {
			c.missed.Store(true)
			if c.queued.Load() {
				continue // its pass ends after the store: endPass sees missed
			}
		}
		// A client that is not queued is only queued here (imu) or by
		// the end of its own pass: its cursor does not move now.
		cursor := c.cursor.Load()
		matched := h.backlog(c, cursor, last)
		if matched == 0 {
			continue
		}
		if linger && matched < wakeScan && now.Sub(c.woken) < h.o.Linger && last-cursor < n/2 {
			lingering = true
			h.markDirty(c) // looked at again by the next wake-up
			continue
		}
		c.woken = now
		h.kickClient(c)
	}
	h.spare = cur[:0]
	return lingering
}

// markDirty adds c to the clients the next wake-up looks at (imu held).
func (h *Hub) markDirty(c *wsClient) {
	if !c.dirty {
		c.dirty = true
		h.dirty = append(h.dirty, c)
	}
}

// distribute appends the sequence number of each event up to last not yet
// distributed to the pend of every client whose filter takes it, visiting
// only the clients filtered on its service and those with no service
// filter (imu held). Clients taking every event read the ring instead.
func (h *Hub) distribute(last uint64) {
	from := h.distributed.Load()
	if from >= last {
		return
	}
	if len(h.bySvc) > 0 || len(h.anySvc) > 0 {
		n := uint64(len(h.ring))
		for s := from + 1; s <= last; s++ {
			e := h.ring[s%n].Load()
			if e == nil || e.seq != s {
				// Overwritten before it was distributed: append
				// dropped the clients that could still need it.
				continue
			}
			for _, c := range h.bySvc[e.ev.Service] {
				c.add(e)
				h.markDirty(c)
			}
			for _, c := range h.anySvc {
				if c.add(e) {
					h.markDirty(c)
				}
			}
		}
	}
	h.distributed.Store(last)
}

// add appends e to c's pend if c's filter takes it, and reports whether it
// did (or e overflowed the pend, which the pass now reads from the ring).
func (c *wsClient) add(e *entry) bool {
	if !c.f.Match(e.ev) {
		return false
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if e.seq <= c.scanTo {
		return false
	}
	if len(c.pend) >= maxPend {
		c.pend = c.pend[:0]
		c.scanTo = e.seq
		return true
	}
	c.pend = append(c.pend, e.seq)
	return true
}

// backlog is the number of events pending for c after cursor, up to
// wakeScan (read from the ring up to scanTo: at most that many).
func (h *Hub) backlog(c *wsClient, cursor, last uint64) int {
	if c.all {
		return int(min(last-min(cursor, last), wakeScan))
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	k := 0
	if c.scanTo > cursor {
		k = int(min(c.scanTo-cursor, wakeScan))
	}
	i := 0
	for i < len(c.pend) && c.pend[i] <= cursor {
		i++
	}
	return min(k+len(c.pend)-i, wakeScan)
}

// hasWork reports whether c has events pending after cursor.
func (h *Hub) hasWork(c *wsClient, cursor uint64) bool {
	if c.all {
		return h.last.Load() > cursor
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return cursor < c.scanTo || (len(c.pend) > 0 && c.pend[len(c.pend)-1] > cursor)
}

// need is the position after which c may still read the ring: its cursor
// while it reads the ring from there, else before its first pending event,
// else the last event distributed (its events up to there are written).
func (h *Hub) need(c *wsClient) uint64 {
	cur := c.cursor.Load()
	if c.all {
		return cur
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if cur < c.scanTo {
		return cur
	}
	for _, s := range c.pend {
		if s > cur {
			return s - 1
		}
	}
	return max(cur, h.distributed.Load())
}

// index adds c to the index (mu held): its events from the next one
// distributed on are listed in its pend, those before are read from the
// ring from its cursor.
func (h *Hub) index(c *wsClient) {
	h.imu.Lock()
	defer h.imu.Unlock()
	c.all = len(c.f.Types) == 0 && len(c.f.Services) == 0
	c.pmu.Lock()
	c.scanTo = h.distributed.Load()
	c.pmu.Unlock()
	switch {
	case c.all:
		h.every = append(h.every, c)
	case len(c.f.Services) == 0:
		h.anySvc = append(h.anySvc, c)
	default:
		for i, s := range c.f.Services {
			if !slices.Contains(c.f.Services[:i], s) {
				h.bySvc[s] = append(h.bySvc[s], c)
			}
		}
	}
}

// unindex removes c from the index (mu held); removing it again does
// nothing.
func (h *Hub) unindex(c *wsClient) {
	h.imu.Lock()
	defer h.imu.Unlock()
	switch {
	case c.all:
		h.every = remove(h.every, c)
	case len(c.f.Services) == 0:
		h.anySvc = remove(h.anySvc, c)
	default:
		for _, s := range c.f.Services {
			if cs := remove(h.bySvc[s], c); len(cs) > 0 {
				h.bySvc[s] = cs
			} else {
				delete(h.bySvc, s)
			}
		}
	}
}

// remove deletes c from cs, not keeping the order.
func remove(cs []*wsClient, c *wsClient) []*wsClient {
	if i := slices.Index(cs, c); i >= 0 {
		cs[i] = cs[len(cs)-1]
		cs[len(cs)-1] = nil
		cs = cs[:len(cs)-1]
	}
	return cs
}

// schedule queues c for a writer unless it is queued or being written to
// (then it reports false), and starts a writer if fewer than Writers run.
func (h *Hub) schedule(c *wsClient) bool {
	if !c.queued.CompareAndSwap(false, true) {
		return false
	}
	h.qmu.Lock()
	h.queue = append(h.queue, c)
	start := h.writers < h.o.Writers
	if start {
		h.writers++
	}
	h.qmu.Unlock()
	if start {
		go h.writer()
	}
	return true
}

// kickClient queues c, or, when a pass or a ping holds it, marks it missed
// so that the end of that pass queues it again.
func (h *Hub) kickClient(c *wsClient) {
	for !h.schedule(c) {
		c.missed.Store(true)
		if c.queued.Load() {
			return // its pass ends after the store: endPass sees missed
		}
	}
}

// writerBuf is the memory of a writer: the events of a pass, the batched
// message being assembled and the corked frames.
type writerBuf struct {
	es   []*entry
	out  []byte
	cork []byte
}

// writer writes to the queued clients, one pass each in turn, until the
// queue is empty.
func (h *Hub) writer() {
	w, _ := h.bufs.Get().(*writerBuf)
	if w == nil {
		w = &writerBuf{es: make([]*entry, 0, batch)}
	}
	defer h.bufs.Put(w)
	for {
		h.qmu.Lock()
		if len(h.queue) == 0 {
			h.queue = nil
			h.writers--
			h.qmu.Unlock()
			return
		}
		c := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		h.qmu.Unlock()
		h.pass(w, c)
	}
}

// pass writes the events after c's cursor that match its filter, at most
// batch of them or maxPassBytes, in one flush: those up to scanTo read
// from the ring and matched here, then those listed in its pend. A client
// with more to read goes back to the end of the queue.
func (h *Hub) pass(w *writerBuf, c *wsClient) {
	if c.ctx.Err() != nil {
		return // gone: never queued again
	}
	cursor := c.cursor.Load()
	n := uint64(len(h.ring))
	es, size, scanned := w.es[:0], 0, cursor
	full := func() bool { return len(es) == batch || size >= maxPassBytes }
	var scanTo uint64
	if c.all {
		scanTo = h.last.Load()
	} else {
		c.pmu.Lock()
		scanTo = c.scanTo
		c.pmu.Unlock()
	}
	more := false
	for s := cursor + 1; s <= scanTo; s++ {
		if full() {
			more = true // the rest in another pass, after the other clients
			break
		}
		e := h.ring[s%n].Load()
		if e == nil || e.seq != s {
			h.lagged(c)
			return
		}
		scanned = s
		if c.f.Match(e.ev) {
			e = e.forClient(c)
			es = append(es, e)
			size += len(e.msg)
		}
	}
	if !more && !c.all {
		c.pmu.Lock()
		if c.scanTo != scanTo {
			// The pend overflowed meanwhile: the ring up to the new
			// scanTo in the next pass.
			more = true
		} else {
			i := 0
			for ; i < len(c.pend); i++ {
				s := c.pend[i]
				if s <= scanned {
					continue
				}
				if full() {
					more = true
					break
				}
				e := h.ring[s%n].Load()
				if e == nil || e.seq != s {
					c.pmu.Unlock()
					h.lagged(c)
					return
				}
				e = e.forClient(c)
				es = append(es, e)
				size += len(e.msg)
				scanned = s
			}
			if i == len(c.pend) {
				// Every event distributed so far is written.
				scanned = max(scanned, h.distributed.Load())
			}
			c.pend = c.pend[:copy(c.pend, c.pend[i:])]
		}
		c.pmu.Unlock()
	}
	w.es = es
	if len(es) > 0 && c.req != nil && c.req.Err() != nil {
		// The request ended (a reload revoked the client's credentials
		// or changed its role): the events it collected, some published
		// after, are not written in the view of the role the stream was
		// opened with; the client's goroutine closes it (end), once this
		// pass lets it go.
		c.queued.Store(false)
		return
	}
	if len(es) > 0 {
		// Before the write: once the client has the events, the ping
		// sees them.
		c.written.Store(h.o.Clock.Now().UnixNano())
		stalled, err := h.write(w, c, es)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				h.dropSlow(c, err)
			}
			c.cancel(err)
			return
		}
		for _, e := range es {
			if e.seq <= c.replayEnd {
				h.replayed.Inc()
			}
		}
		h.sent.Add(float64(len(es)))
		h.writes.Inc()
		if stalled != nil {
			// The client's own goroutine finishes the write, then
			// ends the pass.
			go func() {
				if err := stalled(); err != nil {
					h.dropSlow(c, err)
					return
				}
				h.endPass(c, scanned, more)
			}()
			return
		}
	}
	h.endPass(c, scanned, more)
}

// lagged drops a client whose pass found an event it needs overwritten in
// the ring, unless append dropped it already.
func (h *Hub) lagged(c *wsClient) {
	if c.ctx.Err() != nil {
		return
	}
	h.drop()
	c.cancel(errTooSlow)
}

// endPass stores c's cursor and queues it again if it has more to read
// now: the pass left some, or a wake-up came during the pass. The events
// published since the pass began otherwise wait for the next wake-up, so
// that a client is written at most once per Coalesce during a burst.
func (h *Hub) endPass(c *wsClient, cursor uint64, more bool) {
	c.cursor.Store(cursor)
	c.queued.Store(false)
	if c.missed.Swap(false) || more {
		if h.hasWork(c, cursor) {
			h.schedule(c)
		}
	}
}

// dropSlow drops a client whose socket did not take its events in time.
func (h *Hub) dropSlow(c *wsClient, err error) {
	if c.ctx.Err() != nil {
		return // gone already (left, or dropped for lagging)
	}
	h.drop()
	c.cancel(fmt.Errorf("%w: %w", errTooSlow, err))
}

// drop counts a client dropped for being too slow.
func (h *Hub) drop() {
	h.dropped.Inc()
	h.closed.WithLabelValues(closedSlow).Inc()
}

// write writes es to c, one message per event or as JSON arrays, corked:
// the frames go to the socket in one write. When the socket does not take
// them within StallTimeout, write returns a function that finishes the
// write within WriteTimeout, to be called on another goroutine.
func (h *Hub) write(w *writerBuf, c *wsClient, es []*entry) (stalled func() error, err error) {
	if c.cork == nil {
		// Not corked: the writes go to the socket one by one, each may
		// wait for it.
		ctx, cancel := context.WithTimeout(c.ctx, h.o.WriteTimeout)
		defer cancel()
		if c.batch {
			w.out, err = writeBatches(ctx, c.conn, es, w.out)
			return nil, err
		}
		return nil, writeEach(ctx, c.conn, es)
	}
	if c.raw {
		// The frames encoded in the ring, or arrays framed here, one
		// copy each into the pass's buffer.
		b := w.cork[:0]
		if c.batch {
			b = appendBatchFrames(b, es)
		} else {
			for _, e := range es {
				b = append(b, e.frame...)
			}
		}
		if cap(b) <= 4*maxPassBytes {
			w.cork = b[:0] // do not keep a buffer grown by one huge event
		}
		return h.flush(c, b)
	}
	// Corked frames are written to memory, with no deadline and no
	// cancellation (a context that can end costs the library a callback
	// registration per frame): the pings are written by the client's
	// goroutine only while it holds the client's queued flag, so no frame
	// of the hub waits on the socket while a writer writes (the library's
	// pong to a client's ping has a deadline of its own).
	c.cork.cork(w.cork)
	if c.batch {
		w.out, err = writeBatches(context.Background(), c.conn, es, w.out)
	} else {
		err = writeEach(context.Background(), c.conn, es)
	}
	b := c.cork.uncork()
	if cap(b) <= 4*maxPassBytes {
		w.cork = b[:0] // do not keep a buffer grown by one huge event
	}
	if err != nil {
		return nil, err
	}
	return h.flush(c, b)
}

// flush writes the frames of a pass, b, to c's socket: at once when the
// socket takes them (one system call, no deadline), else what is left is
// returned as a function finishing the write within WriteTimeout, to be
// called on another goroutine.
func (h *Hub) flush(c *wsClient, b []byte) (stalled func() error, err error) {
	k, timeout, err := c.cork.flush(b, h.o.StallTimeout)
	if !timeout {
		return nil, err
	}
	rest := append([]byte(nil), b[k:]...)
	deadline := time.Now().Add(h.o.WriteTimeout - h.o.StallTimeout)
	return func() error { return c.cork.rest(rest, deadline) }, nil
}

// appendFrameHeader appends the header of an unmasked, final WebSocket
// text frame of n bytes of payload (RFC 6455, section 5.2), as a server
// sends it.
func appendFrameHeader(b []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= math.MaxUint16:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		return append(b, finText, 127,
			byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// frameHeaderLen is the length of the header appendFrameHeader writes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= math.MaxUint16:
		return 4
	default:
		return 10
	}
}

// appendBatchFrames appends the events as text frames of JSON arrays of
// at most maxBatchBytes each (a larger event alone), as writeBatches
// writes them through the library.
func appendBatchFrames(b []byte, es []*entry) []byte {
	for len(es) > 0 {
		n, k := 2+len(es[0].msg), 1 // [ msg ]
		for ; k < len(es) && n+len(es[k].msg)+1 <= maxBatchBytes; k++ {
			n += len(es[k].msg) + 1
		}
		b = appendFrameHeader(b, n)
		b = append(b, '[')
		for i, e := range es[:k] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e.msg...)
		}
		b = append(b, ']')
		es = es[k:]
	}
	return b
}

// encode encodes ev once for every client, before the lock; append adds
// its ID.
func (h *Hub) encode(ev events.Event) (time.Time, []byte) {
	now := h.o.Clock.Now()
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

// encodeRedacted returns ev as a client who is not an admin reads it and
// its encoding, when that differs from body (ev's): only for the events
// of sred's own work whose data names the server's paths (RedactEvent);
// nil for the others, which cost only the look at their type.
func (h *Hub) encodeRedacted(ev events.Event, at time.Time, body []byte) (events.Event, []byte) {
	if ev.Data == nil || !machineEvent(ev) {
		return events.Event{}, nil
	}
	rev := RedactEvent(ev)
	if rev.Time.IsZero() {
		rev.Time = at.UTC()
	}
	b, err := json.Marshal(rev)
	if err != nil || len(b) < 2 || b[0] != '{' || bytes.Equal(b, body) {
		return events.Event{}, nil
	}
	return rev, b
}

// appendEntry numbers the encoded event (and its redacted encoding, rbody, if
// any), adds it to the ring (h.mu held) and drops the clients that have
// not yet written the entry it overwrites: they can no longer catch up.
// The message is the event's JSON object with its "id" first, as Message
// encodes it.
func (h *Hub) appendEntry(ev events.Event, at time.Time, body []byte, rev events.Event, rbody []byte) {
	seq := h.last.Load() + 1
	id := h.id(seq)
	e := newEntry(seq, at, ev, id, body)
	if rbody != nil {
		e.redacted = newEntry(seq, at, rev, id, rbody)
	}
	size := uint64(len(h.ring))
	if e.seq > size {
		if lost := e.seq - size; lost > h.minCursor {
			low := uint64(math.MaxUint64)
			for c := range h.clients {
				need := h.need(c)
				if need < lost {
					delete(h.clients, c)
					h.unindex(c)
					c.cancel(errTooSlow)
					h.drop()
					continue
				}
				low = min(low, need)
			}
			h.minCursor = low
		}
	}
	h.ring[e.seq%size].Store(e)
	h.last.Store(e.seq)
	h.pending++
}

// append is appendEntry of an event without a redacted encoding.
func (h *Hub) append(ev events.Event, at time.Time, body []byte) {
	h.appendEntry(ev, at, body, events.Event{}, nil)
}

// newEntry frames the encoded event body with its ID.
func newEntry(seq uint64, at time.Time, ev events.Event, id string, body []byte) *entry {
	n := len(`{"id":"`) + len(id) + len(`",`) + len(body) - 1
	hl := frameHeaderLen(n)
	frame := appendFrameHeader(make([]byte, 0, hl+n), n)
	frame = append(frame, `{"id":"`...)
	frame = append(frame, id...)
	frame = append(frame, `",`...)
	frame = append(frame, body[1:]...)
	return &entry{seq: seq, at: at, ev: ev, frame: frame, msg: frame[hl:]}
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

// Shutdown closes every WebSocket connection with status 1001 (going
// away) and the reason "shutting down", clients still to send their
// subscribe message included, and refuses new ones (503); then it waits
// until their handlers have returned (the close handshakes done), or until
// ctx ends. The connections are hijacked: http.Server.Shutdown neither
// waits for them nor closes them, so without this their clients would see
// the connection drop (1006) when the process exits.
func (h *Hub) Shutdown(ctx context.Context) error { return h.life.shutdown(ctx) }

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
	if !h.life.enter() {
		h.refused.WithLabelValues(refusedShutdown).Inc()
		web.Error(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("event stream: %w", errShutdown))
		return
	}
	defer h.life.leave()
	if n := h.nclients.Add(1); n > int64(h.o.MaxClients) {
		h.nclients.Add(-1)
		h.refused.WithLabelValues(refusedLimit).Inc()
		web.Error(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("too many stream clients (at most %d)", h.o.MaxClients))
		return
	}
	defer h.nclients.Add(-1)
	release, err := h.perKey.acquire(r)
	if err != nil {
		h.refused.WithLabelValues(refusedUser).Inc()
		web.Error(w, http.StatusTooManyRequests, "too_many_requests", err)
		return
	}
	defer release()
	// The connection outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
			h.o.Logger.Debug("event stream: clear deadline", "err", err)
		}
	}
	// The subscribe message is due SubscribeWait after the handshake: the
	// bound starts before the client can have the answer.
	due, release := clock.Bound(h.timer(), h.o.SubscribeWait)
	defer release()
	pings := h.newPingBudget()
	opts := h.acceptOptions(r, pings)
	cw := &corkWriter{ResponseWriter: w}
	c, err := websocket.Accept(cw, r, opts)
	if err != nil {
		h.o.Logger.Debug("event stream: websocket accept", "remote", r.RemoteAddr, "err", err)
		if cw.failCode != 0 {
			// The library's plain-text refusal, in the envelope.
			typ, msg := "bad_data", "WebSocket handshake refused: "
			if cw.failCode == http.StatusForbidden {
				typ, msg = "forbidden", "cross-origin WebSocket refused: "
			}
			web.Error(w, cw.failCode, typ, errors.New(msg+strings.TrimSpace(cw.failText.String())))
		}
		return
	}
	defer c.CloseNow() //nolint:errcheck // closing a connection that may be gone
	// Without compression the hub writes its frames straight to the
	// connection.
	raw := cw.conn != nil && w.Header().Get("Sec-WebSocket-Extensions") == ""
	err = h.serve(r.Context(), c, cw.conn, raw, due, pings.over)
	var ce websocket.CloseError
	switch {
	case errors.Is(err, errTooSlow):
		c.Close(websocket.StatusPolicyViolation, "too slow") //nolint:errcheck
	case errors.As(err, &ce), errors.Is(err, context.Canceled), errors.Is(err, errShutdown):
	case err != nil:
		h.o.Logger.Debug("event stream ended", "remote", r.RemoteAddr, "err", err)
	}
}

// serve streams to c once its subscribe message, due when due fires, is
// read; it ends the connection when flood is closed (the client sent more
// pings than its budget).
func (h *Hub) serve(ctx context.Context, c *websocket.Conn, cork *corkConn, raw bool, due <-chan time.Time, flood <-chan struct{}) error {
	c.SetReadLimit(maxSubscribeMessageLen)
	// Shutdown, or the subscribe message not come in time, closes the
	// connection under the pending read, with a close frame saying why
	// (canceling the read would drop it without one).
	read, closed := make(chan struct{}), make(chan struct{})
	var closedBy error
	go func() {
		defer close(closed)
		select {
		case <-read:
		case <-h.life.done():
			closedBy = errShutdown
			h.closed.WithLabelValues(closedShutdown).Inc()
			c.Close(websocket.StatusGoingAway, errShutdown.Error()) //nolint:errcheck
		case <-due:
			closedBy = fmt.Errorf("%w within %s", errNoSubscribe, h.o.SubscribeWait)
			h.closed.WithLabelValues(closedNoSubscribe).Inc()
			c.Close(websocket.StatusPolicyViolation, closedBy.Error()) //nolint:errcheck
		case <-flood:
			closedBy = errPingFlood
			h.closed.WithLabelValues(closedPingFlood).Inc()
			c.Close(websocket.StatusPolicyViolation, closedBy.Error()) //nolint:errcheck
		}
	}()
	typ, b, err := c.Read(ctx)
	close(read)
	<-closed
	if closedBy != nil {
		return closedBy
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// The library has closed the connection with status 1009
		// (message too big); the client is counted as one whose
		// subscribe message sred cannot take.
		h.closed.WithLabelValues(closedBadSubscribe).Inc()
		return fmt.Errorf("read subscribe message: %w", err)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			// The server ended the request (credentials revoked): the
			// read gave up and closed the connection.
			h.closed.WithLabelValues(closedRevoked).Inc()
		}
		return fmt.Errorf("read subscribe message: %w", err)
	}
	// Read as the HTTP API reads a JSON body (web.DecodeJSON): valid
	// UTF-8, one strict JSON value and nothing after it, no text the store
	// or a filter could not hold (limits.Check: NUL bytes).
	var sub Subscribe
	if typ != websocket.MessageText {
		err = errors.New("the subscribe message must be a text message")
	}
	if err == nil {
		err = limits.UTF8("subscribe message", b)
	}
	if err == nil {
		err = web.UnmarshalStrict(b, &sub)
		if err == nil {
			err = limits.Check(&sub)
		}
		if err != nil {
			err = fmt.Errorf("subscribe message: %w", err)
		} else {
			err = sub.check()
		}
	}
	if err != nil {
		h.writeControl(ctx, c, TypeError, map[string]any{"error": err.Error()})
		h.closed.WithLabelValues(closedBadSubscribe).Inc()
		c.Close(websocket.StatusPolicyViolation, "bad subscribe message") //nolint:errcheck
		return err
	}
	f := Filter{Types: sub.Types, Services: sub.Services}
	// From now on the reader only answers pings and notices the close.
	// The hub writes until this goroutine stops it: when the request's
	// context ends, it closes the connection first (end).
	req := ctx
	ctx = c.CloseRead(context.WithoutCancel(ctx))
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	cl := &wsClient{ctx: ctx, cancel: cancelCause, req: req, conn: c, cork: cork, raw: raw, f: f, batch: sub.Batch, redact: !auth.SeesPaths(req)}

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
		cut := h.o.Clock.Now().Add(-h.o.ReplayAge)
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
	cl.replayEnd = last
	// Queued by wake-ups only once the acknowledgement is written.
	cl.queued.Store(true)
	h.clients[cl] = struct{}{}
	h.minCursor = min(h.minCursor, start)
	h.index(cl)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, cl)
		h.unindex(cl)
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
	// The writers write the events from now on (the replay first); this
	// goroutine only pings, when the connection has been idle for Ping:
	// during a burst the passes' writes keep it alive, and 1,000 clients
	// cost no ping (a timer, a write and a pong to read, each) of their
	// own.
	cl.written.Store(h.o.Clock.Now().UnixNano())
	h.endPass(cl, start, true)
	timer := h.timer()
	wait := h.o.Ping
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-req.Done():
			return h.end(cl, context.Cause(req))
		case <-h.life.done():
			return h.end(cl, errShutdown)
		case <-flood:
			return h.end(cl, errPingFlood)
		case <-timer.After(wait):
		}
		idle := h.o.Clock.Now().Sub(time.Unix(0, cl.written.Load()))
		if idle < h.o.Ping {
			wait = h.o.Ping - idle
			continue
		}
		if err := h.ping(ctx, cl); err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				// No pong within WriteTimeout: a peer gone without
				// closing (half-open); the library closed the connection.
				h.closed.WithLabelValues(closedNoPong).Inc()
			}
			return errors.Join(context.Cause(ctx), err)
		}
		cl.written.Store(h.o.Clock.Now().UnixNano())
		wait = h.o.Ping
	}
}

// A client may send pings (RFC 6455 section 5.5.2; sred needs none, it
// pings the client): each is answered with a pong, a write to the socket,
// so a client sending them without pause would keep a core of sred busy.
// It has a budget of maxPingBurst pings, refilled by one every
// pingRefill; the first ping beyond it is not answered and the connection
// is closed with status 1008 and the reason errPingFlood.
const (
	maxPingBurst = 16
	pingRefill   = time.Second
)

var errPingFlood = fmt.Errorf("too many pings (at most %d, then one a second)", maxPingBurst)

// pingBudget counts the pings of one connection; over is closed when the
// client exceeds its budget.
type pingBudget struct {
	now    func() time.Time
	mu     sync.Mutex
	tokens float64
	last   time.Time
	over   chan struct{}
	done   bool
}

func (h *Hub) newPingBudget() *pingBudget {
	return &pingBudget{now: h.o.Clock.Now, tokens: maxPingBurst, last: h.o.Clock.Now(), over: make(chan struct{})}
}

// allow takes a ping from the budget: false (no pong) when it is spent.
func (p *pingBudget) allow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	now := p.now()
	if d := now.Sub(p.last); d > 0 {
		p.tokens = min(maxPingBurst, p.tokens+float64(d)/float64(pingRefill))
	}
	p.last = now
	if p.tokens >= 1 {
		p.tokens--
		return true
	}
	p.done = true
	close(p.over)
	return false
}

// acceptOptions are the hub's AcceptOptions for r's connection, its pings
// counted by pings, its Origin let in when AllowOrigin says so.
func (h *Hub) acceptOptions(r *http.Request, pings *pingBudget) *websocket.AcceptOptions {
	var o websocket.AcceptOptions
	if h.o.AcceptOptions != nil {
		o = *h.o.AcceptOptions
	}
	if h.o.AllowOrigin != nil && r.Header.Get("Origin") != "" && h.o.AllowOrigin(r) {
		// The library's only way to let in one Origin it would refuse.
		o.InsecureSkipVerify = true
	}
	next := o.OnPingReceived
	o.OnPingReceived = func(ctx context.Context, b []byte) bool {
		if !pings.allow() {
			return false
		}
		return next == nil || next(ctx, b)
	}
	return &o
}

// timer is the clock the hub waits on: its Clock when that has timers
// (a manual clock of the tests), else the system's.
func (h *Hub) timer() clock.Timer {
	if t, ok := h.o.Clock.(clock.Timer); ok {
		return t
	}
	return clock.Real{}
}

// end ends the stream of c whose request's context ended with cause. A
// cause other than context.Canceled is the server ending the request (the
// auth middleware when a reload revokes the client's credentials): the
// client gets a close frame with status 1008 (policy violation) and the
// cause as reason, written while holding c's queued flag as ping does, so
// that no pass writes meanwhile nor after. errShutdown (Shutdown) gets
// status 1001 (going away) instead.
func (h *Hub) end(c *wsClient, cause error) error {
	if cause == nil || errors.Is(cause, context.Canceled) {
		return cause
	}
	for !c.queued.CompareAndSwap(false, true) {
		// A writer or a stalled write has it: close after that.
		t := time.NewTimer(h.o.StallTimeout)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return cause
		case <-t.C:
		}
	}
	code, reason := websocket.StatusPolicyViolation, closedRevoked
	switch {
	case errors.Is(cause, errShutdown):
		code, reason = websocket.StatusGoingAway, closedShutdown
	case errors.Is(cause, errPingFlood):
		reason = closedPingFlood
	}
	h.closed.WithLabelValues(reason).Inc()
	if err := c.conn.Close(code, closeReason(cause)); err != nil {
		return fmt.Errorf("%w (close: %w)", cause, err)
	}
	return cause
}

// closeReason is the text of err cut to what a close frame holds (123
// bytes), on a character boundary.
func closeReason(err error) string {
	s := err.Error()
	const maxReason = 123
	if len(s) <= maxReason {
		return s
	}
	i := maxReason
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// ping pings the client, holding its queued flag as a writer would: no
// pass writes to it meanwhile (the pass that waits for the flag comes
// after).
func (h *Hub) ping(ctx context.Context, c *wsClient) error {
	for !c.queued.CompareAndSwap(false, true) {
		// A writer or a stalled write has it: ping after that.
		t := time.NewTimer(h.o.StallTimeout)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	pctx, cancel := context.WithTimeout(ctx, h.o.WriteTimeout)
	err := c.conn.Ping(pctx)
	cancel()
	h.endPass(c, c.cursor.Load(), false)
	return err
}

// writeEach writes one message per event.
func writeEach(ctx context.Context, c *websocket.Conn, es []*entry) error {
	for _, e := range es {
		if err := c.Write(ctx, websocket.MessageText, e.msg); err != nil {
			return err
		}
	}
	return nil
}

// writeBatches writes the events as JSON arrays of at most maxBatchBytes,
// assembled from their encodings in out (reused across calls).
func writeBatches(ctx context.Context, c *websocket.Conn, es []*entry, out []byte) ([]byte, error) {
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
		if err := c.Write(ctx, websocket.MessageText, out); err != nil {
			return out, err
		}
		es = es[k:]
	}
	if cap(out) > 4*maxBatchBytes {
		out = nil // do not keep a buffer grown by one huge event
	}
	return out, nil
}

func (h *Hub) writeControl(ctx context.Context, c *websocket.Conn, typ string, data map[string]any) error {
	b, err := json.Marshal(Message{Event: events.Event{Type: typ, Time: h.o.Clock.Now().UTC(), Data: data}})
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
