// Package clock tells the time. Production code takes a Clock (Real unless
// told otherwise); tests pass a Manual clock and move it instead of sleeping,
// then run what is due (a queue's RunDue, an engine's cycle).
package clock

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Timer is a Clock that can also wait: code that sleeps between rounds (a
// monitor loop) takes a Timer so that a Manual clock drives it.
type Timer interface {
	Clock
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// After implements Timer.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Func is a function used as a Clock, as http.HandlerFunc is a Handler:
// for a clock that follows another one replaced later (a test setting the
// incident service's clock after the app is built).
type Func func() time.Time

// Now implements Clock.
func (f Func) Now() time.Time { return f() }

// OrReal returns c, or the wall clock if c is nil.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Manual is a clock that moves only when told to. Its timers (After) fire
// when Advance or Set passes them.
type Manual struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
	changed chan struct{}
}

type waiter struct {
	at    time.Time
	ch    chan time.Time
	quiet bool // a Bound: not counted in Waiters
}

// NewManual returns a clock stopped at t.
func NewManual(t time.Time) *Manual {
	return &Manual{t: t, changed: make(chan struct{})}
}

// Now implements Clock.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After implements Timer: the channel fires when the clock passes now+d.
func (c *Manual) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock by d and fires the timers that are due.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.t) {
			w.ch <- c.t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Bound returns a channel that fires once t passes now+d, and a function
// that releases it: it bounds an operation the code waits on (a query), not
// a pause of its own. A Manual clock fires it on Advance as a timer of After
// but does not count it in Waiters, so that tests advancing the clock while
// code waits on it are not misled by an operation under way.
func Bound(t Timer, d time.Duration) (<-chan time.Time, func()) {
	m, ok := t.(*Manual)
	if !ok {
		tm := time.NewTimer(d)
		return tm.C, func() { tm.Stop() }
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan time.Time, 1)
	m.waiters = append(m.waiters, waiter{at: m.t.Add(d), ch: ch, quiet: true})
	return ch, func() { m.remove(ch) }
}

// remove drops the waiter of ch, if it still waits.
func (c *Manual) remove(ch chan time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.ch != ch {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Set moves the clock to t and fires the timers that are due. Moving it
// back is allowed (a test replaying a day), timers only fire going forward.
func (c *Manual) Set(t time.Time) {
	if d := t.Sub(c.Now()); d > 0 {
		c.Advance(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Waiters returns how many timers of After are pending and a channel closed when
// that number may have grown, so tests wait for code to block on the clock
// instead of sleeping.
func (c *Manual) Waiters() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waiters {
		if !w.quiet {
			n++
		}
	}
	return n, c.changed
}

// WaitWaiters blocks until at least n timers are pending or ctx ends: tests
// wait with it for code to block on the clock instead of sleeping.
func (c *Manual) WaitWaiters(ctx context.Context, n int) error {
	for {
		got, changed := c.Waiters()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d timers wait on the clock, want %d: %w", got, n, context.Cause(ctx))
		}
	}
}
