// Package connlimit caps the number of connections an HTTP server holds
// open. Beyond the cap a new connection is answered "503 Service
// Unavailable" and closed by the listener itself, so that the server's
// Accept never fails and every connection it holds has a file descriptor
// to spare: the listener keeps accepting, the refused client gets an
// answer it understands (and may retry), and the established connections
// (Alertmanager's deliveries, the API) keep being served.
//
// Over TLS (ListenTLS) the refusal completes the TLS handshake first, so
// that the client reads the same 503 instead of a broken handshake.
package connlimit

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Refusal is what a connection beyond the cap receives before it is closed.
const Refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 45\r\n" +
	"\r\n" +
	"too many open connections, retry in a moment\n"

// refuseTimeout bounds the time a refused connection is held: the TLS
// handshake, reading the request's head, writing the answer and reading
// what the client still sends before it closes.
const refuseTimeout = 10 * time.Second

// maxRefusing bounds the refused connections being answered at once;
// beyond it a refused connection is closed without an answer (a flood of
// clients that never finish their request holds at most this many
// descriptors beyond the cap).
const maxRefusing = 64

// maxRefusalRead bounds what is read of a refused connection (its request
// head and body), so that closing it does not reset the connection before
// the client reads the answer.
const maxRefusalRead = 1 << 20

// Limiter counts the open connections of one server, over all its
// listeners, and refuses those beyond its cap.
type Limiter struct {
	max      int64
	open     atomic.Int64
	refusing atomic.Int64
	metrics  *metrics
}

type metrics struct {
	open    prometheus.Gauge
	refused prometheus.Counter
}

// New returns a limiter holding at most max (> 0) connections open at once.
// Metrics (sre_http_open_connections, sre_http_refused_connections_total,
// with the constant label listener=name) go to reg when not nil.
func New(max int, name string, reg prometheus.Registerer) *Limiter {
	lim := &Limiter{max: int64(max)}
	if reg != nil {
		labels := prometheus.Labels{"listener": name}
		lim.metrics = &metrics{
			open: promauto.With(reg).NewGauge(prometheus.GaugeOpts{Name: "sre_http_open_connections",
				Help: "HTTP connections open now.", ConstLabels: labels}),
			refused: promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "sre_http_refused_connections_total",
				Help: "HTTP connections answered 503 and closed because --web.max-connections were open.", ConstLabels: labels}),
		}
	}
	return lim
}

// Open returns the number of connections open now.
func (lim *Limiter) Open() int { return int(lim.open.Load()) }

// Listen wraps l so that its connections count against the cap.
func (lim *Limiter) Listen(l net.Listener) net.Listener { return &listener{Listener: l, lim: lim} }

// ListenTLS is Listen for a listener whose connections the server reads
// as TLS: config returns the server's TLS configuration at the time of a
// refusal (nil: plain HTTP), and a refused connection is answered 503
// inside a completed TLS handshake (offering only HTTP/1.1).
func (lim *Limiter) ListenTLS(l net.Listener, config func() *tls.Config) net.Listener {
	return &listener{Listener: l, lim: lim, tls: config}
}

type listener struct {
	net.Listener
	lim *Limiter
	tls func() *tls.Config
}

// Accept returns the next connection under the cap; connections beyond it
// are answered Refusal and closed in the background.
func (l *listener) Accept() (net.Conn, error) {
	lim := l.lim
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := lim.open.Add(1); n > lim.max {
			lim.open.Add(-1)
			if lim.metrics != nil {
				lim.metrics.refused.Inc()
			}
			if lim.refusing.Add(1) > maxRefusing {
				lim.refusing.Add(-1)
				_ = c.Close()
				continue
			}
			go func() {
				defer lim.refusing.Add(-1)
				refuse(c, l.tls)
			}()
			continue
		}
		if lim.metrics != nil {
			lim.metrics.open.Inc()
		}
		return &conn{Conn: c, lim: lim}, nil
	}
}

// refuse answers 503 and closes c, within refuseTimeout: over TLS after
// the handshake, and after reading the request's head (an answer written
// before the request would be an unsolicited response to most clients).
// Then it reads what the client still sends, up to maxRefusalRead, until
// the client closes: closing with unread data would reset the connection
// and could drop the answer before the client reads it.
func refuse(c net.Conn, config func() *tls.Config) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	if config != nil {
		if cfg := config(); cfg != nil {
			tc := tls.Server(c, refusalTLS(cfg))
			defer tc.Close()
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
		}
	}
	r := bufio.NewReader(io.LimitReader(c, maxRefusalRead))
	if req, err := http.ReadRequest(r); err == nil {
		_ = req.Body.Close()
	}
	if _, err := io.WriteString(c, Refusal); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, r)
}

// refusalTLS is the server's TLS configuration for a refusal: the same
// certificates (reloaded per connection when the server does), HTTP/1.1
// only.
func refusalTLS(cfg *tls.Config) *tls.Config {
	out := cfg.Clone()
	out.NextProtos = []string{"http/1.1"}
	if get := cfg.GetConfigForClient; get != nil {
		out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if err != nil || c == nil {
				return c, err
			}
			c = c.Clone()
			c.NextProtos = []string{"http/1.1"}
			return c, nil
		}
	}
	return out
}

type conn struct {
	net.Conn
	lim  *Limiter
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.lim.open.Add(-1)
		if c.lim.metrics != nil {
			c.lim.metrics.open.Dec()
		}
	})
	return err
}
