// Package relay makes the live event stream the same on every sred replica
// of one PostgreSQL database: each replica forwards the events it publishes
// itself to the others with NOTIFY, and publishes those of the others,
// received with LISTEN, into its own bus (docs/events.md, "Several
// replicas").
//
// Publishing never waits for PostgreSQL: a hook on the bus puts the event
// in a bounded queue (a full queue drops it, counted), and one forwarder
// goroutine sends what has accumulated in as few NOTIFY payloads as fit
// (MaxPayload bytes each). Events are tagged with the replica's random ID;
// a replica skips its own, and never forwards the events it received.
// Events that every replica produces itself for the same fact (its own
// pollers' observations, Local) are not forwarded. The stream is not a
// durable queue: while a replica's LISTEN connection is down (it is pinged
// after a silence, and reconnects with backoff), the others' events are
// missed.
package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/loglimit"
)

// MaxPayload is the largest NOTIFY payload sent, in bytes: PostgreSQL
// refuses payloads of 8000 bytes or more.
const MaxPayload = 7999

// DefaultQueue is the number of events waiting to be forwarded beyond which
// new ones are dropped.
const DefaultQueue = 4096

// Channel is the NOTIFY channel of the replicas of a database whose tables
// are in the public schema; Channel.<schema> otherwise (ChannelFor).
const Channel = "sre_events"

// Local are the event types every replica publishes itself, from its own
// pollers (the budget poller's live values and alert rule states, the
// scaling controller's HPA observations): forwarded, they would reach
// another replica's clients twice. They are not forwarded.
var Local = map[string]bool{
	"budget.updated":     true,
	"budget.alert_state": true,
	"scaling.observed":   true,
}

// ChannelFor is the channel of the replicas whose tables are in schema,
// so that deployments in separate schemas of one database do not mix
// their streams. A schema whose channel would be longer than a
// PostgreSQL identifier (63 bytes) is named by a hash of it instead.
func ChannelFor(schema string) string {
	if schema == "" || schema == "public" {
		return Channel
	}
	c := Channel + "." + schema
	if len(c) > 63 {
		sum := sha256.Sum256([]byte(schema))
		c = Channel + ".h" + hex.EncodeToString(sum[:16])
	}
	return c
}

// Options configure a Relay.
type Options struct {
	// URL is the PostgreSQL connection URL (sred's --storage.postgres-url):
	// the relay opens two connections of its own, one to LISTEN and one
	// to NOTIFY.
	URL string
	// Channel is the NOTIFY channel (Channel when empty).
	Channel string
	// Queue bounds the events waiting to be forwarded (DefaultQueue).
	Queue      int
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Backoff is the wait before the n-th consecutive attempt to connect
	// the LISTEN connection again (n >= 1); 100ms doubling up to 30s when
	// nil.
	Backoff func(n int) time.Duration
	// OnListen, if not nil, is called each time the LISTEN connection is
	// (re)established and listening.
	OnListen func()
	// Check is how long the LISTEN connection may stay silent before it is
	// checked with a ping (which must answer within Check too), so that a
	// connection cut without a word (a network partition, a failover
	// behind a virtual IP) is noticed and replaced (DefaultCheck); a
	// NOTIFY not answered within Check fails too.
	Check time.Duration
	// Clock times Check and Backoff (clock.Real when nil): a test passes a
	// clock.Manual and advances it past Check instead of waiting.
	Clock clock.Timer
}

// DefaultCheck is the silence after which the LISTEN connection is checked.
const DefaultCheck = 30 * time.Second

// Relay forwards a bus's events to the other replicas and theirs to it.
type Relay struct {
	o     Options
	id    string
	bus   *events.Bus
	queue chan events.Event
	unsub func()

	forwarded prometheus.Counter
	received  prometheus.Counter
	truncated prometheus.Counter
	dropped   *prometheus.CounterVec
	connected prometheus.Gauge

	mu     sync.Mutex
	notify *pgx.Conn // the forwarder's connection, nil when not connected
	// sendLog lets one failure to forward a minute through to the log, of
	// each kind (not sent, outcome unknown): a PostgreSQL outage fails
	// every payload.
	sendLog *loglimit.Limiter
}

