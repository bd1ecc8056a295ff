package english

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 failures"}, {1, "1 failure"}, {2, "2 failures"}, {-1, "-1 failures"}, {1000, "1000 failures"}} {
		require.Equal(t, c.want, Count(c.n, "failure", "failures"))
	}
}
