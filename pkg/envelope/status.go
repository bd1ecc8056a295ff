package envelope

import "net/http"

// StatusWriter wraps a ResponseWriter and keeps the status code answered
// (200 when the handler writes without WriteHeader; informational 1xx
// headers, such as 103 Early Hints, are passed on and not kept), and
// whether the answer is a decision rather than a refusal (DecisionMarker).
// It passes Flush on and unwraps (Unwrap) for http.ResponseController, so
// a stream can still flush and a WebSocket still hijack the connection.
// The authentication middleware keeps the code for its audit hook, sred's
// refusal counter both.
type StatusWriter struct {
	http.ResponseWriter
	code     int
	wrote    bool
	decision bool
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	s := MakeStatusWriter(w)
	return &s
}

// MakeStatusWriter is NewStatusWriter as a value, for a writer that embeds
// it (one allocation for both).
func MakeStatusWriter(w http.ResponseWriter) StatusWriter {
	return StatusWriter{ResponseWriter: w, code: http.StatusOK}
}

// Code returns the status code answered: the first final (200 or above)
// code written, 200 when none was.
func (s *StatusWriter) Code() int { return s.code }

// Decision reports whether the answer was marked a decision
// (DecisionMarker).
func (s *StatusWriter) Decision() bool { return s.decision }

// MarkDecision implements DecisionMarker. It marks the writers s wraps
// too, so that each wrapper in the chain sees the answer as a decision.
func (s *StatusWriter) MarkDecision() {
	s.decision = true
	markDecision(s.ResponseWriter)
}

func (s *StatusWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writers s wraps (and the
// connection, which the WebSocket stream hijacks).
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
