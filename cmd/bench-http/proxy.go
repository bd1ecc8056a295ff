package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is the load balancer in front of several sred replicas: a TCP proxy
// that hands each new client connection to the next replica in turn (round
// robin, as HAProxy or an L4 cloud load balancer in TCP mode does), then
// copies bytes both ways. The load generator's keep-alive connections are
// thus spread evenly over the replicas; every request of one connection
// goes to the same replica.
//
// With a delay (startDelayProxy) it stands for a network between sred and
// PostgreSQL on another host: every chunk of bytes crosses it delay after
// it was read, in each direction, in order, without waiting for the chunks
// before it to be answered (latency, not a bandwidth limit).
type proxy struct {
	ln       net.Listener
	backends []string
	delay    time.Duration
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startProxy(backends []string) (*proxy, error) {
	return startDelayProxy(backends, 0)
}

// startDelayProxy is startProxy whose copies add delay each way.
func startDelayProxy(backends []string, delay time.Duration) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, backends: backends, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			backend := p.backends[(p.next.Add(1)-1)%uint64(len(p.backends))]
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c, backend)
			}()
		}
	}()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false // closed
	}
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

// pipe copies between the client connection and a new connection to
// backend until either side closes.
func (p *proxy) pipe(client net.Conn, backend string) {
	defer client.Close()
	server, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(client, true) || !p.track(server, true) {
		return
	}
	defer p.track(client, false)
	defer p.track(server, false)
	done := make(chan struct{})
	go func() {
		// TCP to TCP: io.Copy splices in the kernel on Linux.
		p.copy(server, client)
		if tc, ok := server.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	p.copy(client, server)
	client.Close()
	<-done
}

// copy copies src to dst, each chunk p.delay after it was read.
func (p *proxy) copy(dst io.Writer, src io.Reader) {
	if p.delay <= 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 { // a chunk of its own: buf is read into again
				chunks <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			for range chunks { //nolint:revive // drained until the reader stops
			}
			return
		}
	}
}

// Close stops accepting, closes every connection and waits for the copies.
func (p *proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
