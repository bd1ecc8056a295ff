package incident

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
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

// TestAlertsEntryRawData: the timeline data built by hand is what
// encoding/json gives for the data as a map.
func TestAlertsEntryRawData(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	as := []NotifiedAlert{
		{Status: "firing", Fingerprint: "a1", StartsAt: now.Add(-time.Minute), Labels: map[string]string{"alertname": "X"}},
		{Status: "resolved", Fingerprint: `b"<2>`, StartsAt: now.Add(-time.Hour), EndsAt: now, Labels: map[string]string{"alertname": "Y"}},
	}
	e := alertsEntry("INC-1", "alertmanager", "alert_fired", "fired", as, now)
	require.Equal(t, mustJSON(alertsData(as)), e.rawData)
	require.Nil(t, e.Data, "the entry is only stored: its data is not built as a map")
}

// alertsData is the data of alertsEntry's entry as a map, as reading the
// entry back gives it.
func alertsData(as []NotifiedAlert) map[string]any {
	list := make([]any, 0, len(as))
	for _, a := range as {
		d := map[string]any{"fingerprint": a.Fingerprint, "starts_at": a.StartsAt.UTC().Format(time.RFC3339Nano)}
		if !a.EndsAt.IsZero() && a.Status == "resolved" {
			d["ends_at"] = a.EndsAt.UTC().Format(time.RFC3339Nano)
		}
		list = append(list, d)
	}
	return map[string]any{"alerts": list}
}

// TestAnonymous: SQLite statement texts get ? parameters only when $1..$N
// appear once each, in order.
func TestAnonymous(t *testing.T) {
	s := &Service{db: &store.DB{Dialect: store.SQLite}}
	for q, want := range map[string]string{
		`SELECT 1`:                                `SELECT 1`,
		`INSERT INTO t VALUES ($1, $2, $3)`:       `INSERT INTO t VALUES (?, ?, ?)`,
		`UPDATE t SET a = $2 WHERE b = $1`:        `UPDATE t SET a = $2 WHERE b = $1`,
		`UPDATE t SET a = $1, b = $1`:             `UPDATE t SET a = $1, b = $1`,
		`INSERT INTO t VALUES ($1, $2), ($3, $4)`: `INSERT INTO t VALUES (?, ?), (?, ?)`,
		`SELECT $10`:                              `SELECT $10`,
	} {
		require.Equal(t, want, s.anonymous(q), q)
		require.Equal(t, want, s.anonymous(q), "cached: %s", q)
	}
	pg := &Service{db: &store.DB{Dialect: store.Postgres}}
	require.Equal(t, `INSERT INTO t VALUES ($1)`, pg.anonymous(`INSERT INTO t VALUES ($1)`))
}

// TestAlertsEntryAllocations: a 10-alert entry's data is built in one
// buffer sized beforehand, its times formatted in place.
func TestAlertsEntryAllocations(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	var as []NotifiedAlert
	for i := range 10 {
		as = append(as, NotifiedAlert{Status: "firing", Fingerprint: fmt.Sprintf("%016x", i), StartsAt: now.Add(-time.Duration(i) * time.Minute),
			Labels: map[string]string{"alertname": "HighErrorRate", "instance": fmt.Sprintf("10.0.0.%d:8080", i)}})
	}
	as[9].Status, as[9].EndsAt = "resolved", now
	e := alertsEntry("INC-1", "alertmanager", "alert_fired", "fired", as, now)
	require.Equal(t, mustJSON(alertsData(as)), e.rawData)
	require.Equal(t, `10 alerts fired: HighErrorRate{instance="10.0.0.0:8080"}, HighErrorRate{instance="10.0.0.1:8080"}, HighErrorRate{instance="10.0.0.2:8080"} and 7 more`, e.Message)
	allocs := testing.AllocsPerRun(50, func() { alertsEntry("INC-1", "alertmanager", "alert_fired", "fired", as, now) })
	// The data's one buffer, the names shown (3 descriptions and their
	// list), the message and the entry.
	require.LessOrEqual(t, allocs, 8.0)
}
