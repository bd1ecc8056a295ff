package stream

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Transports of sre_stream_refused_clients_total and
// sre_stream_closed_clients_total: the SSE stream (Handler, GET
// /api/v1/events) and the WebSocket stream (Hub, GET /api/v1/stream).
const (
	transportSSE = "sse"
	transportWS  = "websocket"
)

// Reasons of sre_stream_refused_clients_total.
const (
	refusedLimit    = "limit"
	refusedUser     = "user_limit"
	refusedShutdown = "shutdown"
)

// Reasons of sre_stream_closed_clients_total.
const (
	// closedSlow: the client did not take its events in time (a write
	// not taken within the write timeout; on the WebSocket also a lag
	// beyond the replay buffer).
	closedSlow = "slow"
	// closedNoSubscribe: no subscribe message within SubscribeWait.
	closedNoSubscribe = "no_subscribe"
	// closedBadSubscribe: a subscribe message sred cannot take.
	closedBadSubscribe = "bad_subscribe"
	// closedPingFlood: more pings than the client's budget.
	closedPingFlood = "ping_flood"
	// closedNoPong: an idle connection's ping not answered within the
	// write timeout (a peer gone without closing: a half-open connection).
	closedNoPong = "no_pong"
	// closedRevoked: the request ended by the server (the auth middleware
	// revoking the client's credentials on reload).
	closedRevoked = "revoked"
	// closedShutdown: sred stops.
	closedShutdown = "shutdown"
)

// closedReasons are the reasons each transport closes clients for.
var closedReasons = map[string][]string{
	transportSSE: {closedSlow, closedRevoked, closedShutdown},
	transportWS:  {closedSlow, closedNoSubscribe, closedBadSubscribe, closedPingFlood, closedNoPong, closedRevoked, closedShutdown},
}

// clientCounters returns sre_stream_refused_clients_total and
// sre_stream_closed_clients_total of transport, by reason, registered with
// reg (nil: not registered). The Handler and the Hub of one registry share
// the two metrics, each with its own transport label.
func clientCounters(reg prometheus.Registerer, transport string) (refused, closed *prometheus.CounterVec) {
	refused = shared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sre_stream_refused_clients_total",
		Help: "Clients of the live event stream refused before they were served: at the limit of clients at once (limit, 503), of one user or token, or of one client address with --web.no-auth (user_limit, 429), or while sred stops (shutdown, 503); transport is sse (GET /api/v1/events) or websocket (GET /api/v1/stream).",
	}, []string{"transport", "reason"})).MustCurryWith(prometheus.Labels{"transport": transport})
	for _, r := range []string{refusedLimit, refusedUser, refusedShutdown} {
		refused.WithLabelValues(r)
	}
	closed = shared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sre_stream_closed_clients_total",
		Help: "Clients of the live event stream that sred disconnected, by reason: slow, no_subscribe, bad_subscribe, ping_flood, no_pong, revoked or shutdown; transport is sse or websocket.",
	}, []string{"transport", "reason"})).MustCurryWith(prometheus.Labels{"transport": transport})
	for _, r := range closedReasons[transport] {
		closed.WithLabelValues(r)
	}
	return refused, closed
}

// shared registers c with reg, or returns the counter of the same name
// registered before (by the other transport).
func shared(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
