package stream_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/stream"
)

// TestStreamsEndedByTheServer: a stream whose request context is canceled
// with a cause (the auth middleware revoking the client's credentials on
// reload) ends saying why: the SSE stream with a last ": closed: <cause>"
// comment, the WebSocket with a close frame 1008 and the cause as reason,
// cut to the 123 bytes a close frame holds.
func TestStreamsEndedByTheServer(t *testing.T) {
	long := "credentials revoked: x" + strings.Repeat("é", 100)
	for _, c := range []struct {
		name, cause, reason string
	}{
		{"short", "credentials revoked: vic no longer exists", "credentials revoked: vic no longer exists"},
		{"long", long, long[:122]}, // 22 bytes and 50 two-byte characters: the 51st does not fit
	} {
		t.Run(c.name, func(t *testing.T) {
			bus := events.NewBus(16, nil)
			reg := prometheus.NewRegistry()
			hub := stream.NewHub(bus, stream.HubOptions{Registerer: reg})
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			go hub.Run(ctx) //nolint:errcheck
			mux := http.NewServeMux()
			hub.Register(mux)
			stream.New(bus, stream.Options{Registerer: reg, Heartbeat: time.Hour}).Register(mux)
			srv, ends := endableServer(t, mux, 2)

			sse := connect(t, srv.URL+"/api/v1/events")
			require.Equal(t, "subscribed", sse.next(t).Comment)
			endSSE := <-ends
			ws := dial(t, srv.URL, `{}`)
			require.Equal(t, stream.TypeSubscribed, ws.next(t).Type)
			endWS := <-ends

			endSSE(errors.New(c.cause))
			var last message
			for m := range sse.msgs {
				last = m
			}
			require.Equal(t, message{Comment: "closed: " + c.cause}, last)
			require.Equal(t, 1.0, byReason(t, reg, "sre_stream_closed_clients_total", "sse", "revoked"))

			endWS(errors.New(c.cause))
			rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
			defer rcancel()
			_, _, err := ws.c.Read(rctx)
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
			require.Equal(t, c.reason, ce.Reason)
			require.True(t, utf8.ValidString(ce.Reason))
			require.Equal(t, 1.0, byReason(t, reg, "sre_stream_closed_clients_total", "websocket", "revoked"))
		})
	}
}

// revokingWriter records an SSE answer; its first write (the subscribed
// comment) revokes the request, then publishes an event, as a reload that
// changes the client's role and an event published once it answered.
type revokingWriter struct {
	hdr     http.Header
	body    strings.Builder
	revoked bool
	revoke  func()
}

func (w *revokingWriter) Header() http.Header { return w.hdr }
func (w *revokingWriter) WriteHeader(int)     {}
func (w *revokingWriter) Flush()              {}
func (w *revokingWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	if !w.revoked {
		w.revoked = true
		w.revoke()
	}
	return len(b), nil
}

// TestSSEWritesNothingPublishedAfterRevocation: an event that comes after
// the request was revoked is never written, however the stream's wait
// picks between the two: it would be written in the view of the role the
// stream was opened with. Each round has both ready at once.
func TestSSEWritesNothingPublishedAfterRevocation(t *testing.T) {
	bus := events.NewBus(16, nil)
	h := stream.New(bus, stream.Options{Heartbeat: time.Hour})
	for range 64 {
		ctx, end := context.WithCancelCause(context.Background())
		w := &revokingWriter{hdr: http.Header{}, revoke: func() {
			end(errors.New("credentials revoked: the role of dora changed from admin to viewer"))
			bus.Publish(events.Event{Type: "runbook.step_failed", Data: map[string]any{"error": "open /etc/sred/db-password: denied"}})
		}}
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/events", nil)
		h.ServeHTTP(w, r)
		require.Equal(t, ": subscribed\n\n: closed: credentials revoked: the role of dora changed from admin to viewer\n\n", w.body.String())
	}
}

// TestWSWritesNothingPublishedAfterRevocation: an event appended after the
// request was revoked is not written to the WebSocket, whichever of the
// client's goroutine (closing) and a writer's pass takes the client first.
func TestWSWritesNothingPublishedAfterRevocation(t *testing.T) {
	bus := events.NewBus(16, nil)
	hub := stream.NewHub(bus, stream.HubOptions{})
	mux := http.NewServeMux()
	hub.Register(mux)
	srv, ends := endableServer(t, mux, 1)
	const cause = "credentials revoked: the role of dora changed from admin to viewer"
	for range 32 {
		ws := dial(t, srv.URL, `{}`)
		require.Equal(t, stream.TypeSubscribed, ws.next(t).Type)
		end := <-ends
		end(errors.New(cause))
		hub.Ingest(events.Event{Type: "runbook.step_failed", Time: time.Now(), Data: map[string]any{"error": "open /etc/sred/db-password: denied"}})
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		_, b, err := ws.c.Read(rctx)
		rcancel()
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce, "read %s", b)
		require.Equal(t, cause, ce.Reason)
	}
}

// TestWSRevokedBeforeSubscribeCounted: a client whose request the server
// ends (credentials revoked) before it sent its subscribe message is
// closed and counted as revoked, as a subscribed one is.
func TestWSRevokedBeforeSubscribeCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	hub := stream.NewHub(nil, stream.HubOptions{Registerer: reg})
	mux := http.NewServeMux()
	hub.Register(mux)
	srv, ends := endableServer(t, mux, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http://", "ws://", 1)+"/api/v1/stream", nil)
	require.NoError(t, err)
	t.Cleanup(func() { quiet.CloseNow() })
	(<-ends)(errors.New("credentials revoked: vic no longer exists"))
	_, _, err = quiet.Read(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the connection was not closed")
	require.Eventually(t, func() bool { return hub.Clients() == 0 }, time.Minute, time.Millisecond)
	require.Equal(t, 1.0, byReason(t, reg, "sre_stream_closed_clients_total", "websocket", "revoked"))
}

// endableServer serves mux over a real listener, each request with a
// context the test can end: ends gets the cancel function of every
// request (n of them buffered), as sred ends a stream whose credentials
// are revoked.
func endableServer(t *testing.T, mux http.Handler, n int) (*httptest.Server, <-chan context.CancelCauseFunc) {
	t.Helper()
	ends := make(chan context.CancelCauseFunc, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, end := context.WithCancelCause(r.Context())
		ends <- end
		mux.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv, ends
}
