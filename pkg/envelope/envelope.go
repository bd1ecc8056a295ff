// Package envelope writes the JSON envelope of every answer of sred's HTTP
// API, in the style of the Prometheus HTTP API:
// {"status":"success","data":...} or
// {"status":"error","errorType":"...","error":"..."}. It imports nothing of
// sred, so that both the handlers (pkg/web and the subsystems' APIs) and the
// authentication middleware in front of them (pkg/auth) answer with the same
// bytes, and that both the middleware and sred's refusal counter keep the
// status code answered with one response wrapper (StatusWriter).
package envelope

import (
	"encoding/json"
	"net/http"
)

// Response is the envelope. Its fields are encoded in this order.
type Response struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

// JSON writes data with the given status code in the success envelope.
func JSON(w http.ResponseWriter, code int, data any) {
	write(w, code, Response{Status: "success", Data: data})
}

// Error writes the error envelope with the given status code. errorType is
// a short machine-readable word such as "bad_data", "not_found",
// "conflict", "unavailable", "unauthorized", "forbidden".
//
// The text is rewritten by the first Redactor among w and the writers it
// wraps, if any.
func Error(w http.ResponseWriter, code int, errorType, msg string) {
	write(w, code, Response{Status: "error", ErrorType: errorType, Error: redact(w, msg)})
}

// ErrorData writes the error envelope with data beside the error, as the
// Prometheus API does for a refusal whose details a client may read (a
// refused chaos run and its reasons).
func ErrorData(w http.ResponseWriter, code int, errorType, msg string, data any) {
	write(w, code, Response{Status: "error", ErrorType: errorType, Error: redact(w, msg), Data: data})
}

// Redactor is implemented by a ResponseWriter (the authentication
// middleware's, for a caller who is not an admin) that rewrites the text of
// an error answer before it is sent: the server's file paths cut to their
// base names.
type Redactor interface {
	RedactError(msg string) string
}

// redact returns msg as the first Redactor among w and the writers it
// wraps (Unwrap) rewrites it, or msg when there is none.
func redact(w http.ResponseWriter, msg string) string {
	for w != nil {
		if r, ok := w.(Redactor); ok {
			return r.RedactError(msg)
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return msg
		}
		w = u.Unwrap()
	}
	return msg
}

// write encodes r before it sends the status line: an answer that cannot
// be encoded (a time outside the years 0 to 9999, say) is a 500 naming why,
// not the status asked for with an empty body. API answers are what one
// principal may read: Cache-Control: no-store keeps them out of shared
// caches and the browser's; nosniff keeps a browser from reading them as
// anything but JSON. (The public status page's JSON, meant to be cached,
// is not written here.)
func write(w http.ResponseWriter, code int, r Response) {
	b, err := json.Marshal(r)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(Response{Status: "error", ErrorType: "internal", Error: "encode answer: " + err.Error()})
	} else if r.Status == "success" && code >= 400 {
		markDecision(w)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	Private(h)
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// Private sets the headers of an answer only its principal may read, for
// the answers not written through the envelope (an NDJSON export, a
// Markdown post-mortem or report, the event stream): Cache-Control:
// no-store keeps them out of shared caches and the browser's, nosniff keeps
// a browser to the Content-Type the handler set.
func Private(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// DecisionMarker is implemented by a ResponseWriter (StatusWriter, in
// which sred's refusal counter wraps every answer) that tells a refusal
// from a decision: a success envelope with
// a status of 400 or above (the Flagger pre-rollout hook's 403 when the
// deploy gate denies) is the answer asked for, not a refusal.
type DecisionMarker interface {
	MarkDecision()
}

// markDecision tells the first DecisionMarker among w and the writers it
// wraps (Unwrap, as http.ResponseController reads them); a StatusWriter
// passes it on to the ones it wraps.
func markDecision(w http.ResponseWriter) {
	for w != nil {
		if m, ok := w.(DecisionMarker); ok {
			m.MarkDecision()
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}
