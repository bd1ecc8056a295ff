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
			hub := stream.NewHub(bus, stream.HubOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			go hub.Run(ctx) //nolint:errcheck
			mux := http.NewServeMux()
			hub.Register(mux)
			stream.New(bus, stream.Options{Heartbeat: time.Hour}).Register(mux)
			// ends gets the cancel function of every request.
			ends := make(chan context.CancelCauseFunc, 2)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, end := context.WithCancelCause(r.Context())
				ends <- end
				mux.ServeHTTP(w, r.WithContext(ctx))
			}))
			t.Cleanup(srv.Close)

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

			endWS(errors.New(c.cause))
			rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
			defer rcancel()
			_, _, err := ws.c.Read(rctx)
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, websocket.StatusPolicyViolation, ce.Code)
			require.Equal(t, c.reason, ce.Reason)
			require.True(t, utf8.ValidString(ce.Reason))
		})
	}
}
