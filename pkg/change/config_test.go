package change_test

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/change"
)

func TestConfig(t *testing.T) {
	var c change.Config
	require.NoError(t, yaml.Unmarshal([]byte("{}"), &c))
	require.Equal(t, change.DefaultConfig, c)
	require.NoError(t, yaml.Unmarshal([]byte("incident_link_window: 30m\nyellow_max_changes_per_day: 2\ndora_window: 30d\n"), &c))
	require.Equal(t, change.Config{IncidentLinkWindow: model.Duration(30 * time.Minute), YellowMaxChangesPerDay: 2,
		DORAWindow: model.Duration(30 * 24 * time.Hour)}, c)

	for _, tc := range []struct{ yaml, err string }{
		{"incident_link_window: 30s", "changes: incident_link_window must be between 1m and 7d, got 30s"},
		{"incident_link_window: 8d", "changes: incident_link_window must be between 1m and 7d, got 8d"},
		{"yellow_max_changes_per_day: -1", "changes: yellow_max_changes_per_day must not be negative (0 means no quota), got -1"},
		{"dora_window: 12h", "changes: dora_window must be between 1d and 90d, got 12h"},
		{"dora_window: 91d", "changes: dora_window must be between 1d and 90d, got 13w"},
	} {
		var c change.Config
		err := yaml.Unmarshal([]byte(tc.yaml), &c)
		require.EqualError(t, err, tc.err, tc.yaml)
	}
}
