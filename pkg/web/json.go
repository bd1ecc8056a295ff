// Package web holds the HTTP API of sred: shared JSON helpers, the router and
// the handlers of the core (incidents). Subsystems register their own routes
// on the same mux.
package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/rootuip/sre/pkg/envelope"
	"github.com/rootuip/sre/pkg/jsonerr"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
)

// Response is the envelope of every JSON answer, in the style of the Prometheus
// HTTP API: {"status":"success","data":...} or {"status":"error","error":"..."}.
type Response = envelope.Response

// JSON writes data with the given status code in the success envelope.
func JSON(w http.ResponseWriter, code int, data any) { envelope.JSON(w, code, data) }

// Error writes an error envelope. errorType is a short machine-readable word
// such as "bad_data", "not_found", "conflict", "unavailable". A 400 for a
// body ReadBody or DecodeJSON refused as too large is a 413, whichever
// handler answers it.
//
// A 5xx whose cause is the database's own error (store.Failed: it can name
// the database's host, its file's path or SQL) is answered with ErrStore's
// fixed text, whoever asks; the error is logged (storeFailed).
func Error(w http.ResponseWriter, code int, errorType string, err error) {
	msg := "unknown error"
	if code >= http.StatusInternalServerError && store.Failed(err) {
		storeFailed(w, err)
		err = ErrStore
	}
	if err != nil {
		msg = err.Error()
		var be *BodyError
		if code == http.StatusBadRequest && errors.As(err, &be) {
			code = be.Code
		}
	}
	envelope.Error(w, code, errorType, msg)
}

// ErrStore is the text of an answer whose cause is the database's error.
var ErrStore = errors.New("the store failed; try again later (the error is in sred's log)")

// ErrorLogger is implemented by a ResponseWriter (sred's, around every
// request) that logs the errors an answer does not show, with the
// request's route.
type ErrorLogger interface {
	LogError(msg string, err error)
}

// storeFailed logs err through the first ErrorLogger among w and the
// writers it wraps (Unwrap), or the default logger when there is none.
func storeFailed(w http.ResponseWriter, err error) {
	const msg = "API answer: the store failed"
	for w != nil {
		if l, ok := w.(ErrorLogger); ok {
			l.LogError(msg, err)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	slog.Error(msg, "err", err)
}

// MaxBody bounds every request body sred reads, but the Alertmanager
// webhook's (webhook.max_body_bytes, limits.DefaultWebhookBodyBytes by
// default): JSON requests, forms, and the experiment and analysis spec files
// (chaos.Parse, analysis.Parse), posted or loaded.
const MaxBody = 1 << 20

// BodyError is a request body ReadBody refused; Code is the status to
// answer, which Error gives it (413 for a body over the limit).
type BodyError struct {
	Code int
	Err  error
}

func (e *BodyError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *BodyError) Unwrap() error { return e.Err }

// ReadBody reads a whole request body of at most MaxBody bytes; a larger one
// is an error that says the limit. A body that is not valid UTF-8 is refused
// too, naming the offset: JSON and YAML decoders would store U+FFFD in
// place of the bad bytes.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &BodyError{Code: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("request body larger than %d bytes", mbe.Limit)}
	}
	if err != nil {
		return nil, &BodyError{Code: http.StatusBadRequest, Err: err}
	}
	if err := limits.UTF8("request body", b); err != nil {
		return nil, &BodyError{Code: http.StatusBadRequest, Err: err}
	}
	return b, nil
}

// DecodeJSON reads a JSON body strictly (unknown fields are errors) of at
// most MaxBody bytes, and refuses what the store cannot keep (invalid
// UTF-8; limits.Check: times outside the years 1 to 9999, NUL bytes),
// naming the field.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := ReadBody(w, r)
	if err != nil {
		return err
	}
	if err := UnmarshalStrict(b, v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return limits.Check(v)
}

