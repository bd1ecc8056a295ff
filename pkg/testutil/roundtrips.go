package testutil

import (
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
)

// RoundTripProxy forwards PostgreSQL connections and counts the client's
// round trips: Sync messages (the end of an extended-protocol statement,
// or of a pipeline of several) and simple queries; and its statements:
// Execute messages and simple queries.
type RoundTripProxy struct {
	ln         net.Listener
	count      atomic.Int64
	statements atomic.Int64
}

// NewRoundTripProxy starts a proxy to the server at target (host:port),
// closed with the test.
func NewRoundTripProxy(t testing.TB, target string) *RoundTripProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("round-trip proxy: %v", err)
	}
	p := &RoundTripProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
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
			go func() { io.Copy(c, s); c.Close() }() //nolint:errcheck
			go func() { p.read(c, s); s.Close() }()
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *RoundTripProxy) Addr() string { return p.ln.Addr().String() }

// Count is how many round trips the proxy has seen.
func (p *RoundTripProxy) Count() int64 { return p.count.Load() }

// Statements is how many statements the proxy has seen run.
func (p *RoundTripProxy) Statements() int64 { return p.statements.Load() }

// PostgresURLThroughProxy is a fresh schema's URL (PostgresSchemaURL) through a new
// proxy, and the proxy.
func PostgresURLThroughProxy(t testing.TB) (string, *RoundTripProxy) {
	t.Helper()
	u, err := url.Parse(PostgresSchemaURL(t))
	if err != nil {
		t.Fatalf("schema URL: %v", err)
	}
	p := NewRoundTripProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// read copies client messages to the server, counting round trips.
func (p *RoundTripProxy) read(c, s net.Conn) {
	var hdr [5]byte
	// The startup message has a length and no type.
	if _, err := io.ReadFull(c, hdr[:4]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if _, err := s.Write(hdr[:4]); err != nil {
		return
	}
	if _, err := io.CopyN(s, c, int64(n)-4); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if hdr[0] == 'S' || hdr[0] == 'Q' {
			p.count.Add(1)
		}
		if hdr[0] == 'E' || hdr[0] == 'Q' {
			p.statements.Add(1)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if _, err := s.Write(hdr[:]); err != nil {
			return
		}
		if _, err := io.CopyN(s, c, int64(n)-4); err != nil {
			return
		}
	}
}
