package clock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestManual(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewManual(start)
	require.Equal(t, start, c.Now())
	ch := c.After(time.Minute)
	n, _ := c.Waiters()
	require.Equal(t, 1, n)
	c.Advance(59 * time.Second)
	select {
	case <-ch:
		t.Fatal("fired before its time")
	default:
	}
	c.Advance(time.Second)
	require.Equal(t, start.Add(time.Minute), <-ch)
	n, _ = c.Waiters()
	require.Zero(t, n)
	c.Set(start)
	require.Equal(t, start, c.Now(), "Set moves back too")
	require.Equal(t, start, (<-c.After(0)))
}

func TestOrReal(t *testing.T) {
	require.Equal(t, Real{}, OrReal(nil))
	m := NewManual(time.Unix(0, 0))
	require.Same(t, m, OrReal(m))
}

// TestWaitWaiters: WaitWaiters returns once enough timers wait, and says how
// many wait when its context ends first.
func TestWaitWaiters(t *testing.T) {
	c := NewManual(time.Unix(0, 0))
	done := make(chan error, 1)
	go func() { done <- c.WaitWaiters(context.Background(), 2) }()
	c.After(time.Minute)
	c.After(time.Hour)
	require.NoError(t, <-done)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.EqualError(t, c.WaitWaiters(ctx, 3), "2 timers wait on the clock, want 3: context canceled")
	require.NoError(t, c.WaitWaiters(ctx, 2), "enough wait already: the context does not matter")
}
