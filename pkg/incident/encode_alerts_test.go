package incident

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEncodeAlerts: the alerts of a write carry their labels and
// annotations encoded as stored, in a copy (the caller's notification is
// left as it was), and the alerts' rows use those texts rather than
// encoding them again on the writer's goroutine.
func TestEncodeAlerts(t *testing.T) {
	in := []NotifiedAlert{
		{Status: "firing", Labels: map[string]string{"b": "2", "a": "<1>"}, Annotations: map[string]string{"summary": "x"}, Fingerprint: "f1"},
		{Status: "resolved", Fingerprint: "f2"},
	}
	out := encodeAlerts(in)
	require.Len(t, out, 2)
	for i := range in {
		require.Empty(t, in[i].labelsText, "the caller's alerts are left as they were")
		require.Equal(t, labelsJSON(in[i].Labels), out[i].labelsText)
		require.Equal(t, labelsJSON(in[i].Annotations), out[i].annotationsText)
		require.Equal(t, out[i].labelsText, out[i].labelsStored())
		require.Equal(t, out[i].annotationsText, out[i].annotationsStored())
	}
	require.Equal(t, `{"a":"\u003c1\u003e","b":"2"}`, out[0].labelsText)
	require.Equal(t, "{}", out[1].labelsText)

	// Not encoded (sred's own notifications through other paths): the
	// texts are made when asked.
	require.Equal(t, `{"summary":"x"}`, in[0].annotationsStored())

	// The row takes the texts the alert carries.
	a := out[0]
	a.labelsText, a.annotationsText = `{"encoded":"before"}`, `{"annotations":"before"}`
	row := appendAlertRows(nil, "g", []newAlert{{"INC-1", a}}, time.Unix(1, 0))
	require.Equal(t, `{"encoded":"before"}`, row[6])
	require.Equal(t, `{"annotations":"before"}`, row[7])
}
