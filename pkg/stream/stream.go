// Package stream serves the live event stream of sred, GET /api/v1/events:
// every event published on the events.Bus (incident changes, budget state
// changes, gate decisions, runbook runs, ...) as Server-Sent Events, one
// `event: <type>` line and one `data: <JSON>` line per event, optionally
// filtered by type prefix (?type=budget.) and service (?service=api), with
// heartbeat comments so that proxies keep idle connections open. A stream
// lasts until the client goes away or the server shuts down.
//
// A stream whose request context is canceled with a cause other than
// context.Canceled (the auth middleware, when a reload revokes the
// client's credentials) ends with that cause: a last `: closed: <cause>`
// comment on the SSE stream, a close frame with status 1008 and the cause
// as reason on the WebSocket.
//
// Shutdown (Handler's and Hub's), called when the server shuts down,
// refuses new streams (503) and ends every current one at once, so that
// clients reconnect to another replica instead of holding the shutdown:
// the SSE stream ends with the comment ": closed: shutting down", the
// WebSocket with a close frame 1001 (going away, RFC 6455 section 7.4.1)
// whose reason is "shutting down".
//
// The SSE stream is live only: it does not replay past events (the timelines
// in the store hold the history), and a client too slow to read loses events
// rather than slowing sred down (counted by sre_event_bus_dropped_total).
//
// Hub serves the same events over WebSocket, GET /api/v1/stream: numbered,
// filtered by the client's first message, replayed from a bounded ring after
// a reconnect; a client that lags more than the ring is dropped (ws.go).
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/web"
)

// Defaults of Options.
const (
	DefaultHeartbeat  = 15 * time.Second
	DefaultMaxClients = 256
	// maxFilters bounds the number of type and service filters of a request.
	maxFilters = 32
	// maxFilterLen bounds the length of one filter value.
	maxFilterLen = 256
)

// Options configure a Handler.
type Options struct {
	Logger *slog.Logger
	// Registerer receives sre_event_stream_clients and the SSE series of
	// sre_stream_refused_clients_total and sre_stream_closed_clients_total
	// (nil: not registered).
	Registerer prometheus.Registerer
	// Heartbeat is the interval of the `: heartbeat` comments. Default 15s.
	Heartbeat time.Duration
	// MaxClients bounds concurrent streams; more are answered 503. Default 256.
	MaxClients int
	// ClientKey names who a request streams for (the principal), "" for
	// no one in particular; nil: not counted. MaxPerKey bounds the streams
	// of one key at once, more are answered 429. Default DefaultMaxPerKey.
	ClientKey func(*http.Request) string
	MaxPerKey int
	// WriteTimeout bounds each write to a client: one that does not take
	// it in time (it stopped reading) is disconnected, freeing its slot.
	// Default 30s.
	WriteTimeout time.Duration
}

// Handler serves the event stream of a bus.
type Handler struct {
	bus        *events.Bus
	logger     *slog.Logger
	heartbeat  time.Duration
	writeTO    time.Duration
	maxClients int64
	clients    atomic.Int64
	perKey     *perKey
	life       *life
	refused    *prometheus.CounterVec
	closed     *prometheus.CounterVec
}

// New returns a Handler streaming the events of bus.
func New(bus *events.Bus, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	h := &Handler{bus: bus, logger: o.Logger, heartbeat: o.Heartbeat, writeTO: o.WriteTimeout, maxClients: int64(o.MaxClients),
		perKey: newPerKey(o.ClientKey, o.MaxPerKey), life: newLife()}
	h.refused, h.closed = clientCounters(o.Registerer, transportSSE)
	if o.Registerer != nil {
		promauto.With(o.Registerer).NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sre_event_stream_clients",
			Help: "Clients connected to the live event stream (GET /api/v1/events).",
		}, func() float64 { return float64(h.clients.Load()) })
	}
	return h
}

