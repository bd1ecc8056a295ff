package receiver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/limits"
)

// TestDeliveryWorkAllocs bounds what a 10-alert delivery within the limits
// costs after decoding: Limit allocates nothing (it built each alert's field
// name and a map of cuts before), Validate one at most (it built a map), Notification one
// slice (it grew its slice five times).
func TestDeliveryWorkAllocs(t *testing.T) {
	var m Message
	require.True(t, decodeFast(benchPayload(5), &m))
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
	}), 1.0, "Validate (limits.Check's walker)")
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if cut, err := m.Limit(limits.DefaultWebhook); err != nil || cut != nil {
			t.Fatal(cut, err)
		}
	}), "Limit")
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = m.Notification() }), "Notification")
}

// TestLimitErrorsNameTheField: the field named in Limit's errors is still
// the offending one now that it is built only for an error.
func TestLimitErrorsNameTheField(t *testing.T) {
	lim := limits.DefaultWebhook
	lim.MaxLabelsPerAlert = 4
	var m Message
	require.True(t, decodeFast(benchPayload(5), &m))
	m.Alerts[3].Labels["extra"] = "x"
	_, err := m.Limit(lim)
	require.EqualError(t, err, "alerts[3].labels: 5 labels, more than webhook.limits.max_labels_per_alert (4)")

	require.True(t, decodeFast(benchPayload(5), &m))
	m.CommonLabels["x_"+strings.Repeat("x", 300)] = "x"
	_, err = m.Limit(limits.DefaultWebhook)
	require.ErrorContains(t, err, "commonLabels: label name ")

	require.True(t, decodeFast(benchPayload(5), &m))
	m.Alerts[0].Annotations["summary"] = strings.Repeat("y", lim.MaxAnnotationValueBytes+10)
	cut, err := m.Limit(lim)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"annotation_value": 1}, cut)
}
