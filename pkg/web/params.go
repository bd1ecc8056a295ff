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
// limits.Quote, and the ones accepted: the first unknown parameter in
// sorted order, else the first of names given twice, so the error is the
// same for the same query.
func CheckParams(q url.Values, names ...string) error {
	if err := onlyParams(q, names...); err != nil {
		return err
	}
	return onceParams(q, names...)
}

// onlyParams returns an error naming the first parameter of q (in sorted
// order) that is not one of names, with the ones accepted: a typo such as
// ?sevrity= would otherwise widen the answer to every incident, as the
// other list routes refuse it.
func onlyParams(q url.Values, names ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "none"
	if len(names) > 0 {
		want = strings.Join(names, ", ")
	}
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return fmt.Errorf("unknown parameter %s (want %s)", limits.Quote(k), want)
		}
	}
	return nil
}

// onceParams returns an error naming the first of names given more than
// once: ?service=a&service=b would otherwise read as service=a alone, as
// pkg/scaling refuses it.
func onceParams(q url.Values, names ...string) error {
	for _, k := range names {
		if n := len(q[k]); n > 1 {
			return fmt.Errorf("parameter %s given %d times: give it once", limits.Quote(k), n)
		}
	}
	return nil
}
