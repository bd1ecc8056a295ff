package budget_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/testutil"
)

// The time of GET /api/v1/slos and /api/v1/slos/{service}/{slo} is RFC
// 3339 or Unix seconds from 1970-01-02 to 9999: time=0 and time=-1 parse
// as Unix seconds but were answered with the budgets of 1970, where no
// series has a sample. Refused with a 400 naming the value, as is a time
// given twice (read as its first) or a misspelt parameter (read as now),
// before Prometheus is asked: a good time reaches it (down here: 503).
func TestBudgetTimeParams(t *testing.T) {
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	s := newService(t, down, nil, time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), budget.DefaultGateConfig, prometheus.NewRegistry(), nil)
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	const want = ": want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z"
	for _, path := range []string{"/api/v1/slos", "/api/v1/slos/web/availability"} {
		for _, tc := range []struct {
			query string
			code  int
			err   string
		}{
			{"time=0", 400, `time: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + want},
			{"time=-1", 400, `time: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z` + want},
			{"time=1969-07-20T20:17:00Z", 400, `time: "1969-07-20T20:17:00Z" is before 1970-01-02T00:00:00Z` + want},
			{"time=1e400", 400, `time: "1e400" is after 9999-12-31T23:59:59Z` + want},
			{"time=NaN", 400, `time: NaN is not a finite number`},
			{"time=%2BInf", 400, `time: +Inf is not a finite number`},
			{"time=yesterday", 400, `time: cannot parse "yesterday" as an RFC 3339 time or a Unix timestamp`},
			{"time=1764547200&time=1764633600", 400, `parameter "time" given 2 times: give it once`},
			{"tme=1764547200", 400, `unknown parameter "tme" (want time` + map[bool]string{true: `, service)`, false: `)`}[path == "/api/v1/slos"]},
			{"time=1764547200", 503, ""},
			{"time=", 503, ""},
		} {
			resp, err := http.Get(srv.URL + path + "?" + tc.query)
			require.NoError(t, err)
			var env envelope
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode, "%s?%s: %s", path, tc.query, env.Error)
			if tc.err != "" {
				require.Equal(t, "bad_data", env.ErrorType)
				require.Equal(t, tc.err, env.Error, "%s?%s", path, tc.query)
			}
		}
	}
}
