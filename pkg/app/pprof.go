package app

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/pprof"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/web"
)

// mountPprof serves Go's runtime profiles under /debug/pprof/ on sred's
// web listener, as Prometheus and Alertmanager do, so that sred can be
// profiled under load (`go tool pprof http://localhost:8095/debug/pprof/profile`).
// The routes are on the same mux as the API and behind the same
// authentication.
//
// The CPU profile and the execution trace run for their ?seconds= and are
// long-lived requests (Access.Stream in the access table): a reload of the
// users that removes their user or token, changes its secret or its role
// ends them, and they answer the error (revocable).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", documentHeaders(pprof.Index)) // heap, goroutine, mutex, block, allocs, ...
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", revocable(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", revocable(pprof.Trace))
}

// documentHeaders serves h, whose index is an HTML page with an inline
// style and links, under the Content-Security-Policy of sred's HTML
// documents (web.DocumentCSP: no script, no framing by another site),
// X-Frame-Options and nosniff, as every HTML page of sred.
func documentHeaders(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		web.HTMLSecurityHeaders(w.Header(), web.DocumentCSP)
		h(w, r)
	}
}

// heldLimit is how much of a profile revocable holds in memory before it
// answers: a CPU profile is a few hundred KiB, but an execution trace of a
// busy sred grows by megabytes a second. Past it, the held part is written
// and the rest streamed as pprof writes it.
var heldLimit = 32 << 20

// revocable serves h, a profile that runs until its ?seconds= are over or
// its request's context ends, into memory, and answers what it wrote only
// when its credentials still hold at the end. pprof's handlers stop early
// when the context ends but then answer what they have, 200: the profile
// of an admin demoted meanwhile would reach a user who may no longer read
// it. A request whose credentials a reload revoked (auth.ErrRevoked) is
// answered 403 with the cause instead ("credentials revoked: the role of
// dora changed from admin to viewer"), nothing of the profile. A profile
// larger than heldLimit is streamed once it passes it; revoked after that,
// its connection is cut (http.ErrAbortHandler): the client reads a broken
// response, never one that looks whole.
func revocable(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := &heldResponse{w: w, header: http.Header{}}
		h(b, r)
		if cause := context.Cause(r.Context()); errors.Is(cause, auth.ErrRevoked) {
			if b.streaming {
				panic(http.ErrAbortHandler)
			}
			web.Error(w, http.StatusForbidden, "forbidden", cause)
			return
		}
		if !b.streaming {
			_ = b.flush()
		}
	}
}

// heldResponse is a response held in memory until the handler returns or
// it passes heldLimit.
type heldResponse struct {
	w         http.ResponseWriter
	header    http.Header
	code      int
	body      bytes.Buffer
	streaming bool
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.code == 0 {
		h.code = http.StatusOK
	}
	if h.streaming {
		return h.w.Write(p)
	}
	if h.body.Len()+len(p) <= heldLimit {
		return h.body.Write(p)
	}
	if err := h.flush(); err != nil {
		return 0, err
	}
	h.streaming = true
	return h.w.Write(p)
}

// flush writes the held header and body to the client.
func (h *heldResponse) flush() error {
	for k, v := range h.header {
		h.w.Header()[k] = v
	}
	if h.code == 0 {
		h.code = http.StatusOK
	}
	h.w.WriteHeader(h.code)
	_, err := h.w.Write(h.body.Bytes())
	h.body.Reset()
	return err
}