// New attaches a relay to bus: from now on the events published on bus
// are queued for forwarding. Run sends them and listens for the others'.
func New(bus *events.Bus, o Options) *Relay {
	if o.Channel == "" {
		o.Channel = Channel
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	if o.Check <= 0 {
		o.Check = DefaultCheck
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	r := &Relay{o: o, id: hex.EncodeToString(rnd[:]), bus: bus, queue: make(chan events.Event, o.Queue),
		sendLog: loglimit.New(o.Clock, time.Minute, 2)}
	f := promauto.With(o.Registerer)
	r.forwarded = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_events_forwarded_total",
		Help: "PostgreSQL only: events this replica published and forwarded to the other replicas of the database (NOTIFY), so that every replica streams them.",
	})
	r.received = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_events_received_total",
		Help: "PostgreSQL only: events of the other replicas received (LISTEN) and published on this replica's streams.",
	})
	r.truncated = f.NewCounter(prometheus.CounterOpts{
		Name: "sre_events_forward_truncated_total",
		Help: "PostgreSQL only: events too large for one NOTIFY payload (8,000 bytes), forwarded cut to their type, time, service and incident with data {\"truncated\": true}.",
	})
	r.dropped = f.NewCounterVec(prometheus.CounterOpts{
		Name: "sre_events_forward_dropped_total",
		Help: "PostgreSQL only: events not forwarded to the other replicas, whose clients then miss them: the queue of 4,096 events waiting to be forwarded was full (publishing never waits for PostgreSQL), the event was too large even cut, could not be encoded, or the NOTIFY was not sent or PostgreSQL refused it (send_failed).",
	}, []string{"reason"})
	for _, reason := range []string{"queue_full", "too_large", "encode", "send_failed", "outcome_unknown"} {
		r.dropped.WithLabelValues(reason)
	}
	r.connected = f.NewGauge(prometheus.GaugeOpts{
		Name: "sre_events_listen_connected",
		Help: "PostgreSQL only: 1 while this replica's LISTEN connection receives the other replicas' events, 0 while it reconnects (their events are missed meanwhile).",
	})
	r.unsub = bus.Attach(r.enqueue)
	return r
}

// ID is the replica's random ID, which tags the events it forwards.
func (r *Relay) ID() string { return r.id }

// enqueue is the bus hook: it never blocks.
func (r *Relay) enqueue(ev events.Event) {
	if ev.Origin != "" || Local[ev.Type] {
		return
	}
	select {
	case r.queue <- ev:
	default:
		r.dropped.WithLabelValues("queue_full").Inc()
	}
}

// Run forwards and listens until ctx ends, then detaches from the bus and
// closes its connections.
func (r *Relay) Run(ctx context.Context) error {
	defer r.unsub()
	var wg sync.WaitGroup
	wg.Go(func() { r.listen(ctx) })
	r.forward(ctx)
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notify != nil {
		r.notify.Close(context.Background()) //nolint:errcheck // shutting down
		r.notify = nil
	}
	return nil
}

// maxBatch bounds the events taken from the queue for one round of NOTIFY.
const maxBatch = 512

func (r *Relay) forward(ctx context.Context) {
	batch := make([]events.Event, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			batch = append(batch[:0], ev)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case ev := <-r.queue:
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		r.send(ctx, batch)
	}
}

