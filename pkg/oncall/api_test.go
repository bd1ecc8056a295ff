package oncall

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretestutil "github.com/rootuip/sre/pkg/testutil"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

func TestAPI(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		cfg := loadGood(t)
		dir := NewDirectory(db, cfg)
		now := mustTime(t, "2026-03-28T10:00:00Z")
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(now), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, out := call(t, srv, "GET", "/api/v1/oncall?service=api", "")
		require.Equal(t, 200, code)
		data := out["data"].([]any)
		require.Len(t, data, 2)
		require.Equal(t, "bob", data[0].(map[string]any)["user"])
		require.Equal(t, "primary", data[0].(map[string]any)["role"])
		require.Equal(t, "dave", data[1].(map[string]any)["user"])

		// A swap stored at runtime: carol covers bob from 10:00 to 14:00.
		code, out = call(t, srv, "PUT", "/api/v1/oncall/schedules/api-primary/overrides",
			`{"overrides":[{"user":"carol","start":"2026-03-28T10:00:00Z","end":"2026-03-28T14:00:00Z","reason":"swap"}],"by":"bob"}`)
		require.Equal(t, 200, code, out)
		code, out = call(t, srv, "GET", "/api/v1/oncall?schedule=api-primary&at=2026-03-28T11:00:00Z", "")
		require.Equal(t, 200, code)
		require.Equal(t, "carol", out["data"].([]any)[0].(map[string]any)["user"])

		// The guide's shape: primary and backup become overrides.
		code, out = call(t, srv, "PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"timezone":"UTC","shifts":[
			{"start":"2026-03-28T12:00:00Z","end":"2026-03-28T17:00:00Z","primary":"alice","backup":"bob"}]}}`)
		require.Equal(t, 200, code, out)
		ents, err := dir.Who(t.Context(), "api", "", mustTime(t, "2026-03-28T13:00:00Z"), 0)
		require.NoError(t, err)
		require.Equal(t, "alice", ents[0].User)
		require.Equal(t, "bob", ents[1].User)
		// The guide's shift replaced the overlapping swap.
		u, err := dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, "2026-03-28T11:00:00Z"))
		require.NoError(t, err)
		require.Equal(t, "bob", u)

		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/api-primary/overrides?from=2026-03-28T00:00:00Z&days=1", "")
		require.Equal(t, 200, code)
		ovs := out["data"].([]any)
		require.Len(t, ovs, 1)
		id := ovs[0].(map[string]any)["id"].(float64)
		code, _ = call(t, srv, "DELETE", "/api/v1/oncall/schedules/api-primary/overrides/"+jsonNum(id), "")
		require.Equal(t, 200, code)
		code, out = call(t, srv, "DELETE", "/api/v1/oncall/schedules/api-primary/overrides/"+jsonNum(id), "")
		require.Equal(t, 404, code)

		code, out = call(t, srv, "GET", "/api/v1/oncall/schedules/business-hours/gaps?from=2026-03-06T00:00:00Z&days=1", "")
		require.Equal(t, 200, code)
		require.Len(t, out["data"].([]any), 2)

		// Bad input is refused with a clear message and changes nothing.
		for _, tc := range []struct{ method, path, body, err string }{
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[{"user":"mallory","start":"2026-03-28T10:00:00Z","end":"2026-03-28T11:00:00Z"}]}`, `override 0: override: unknown user "mallory"`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[], "extra": 1}`, `invalid JSON body: json: unknown field "extra"`},
			{"PUT", "/api/v1/oncall/schedules/api-primary/overrides", `{"overrides":[]}`, `from and to are required when no overrides are given`},
			{"PUT", "/api/v1/oncall/schedules/nope/overrides", `{"overrides":[]}`, `unknown schedule "nope"`},
			{"GET", "/api/v1/oncall?at=yesterday", ``, `invalid at "yesterday": want RFC 3339 or a unix timestamp`},
			{"GET", "/api/v1/oncall?service=web", ``, `unknown service "web"`},
			{"PUT", "/api/oncall/schedule", `{"service":"api","schedule":{"shifts":[{"start":"2026-03-28T12:00:00Z","end":"2026-03-28T11:00:00Z","primary":"alice"}]}}`, `shift 0 primary: override for "alice": end 2026-03-28T11:00:00Z is not after start 2026-03-28T12:00:00Z`},
		} {
			code, out := call(t, srv, tc.method, tc.path, tc.body)
			require.GreaterOrEqual(t, code, 400, tc.path)
			require.Equal(t, tc.err, out["error"])
		}
		u, err = dir.OnCall(t.Context(), nil, "api-primary", mustTime(t, "2026-03-28T13:00:00Z"))
		require.NoError(t, err)
		require.Equal(t, "bob", u, "refused requests changed nothing")

		// api-primary starts after the 14-day horizon; business-hours covers 10 weekdays x 8h of 336h.
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(dir, fixedClock(mustTime(t, "2026-03-06T00:00:00Z"))))
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sre_oncall_coverage_gap_seconds Seconds without anybody on call within the gap horizon (oncall.gap_horizon) from now, per schedule.
# TYPE sre_oncall_coverage_gap_seconds gauge
sre_oncall_coverage_gap_seconds{schedule="api-backup"} 0
sre_oncall_coverage_gap_seconds{schedule="api-primary"} 1.2096e+06
sre_oncall_coverage_gap_seconds{schedule="business-hours"} 921600
`), "sre_oncall_coverage_gap_seconds"))
	})
}

func jsonNum(f float64) string { return strconv.FormatInt(int64(f), 10) }
