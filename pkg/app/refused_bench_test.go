package app

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/testutil"
)

// BenchmarkRefusalsWrap measures what the refusal counter adds to every
// request: its response wrapper, for an answer that is not a refusal.
func BenchmarkRefusalsWrap(b *testing.B) {
	f := newRefusals(prometheus.NewRegistry(), clock.NewManual(time.Unix(0, 0)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	body := []byte("ok\n")
	h := f.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), func(*http.Request) string { return "GET /" })
	w := testutil.DiscardWriter{H: http.Header{}}
	r, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
