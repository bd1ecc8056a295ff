package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// defaultGCPercent is sred's garbage collection target (--runtime.gogc)
// when GOGC is not set: sred's live heap is small (tens of MiB) and a
// webhook delivery allocates a lot of short-lived memory, so with Go's
// default of 100 the collector runs often under load; 200 halves the collector's marking (3.3-6.6% of sred's CPU
// under bench-http -> 1.8-2.3%) and took 8% less CPU per delivery on
// average, for about 10 MiB more peak resident memory
// (docs/benchmarks-history.md, "CPU per delivery, 3 December 2026 (decode
// and side work)").
// Prometheus makes the opposite trade (75, runtime.gogc) for its large heap.
const defaultGCPercent = 200

// setGCPercent applies --runtime.gogc unless the GOGC environment variable
// is set, which wins as it does for Prometheus, and logs which applies.
func setGCPercent(percent int, logger *slog.Logger) {
	if env, ok := os.LookupEnv("GOGC"); ok {
		logger.Info("Garbage collection target from GOGC", "gogc", env)
		return
	}
	debug.SetGCPercent(percent)
	logger.Info("Garbage collection target", "gogc", percent)
}
