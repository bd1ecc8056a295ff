// Package parallel runs independent pieces of work on the machine's cores.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// ForEach calls f(0) ... f(n-1) on up to GOMAXPROCS goroutines and returns
// when every call has returned. The calls must be independent; each i is
// called exactly once, in no particular order.
func ForEach(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}
