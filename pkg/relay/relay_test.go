package relay

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// replica is a bus with its relay running, and a subscription to the bus.
// Its relay's clock moves only when the test advances it: no Check times
// out on its own, however slow the machine.
type replica struct {
	bus    *events.Bus
	r      *Relay
	clock  *clock.Manual
	evs    <-chan events.Event
	listen chan struct{}
}

// start is the time of the replicas' clocks.
var start = time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)

// newChannel is a channel of this test alone (tests of other packages
// may run relays on the same database at once).
func newChannel() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return ChannelFor("t_" + hex.EncodeToString(b[:]))
}

// startReplica runs a relay on pgURL and channel until the end of the test,
// and returns once it listens.
func startReplica(t *testing.T, pgURL, channel string) *replica {
	t.Helper()
	return startReplicaLog(t, pgURL, channel, nil)
}

// startReplicaLog is startReplica logging to logger.
func startReplicaLog(t *testing.T, pgURL, channel string, logger *slog.Logger) *replica {
	t.Helper()
	return startReplicaOptions(t, Options{URL: pgURL, Channel: channel, Logger: logger})
}

// startReplicaOptions is startReplica with o (its URL and Channel set).
func startReplicaOptions(t *testing.T, o Options) *replica {
	t.Helper()
	bus := events.NewBus(1024, nil)
	evs, unsub := bus.Subscribe()
	t.Cleanup(unsub)
	rp := &replica{bus: bus, evs: evs, listen: make(chan struct{}, 16), clock: clock.NewManual(start)}
	o.Registerer = prometheus.NewRegistry()
	o.Clock = rp.clock
	o.Backoff = func(int) time.Duration { return 0 }
	o.OnListen = func() { rp.listen <- struct{}{} }
	rp.r = New(bus, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rp.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	rp.waitListening(t)
	return rp
}

func (rp *replica) waitListening(t *testing.T) {
	t.Helper()
	select {
	case <-rp.listen:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not listen")
	}
}

// waiting returns once n timers of the relay wait on its clock: its
// silence wait, a bounded NOTIFY, ping or connection.
func (rp *replica) waiting(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, rp.clock.WaitWaiters(ctx, n))
}

// next is the next event on the replica's bus.
func (rp *replica) next(t *testing.T) events.Event {
	t.Helper()
	select {
	case ev := <-rp.evs:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event arrived")
		return events.Event{}
	}
}

func event(typ, id string) events.Event {
	return events.Event{Type: typ, Time: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), Service: "checkout",
		IncidentID: id, Data: map[string]any{"title": "Checkout down", "severity": "CRITICAL"}}
}

// TestRelayForwardsOnce: an event published on A arrives once on B, tagged
// with A's ID, and does not come back to A; B's own events do not come
// back to B. The replicas' NOTIFY payloads reach every listener in the
// order they were sent, so the event that follows on a bus proves that an
// echo would have come before it.
func TestRelayForwardsOnce(t *testing.T) {
	pg, ch := tu.PostgresURL(), newChannel()
	a, b := startReplica(t, pg, ch), startReplica(t, pg, ch)

	a.bus.Publish(event("incident.created", "INC-1"))
	require.Empty(t, a.next(t).Origin, "A's own event")
	got := b.next(t)
	require.Equal(t, a.r.ID(), got.Origin)
	got.Origin = ""
	require.Equal(t, event("incident.created", "INC-1"), got)

	b.bus.Publish(event("incident.acknowledged", "INC-1"))
	require.Empty(t, b.next(t).Origin)
	got = a.next(t)
	require.Equal(t, "incident.acknowledged", got.Type, "A got its own incident.created back before B's event")
	require.Equal(t, b.r.ID(), got.Origin)

	a.bus.Publish(event("incident.resolved", "INC-1"))
	require.Equal(t, "incident.resolved", a.next(t).Type)
	got = b.next(t)
	require.Equal(t, "incident.resolved", got.Type, "B got its own or A's forwarded event back before A's next one")
	require.Equal(t, a.r.ID(), got.Origin)
	// The forwarder counts a payload once PostgreSQL took it, which may be
	// after the other replica received it.
	counted(t, a.r.forwarded, 2)
	counted(t, b.r.forwarded, 1) // B did not forward what it received from A
	counted(t, a.r.received, 1)
}

