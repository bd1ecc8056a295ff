package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errShutdown is the cause of the streams ended by Shutdown: the SSE stream
// ends with the comment ": closed: shutting down", the WebSocket with a
// close frame 1001 (going away) and "shutting down" as reason.
var errShutdown = errors.New("shutting down")

// life tracks the streams of a handler so that Shutdown can end them and
// wait until their handlers have returned: http.Server.Shutdown waits for
// an SSE stream until its deadline (the stream never goes idle) and
// ignores a WebSocket (hijacked), whose client would then see the
// connection drop without a close frame when the process exits.
type life struct {
	// ctx is canceled with errShutdown by shutdown.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	active int
	idle   chan struct{} // closed when shutting down with no stream left
}

func newLife() *life {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &life{ctx: ctx, cancel: cancel, idle: make(chan struct{})}
}

// enter counts a new stream, or reports false when shutting down (the
// request is then refused).
func (l *life) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return false
	}
	l.active++
	return true
}

// leave ends a stream counted by enter.
func (l *life) leave() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if l.active == 0 && l.ctx.Err() != nil {
		l.closeIdle()
	}
}

// closeIdle closes idle once (mu held).
func (l *life) closeIdle() {
	select {
	case <-l.idle:
	default:
		close(l.idle)
	}
}

// done is closed when shutting down.
func (l *life) done() <-chan struct{} { return l.ctx.Done() }

// shutdown refuses new streams, ends the current ones and waits until
// their handlers have returned, or ctx ends. Calling it again waits again.
func (l *life) shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.cancel(errShutdown)
	if l.active == 0 {
		l.closeIdle()
	}
	l.mu.Unlock()
	select {
	case <-l.idle:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		n := l.active
		l.mu.Unlock()
		return fmt.Errorf("%d event streams still open: %w", n, context.Cause(ctx))
	}
}
