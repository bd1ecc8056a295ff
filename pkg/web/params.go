package web

import (
	"fmt"
	"net/http"
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

// ReadQuery returns the parameters of r's query string, or an error naming
// the query, cut by limits.Quote, and what is wrong in it. r.URL.Query()
// drops a pair it cannot read (a bad % escape such as pod=50%, a ';'
// separator) without a word, so a filter the URL gave was ignored and the
// route answered as if it were not given.
func ReadQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w (escape '%%' as %%25 and ';' as %%3B)", limits.Quote(r.URL.RawQuery), err)
	}
	return q, nil
}

// QueryRefuser is a handler that answers a request whose query string
// ReadQuery refuses in its own form (the console's error page), rather
// than the plain text a route outside /api/ answers otherwise.
type QueryRefuser interface {
	http.Handler
	RefuseQuery(w http.ResponseWriter, r *http.Request, err error)
}
