package loglimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
)

func TestLimiter(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	l := New(clk, time.Minute, 2)
	type step struct {
		advance time.Duration
		key     string
		ok      bool
		held    int
	}
	for i, s := range []step{
		{0, "a", true, 0},
		{0, "a", false, 0},
		{30 * time.Second, "a", false, 0},
		{0, "b", true, 0},
		{0, "c", false, 0}, // two keys remembered, both seen within the minute
		{30 * time.Second, "a", true, 2},
		{0, "a", false, 0},
		{30 * time.Second, "c", true, 0}, // b not seen for a minute: forgotten
		{time.Minute, "a", true, 1},
	} {
		clk.Advance(s.advance)
		ok, held := l.Allow(s.key)
		require.Equal(t, s.ok, ok, "step %d (%s)", i, s.key)
		require.Equal(t, s.held, held, "step %d (%s)", i, s.key)
	}
}