// Shutdown ends every stream with the comment ": closed: shutting down"
// and refuses new ones (503), then waits until their handlers have
// returned (the connections are then idle for http.Server.Shutdown), or
// until ctx ends. Call it before http.Server.Shutdown, which otherwise
// waits for the streams until its deadline.
func (h *Handler) Shutdown(ctx context.Context) error { return h.life.shutdown(ctx) }

// Register mounts GET /api/v1/events on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/events", h)
}

// Filter selects events: an event passes when its type starts with one of
// Types (any type when empty) and its service is one of Services (any
// service when empty).
type Filter struct {
	Types    []string
	Services []string
}

// ParseFilter reads the type and service query parameters (each may be
// repeated). Unknown parameters are an error, so that a typo does not
// silently stream everything.
func ParseFilter(r *http.Request) (Filter, error) {
	var f Filter
	q := r.URL.Query()
	for k, vs := range q {
		switch k {
		case "type":
			f.Types = append(f.Types, vs...)
		case "service":
			f.Services = append(f.Services, vs...)
		default:
			return Filter{}, fmt.Errorf("unknown parameter %q (want type or service)", k)
		}
	}
	if len(f.Types) > maxFilters || len(f.Services) > maxFilters {
		return Filter{}, fmt.Errorf("at most %d type and %d service filters", maxFilters, maxFilters)
	}
	for _, v := range append(append([]string(nil), f.Types...), f.Services...) {
		if v == "" {
			return Filter{}, errors.New("empty type or service filter")
		}
		if len(v) > maxFilterLen {
			return Filter{}, fmt.Errorf("filter longer than %d bytes", maxFilterLen)
		}
	}
	return f, nil
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev events.Event) bool {
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			if strings.HasPrefix(ev.Type, t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Services) > 0 {
		for _, s := range f.Services {
			if ev.Service == s {
				return true
			}
		}
		return false
	}
	return true
}

// ServeHTTP streams events until the client leaves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r)
	if err != nil {
		web.Error(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	if h.bus == nil {
		web.Error(w, http.StatusServiceUnavailable, "unavailable", errors.New("no event bus"))
		return
	}
	if !h.life.enter() {
		h.refused.WithLabelValues(refusedShutdown).Inc()
		web.Error(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("event stream: %w", errShutdown))
		return
	}
	defer h.life.leave()
	if n := h.clients.Add(1); n > h.maxClients {
		h.clients.Add(-1)
		h.refused.WithLabelValues(refusedLimit).Inc()
		web.Error(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("too many event stream clients (at most %d)", h.maxClients))
		return
	}
	defer h.clients.Add(-1)
	release, err := h.perKey.acquire(r)
	if err != nil {
		h.refused.WithLabelValues(refusedUser).Inc()
		web.Error(w, http.StatusTooManyRequests, "too_many_requests", err)
		return
	}
	defer release()

	rc := http.NewResponseController(w)
	// A stream outlives any server write timeout: each write has a
	// deadline of its own instead (write).
	ch, cancel := h.bus.Subscribe()
	defer cancel()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	envelope.Private(hdr)              // Cache-Control: no-store, nosniff
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// The first comment tells the client it is subscribed: every event
	// published from now on reaches it.
	err = h.write(rc, w, ": subscribed\n\n")
	if err == nil {
		err = h.run(r.Context(), rc, w, ch, f, !auth.SeesPaths(r.Context()))
	}
	if err == nil {
		return
	}
	cause := err
	if !errors.Is(err, errShutdown) {
		cause = context.Cause(r.Context())
	}
	switch {
	case cause != nil && !errors.Is(cause, context.Canceled):
		// The server ended the stream (Shutdown, or the auth
		// middleware when a reload revokes the client's credentials):
		// say why.
		reason := closedRevoked
		if errors.Is(cause, errShutdown) {
			reason = closedShutdown
		}
		h.closed.WithLabelValues(reason).Inc()
		err = cause
		_ = h.write(rc, w, ": closed: "+strings.Join(strings.Fields(cause.Error()), " ")+"\n\n")
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A write not taken within the write timeout: the client
		// stopped reading.
		h.closed.WithLabelValues(closedSlow).Inc()
	}
	h.logger.Debug("event stream ended", "remote", r.RemoteAddr, "err", err)
}

// run writes the events of ch that f matches; with redact (a subscriber who
// is not an admin) the server's paths in the events of sred's own work are
// cut to their base names (RedactEvent).
func (h *Handler) run(ctx context.Context, rc *http.ResponseController, w http.ResponseWriter, ch <-chan events.Event, f Filter, redact bool) error {
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.life.done():
			return errShutdown
		case <-tick.C:
			if err := h.write(rc, w, ": heartbeat\n\n"); err != nil {
				return err
			}
		case ev, ok := <-ch:
			if !ok {
				return errors.New("subscription closed")
			}
			if !f.Match(ev) {
				continue
			}
			if ctx.Err() != nil {
				// The request ended while ev came (a reload that changed
				// the client's role revokes the stream before it
				// returns): ev, published after, is not written in the
				// view of the role the stream was opened with.
				return ctx.Err()
			}
			if redact {
				ev = RedactEvent(ev)
			}
			msg, err := Format(ev)
			if err != nil {
				h.logger.Warn("event stream: encode event", "type", ev.Type, "err", err)
				continue
			}
			if err := h.write(rc, w, msg); err != nil {
				return err
			}
		}
	}
}

