// Package web holds the HTTP API of sred: shared JSON helpers, the router and
// the handlers of the core (incidents). Subsystems register their own routes
// on the same mux.
package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/limits"
)

// Response is the envelope of every JSON answer, in the style of the Prometheus
// HTTP API: {"status":"success","data":...} or {"status":"error","error":"..."}.
type Response = envelope.Response

// JSON writes data with the given status code in the success envelope.
func JSON(w http.ResponseWriter, code int, data any) { envelope.JSON(w, code, data) }

// Error writes an error envelope. errorType is a short machine-readable word
// such as "bad_data", "not_found", "conflict", "unavailable".
func Error(w http.ResponseWriter, code int, errorType string, err error) {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	envelope.Error(w, code, errorType, msg)
}

// MaxBody bounds every request body sred reads, but the Alertmanager
// webhook's (webhook.max_body_bytes, limits.DefaultWebhookBodyBytes by
// default): JSON requests, forms, and the experiment and analysis spec files
// (chaos.Parse, analysis.Parse), posted or loaded.
const MaxBody = 1 << 20

// ReadBody reads a whole request body of at most MaxBody bytes; a larger one
// is an error that says the limit.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("request body larger than %d bytes", mbe.Limit)
	}
	return b, err
}

// DecodeJSON reads a JSON body strictly (unknown fields are errors) of at
// most MaxBody bytes, and refuses what the store cannot keep (limits.Check:
// times outside the years 1 to 9999, NUL bytes), naming the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body larger than %d bytes", mbe.Limit)
		}
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: trailing data after the JSON value")
	}
	return limits.Check(v)
}
