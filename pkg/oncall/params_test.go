package oncall

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretestutil "github.com/rootuip/sre/pkg/testutil"
)

// The at, from and to of the on-call routes are RFC 3339 or Unix seconds
// from 1970-01-02 to 9999: at=0 or from=-1 parse as Unix seconds and were
// answered with the rotation of 1970. Refused with a 400 naming the value;
// so is a window past 9999 or longer than 366 days, naming its bounds.
func TestOnCallTimeParams(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		dir := NewDirectory(db, loadGood(t))
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(mustTime(t, "2026-03-28T10:00:00Z")), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		const want = ": want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z"
		for _, tc := range []struct {
			path string
			code int
			err  string
		}{
			{"/api/v1/oncall?at=0", 400, `at: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + want},
			{"/api/v1/oncall?at=-1", 400, `at: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z` + want},
			{"/api/v1/oncall?at=1e400", 400, `at: "1e400" is after 9999-12-31T23:59:59Z` + want},
			{"/api/v1/oncall?at=%2BInf", 400, `at: +Inf is not a finite number`},
			{"/api/v1/oncall?at=1774692000&at=1774695600", 400, `parameter "at" given 2 times: give it once`},
			{"/api/v1/oncall/schedules/api-primary/shifts?from=-1", 400, `from: "-1" (1969-12-31T23:59:59Z) is before 1970-01-02T00:00:00Z` + want},
			{"/api/v1/oncall/schedules/api-primary/gaps?to=0", 400, `to: "0" (1970-01-01T00:00:00Z) is before 1970-01-02T00:00:00Z` + want},
			{"/api/v1/oncall/schedules/api-primary/shifts?from=2026-03-01T00:00:00Z&to=2027-03-03T00:00:00Z", 400,
				`window from 2026-03-01T00:00:00Z to 2027-03-03T00:00:00Z is longer than 366 days`},
			{"/api/v1/oncall/schedules/api-primary/shifts?from=9999-12-30T00:00:00Z&days=7", 400,
				`window from 9999-12-30T00:00:00Z to 10000-01-06T00:00:00Z ends after 9999-12-31T23:59:59Z`},
			{"/api/v1/oncall?at=9999-12-31T00:00:00Z&days=7", 400,
				`window from 9999-12-31T00:00:00Z to 10000-01-07T00:00:00Z ends after 9999-12-31T23:59:59Z`},
			{"/api/v1/oncall?at=1774692000", 200, ""},
			{"/api/v1/oncall/schedules/api-primary/shifts?from=1774692000&days=1", 200, ""},
		} {
			code, out := call(t, srv, "GET", tc.path, "")
			require.Equal(t, tc.code, code, "%s: %v", tc.path, out["error"])
			if tc.err != "" {
				require.Equal(t, tc.err, out["error"], tc.path)
			}
		}
	})
}
