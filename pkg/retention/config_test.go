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
	require.Equal(t, Config{Interval: model.Duration(10 * time.Minute), BatchSize: 100}, c)
}
