package auth_test

import (
	"net/http"
	"testing"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/testutil"
)

// BenchmarkMiddlewareWrite measures the middleware on a state-changing
// request whose answer it reports to Options.OnWrite (its response
// wrapper keeps the status code).
func BenchmarkMiddlewareWrite(b *testing.B) {
	mux := http.NewServeMux()
	body := []byte("{}\n")
	mux.HandleFunc("POST /api/v1/incidents/{id}/ack", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	writes := 0
	h := auth.Middleware(auth.Options{
		NoAuth:  true,
		Route:   func(*http.Request) string { return "POST /api/v1/incidents/{id}/ack" },
		OnWrite: func(*http.Request, auth.Principal, string, int) { writes++ },
	}, mux)
	w := testutil.DiscardWriter{H: http.Header{}}
	r, err := http.NewRequest(http.MethodPost, "/api/v1/incidents/INC-1/ack", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if writes == 0 {
		b.Fatal("OnWrite was not called")
	}
}
