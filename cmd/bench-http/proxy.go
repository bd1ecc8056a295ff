package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// proxy is the load balancer in front of several sred replicas: a TCP proxy
// that hands each new client connection to the next replica in turn (round
// robin, as HAProxy or an L4 cloud load balancer in TCP mode does), then
// copies bytes both ways. The load generator's keep-alive connections are
// thus spread evenly over the replicas; every request of one connection
// goes to the same replica.
type proxy struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startProxy(backends []string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
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
		_, _ = io.Copy(server, client)
		if tc, ok := server.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(client, server)
	client.Close()
	<-done
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
