package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGCPercent: --runtime.gogc sets the collector's target when GOGC is
// not set, and GOGC wins when it is.
func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	logger := slog.New(slog.DiscardHandler)

	t.Setenv("GOGC", "") // restored after the test
	require.NoError(t, os.Unsetenv("GOGC"))
	setGCPercent(defaultGCPercent, logger)
	require.Equal(t, defaultGCPercent, debug.SetGCPercent(100))

	t.Setenv("GOGC", "50")
	setGCPercent(300, logger)
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: the flag changes nothing")
}
