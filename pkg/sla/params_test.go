package sla_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/sla"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// The month of a report is from 1970-01 to the current month: 0001-01 was
// answered NO_DATA, as if the contract's SLA had no data for it. Refused
// with a 400 naming the month and the bounds before Prometheus is asked;
// a month within them reaches it (down here: 503).
func TestReportMonthBounds(t *testing.T) {
	var cfg sla.Config
	require.NoError(t, yaml.Unmarshal([]byte(configYAML), &cfg))
	specs, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	prom, err := budget.NewProm(fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)), commoncfg.DefaultHTTPClientConfig, 5*time.Second)
	require.NoError(t, err)
	srv := httptest.NewServer(reportMux(t, cfg, specs, prom, clock.NewManual(time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC))))
	defer srv.Close()
	for _, tc := range []struct {
		month string
		code  int
		err   string
	}{
		{"0001-01", 400, "invalid range: month 0001-01 is before 1970-01: want YYYY-MM from 1970-01 to 2026-11"},
		{"1969-12", 400, "invalid range: month 1969-12 is before 1970-01: want YYYY-MM from 1970-01 to 2026-11"},
		{"0000-01", 400, "invalid range: month 0000-01 is before 1970-01: want YYYY-MM from 1970-01 to 2026-11"},
		{"2026-12", 400, "invalid range: month 2026-12 has not started"},
		{"1970-01", 503, ""},
		{"2026-11", 503, ""},
	} {
		resp, err := http.Get(srv.URL + "/api/v1/sla/report/ACME-001?month=" + tc.month)
		require.NoError(t, err)
		var env struct{ Error string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		resp.Body.Close()
		require.Equal(t, tc.code, resp.StatusCode, "%s: %s", tc.month, env.Error)
		if tc.err != "" {
			require.Equal(t, tc.err, env.Error, tc.month)
		}
	}
}
