package envelope_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rootuip/sre/pkg/envelope"
)

// seen is what the two StatusWriters of a request kept: the outer one (as
// sred's refusal counter wraps every answer) and the inner one (as the
// authentication middleware wraps a write's).
type seen struct {
	outerCode, innerCode         int
	outerDecision, innerDecision bool
}

// wrapped serves handle behind two StatusWriters and sends what they kept
// on the returned channel once handle returns.
func wrapped(t *testing.T, handle func(w http.ResponseWriter)) (*httptest.Server, <-chan seen) {
	t.Helper()
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		outer := envelope.NewStatusWriter(w)
		inner := envelope.NewStatusWriter(outer)
		handle(inner)
		got <- seen{outer.Code(), inner.Code(), outer.Decision(), inner.Decision()}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// The code kept is the first final one written (200 without WriteHeader),
// informational 1xx headers passed on, and a success envelope of 400 or
// above marks every StatusWriter in the chain a decision.
func TestStatusWriterKeepsCode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handle   func(w http.ResponseWriter)
		code     int
		decision bool
	}{
		{"write without WriteHeader", func(w http.ResponseWriter) { _, _ = w.Write([]byte("ok")) }, 200, false},
		{"first code wins", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404, false},
		{"write before WriteHeader", func(w http.ResponseWriter) { _, _ = w.Write([]byte("ok")); w.WriteHeader(500) }, 200, false},
		{"early hints then final code", func(w http.ResponseWriter) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		}, 201, false},
		{"decision", func(w http.ResponseWriter) { envelope.JSON(w, 403, map[string]bool{"allowed": false}) }, 403, true},
		{"refusal", func(w http.ResponseWriter) { envelope.Error(w, 403, "forbidden", "wrong secret") }, 403, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := wrapped(t, tc.handle)
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("client got %d, want %d", resp.StatusCode, tc.code)
			}
			want := seen{tc.code, tc.code, tc.decision, tc.decision}
			if s := <-got; s != want {
				t.Fatalf("kept %+v, want %+v", s, want)
			}
		})
	}
}

// http.ResponseController reaches the connection through StatusWriters: a
// flush sends what was written while the handler still runs, and a
// handler can hijack the connection (as the WebSocket stream does).
func TestStatusWriterResponseController(t *testing.T) {
	release := make(chan struct{})
	srv, got := wrapped(t, func(w http.ResponseWriter) {
		_, _ = w.Write([]byte("first\n"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-release
	})
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	resp.Body.Close()
	if err != nil || line != "first\n" {
		t.Fatalf("read %q, %v before the handler returned; want the flushed line", line, err)
	}
	<-got

	srv, got = wrapped(t, func(w http.ResponseWriter) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = buf.Flush()
	})
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hijacked" {
		t.Fatalf("read %q, %v; want the hijacked connection's answer", body, err)
	}
	<-got
}