// write writes s to the client within the write timeout: a client that
// stopped reading blocks the write once the socket's buffers are full, and
// is disconnected when the deadline passes rather than hold its slot (and
// this goroutine) for as long as its connection stays up.
func (h *Handler) write(rc *http.ResponseController, w http.ResponseWriter, s string) error {
	if err := rc.SetWriteDeadline(time.Now().Add(h.writeTO)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		h.logger.Debug("event stream: set write deadline", "err", err)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		return err
	}
	return rc.Flush()
}

// machineEvents are the prefixes of the types of events about sred's own
// work (a runbook step's output, error and argv, a rollout's or a scaling
// action's, a chaos run's), whose data can hold the server's paths.
var machineEvents = []string{"runbook.", "rollout.", "scaling.", "chaos."}

// gateDecision is the type of the deploy gate's decisions: the reason sred
// wrote in their data holds Prometheus' error when the gate could not read
// the budgets (a credentials file that cannot be read).
const gateDecision = "budget.gate_decision"

// RedactEvent returns ev as a subscriber who is not an admin reads it: the
// server's file paths in the data of an event about sred's own work
// (machineEvents, and timeline entries sred wrote: web.MachineActor) and
// in the reason of a deploy gate decision (as budget.DecisionFor) are cut
// to their base names (auth.RedactPaths). Other events (alerts,
// incidents, budgets) are returned as they are, without copying; ev's data
// is not changed.
func RedactEvent(ev events.Event) events.Event {
	if ev.Data == nil || !machineEvent(ev) {
		return ev
	}
	if ev.Type == gateDecision {
		if r, ok := ev.Data["reason"].(string); ok {
			if c := auth.RedactPaths(r); c != r {
				ev.Data = maps.Clone(ev.Data)
				ev.Data["reason"] = c
			}
		}
		return ev
	}
	ev.Data, _ = auth.RedactPathsIn(ev.Data).(map[string]any)
	return ev
}

func machineEvent(ev events.Event) bool {
	if ev.Type == gateDecision {
		return true
	}
	for _, p := range machineEvents {
		if strings.HasPrefix(ev.Type, p) {
			return true
		}
	}
	actor, _ := ev.Data["actor"].(string)
	return ev.Type == "incident.timeline" && web.MachineActor(actor)
}

// Format renders one event as a Server-Sent Events message: its type on the
// `event:` line and the event as JSON on one `data:` line (JSON never holds
// a raw newline). A type holding a line break is replaced by "message".
func Format(ev events.Event) (string, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	typ := ev.Type
	if typ == "" || strings.ContainsAny(typ, "\r\n") {
		typ = "message"
	}
	return "event: " + typ + "\ndata: " + string(b) + "\n\n", nil
}