// TestRelayLocalTypesNotForwarded: the events every replica's own pollers
// publish (Local) stay on the replica; the next event forwarded is the
// first B sees.
func TestRelayLocalTypesNotForwarded(t *testing.T) {
	pg, ch := tu.PostgresURL(), newChannel()
	a, b := startReplica(t, pg, ch), startReplica(t, pg, ch)
	for typ := range Local {
		a.bus.Publish(event(typ, ""))
	}
	a.bus.Publish(event("budget.state_changed", ""))
	require.Equal(t, "budget.state_changed", b.next(t).Type)
	counted(t, a.r.forwarded, 1)
}

// counted waits until c counts want, and fails if it goes beyond.
func counted(t *testing.T, c prometheus.Collector, want float64) {
	t.Helper()
	require.Eventually(t, func() bool { return promtest.ToFloat64(c) >= want }, 30*time.Second, time.Millisecond)
	require.Equal(t, want, promtest.ToFloat64(c))
}

// TestRelayCutsOversizedEvent: an event larger than a NOTIFY payload
// arrives cut to its type, time, service and incident with data
// {"truncated": true}; the next one whole.
func TestRelayCutsOversizedEvent(t *testing.T) {
	pg, ch := tu.PostgresURL(), newChannel()
	a, b := startReplica(t, pg, ch), startReplica(t, pg, ch)
	big := event("runbook.step", "INC-7")
	big.Data["output"] = strings.Repeat("x", 3*MaxPayload)
	a.bus.Publish(big)
	a.bus.Publish(event("incident.updated", "INC-7"))

	got := b.next(t)
	got.Origin = ""
	require.Equal(t, events.Event{Type: "runbook.step", Time: big.Time, Service: "checkout", IncidentID: "INC-7",
		Data: map[string]any{"truncated": true}}, got)
	got = b.next(t)
	got.Origin = ""
	require.Equal(t, event("incident.updated", "INC-7"), got)
	counted(t, a.r.truncated, 1)
}

// TestRelayReconnects: when the LISTEN connection is cut, the relay logs
// it, connects again (after the injected backoff) and receives again.
func TestRelayReconnects(t *testing.T) {
	ch := newChannel()
	u, err := url.Parse(tu.PostgresURL())
	require.NoError(t, err)
	q := u.Query()
	app := "relay_" + strings.TrimPrefix(ch, Channel+".t_")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	var logs tu.SyncBuffer
	a, b := startReplica(t, tu.PostgresURL(), ch), startReplicaLog(t, u.String(), ch, slog.New(slog.NewTextHandler(&logs, nil)))

	admin, err := sql.Open("pgx", tu.PostgresURL())
	require.NoError(t, err)
	defer admin.Close()
	var n int
	require.NoError(t, admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&n))
	require.Equal(t, 1, n, "B's LISTEN connection")
	b.waitListening(t)
	require.Contains(t, logs.String(), "connection lost, their events are missed until it is back")
	require.Equal(t, 1.0, promtest.ToFloat64(b.r.connected))

	a.bus.Publish(event("incident.created", "INC-2"))
	got := b.next(t)
	require.Equal(t, "incident.created", got.Type)
	require.Equal(t, a.r.ID(), got.Origin)
}