// UnmarshalStrict decodes b, one JSON value, into v as the API reads a
// body: null where v wants an object (a struct or a map) is an error
// (encoding/json would leave v as it is, an empty object), unknown fields
// are errors, a value of the wrong type is named by
// its path (jsonerr), anything but white space after the value (another
// value, or a stray "}" or "]", which json.Decoder.More does not count at
// the top level) is an error, and so is a key given twice in one object
// (encoding/json keeps the last one, or merges both into a map, where a
// proxy or another reader in front of sred may have read the first), and
// so is a key that names a field only without regard to case ("Labels"
// for "labels", which encoding/json accepts): field names are
// case-sensitive, as the documentation and every other reader of the
// body take them.
func UnmarshalStrict(b []byte, v any) error { return unmarshal(b, v, true) }

// UnmarshalLenient decodes b as UnmarshalStrict does, except that keys
// naming no field are ignored: it reads the payloads other tools post
// (Flagger's webhooks, Argo Rollouts and Flux notifications), which gain
// fields from one version to the next. A key given twice, a key naming a
// field only without regard to case, a value of the wrong type (named by
// its path, never by a Go type) and trailing data are errors all the same.
func UnmarshalLenient(b []byte, v any) error { return unmarshal(b, v, false) }

// emptyBody is the error of a body with no JSON value: it is io.EOF, as
// the decoder's was, with a message saying what is wanted.
type emptyBody string

func (e emptyBody) Error() string { return string(e) }
func (e emptyBody) Unwrap() error { return io.EOF }

func unmarshal(b []byte, v any, strict bool) error {
	if wantsObject(v) && bytes.Equal(bytes.Trim(b, " \t\r\n"), []byte("null")) {
		// encoding/json leaves the value as it is: the body would read
		// as {} (an escalation simulated with no labels, say).
		return errors.New("want a JSON object, got null")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			// Still io.EOF to the routes that say what body they want.
			if wantsObject(v) {
				return emptyBody("empty body: want a JSON object")
			}
			return emptyBody("empty body: want a JSON value")
		}
		return jsonerr.Rewrite(err, b, v)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return CheckKeys(b, v)
}

// CheckKeys returns the error UnmarshalStrict and UnmarshalLenient give
// for b, one JSON value v was decoded from without error, whose keys are
// ambiguous (jsonerr.CheckKeys). A decoder of its own (the Alertmanager
// webhook's, which walks a delivery in Alertmanager's shape once and
// leaves every other body to encoding/json) calls it for the bodies
// encoding/json decodes.
func CheckKeys(b []byte, v any) error { return jsonerr.CheckKeys(b, v) }

// wantsObject tells whether v points to a value a JSON object is decoded
// into (a struct or a map) that does not read its own JSON.
func wantsObject(v any) bool {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) {
			return false
		}
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return false
	}
	return t.Kind() == reflect.Struct || t.Kind() == reflect.Map
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// PageCSP is the Content-Security-Policy of sred's own HTML pages (the
// console, the acknowledge page): scripts, styles and images from sred
// only, no framing, forms posting only to sred.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// DocumentCSP is the Content-Security-Policy of the HTML documents sred
// renders for reading or saving (the SLA report): no scripts, images,
// fonts or connections, no forms, no framing; only the document's own
// inline style.
const DocumentCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// PageHeaders sets the headers of an HTML page of sred that is not public
// (the console, the acknowledge page): its type, PageCSP with
// X-Frame-Options and nosniff (HTMLSecurityHeaders),
// Referrer-Policy same-origin, and Cache-Control: no-store, since the page
// shows what one principal may see (or carries a token) and must not be
// kept by a shared cache or the browser's history. The public status page
// sets its own (it is meant to be cached).
func PageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	HTMLSecurityHeaders(h, PageCSP)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// HTMLSecurityHeaders sets the headers every HTML answer of sred carries:
// csp, its Content-Security-Policy (each of sred's policies has
// frame-ancestors 'none'); X-Frame-Options: DENY, which says the same to
// the browsers and scanners that read only it; and nosniff. Every HTML
// answer sets them here, so the two framing headers cannot disagree.
func HTMLSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}
