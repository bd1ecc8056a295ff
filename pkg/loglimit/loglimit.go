// Package loglimit holds back repeated log lines: one line per key per
// interval, with a count of the lines held back, so that what a client may
// cause at will (a refused request, a failing dependency it calls) cannot
// flood the log.
package loglimit

import (
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/clock"
)

// Limiter lets one log line per key through per interval and counts the
// lines it holds back. It remembers at most max keys: beyond that, once the
// keys not seen for an interval are forgotten, a new key's lines are held
// back without being counted.
type Limiter struct {
	clock clock.Clock
	every time.Duration
	max   int

	mu     sync.Mutex
	keys   map[string]*logKey
	pruned time.Time
}

type logKey struct {
	last time.Time
	held int
}

// New returns a Limiter of one line per key every interval, for at most
// max keys, on clk (clock.Real when nil).
func New(clk clock.Clock, every time.Duration, max int) *Limiter {
	return &Limiter{clock: clock.OrReal(clk), every: every, max: max, keys: map[string]*logKey{}}
}

// Allow reports whether a line for key may be logged now, and how many of
// its lines were held back since the last one logged.
func (l *Limiter) Allow(key string) (bool, int) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil {
		if len(l.keys) >= l.max && now.Sub(l.pruned) >= l.every {
			l.pruned = now
			for name, o := range l.keys {
				if now.Sub(o.last) >= l.every {
					delete(l.keys, name)
				}
			}
			if len(l.keys) >= l.max {
				return false, 0
			}
		}
		l.keys[key] = &logKey{last: now}
		return true, 0
	}
	if now.Sub(k.last) < l.every {
		k.held++
		return false, 0
	}
	held := k.held
	k.last, k.held = now, 0
	return true, held
}
