package clock

import (
	"context"
	"sync"
	"time"
)

// WithTimeout is context.WithTimeout on t: the context ends with
// context.DeadlineExceeded once t passes now+d, for code that bounds an
// operation with a context (a query, a connection) and must tell its
// timeout from a cancellation. On the wall clock (any Timer but a Manual)
// it is context.WithTimeout. On a Manual clock, Advance or Set ends it, and
// it counts in Waiters until it ends or is cancelled (unlike Bound): a test
// waits with WaitWaiters for the code to be in the operation before it
// advances the clock past d. Its Deadline is the parent's, since a Manual
// clock's time is not the wall clock's.
func WithTimeout(parent context.Context, t Timer, d time.Duration) (context.Context, context.CancelFunc) {
	m, ok := t.(*Manual)
	if !ok {
		return context.WithTimeout(parent, d)
	}
	c := &timeoutCtx{Context: parent, done: make(chan struct{})}
	if d <= 0 {
		c.end(context.DeadlineExceeded)
		return c, func() {}
	}
	fire := make(chan time.Time, 1)
	m.mu.Lock()
	m.waiters = append(m.waiters, waiter{at: m.t.Add(d), ch: fire})
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	go func() {
		select {
		case <-fire:
			c.end(context.DeadlineExceeded)
		case <-parent.Done():
			c.end(parent.Err())
		case <-c.done:
		}
	}()
	return c, func() {
		c.end(context.Canceled)
		m.remove(fire)
	}
}

// timeoutCtx is a context ended by a Manual clock's timer, its parent, or
// its cancel function, whichever comes first.
type timeoutCtx struct {
	context.Context // the parent: its values and deadline
	done            chan struct{}
	mu              sync.Mutex
	err             error
}

func (c *timeoutCtx) Done() <-chan struct{} { return c.done }

func (c *timeoutCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// end ends c with err, unless it has ended already.
func (c *timeoutCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}
