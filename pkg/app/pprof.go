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
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, mutex, block, allocs, ...
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", revocable(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", revocable(pprof.Trace))
}

// revocable serves h, a profile that runs until its ?seconds= are over or
// its request's context ends, into memory, and answers what it wrote only
// when its credentials still hold at the end. pprof's handlers stop early
// when the context ends but then answer what they have, 200: the profile
// of an admin demoted meanwhile would reach a user who may no longer read
// it. A request whose credentials a reload revoked (auth.ErrRevoked) is
// answered 403 with the cause instead ("credentials revoked: the role of
// dora changed from admin to viewer"), nothing of the profile.
func revocable(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b := &heldResponse{header: http.Header{}}
		h(b, r)
		if cause := context.Cause(r.Context()); errors.Is(cause, auth.ErrRevoked) {
			web.Error(w, http.StatusForbidden, "forbidden", cause)
			return
		}
		for k, v := range b.header {
			w.Header()[k] = v
		}
		if b.code == 0 {
			b.code = http.StatusOK
		}
		w.WriteHeader(b.code)
		_, _ = w.Write(b.body.Bytes())
	}
}

// heldResponse is a response held in memory until the handler returns.
type heldResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
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
	return h.body.Write(p)
}