// send forwards evs in as few payloads as fit. A payload that fails stops
// the round: its events are dropped as send_failed when it is known not to
// have been sent, as outcome_unknown when it was written but its answer
// did not come (the other replicas may have got it); the payloads after it
// are not sent (send_failed).
func (r *Relay) send(ctx context.Context, evs []events.Event) {
	p := Pack(r.id, evs, MaxPayload)
	r.truncated.Add(float64(p.Truncated))
	r.dropped.WithLabelValues("too_large").Add(float64(p.TooLarge))
	r.dropped.WithLabelValues("encode").Add(float64(p.Unencodable))
	for i, payload := range p.Payloads {
		err := r.notifyOne(ctx, payload)
		if err == nil {
			r.forwarded.Add(float64(p.Counts[i]))
			continue
		}
		unsent := 0
		for _, n := range p.Counts[i+1:] {
			unsent += n
		}
		if errors.As(err, new(*outcomeUnknown)) {
			r.dropped.WithLabelValues("outcome_unknown").Add(float64(p.Counts[i]))
			r.dropped.WithLabelValues("send_failed").Add(float64(unsent))
			if ok, held := r.sendLog.Allow("unknown"); ok && ctx.Err() == nil {
				r.o.Logger.Warn("Forward events to the other replicas: NOTIFY sent but not answered, the other replicas may or may not have got them",
					"events", p.Counts[i], "not_sent", unsent, "err", err, "failures_not_logged", held)
			}
			return
		}
		unsent += p.Counts[i]
		r.dropped.WithLabelValues("send_failed").Add(float64(unsent))
		if ok, held := r.sendLog.Allow("send"); ok && ctx.Err() == nil {
			r.o.Logger.Warn("Forward events to the other replicas: not sent, the other replicas' clients miss them",
				"events", unsent, "err", err, "failures_not_logged", held)
		}
		return
	}
}

// notifyStatement is the name of the NOTIFY statement, prepared on the
// forwarder's connection when it connects.
const notifyStatement = "sre_events_notify"

// outcomeUnknown is a NOTIFY that was (or may have been) written to
// PostgreSQL, but whose answer did not come: it may have been committed.
type outcomeUnknown struct{ err error }

func (e *outcomeUnknown) Error() string { return e.err.Error() }
func (e *outcomeUnknown) Unwrap() error { return e.err }

