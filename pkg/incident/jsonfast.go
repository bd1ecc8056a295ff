package incident

import (
	"encoding/json"
	"slices"
	"strings"
)

// labelsJSON encodes a label or annotation set exactly as encoding/json
// does (keys sorted, the same escaping), without reflection: ingestion
// encodes two sets per alert, and the stored text is compared byte for byte
// (annotations) to recognise duplicate deliveries.
func labelsJSON(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	n := 2
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	var sb strings.Builder
	sb.Grow(n)
	sb.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		jsonString(&sb, k)
		sb.WriteByte(':')
		jsonString(&sb, m[k])
	}
	sb.WriteByte('}')
	return sb.String()
}

// jsonString writes s as a JSON string: printable ASCII other than the
// characters encoding/json escapes is copied; anything else goes through
// encoding/json so that the output is identical.
func jsonString(sb *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			sb.Write(b)
			return
		}
	}
	sb.WriteByte('"')
	sb.WriteString(s)
	sb.WriteByte('"')
}
