package incident

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLabelsJSON: the fast encoder gives exactly encoding/json's bytes,
// hostile values included.
func TestLabelsJSON(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{},
		{"alertname": "HighLatency"},
		{"b": "2", "a": "1", "c": "3", "instance": "10.0.0.1:8080"},
		{"summary": `quote " backslash \ tab 	 newline
 end`},
		{"html": "<script>alert('x')</script> & more"},
		{"unicode": "café ☕ \u2028 \u2029", "ctl": "\x00\x01\x1f\x7f"},
		{"invalid": "\xff\xfe bytes"},
		{"": "empty key", "zz": ""},
	} {
		want, err := json.Marshal(nonNil(m))
		require.NoError(t, err)
		require.Equal(t, string(want), labelsJSON(m), "%q", m)
	}
}

func BenchmarkLabelsJSON(b *testing.B) {
	m := map[string]string{"alertname": "HighErrorRate", "service": "svc-1", "severity": "critical", "instance": "10.0.0.1:8080"}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			_ = labelsJSON(m)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_ = mustJSON(m)
		}
	})
}
