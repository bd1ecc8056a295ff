package testutil

import "net/http"

// DiscardWriter is an http.ResponseWriter that keeps nothing but its
// header, so that a benchmark counts only the allocations of the handlers
// it calls. Make one with an http.Header and reuse it.
type DiscardWriter struct{ H http.Header }

func (d DiscardWriter) Header() http.Header       { return d.H }
func (DiscardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (DiscardWriter) WriteHeader(int)             {}
