package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/relay"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/stream"
)

// Stream is the live event stream: GET /api/v1/events (Server-Sent Events)
// and GET /api/v1/stream (WebSocket, with replay after a reconnect). The
// replay ring's size and age come from the retention section
// (stream_replay_events, stream_replay), read at start.
var Stream = Spec[retention.Config]{
	Name: "stream",
	Load: func(cfg *config.Config) (retention.Config, error) {
		var c retention.Config
		err := cfg.Decode("retention", &c)
		return c, err
	},
	Build: func(ctx context.Context, a *App, c retention.Config) (func(context.Context, retention.Config), error) {
		return nil, setupStream(ctx, a, c)
	},
}

// StreamRoute is the WebSocket stream's route, the only one StreamHandler
// serves.
const StreamRoute = "/api/v1/stream"

// setupStream mounts the live event streams (see package stream and
// docs/events.md): every event of a.Bus as Server-Sent Events, and over
// WebSocket from the hub, an actor that numbers events into a bounded
// replay ring.
func setupStream(ctx context.Context, a *App, c retention.Config) error {
	logger := a.Logger.With("component", "stream")
	h := stream.New(a.Bus, stream.Options{Logger: logger, Registerer: a.Registry, ClientKey: streamClientKey})
	h.Register(a.Mux)
	hub := stream.NewHub(a.Bus, stream.HubOptions{Logger: logger, Registerer: a.Registry,
		ReplayEvents: c.StreamReplayEvents, ReplayAge: time.Duration(c.StreamReplay), ClientKey: streamClientKey,
		AllowOrigin: a.consoleOrigin})
	hub.Register(a.Mux)
	a.AddActor(Actor{Name: "stream hub", Execute: hub.Run})
	a.AddShutdown(h.Shutdown)
	a.AddShutdown(hub.Shutdown)
	return setupRelay(ctx, a)
}

// setupRelay, on PostgreSQL, forwards this replica's events to the other
// replicas of the database and publishes theirs on a.Bus (package relay),
// so that every replica streams the same events.
func setupRelay(ctx context.Context, a *App) error {
	if a.DB.Dialect != store.Postgres || a.opts.NoEventRelay {
		return nil
	}
	var schema string
	if err := a.DB.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("read the schema of the event relay's channel: %w", err)
	}
	r := relay.New(a.Bus, relay.Options{URL: a.opts.PostgresURL, Channel: relay.ChannelFor(schema),
		Logger: a.Logger.With("component", "relay"), Registerer: a.Registry, OnListen: a.opts.onRelayListen})
	a.AddActor(Actor{Name: "event relay", Execute: r.Run})
	return nil
}

// streamClientKey names the principal a stream is for, so that one user or
// token holds at most stream.DefaultMaxPerKey streams of each kind and
// cannot take every slot. In the no-auth trial mode every client is the
// same anonymous principal: the key is the client's address instead
// (auth.ClientOf, as the login rate limit counts clients), so that one
// host cannot hold every slot by reconnecting either.
func streamClientKey(r *http.Request) string {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return ""
	}
	if p.NoAuth {
		return "client " + auth.ClientOf(r.RemoteAddr)
	}
	return p.Name
}

// StreamHandler serves only the WebSocket stream (GET /api/v1/stream),
// with the authentication and instrumentation of Handler, for a listener
// of its own (cmd/sred's --web.stream-address). Every other path is 404.
//
// webAddresses are the web listener's addresses (--web.listen-address):
// a page of the console, served on the web listener, has another origin
// than the stream listener (another port), which the WebSocket library
// refuses. StreamHandler lets in the console's origins (consoleOrigin):
// the request's host on a port of webAddresses, and global.external_url.
// Every other site is still refused.
func (a *App) StreamHandler(webAddresses ...string) http.Handler {
	h := a.Handler()
	l := &streamListener{}
	for _, addr := range webAddresses {
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "0" {
			l.webPorts = append(l.webPorts, port)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StreamRoute {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamListenerKey{}, l)))
	})
}

// streamListener is what the stream listener's requests carry (under
// streamListenerKey): the ports of the web listener.
type streamListener struct{ webPorts []string }

type streamListenerKey struct{}

// consoleOrigin reports whether r, a WebSocket handshake on the stream
// listener, comes from a page of the console: its Origin is
// global.external_url's origin, or has r's scheme and host name on a port
// of the web listener. On the web listener it is always false: the
// console there has the stream's own origin, and the library's same-origin
// check decides.
func (a *App) consoleOrigin(r *http.Request) bool {
	l, ok := r.Context().Value(streamListenerKey{}).(*streamListener)
	if !ok {
		return false
	}
	origin, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || origin.Host == "" {
		return false
	}
	if cfg := a.Config(); cfg != nil && cfg.Config != nil && cfg.Global.ExternalURL != "" {
		ext, err := url.Parse(cfg.Global.ExternalURL)
		if err == nil && strings.EqualFold(ext.Scheme, origin.Scheme) && strings.EqualFold(ext.Host, origin.Host) {
			return true
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	return strings.EqualFold(origin.Scheme, scheme) && strings.EqualFold(origin.Hostname(), host) &&
		slices.Contains(l.webPorts, origin.Port())
}
