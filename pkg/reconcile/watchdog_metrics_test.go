package reconcile

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// An enabled watchdog exports its heartbeat counter at zero before any
// heartbeat, so that SredWatchdogMissing (examples/sred.rules.yml) fires
// when none ever arrives; a disabled one exports no series, so that the
// alert stays silent on installs without a Watchdog, and a reload that
// disables it removes them.
func TestWatchdogHeartbeatsZeroWhileEnabled(t *testing.T) {
	const name = "sre_watchdog_heartbeats_total"
	reg := prometheus.NewRegistry()
	w := NewWatchdog(nil, nil, WatchdogOptions{}, nil, NewMetrics(reg))
	n, err := testutil.GatherAndCount(reg, name)
	require.NoError(t, err)
	require.Zero(t, n, "disabled: no series")

	w.SetOptions(WatchdogOptions{Alertname: "Watchdog", Timeout: 10 * time.Minute})
	n, err = testutil.GatherAndCount(reg, name)
	require.NoError(t, err)
	require.Equal(t, len(heartbeatSources), n, "enabled: a series per source")
	for _, source := range heartbeatSources {
		require.Zero(t, testutil.ToFloat64(w.m.watchdogs.WithLabelValues(source)), source)
	}

	w.SetOptions(WatchdogOptions{})
	n, err = testutil.GatherAndCount(reg, name)
	require.NoError(t, err)
	require.Zero(t, n, "disabled on reload: no series")
}
