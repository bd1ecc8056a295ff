//go:build unix

package main

import (
	"log/slog"
	"syscall"
)

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit (the Go
// runtime does so too on Linux; this makes it explicit and logged) and
// returns the soft limit in force, 0 when unknown.
func raiseNoFile(logger *slog.Logger) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logger.Warn("Read the file descriptor limit", "err", err)
		return 0
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			logger.Warn("Raise the file descriptor limit", "from", rl.Cur, "to", rl.Max, "err", err)
		} else {
			rl = want
		}
	}
	return rl.Cur
}