// TestRelayChecksSilentConnection: a LISTEN connection that stops
// answering without being closed (a network partition: the proxy in
// between stops forwarding) is found dead by the ping after a silence of
// Check, and replaced; a live one that is only silent is kept and still
// delivers. The relay's clock moves only when the test advances it past
// Check, once the relay waits on it: a slow machine answers late, never
// too late.
func TestRelayChecksSilentConnection(t *testing.T) {
	ch := newChannel()
	u, proxy := stalledURL(t)
	var logs tu.SyncBuffer
	a := startReplica(t, tu.PostgresURL(), ch)
	b := startReplicaOptions(t, Options{URL: u, Channel: ch,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	// Silent but alive: pinged after each silence, kept, delivering. B
	// forwards nothing (what it receives is not forwarded): its one timer
	// is its listener's, and the event delivered after a ping was sent
	// proves the ping answered and the connection kept.
	for i := range 2 {
		b.waiting(t, 1) // the silence wait
		b.clock.Advance(DefaultCheck)
		require.Eventually(t, func() bool { return proxy.queries.Load() >= int64(2+i) }, 30*time.Second, time.Millisecond,
			"LISTEN, then a ping after each silence")
		a.bus.Publish(event("incident.updated", "INC-4"))
		require.Equal(t, "incident.updated", b.next(t).Type)
	}
	require.NotContains(t, logs.String(), "connection lost")
	require.Equal(t, int64(3), proxy.queries.Load(), "one ping a silence")

	b.waiting(t, 1) // silent again
	proxy.stall()
	b.clock.Advance(DefaultCheck)
	b.waiting(t, 1) // the ping, not answered
	require.NotContains(t, logs.String(), "connection lost", "the ping has Check to answer")
	b.clock.Advance(DefaultCheck)
	b.waitListening(t)
	require.Contains(t, logs.String(), "no answer to a ping after 30s of silence")
	a.bus.Publish(event("incident.resolved", "INC-4"))
	require.Equal(t, "incident.resolved", b.next(t).Type)
}

// TestRelayNotifyTimesOut: a NOTIFY connection that stops answering
// without being closed fails the payload after Check instead of holding
// the forwarder, and the next payload goes on a new connection. The NOTIFY
// was written before the answer was awaited: its events are counted as
// outcome_unknown, not send_failed (the other replicas may have got them).
func TestRelayNotifyTimesOut(t *testing.T) {
	ch := newChannel()
	u, proxy := stalledURL(t)
	var logs tu.SyncBuffer
	a := startReplicaOptions(t, Options{URL: u, Channel: ch,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b := startReplica(t, tu.PostgresURL(), ch)

	a.bus.Publish(event("incident.created", "INC-5"))
	require.Equal(t, "incident.created", b.next(t).Type)
	counted(t, a.r.forwarded, 1) // A has the answer to its NOTIFY
	proxy.stall()
	a.bus.Publish(event("incident.acknowledged", "INC-5"))
	// A's listener's silence wait, and the NOTIFY awaiting its answer.
	a.waiting(t, 2)
	require.Equal(t, 0.0, promtest.ToFloat64(a.r.dropped.WithLabelValues("outcome_unknown")), "the NOTIFY has Check to answer")
	a.clock.Advance(DefaultCheck)
	counted(t, a.r.dropped.WithLabelValues("outcome_unknown"), 1)
	a.bus.Publish(event("incident.resolved", "INC-5"))
	require.Equal(t, "incident.resolved", b.next(t).Type)
	counted(t, a.r.forwarded, 2)
	require.Equal(t, 0.0, promtest.ToFloat64(a.r.dropped.WithLabelValues("send_failed")))
	require.Contains(t, logs.String(), "NOTIFY sent but not answered")
	require.Contains(t, logs.String(), "timeout: context deadline exceeded")
}

// TestRelayNotifyAnswerLost: a NOTIFY whose connection is closed after
// PostgreSQL got it but before its answer reaches the relay was committed:
// the other replica gets the event, and the sender counts it as
// outcome_unknown, not send_failed. The next payload goes on a new
// connection.
func TestRelayNotifyAnswerLost(t *testing.T) {
	ch := newChannel()
	u, proxy := stalledURL(t)
	a := startReplicaOptions(t, Options{URL: u, Channel: ch})
	b := startReplica(t, tu.PostgresURL(), ch)

	a.bus.Publish(event("incident.created", "INC-8"))
	require.Equal(t, "incident.created", b.next(t).Type)
	counted(t, a.r.forwarded, 1)
	proxy.cut()
	a.bus.Publish(event("incident.acknowledged", "INC-8"))
	require.Equal(t, "incident.acknowledged", b.next(t).Type, "the NOTIFY whose answer was lost was committed")
	counted(t, a.r.dropped.WithLabelValues("outcome_unknown"), 1)
	a.bus.Publish(event("incident.resolved", "INC-8"))
	require.Equal(t, "incident.resolved", b.next(t).Type)
	counted(t, a.r.forwarded, 2)
	require.Equal(t, 0.0, promtest.ToFloat64(a.r.dropped.WithLabelValues("send_failed")))
}

// TestRelayUnknownOutcomeStopsRound: when a payload's answer is lost, its
// events count as outcome_unknown and those of the payloads after it,
// which are not sent, as send_failed.
func TestRelayUnknownOutcomeStopsRound(t *testing.T) {
	ch := newChannel()
	u, proxy := stalledURL(t)
	b := startReplica(t, tu.PostgresURL(), ch)
	r := New(events.NewBus(16, nil), Options{URL: u, Channel: ch, Registerer: prometheus.NewRegistry(),
		Clock: clock.NewManual(start)})
	t.Cleanup(func() {
		if r.notify != nil {
			r.notify.Close(context.Background()) //nolint:errcheck // test end
		}
	})
	ctx := context.Background()
	r.send(ctx, []events.Event{event("incident.created", "INC-10")})
	require.Equal(t, 1.0, promtest.ToFloat64(r.forwarded))
	require.Equal(t, "incident.created", b.next(t).Type)

	var evs []events.Event
	for i := range 3 {
		ev := event("incident.timeline", "INC-1"+string(rune('1'+i)))
		ev.Data["message"] = strings.Repeat("m", MaxPayload/3)
		evs = append(evs, ev)
	}
	require.Equal(t, []int{2, 1}, Pack(r.ID(), evs, MaxPayload).Counts)
	proxy.cut()
	r.send(ctx, evs)
	require.Equal(t, 2.0, promtest.ToFloat64(r.dropped.WithLabelValues("outcome_unknown")))
	require.Equal(t, 1.0, promtest.ToFloat64(r.dropped.WithLabelValues("send_failed")))
	require.Equal(t, 1.0, promtest.ToFloat64(r.forwarded))
	require.Equal(t, "INC-11", b.next(t).IncidentID, "the first payload was committed")
}

// TestRelayNotifyRefused: a NOTIFY that PostgreSQL answers with an error
// (here a channel name over 63 bytes) was not committed: its events are
// counted as send_failed, not outcome_unknown.
func TestRelayNotifyRefused(t *testing.T) {
	var logs tu.SyncBuffer
	r := New(events.NewBus(16, nil), Options{URL: tu.PostgresURL(), Channel: strings.Repeat("c", 64),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clock.NewManual(start)})
	t.Cleanup(func() {
		if r.notify != nil {
			r.notify.Close(context.Background()) //nolint:errcheck // test end
		}
	})
	r.send(context.Background(), []events.Event{event("incident.created", "INC-12")})
	require.Equal(t, 1.0, promtest.ToFloat64(r.dropped.WithLabelValues("send_failed")))
	require.Equal(t, 0.0, promtest.ToFloat64(r.dropped.WithLabelValues("outcome_unknown")))
	require.Contains(t, logs.String(), "channel name too long")
}

// TestRelaySendFailuresLogOnce: while PostgreSQL refuses connections every
// payload fails, counted; the log gets one line a minute, not one a
// payload.
func TestRelaySendFailuresLogOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // connections to it are refused
	var logs tu.SyncBuffer
	bus := events.NewBus(16, nil)
	r := New(bus, Options{URL: "postgres://postgres@" + addr + "/test?sslmode=disable", Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Backoff: func(int) time.Duration { return time.Hour },
		Clock: clock.NewManual(start)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := range 3 {
		bus.Publish(event("incident.updated", "INC-6"))
		counted(t, r.dropped.WithLabelValues("send_failed"), float64(i+1))
	}
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, 1, strings.Count(logs.String(), "Forward events to the other replicas"), logs.String())
	require.Equal(t, 0.0, promtest.ToFloat64(r.dropped.WithLabelValues("outcome_unknown")), "a refused connection sent nothing")
}

// stallProxy forwards TCP connections to target until stall, after which
// the connections it had stop forwarding without being closed, or until
// cut, after which they forward what the client sends and close the
// client's side at the server's next answer instead of forwarding it; new
// connections are forwarded. It counts the simple queries clients send
// (pings).
type stallProxy struct {
	ln      net.Listener
	done    chan struct{}
	mu      sync.Mutex
	open    []proxied
	conns   []net.Conn
	queries atomic.Int64
}

// proxied are the stall and cut signals of one connection.
type proxied struct{ stop, cut chan struct{} }

// stalledURL is the test's PostgreSQL URL through a new stallProxy.
func stalledURL(t *testing.T) (string, *stallProxy) {
	t.Helper()
	u, err := url.Parse(tu.PostgresURL())
	require.NoError(t, err)
	proxy := newStallProxy(t, u.Host)
	u.Host = proxy.addr()
	return u.String(), proxy
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := proxied{stop: make(chan struct{}), cut: make(chan struct{})}
			p.mu.Lock()
			p.open = append(p.open, pc)
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.copy(s, c, pc, true)
			go p.copy(c, s, pc, false)
		}
	}()
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

// stall stops the connections open now.
func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		close(c.stop)
	}
	p.open = nil
}

// cut makes the connections open now lose the server's next answer: the
// client's side is closed when it comes.
func (p *stallProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		close(c.cut)
	}
	p.open = nil
}

