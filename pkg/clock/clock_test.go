package clock

import (
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
