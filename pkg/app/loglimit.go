package app

import (
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/clock"
)

// logLimiter lets one log line per key through per interval and counts
// the lines it holds back, so that what anyone may cause at will (a
// refusal, a failing probe) cannot flood the log. It remembers at most max
// keys: beyond that, once the keys not seen for an interval are forgotten,
// a new key's lines are held back without being counted.
type logLimiter struct {
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

func newLogLimiter(clk clock.Clock, every time.Duration, max int) *logLimiter {
	return &logLimiter{clock: clock.OrReal(clk), every: every, max: max, keys: map[string]*logKey{}}
}

// allow reports whether a line for key may be logged now, and how many of
// its lines were held back since the last one logged.
func (l *logLimiter) allow(key string) (bool, int) {
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
