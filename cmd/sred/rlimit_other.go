//go:build !unix

package main

import "log/slog"

// raiseNoFile: no RLIMIT_NOFILE here; the limit is unknown (0).
func raiseNoFile(*slog.Logger) uint64 { return 0 }