func (p *stallProxy) copy(dst, src net.Conn, pc proxied, client bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-pc.stop:
			<-p.done // hold the connection, forward nothing
			return
		case <-pc.cut:
			if !client {
				dst.Close() // the client's side: the answer is lost
				return
			}
		default:
		}
		if client && n > 0 && buf[0] == 'Q' {
			p.queries.Add(1)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestChannelFor: one channel per schema, within PostgreSQL's 63 bytes.
func TestChannelFor(t *testing.T) {
	for _, tc := range []struct{ schema, want string }{
		{"", "sre_events"},
		{"public", "sre_events"},
		{"sred_staging", "sre_events.sred_staging"},
	} {
		require.Equal(t, tc.want, ChannelFor(tc.schema))
	}
	long := strings.Repeat("s", 60)
	require.Len(t, ChannelFor(long+"a"), len("sre_events.h")+32)
	require.True(t, strings.HasPrefix(ChannelFor(long+"a"), "sre_events.h"))
	require.NotEqual(t, ChannelFor(long+"a"), ChannelFor(long+"b"))
}

// TestDefaultBackoff: 100ms, doubling, at most 30s.
func TestDefaultBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {9, 25600 * time.Millisecond}, {10, 30 * time.Second}, {1000, 30 * time.Second}} {
		require.Equal(t, tc.want, defaultBackoff(tc.n), "attempt %d", tc.n)
	}
}

