package stream

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// corkConn is the connection of a WebSocket client under the library's
// buffered writer. While a writer of the pool writes a pass of events it
// is corked: the frames collect in the writer's buffer and go to the
// socket in one system call (uncork and flush), instead of one per
// message. Writes of other goroutines (pings, the close frame) go straight
// to the socket when it is not corked.
type corkConn struct {
	net.Conn
	mu     sync.Mutex // guards corked and buf
	corked bool
	buf    []byte
	// wire is held by whoever writes to the socket: a flush cut short by
	// its deadline keeps it until the rest of its bytes are written, so
	// that no frame of another goroutine lands inside a frame.
	wire sync.Mutex
	// nw writes to the socket without waiting (nil when the connection is
	// not a socket of the system), made once per connection: a flush
	// allocates nothing (wire held).
	nw *nowWriter
}

// newCorkConn wraps nc.
func newCorkConn(nc net.Conn) *corkConn {
	c := &corkConn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.nw = newNowWriter(rc)
		}
	}
	return c
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	c.wire.Lock()
	defer c.wire.Unlock()
	return c.Conn.Write(p)
}

// cork collects the writes that follow in buf (its length reset).
func (c *corkConn) cork(buf []byte) {
	c.mu.Lock()
	c.corked, c.buf = true, buf[:0]
	c.mu.Unlock()
}

// uncork ends the collection and returns what was collected.
func (c *corkConn) uncork() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.corked, c.buf = false, nil
	return b
}

// flush writes p to the socket: on a socket of the system (TCP, Unix), at
// once if the socket takes it, with no deadline to set; on another (TLS),
// within stall. It returns how much was written; when the socket did not
// take it all (timeout true), the socket is still held and the caller must
// finish with rest.
func (c *corkConn) flush(p []byte, stall time.Duration) (n int, timeout bool, err error) {
	c.wire.Lock()
	if c.nw != nil {
		n, blocked, err := c.nw.write(p)
		if blocked {
			return n, true, err
		}
		c.wire.Unlock()
		return n, false, err
	}
	n, err = c.write(p, time.Now().Add(stall))
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, true, err
	}
	c.wire.Unlock()
	return n, false, err
}

// rest finishes a flush cut short, by the deadline, and releases the socket.
func (c *corkConn) rest(p []byte, deadline time.Time) error {
	defer c.wire.Unlock()
	_, err := c.write(p, deadline)
	return err
}

func (c *corkConn) write(p []byte, deadline time.Time) (int, error) {
	if err := c.Conn.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if derr := c.Conn.SetWriteDeadline(time.Time{}); err == nil {
		err = derr
	}
	return n, err
}

// corkWriter hands the WebSocket library a corkConn when it hijacks the
// connection. An error the library answers a handshake it refuses
// (http.Error: a cross-origin page, a request without Upgrade, another
// protocol version) is kept, not written: ServeHTTP answers it in the API's
// envelope, as every other refusal of the route.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn
	// failCode and failText are the refusal the library wrote.
	failCode int
	failText bytes.Buffer
}

func (w *corkWriter) WriteHeader(code int) {
	if code >= http.StatusBadRequest && w.conn == nil {
		w.failCode = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *corkWriter) Write(p []byte) (int, error) {
	if w.failCode != 0 {
		if room := maxFailText - w.failText.Len(); room > 0 {
			w.failText.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// maxFailText bounds the refusal text kept (the library's are one line).
const maxFailText = 1 << 10

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		return nil, nil, err
	}
	w.conn = newCorkConn(nc)
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}

// nowWriter writes to a non-blocking socket with write system calls
// until a buffer is written or the socket is full: it never waits, and
// sets no deadline. The function handed to the socket is made once, so
// that a write allocates nothing; one write at a time.
type nowWriter struct {
	rc      syscall.RawConn
	fn      func(fd uintptr) bool
	p       []byte
	n       int
	blocked bool
	err     error
}

func newNowWriter(rc syscall.RawConn) *nowWriter {
	w := &nowWriter{rc: rc}
	w.fn = w.writeFD
	return w
}

func (w *nowWriter) writeFD(fd uintptr) bool {
	for w.n < len(w.p) {
		k, err := syscall.Write(int(fd), w.p[w.n:])
		if k > 0 {
			w.n += k
		}
		switch err {
		case nil, syscall.EINTR:
		case syscall.EAGAIN:
			w.blocked = true
			return true
		default:
			w.err = err
			return true
		}
	}
	return true
}

// write writes p (blocked true, with n the bytes written, when the socket
// is full).
func (w *nowWriter) write(p []byte) (n int, blocked bool, err error) {
	w.p, w.n, w.blocked, w.err = p, 0, false, nil
	err = w.rc.Write(w.fn)
	n, blocked, serr := w.n, w.blocked, w.err
	w.p = nil
	if err != nil {
		return n, false, err
	}
	if serr != nil {
		return n, false, os.NewSyscallError("write", serr)
	}
	return n, blocked, nil
}
