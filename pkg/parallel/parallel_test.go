package parallel

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestForEach: every index is called exactly once, with one worker and with
// several, and for no work at all.
func TestForEach(t *testing.T) {
	for _, procs := range []int{1, 4} {
		prev := runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 3, 1000} {
			calls := make([]atomic.Int32, n)
			ForEach(n, func(i int) { calls[i].Add(1) })
			for i := range calls {
				require.Equal(t, int32(1), calls[i].Load(), "procs %d, n %d, index %d", procs, n, i)
			}
		}
		runtime.GOMAXPROCS(prev)
	}
}
