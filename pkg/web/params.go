package web

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/rootuip/sre/pkg/limits"
)

// CheckParams refuses a query parameter not among names (a misspelt
// filter would otherwise be ignored and everything answered) and one
// given more than once (read as its first value alone), naming it, cut by
// limits.Quote, and the ones accepted. Keys are checked in order, so the
// error is the same for the same query.
func CheckParams(q url.Values, names ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return fmt.Errorf("unknown parameter %s (want %s)", limits.Quote(k), strings.Join(names, ", "))
		}
		if n := len(q[k]); n > 1 {
			return fmt.Errorf("parameter %s given %d times: give it once", limits.Quote(k), n)
		}
	}
	return nil
}
