package clock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWithTimeout: on a Manual clock the context ends with
// DeadlineExceeded when the clock passes its timeout, as a timeout of
// context.WithTimeout does, counts in Waiters until then, and is released
// when cancelled; its parent's end ends it too.
func TestWithTimeout(t *testing.T) {
	c := NewManual(time.Unix(0, 0))
	ctx, cancel := WithTimeout(context.Background(), c, time.Minute)
	defer cancel()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	require.NoError(t, c.WaitWaiters(context.Background(), 1))
	c.Advance(59 * time.Second)
	require.NoError(t, ctx.Err())
	_, ok := ctx.Deadline()
	require.False(t, ok, "a Manual clock's time is not a wall deadline")
	c.Advance(time.Second)
	<-ctx.Done()
	require.Equal(t, context.DeadlineExceeded, ctx.Err())
	require.Equal(t, context.DeadlineExceeded, context.Cause(ctx))
	<-child.Done()
	require.Equal(t, context.DeadlineExceeded, child.Err(), "a context derived from it")
	n, _ := c.Waiters()
	require.Zero(t, n)

	ctx, cancel = WithTimeout(context.Background(), c, time.Minute)
	n, _ = c.Waiters()
	require.Equal(t, 1, n)
	cancel()
	require.Equal(t, context.Canceled, ctx.Err())
	n, _ = c.Waiters()
	require.Zero(t, n, "released when cancelled")
	c.Advance(time.Hour)
	require.Equal(t, context.Canceled, ctx.Err(), "ended once")

	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel = WithTimeout(parent, c, time.Minute)
	defer cancel()
	cancelParent()
	<-ctx.Done()
	require.Equal(t, context.Canceled, ctx.Err())

	ctx, cancel = WithTimeout(context.Background(), c, 0)
	defer cancel()
	require.Equal(t, context.DeadlineExceeded, ctx.Err(), "no time at all")

	ctx, cancel = WithTimeout(context.Background(), Real{}, time.Hour)
	defer cancel()
	deadline, ok := ctx.Deadline()
	require.True(t, ok, "the wall clock: context.WithTimeout")
	require.WithinDuration(t, time.Now().Add(time.Hour), deadline, time.Hour)
}
