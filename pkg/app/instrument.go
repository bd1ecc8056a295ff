package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/web"
)

// MetricHTTPRequestDuration is the latency histogram of every request sred
// serves.
const MetricHTTPRequestDuration = "sre_http_request_duration_seconds"

// unmatchedHandler is the handler label of requests that match no route
// (404, 405), so that arbitrary paths never become label values.
const unmatchedHandler = "unmatched"

type handlerKey struct{}

// Handler returns a.Mux instrumented with sre_http_request_duration_seconds
// {handler, method, code}: handler is the path of the ServeMux pattern the
// request matched ("/api/v1/incidents/{id}/ack"), never the raw path, so the
// number of series is bounded by the routes. Serve this, not a.Mux.
func (a *App) Handler() http.Handler { return a.handler }

// instrument builds Handler once New has mounted every route (New
// registers the histogram).
func (a *App) instrument() http.Handler {
	instrumented := promhttp.InstrumentHandlerDuration(a.metrics.httpDuration, a.secure(refuseUnreadableQuery(a.Mux, refuseBadText(apiUnmatched(a.Mux)))),
		promhttp.WithLabelFromCtx("handler", func(ctx context.Context) string {
			h, _ := ctx.Value(handlerKey{}).(string)
			return h
		}))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), handlerKey{}, routeOf(a.Mux, r))
		instrumented.ServeHTTP(w, r.WithContext(ctx))
	})
	return a.refusals.wrap(h, func(r *http.Request) string { return patternOf(a.Mux, r) })
}

// patternOf returns the mux pattern r matches, its method included ("GET
// /api/v1/audit", as the audit log records routes), or unmatchedHandler.
func patternOf(mux *http.ServeMux, r *http.Request) string {
	if r.Method == http.MethodConnect {
		// The mux reports the raw path of a CONNECT redirect as its
		// pattern; sred serves no CONNECT route.
		return unmatchedHandler
	}
	_, pattern := mux.Handler(r)
	if pattern == "" {
		return unmatchedHandler
	}
	return pattern
}

// routeOf returns the path of the mux pattern r matches (its method, if
// any, is in the method label), or unmatchedHandler.
func routeOf(mux *http.ServeMux, r *http.Request) string {
	pattern := patternOf(mux, r)
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = pattern[i+1:]
	}
	return pattern
}

// apiUnmatched answers a request under /api/ that no route takes with the
// API's error envelope, as every other answer of the API: 404 not_found
// for a path no route serves, 405 bad_data (with the mux's Allow header)
// for a method its routes do not take. The mux answers both in plain text
// ("404 page not found"), which an API client cannot read as an envelope.
// Whatever else the mux does with such a request (a redirect to the
// cleaned path) is left to it.
func apiUnmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") || patternOf(mux, r) != unmatchedHandler {
			mux.ServeHTTP(w, r)
			return
		}
		h, _ := mux.Handler(r)
		rec := &unmatchedAnswer{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			web.Error(w, http.StatusNotFound, "not_found", fmt.Errorf("no API route %s", limits.Quote(r.URL.Path)))
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			web.Error(w, http.StatusMethodNotAllowed, "bad_data", fmt.Errorf("method %s not allowed on %s (allowed: %s)", limits.Quote(r.Method), limits.Quote(r.URL.Path), allow))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// unmatchedAnswer keeps the status and headers of the mux's own answer to
// a request no route takes, and drops its plain-text body.
type unmatchedAnswer struct {
	header http.Header
	code   int
}

func (u *unmatchedAnswer) Header() http.Header { return u.header }
func (u *unmatchedAnswer) WriteHeader(code int) {
	if u.code == 0 {
		u.code = code
	}
}
func (u *unmatchedAnswer) Write(b []byte) (int, error) {
	u.WriteHeader(http.StatusOK)
	return len(b), nil
}

// refuseUnreadableQuery answers 400 to a request whose query string
// web.ReadQuery refuses (a bad % escape, a ';' separator), naming the
// query and what is wrong, before any handler sees it: r.URL.Query() drops
// such a pair, and the route answered as if the parameter were not given
// (a list widened to everything, a parameter "required" although the URL
// gave it). Under /api/ the answer is the API's error envelope; a console
// page's (web.QueryRefuser) is its error page; elsewhere plain text, as
// refuseBadText answers.
func refuseUnreadableQuery(mux *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := web.ReadQuery(r)
		switch {
		case err == nil:
			h.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			web.Error(w, http.StatusBadRequest, "bad_data", err)
		default:
			if page, _ := mux.Handler(r); page != nil {
				if qr, ok := page.(web.QueryRefuser); ok {
					qr.RefuseQuery(w, r, err)
					return
				}
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
}

// refuseBadText answers 400 to a request whose path, query or form holds
// text the store cannot keep (limits.Request: NUL bytes, invalid UTF-8),
// naming the parameter, before any handler sees it.
//
// A URL-encoded form body is read here, on every route outside /api/,
// public ones included: it is read to at most web.MaxBody bytes, as every
// other body but the webhook's, and a larger one is a 413 (net/http's own
// bound, 10 MB, let a few clients hold gigabytes). The API's handlers read
// JSON only, each within its own bound, so under /api/ a body is left to
// them whatever its Content-Type: `curl -d @delivery.json` labels JSON as
// a form, and reading it here left the handler an empty body ("unexpected
// end of JSON input") or refused JSON holding a '%' as a bad form.
func refuseBadText(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/")
		check := limits.Request
		if api {
			check = limits.Target
		} else if r.Body != nil && limits.IsForm(r) {
			r.Body = http.MaxBytesReader(w, r.Body, web.MaxBody)
		}
		if err := check(r); err != nil {
			code := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				code = http.StatusRequestEntityTooLarge
				err = fmt.Errorf("form: request body larger than %d bytes", mbe.Limit)
			}
			// The API's error envelope under /api/, plain text elsewhere
			// (the console's forms, /ack/, /-/), as the authentication
			// middleware answers.
			if !api {
				http.Error(w, err.Error(), code)
				return
			}
			web.Error(w, code, "bad_data", err)
			return
		}
		h.ServeHTTP(w, r)
	})
}
