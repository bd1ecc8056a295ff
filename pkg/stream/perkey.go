package stream

import (
	"fmt"
	"net/http"
	"sync"
)

// DefaultMaxPerKey bounds the streams one client key (a principal) holds at
// once on each of the two streams, so that one credential cannot take every
// slot of MaxClients and lock everyone else out.
const DefaultMaxPerKey = 32

// perKey counts the streams each client key holds. The zero value is
// ready; a nil key function counts nothing.
type perKey struct {
	key func(*http.Request) string
	max int

	mu sync.Mutex
	n  map[string]int
}

func newPerKey(key func(*http.Request) string, max int) *perKey {
	if max <= 0 {
		max = DefaultMaxPerKey
	}
	return &perKey{key: key, max: max, n: map[string]int{}}
}

// acquire takes a slot for r's key: it returns the function that gives it
// back, or an error naming the key when it holds max streams already.
func (p *perKey) acquire(r *http.Request) (release func(), err error) {
	if p == nil || p.key == nil {
		return func() {}, nil
	}
	k := p.key(r)
	if k == "" {
		return func() {}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[k] >= p.max {
		return nil, fmt.Errorf("too many event streams for %q (at most %d at once)", k, p.max)
	}
	p.n[k]++
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.n[k]--; p.n[k] <= 0 {
			delete(p.n, k)
		}
	}, nil
}
