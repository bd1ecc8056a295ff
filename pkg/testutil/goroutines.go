package testutil

import "runtime/metrics"

// GoroutinesCreated is how many goroutines the process has started so far
// (0 if the runtime does not say).
func GoroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
