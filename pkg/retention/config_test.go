package retention

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{src: `{}`},
		{src: `{resolved_incidents: 400d, batch_size: 500}`},
		{src: `{resolved_incidents: 30m}`, err: "retention: resolved_incidents must be 0 (keep) or at least 1h, got 30m"},
		{src: `{batch_size: 0}`, err: "retention: batch_size must be between 1 and 10000, got 0"},
		{src: `{interval: 0s}`, err: "retention: interval must be positive"},
		{src: `{keep: 1d}`, err: "field keep not found"},
		{src: `{alert_payloads: 30d, notification_outbox: 0s, finished_jobs: 0s, runbook_outputs: 90d, stream_replay: 1h, stream_replay_events: 50000}`},
		{src: `{alert_payloads: 10m}`, err: "retention: alert_payloads must be 0 (keep) or at least 1h, got 10m"},
		{src: `{notification_outbox: 59m}`, err: "retention: notification_outbox must be 0 (keep) or at least 1h, got 59m"},
		{src: `{finished_jobs: 1s}`, err: "retention: finished_jobs must be 0 (keep) or at least 1h, got 1s"},
		{src: `{runbook_outputs: 30m}`, err: "retention: runbook_outputs must be 0 (keep) or at least 1h, got 30m"},
		{src: `{gate_decisions: 0s}`},
		{src: `{gate_decisions: 400d}`},
		{src: `{gate_decisions: 30m}`, err: "retention: gate_decisions must be 0 (keep) or at least 1h, got 30m"},
		{src: `{audit_log: 0s}`},
		{src: `{audit_log: 2y}`},
		{src: `{audit_log: 59m}`, err: "retention: audit_log must be 0 (keep) or at least 1h, got 59m"},
		{src: `{chaos_runs: 0s}`},
		{src: `{chaos_runs: 2y}`},
		{src: `{chaos_runs: 30m}`, err: "retention: chaos_runs must be 0 (keep) or at least 1h, got 30m"},
		{src: `{stream_replay: 0s}`, err: "retention: stream_replay must be at least 1s, got 0s"},
		{src: `{stream_replay_events: 0}`, err: "retention: stream_replay_events must be between 1 and 1000000, got 0"},
		{src: `{stream_replay_events: 2000000}`, err: "retention: stream_replay_events must be between 1 and 1000000, got 2000000"},
	} {
		var c Config
		dec := yaml.NewDecoder(strings.NewReader(tc.src))
		dec.KnownFields(true)
		err := dec.Decode(&c)
		if tc.err == "" {
			require.NoError(t, err, tc.src)
			continue
		}
		require.ErrorContains(t, err, tc.err, tc.src)
	}
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(`{}`), &c))
	require.Equal(t, Config{FinishedJobs: model.Duration(7 * 24 * time.Hour), GateDecisions: model.Duration(30 * 24 * time.Hour), AuditLog: model.Duration(400 * 24 * time.Hour), ChaosRuns: model.Duration(400 * 24 * time.Hour), StreamReplay: model.Duration(15 * time.Minute),
		StreamReplayEvents: 10000, Interval: model.Duration(10 * time.Minute), BatchSize: 100}, c)
	require.Equal(t, 7*24*time.Hour, c.Outbox(), "unset: the default outbox retention")
}
