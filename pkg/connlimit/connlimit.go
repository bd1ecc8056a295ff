// Package connlimit caps the number of connections an HTTP server holds
// open. Beyond the cap a new connection is answered "503 Service
// Unavailable" and closed by the listener itself, so that the server's
// Accept never fails and every connection it holds has a file descriptor
// to spare: the listener keeps accepting, the refused client gets an
// answer it understands (and may retry), and the established connections
// (Alertmanager's deliveries, the API) keep being served.
package connlimit

import (
	"net"
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

// refuseTimeout bounds the time spent answering a refused connection.
const refuseTimeout = time.Second

// Limiter counts the open connections of one server, over all its
// listeners, and refuses those beyond its cap.
type Limiter struct {
	max     int64
	open    atomic.Int64
	metrics *metrics
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

type listener struct {
	net.Listener
	lim *Limiter
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
			go refuse(c)
			continue
		}
		if lim.metrics != nil {
			lim.metrics.open.Inc()
		}
		return &conn{Conn: c, lim: lim}, nil
	}
}

// refuse answers 503 and closes c. The request is not read: a client
// writing a large body may see a reset instead of the answer.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(refuseTimeout))
	_, _ = c.Write([]byte(Refusal))
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.Close()
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
