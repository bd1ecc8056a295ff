package envelope_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/envelope"
)

// The bytes every API client reads: the field order, the trailing newline,
// HTML characters escaped, empty fields left out; and the headers.
func TestEnvelopeBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		code  int
		body  string
	}{
		{"success", func(w http.ResponseWriter) { envelope.JSON(w, 200, map[string]int{"b": 2, "a": 1}) }, 200,
			`{"status":"success","data":{"a":1,"b":2}}` + "\n"},
		{"success without data", func(w http.ResponseWriter) { envelope.JSON(w, 202, nil) }, 202,
			`{"status":"success"}` + "\n"},
		{"error", func(w http.ResponseWriter) {
			envelope.Error(w, 401, "unauthorized", "missing or wrong credentials (basic auth or Authorization: Bearer <token>)")
		}, 401, `{"status":"error","errorType":"unauthorized","error":"missing or wrong credentials (basic auth or Authorization: Bearer \u003ctoken\u003e)"}` + "\n"},
		{"data that cannot be encoded", func(w http.ResponseWriter) {
			envelope.JSON(w, 200, map[string]time.Time{"at": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
		}, 500, `{"status":"error","errorType":"internal","error":"encode answer: json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: year outside of range [0,9999]"}` + "\n"},
		{"error with quotes", func(w http.ResponseWriter) { envelope.Error(w, 415, "bad_data", `got "text/plain" & more`) }, 415,
			`{"status":"error","errorType":"bad_data","error":"got \"text/plain\" \u0026 more"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.write(rec)
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d", rec.Code, tc.code)
			}
			for name, want := range map[string]string{
				"Content-Type": "application/json",
				// What one principal may read: kept by no cache.
				"Cache-Control": "no-store",
				// Read as JSON only, never sniffed as HTML.
				"X-Content-Type-Options": "nosniff",
			} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("%s %q, want %q", name, got, want)
				}
			}
			if got := rec.Body.String(); got != tc.body {
				t.Errorf("body\n%s\nwant\n%s", got, tc.body)
			}
		})
	}
}