// notifyOne sends one payload, connecting first when needed; a failed
// connection, or one that does not answer within Check, is closed, to be
// opened again for the next payload. Its error is an *outcomeUnknown
// unless the payload is known not to have been sent: connecting or
// preparing the statement failed (nothing of the payload was written),
// PostgreSQL answered an error (the statement's transaction, and its
// notification with it, was rolled back), or pgx failed before writing.
func (r *Relay) notifyOne(ctx context.Context, payload string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := clock.WithTimeout(ctx, r.o.Clock, r.o.Check)
	defer cancel()
	if r.notify == nil {
		c, err := pgx.Connect(ctx, r.o.URL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if _, err := c.Prepare(ctx, notifyStatement, `SELECT pg_notify($1, $2)`); err != nil {
			c.Close(context.Background()) //nolint:errcheck // not kept
			return fmt.Errorf("prepare notify: %w", err)
		}
		r.notify = c
	}
	if _, err := r.notify.Exec(ctx, notifyStatement, r.o.Channel, payload); err != nil {
		r.notify.Close(context.Background()) //nolint:errcheck // replaced
		r.notify = nil
		err = fmt.Errorf("notify %s: %w", r.o.Channel, err)
		if errors.As(err, new(*pgconn.PgError)) || pgconn.SafeToRetry(err) {
			return err
		}
		return &outcomeUnknown{err: err}
	}
	return nil
}

// listen keeps a LISTEN connection, reconnecting with backoff.
func (r *Relay) listen(ctx context.Context) {
	failures := 0
	for {
		listened, err := r.listenOnce(ctx)
		r.connected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if listened {
			failures = 0
		}
		failures++
		wait := r.o.Backoff(failures)
		r.o.Logger.Warn("Listen for the other replicas' events: connection lost, their events are missed until it is back",
			"channel", r.o.Channel, "err", err, "retry_in", wait, "attempt", failures)
		bctx, cancel := clock.WithTimeout(ctx, r.o.Clock, wait)
		<-bctx.Done()
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// listenOnce connects, listens and publishes the notifications received
// until the connection fails or ctx ends; listened says whether LISTEN was
// in effect.
func (r *Relay) listenOnce(ctx context.Context) (listened bool, err error) {
	sctx, cancel := clock.WithTimeout(ctx, r.o.Clock, r.o.Check)
	defer cancel()
	c, err := pgx.Connect(sctx, r.o.URL)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.Background()) //nolint:errcheck // done with it
	if _, err := c.Exec(sctx, "LISTEN "+pgx.Identifier{r.o.Channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen %s: %w", r.o.Channel, err)
	}
	cancel()
	r.connected.Set(1)
	r.o.Logger.Info("Listening for the other replicas' events", "channel", r.o.Channel, "replica", r.id)
	if r.o.OnListen != nil {
		r.o.OnListen()
	}
	for {
		n, err := r.wait(ctx, c)
		if err != nil {
			return true, err
		}
		if n != nil {
			r.deliver(n.Payload)
		}
	}
}

// wait returns the next notification, or nil after Check of silence once
// a ping proved the connection alive.
func (r *Relay) wait(ctx context.Context, c *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := clock.WithTimeout(ctx, r.o.Clock, r.o.Check)
	n, err := c.WaitForNotification(wctx)
	cancel()
	if err == nil || ctx.Err() != nil || !pgconn.Timeout(err) {
		return n, err
	}
	pctx, cancel := clock.WithTimeout(ctx, r.o.Clock, r.o.Check)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		return nil, fmt.Errorf("no answer to a ping after %s of silence: %w", r.o.Check, err)
	}
	return nil, nil
}

// deliver publishes the events of one payload of another replica.
func (r *Relay) deliver(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		r.o.Logger.Warn("Read the other replicas' events: not a relay payload", "err", err, "bytes", len(payload))
		return
	}
	if m.Origin == r.id || m.Origin == "" {
		return
	}
	for _, ev := range m.Events {
		ev.Origin = m.Origin
		r.bus.Publish(ev)
		r.received.Inc()
	}
}

// message is a NOTIFY payload.
type message struct {
	Origin string         `json:"origin"`
	Events []events.Event `json:"events"`
}

// Packed is evs laid out in payloads of at most the limit.
type Packed struct {
	Payloads []string
	// Counts are the events of each payload.
	Counts []int
	// Truncated events were larger than a payload alone and are sent cut
	// (Cut); TooLarge ones were too large even cut, and Unencodable ones
	// could not be encoded (a NaN in their data): both are not sent.
	Truncated, TooLarge, Unencodable int
}

// Pack lays evs out, in order, in JSON payloads
// {"origin": origin, "events": [...]} of at most limit bytes each.
func Pack(origin string, evs []events.Event, limit int) Packed {
	var p Packed
	head, _ := json.Marshal(origin)
	prefix := `{"origin":` + string(head) + `,"events":[`
	const suffix = `]}`
	var cur []byte
	n := 0
	flush := func() {
		if n > 0 {
			p.Payloads = append(p.Payloads, string(append(cur, suffix...)))
			p.Counts = append(p.Counts, n)
		}
		cur, n = nil, 0
	}
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			p.Unencodable++
			continue
		}
		if len(prefix)+len(b)+len(suffix) > limit {
			b, err = json.Marshal(Cut(ev))
			if err != nil || len(prefix)+len(b)+len(suffix) > limit {
				p.TooLarge++
				continue
			}
			p.Truncated++
		}
		if n > 0 && len(cur)+1+len(b)+len(suffix) > limit {
			flush()
		}
		if n == 0 {
			cur = append(cur, prefix...)
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, b...)
		n++
	}
	flush()
	return p
}

// Cut is ev without its data but {"truncated": true}: what is forwarded of
// an event too large for a NOTIFY payload.
func Cut(ev events.Event) events.Event {
	return events.Event{Type: ev.Type, Time: ev.Time, Service: ev.Service, IncidentID: ev.IncidentID,
		Data: map[string]any{"truncated": true}}
}

func defaultBackoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}
