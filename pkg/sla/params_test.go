package sla_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/sla"
)

// TestReportParams: a misspelt parameter or one given twice is refused,
// naming it, before the customer is looked up. Before, ?perod=7d answered
// the customer's default period and ?month=2026-09&month=2026-10 the
// first month.
func TestReportParams(t *testing.T) {
	rep := sla.NewReporter(clock.NewManual(time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)))
	mux := http.NewServeMux()
	rep.Register(mux)
	for q, want := range map[string]string{
		"?perod=7d":                      `unknown parameter "perod" (want period, month, format)`,
		"?period=7d&Format=md":           `unknown parameter "Format" (want period, month, format)`,
		"?month=2026-09&month=2026-10":   `parameter "month" given 2 times: give it once`,
		"?format=md&format=html":         `parameter "format" given 2 times: give it once`,
		"?period=7d&period=30d&perod=1h": `unknown parameter "perod" (want period, month, format)`,
	} {
		code, body := doGet(t, mux, "/api/v1/sla/report/ACME-001"+q)
		require.Equal(t, http.StatusBadRequest, code, q)
		var env struct{ Status, ErrorType, Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &env), body)
		require.Equal(t, "error", env.Status, q)
		require.Equal(t, "bad_data", env.ErrorType, q)
		require.Equal(t, want, env.Error, q)
	}
}
