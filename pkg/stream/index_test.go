package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
)

// TestDistributeVisitsOnlyIndexedClients: of 1,000 clients filtered on
// one service each of 100, one filtered by type only and one taking
// everything, an event is listed in the pend of, and marks for the next
// wake-up, only the 10 clients of its service (and the type-only client
// when its type matches): the wake-up never looks at the 990 others, and
// the client taking everything reads the ring instead.
func TestDistributeVisitsOnlyIndexedClients(t *testing.T) {
	h := NewHub(nil, HubOptions{})
	add := func(f Filter) *wsClient {
		c := &wsClient{ctx: context.Background(), cancel: func(error) {}, f: f}
		h.mu.Lock()
		h.clients[c] = struct{}{}
		h.index(c)
		h.mu.Unlock()
		return c
	}
	var bySvc [100][]*wsClient
	for i := range 1000 {
		bySvc[i%100] = append(bySvc[i%100], add(Filter{Services: []string{fmt.Sprintf("svc-%d", i%100)}}))
	}
	typed := add(Filter{Types: []string{"budget."}})
	all := add(Filter{})
	publish := func(typ, svc string) uint64 {
		e := events.Event{Type: typ, Service: svc}
		at, body := h.encode(e)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.append(e, at, body)
		return h.last.Load()
	}
	distribute := func() []*wsClient {
		h.imu.Lock()
		defer h.imu.Unlock()
		h.distribute(h.last.Load())
		d := append([]*wsClient(nil), h.dirty...)
		for _, c := range h.dirty {
			c.dirty = false
		}
		h.dirty = h.dirty[:0]
		return d
	}

	s1 := publish("incident.created", "svc-7")
	require.ElementsMatch(t, bySvc[7], distribute())
	for _, c := range bySvc[7] {
		require.Equal(t, []uint64{s1}, c.pend)
	}
	require.Empty(t, bySvc[8][0].pend)
	require.Empty(t, typed.pend)
	require.Empty(t, all.pend)

	s2 := publish("budget.state_changed", "svc-8")
	require.ElementsMatch(t, append(append([]*wsClient(nil), bySvc[8]...), typed), distribute())
	require.Equal(t, []uint64{s2}, typed.pend)
	require.Equal(t, []uint64{s2}, bySvc[8][3].pend)

	// A service nobody follows: nobody is looked at.
	publish("incident.created", "svc-unknown")
	require.Empty(t, distribute())
	require.Equal(t, s1-1, h.need(bySvc[7][0]), "lags from its first pending event")
	require.Equal(t, h.last.Load(), h.need(bySvc[9][0]), "nothing pending: needs nothing of the ring")
}

// TestWakeLingersUntilAFullPass: in a burst (a coalesced wake-up), a
// client woken recently is written only once it has 512 matching events
// pending (a full pass, one write), not for fewer; a client taking every
// event and one following a service alike.
func TestWakeLingersUntilAFullPass(t *testing.T) {
	h := NewHub(nil, HubOptions{})
	// Every writer busy: a wake-up queues clients, nothing writes them.
	h.writers = h.o.Writers
	add := func(f Filter) *wsClient {
		// Woken "now" as far as Linger is concerned, whatever the
		// wall clock does during the test.
		c := &wsClient{ctx: context.Background(), cancel: func(error) {}, f: f, woken: time.Now().Add(time.Hour)}
		h.mu.Lock()
		h.clients[c] = struct{}{}
		h.index(c)
		h.mu.Unlock()
		return c
	}
	all := add(Filter{})
	one := add(Filter{Services: []string{"api"}})
	publish := func(n int, svc string) {
		for range n {
			e := events.Event{Type: "incident.updated", Service: svc}
			at, body := h.encode(e)
			h.mu.Lock()
			h.append(e, at, body)
			h.mu.Unlock()
		}
	}
	queued := func() []*wsClient {
		h.qmu.Lock()
		defer h.qmu.Unlock()
		q := append([]*wsClient(nil), h.queue...)
		h.queue = h.queue[:0]
		return q
	}

	publish(511, "api")
	require.True(t, h.wake(true), "clients left lingering")
	require.Empty(t, queued(), "written with 511 events pending")
	publish(1, "api")
	require.False(t, h.wake(true))
	require.ElementsMatch(t, []*wsClient{all, one}, queued(), "512 events pending: both written")

	// Outside a burst every client with an event is written at once.
	all.queued.Store(false)
	one.queued.Store(false)
	all.cursor.Store(h.last.Load())
	one.cursor.Store(h.last.Load())
	one.pend = one.pend[:0]
	publish(1, "api")
	require.False(t, h.wake(false))
	require.ElementsMatch(t, []*wsClient{all, one}, queued())
}
