package noise

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAckColumn: the mean time to acknowledge shows to the second, a mean
// under one second as "<1s" (it showed "0d").
func TestAckColumn(t *testing.T) {
	for _, tc := range []struct {
		acked   int
		seconds float64
		want    string
	}{
		{0, 0, "-"},
		{1, 0, "<1s"},
		{2, 0.4, "<1s"},
		{1, 0.99, "<1s"},
		{1, 1, "1s"},
		{3, 12.3, "12s"},
		{1, 59.6, "1m"},
		{1, 180, "3m"},
		{1, 200.4, "3m20s"},
		{1, 7200, "2h"},
		{1, 5400, "90m"},
		{1, 5401, "1h30m1s"},
		{1, 86400, "1d"},
	} {
		require.Equal(t, tc.want, ack(Row{Acked: tc.acked, MeanTimeToAckSeconds: tc.seconds}), "%d acked, mean %vs", tc.acked, tc.seconds)
	}
}
