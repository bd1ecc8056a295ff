package status_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/status"
)

// TestPercentNeverReads100: the uptime of a component that had an outage
// never reads 100% (a few minutes of major outage over 90 days is 99.996%),
// neither on the page (2 decimals) nor in srectl status (3).
func TestPercentNeverReads100(t *testing.T) {
	for _, c := range []struct {
		ratio    float64
		decimals int
		want     string
	}{
		{0.99996, 2, "99.99%"},
		{0.99996, 3, "99.996%"},
		{0.9999996, 3, "99.999%"},
		{1, 2, "100.00%"},
		{1, 3, "100.000%"},
		{0.9999, 2, "99.99%"},
		{0.99953, 3, "99.953%"},
		{0.5, 2, "50.00%"},
		{0, 3, "0.000%"},
	} {
		require.Equal(t, c.want, status.Percent(c.ratio, c.decimals), "%v with %d decimals", c.ratio, c.decimals)
	}
}
