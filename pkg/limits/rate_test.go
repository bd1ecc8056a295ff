package limits

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestRate: a rate limit's keys not given keep their defaults (1,000 in a
// row, then one per 50ms), Validate bounds both and names the field, and
// OrDefaults fills the zero fields of a Rate not read from YAML.
func TestRate(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want Rate
		err  string
	}{
		{"{}", Rate{Burst: 1000, Every: model.Duration(50 * time.Millisecond)}, ""},
		{"{burst: 10}", Rate{Burst: 10, Every: model.Duration(50 * time.Millisecond)}, ""},
		{"{every: 1s}", Rate{Burst: 1000, Every: model.Duration(time.Second)}, ""},
		{"{burst: 100000, every: 1h}", Rate{Burst: 100000, Every: model.Duration(time.Hour)}, ""},
		{"{burst: 0}", Rate{Every: model.Duration(50 * time.Millisecond)}, "burst must be 1 to 100000, got 0"},
		{"{burst: 100001}", Rate{Burst: 100001, Every: model.Duration(50 * time.Millisecond)}, "burst must be 1 to 100000, got 100001"},
		{"{every: 0s}", Rate{Burst: 1000}, "every must be positive and at most 1h, got 0s"},
		{"{every: 2h}", Rate{Burst: 1000, Every: model.Duration(2 * time.Hour)}, "every must be positive and at most 1h, got 2h"},
	} {
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		var r Rate
		require.NoError(t, dec.Decode(&r), tc.yaml)
		require.Equal(t, tc.want, r, tc.yaml)
		if tc.err == "" {
			require.NoError(t, r.Validate(), tc.yaml)
			continue
		}
		require.EqualError(t, r.Validate(), tc.err, tc.yaml)
	}
	dec := yaml.NewDecoder(strings.NewReader("{brust: 5}"))
	dec.KnownFields(true)
	var r Rate
	require.ErrorContains(t, dec.Decode(&r), "field brust not found")

	require.Equal(t, DefaultRate, Rate{}.OrDefaults())
	require.Equal(t, Rate{Burst: 4, Every: model.Duration(50 * time.Millisecond)}, Rate{Burst: 4}.OrDefaults())
	require.Equal(t, Rate{Burst: 1000, Every: model.Duration(time.Minute)}, Rate{Burst: -1, Every: model.Duration(time.Minute)}.OrDefaults())
}
