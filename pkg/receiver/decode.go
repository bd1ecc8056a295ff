package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/jsonerr"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/secretfile"
	"github.com/rootuip/sre/pkg/web"
)

// RequestError is a webhook delivery refused by DecodeRequest: the HTTP status
// code and error type to answer with (see web.Error).
type RequestError struct {
	Code int
	Type string
	Err  error
	// Cause, when set, is what sred's log needs and the client must not
	// see (the path of a token file that cannot be read).
	Cause error
}

func (e *RequestError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// ErrTokenUnavailable answers a delivery when the webhook's bearer token
// file cannot be read or is empty: 503, which Alertmanager retries, and
// never a delivery let through unchecked.
var ErrTokenUnavailable = errors.New("the webhook's bearer token cannot be read (webhook.bearer_token_file; see sred's log)")

// DecodeRequest checks and decodes an Alertmanager webhook delivery: the
// bearer token (when token is set; read at each delivery, so a rotated
// token file is in force without a reload; compared by digest in constant
// time, secretfile.Equal, which reveals not even its length; a missing or
// wrong one sets WWW-Authenticate on w), the body size
// (maxBodyBytes, limits.DefaultWebhookBodyBytes when <= 0), the JSON and
// the payload (Message.Validate). It is shared by every endpoint that
// accepts Alertmanager webhook deliveries, so that they refuse bad input
// alike.
func DecodeRequest(w http.ResponseWriter, r *http.Request, token secretfile.Source, maxBodyBytes int64) (*Message, *RequestError) {
	if !token.IsZero() {
		want, err := token.Get()
		if err != nil {
			return nil, &RequestError{Code: http.StatusServiceUnavailable, Type: "unavailable", Err: ErrTokenUnavailable,
				Cause: fmt.Errorf("webhook.bearer_token_file: %w", err)}
		}
		got, ok := auth.BearerToken(r.Header)
		if !ok || !secretfile.Equal(got, want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sred webhook"`)
			return nil, &RequestError{Code: http.StatusUnauthorized, Type: "unauthorized", Err: errors.New("missing or wrong bearer token")}
		}
	}
	if maxBodyBytes <= 0 {
		maxBodyBytes = limits.DefaultWebhookBodyBytes
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	// One allocation at most when the length is announced (io.ReadAll
	// grows its buffer step by step from 512 bytes).
	if n := r.ContentLength; n > 0 && n <= maxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &RequestError{Code: http.StatusRequestEntityTooLarge, Type: "bad_data", Err: fmt.Errorf("request body larger than %d bytes (webhook.max_body_bytes)", mbe.Limit)}
		}
		return nil, &RequestError{Code: http.StatusBadRequest, Type: "bad_data", Err: fmt.Errorf("read body: %w", err)}
	}
	// encoding/json would read invalid UTF-8 as U+FFFD and store that.
	if err := limits.UTF8("body", body); err != nil {
		return nil, &RequestError{Code: http.StatusBadRequest, Type: "bad_data", Err: fmt.Errorf("invalid JSON body: %w", err)}
	}
	msg := new(Message)
	if !decodeFast(body, msg) {
		// What the fast decoder does not take, and every error, is
		// encoding/json's to decode and to word. It takes no key given
		// twice and no field name in another case ("Alerts"): those
		// bodies come here, where they are refused as the other
		// endpoints refuse them (web.UnmarshalLenient), never read as
		// encoding/json would (the last key winning, "Alerts" read as
		// "alerts"). Deliveries in Alertmanager's shape never come here:
		// the fast decoder's one walk is all they cost.
		if err := json.Unmarshal(body, msg); err != nil {
			return nil, &RequestError{Code: http.StatusBadRequest, Type: "bad_data", Err: fmt.Errorf("invalid JSON body: %w", jsonerr.Rewrite(err, body, msg))}
		}
		if err := web.CheckKeys(body, msg); err != nil {
			return nil, &RequestError{Code: http.StatusBadRequest, Type: "bad_data", Err: fmt.Errorf("invalid JSON body: %w", err)}
		}
	}
	if err := msg.Validate(); err != nil {
		return nil, &RequestError{Code: http.StatusBadRequest, Type: "bad_data", Err: fmt.Errorf("invalid webhook payload: %w", err)}
	}
	return msg, nil
}

// bodyPool holds the buffers webhook bodies are read into: the decoded
// Message copies what it keeps, so a buffer serves the next delivery.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the buffers kept for reuse: a rare large delivery
// does not keep its memory.
const maxPooledBody = 256 << 10

func putBody(b *bytes.Buffer) {
	if b.Cap() > maxPooledBody {
		return
	}
	b.Reset()
	bodyPool.Put(b)
}
