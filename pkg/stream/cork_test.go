package stream

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCorkFlushAllocatesNothing: a pass's flush to a TCP socket that takes
// it is one write system call and allocates nothing (the function handed to
// the socket is made once per connection), and the reader gets every byte.
func TestCorkFlushAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer s.Close()
		n, _ := io.Copy(io.Discard, s)
		got <- n
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c := newCorkConn(nc)
	require.NotNil(t, c.nw, "a TCP connection is written without waiting")
	p := make([]byte, 512)
	const runs = 100
	allocs := testing.AllocsPerRun(runs, func() {
		n, timeout, err := c.flush(p, time.Second)
		if err != nil || timeout || n != len(p) {
			t.Fatalf("flush: %d bytes, timeout %v, %v", n, timeout, err)
		}
	})
	require.Zero(t, allocs)
	require.NoError(t, nc.Close())
	// AllocsPerRun runs the function once more than runs, to warm up.
	require.Equal(t, int64((runs+1)*len(p)), <-got)
}