// TestRelayQueueFull: publishing never waits for the forwarder; beyond the
// queue events are dropped and counted.
func TestRelayQueueFull(t *testing.T) {
	bus := events.NewBus(16, nil)
	r := New(bus, Options{URL: "postgres://unused", Queue: 2, Registerer: prometheus.NewRegistry()})
	for range 5 {
		bus.Publish(event("incident.updated", "INC-3"))
	}
	require.Equal(t, 3.0, promtest.ToFloat64(r.dropped.WithLabelValues("queue_full")))
}

// TestPack: events are laid out in order in payloads of at most the
// limit, each a JSON object of the origin and its events.
func TestPack(t *testing.T) {
	mk := func(n, size int) []events.Event {
		var evs []events.Event
		for i := range n {
			ev := event("incident.timeline", "INC-"+string(rune('A'+i)))
			ev.Data = map[string]any{"message": strings.Repeat("m", size)}
			evs = append(evs, ev)
		}
		return evs
	}
	huge := event("incident.created", "INC-9")
	huge.Service = strings.Repeat("s", MaxPayload)
	for _, tc := range []struct {
		name                       string
		evs                        []events.Event
		payloads, cut, large, sent int
	}{
		{"one payload", mk(5, 100), 1, 0, 0, 5},
		{"split", mk(30, 1000), 5, 0, 0, 30},
		{"cut", mk(2, 2*MaxPayload), 1, 2, 0, 2},
		{"too large even cut", append(mk(1, 10), huge), 1, 0, 1, 1},
		{"none", nil, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Pack("abc", tc.evs, MaxPayload)
			require.Len(t, p.Payloads, tc.payloads)
			require.Equal(t, tc.cut, p.Truncated)
			require.Equal(t, tc.large, p.TooLarge)
			var all []events.Event
			for i, s := range p.Payloads {
				require.LessOrEqual(t, len(s), MaxPayload)
				var m message
				require.NoError(t, json.Unmarshal([]byte(s), &m))
				require.Equal(t, "abc", m.Origin)
				require.Len(t, m.Events, p.Counts[i])
				all = append(all, m.Events...)
			}
			require.Len(t, all, tc.sent)
			for i, ev := range all {
				require.Equal(t, tc.evs[i].IncidentID, ev.IncidentID, "in order")
			}
		})
	}
}
