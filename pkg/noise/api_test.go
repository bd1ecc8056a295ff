package noise_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestAPIPeriod: since and until are both durations back from now (or RFC
// 3339 times), as docs/noise.md and srectl's flags say: since=14d&until=7d
// is the week before last, not the 14 days before a week ago; until alone
// keeps the default since of 30 days back from now.
func TestAPIPeriod(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		mux := http.NewServeMux()
		(&noise.API{DB: db, Clock: clock.NewManual(now)}).Register(mux)
		for _, c := range []struct {
			query        string
			code         int
			since, until time.Time
		}{
			{"", http.StatusOK, now.AddDate(0, 0, -30), now},
			{"since=7d", http.StatusOK, now.AddDate(0, 0, -7), now},
			{"since=14d&until=7d", http.StatusOK, now.AddDate(0, 0, -14), now.AddDate(0, 0, -7)},
			{"until=7d", http.StatusOK, now.AddDate(0, 0, -30), now.AddDate(0, 0, -7)},
			{"since=2026-11-01T00:00:00Z&until=2026-11-08T00:00:00Z", http.StatusOK,
				time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)},
			{"since=7d&until=14d", http.StatusBadRequest, time.Time{}, time.Time{}},
		} {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/reports/noise?"+c.query, nil))
			require.Equal(t, c.code, rec.Code, "%s: %s", c.query, rec.Body)
			if c.code != http.StatusOK {
				require.Contains(t, rec.Body.String(), "since: must be before until", c.query)
				continue
			}
			var env struct{ Data noise.Report }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), c.query)
			require.True(t, c.since.Equal(env.Data.Since), "%s: since %s, want %s", c.query, env.Data.Since, c.since)
			require.True(t, c.until.Equal(env.Data.Until), "%s: until %s, want %s", c.query, env.Data.Until, c.until)
		}
	})
}

// The since and until of the noise report are durations back from now or
// RFC 3339 times from 1970-01-02 to 9999, as the other time parameters of
// the API: since=0001-01-01T00:00:00Z or since=100y were read as times
// before 1970. Refused with a 400 naming the value.
func TestAPIPeriodBounds(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		mux := http.NewServeMux()
		(&noise.API{DB: db, Clock: clock.NewManual(now)}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		const want = ": want an RFC 3339 time or Unix seconds from 1970-01-02T00:00:00Z to 9999-12-31T23:59:59Z"
		for _, tc := range []struct {
			query string
			code  int
			err   string
		}{
			{"since=0001-01-01T00:00:00Z", 400, `since: "0001-01-01T00:00:00Z" is before 1970-01-02T00:00:00Z` + want},
			{"since=1969-12-31T23:59:59Z", 400, `since: "1969-12-31T23:59:59Z" is before 1970-01-02T00:00:00Z` + want},
			{"since=100y", 400, `since: "100y" before now is 1926-12-25T12:00:00Z, before 1970-01-02T00:00:00Z: want a shorter duration`},
			{"until=9999-12-31T23:59:59-01:00", 400, `until: "9999-12-31T23:59:59-01:00" is after 9999-12-31T23:59:59Z` + want},
			{"since=0", 400, `since: must be before until`},
			{"since=1d&since=2d", 400, `parameter "since" given 2 times: give it once`},
			{"since=1970-01-02T00:00:00Z", 200, ""},
			{"since=50y", 200, ""},
		} {
			resp, err := http.Get(srv.URL + "/api/v1/reports/noise?" + tc.query)
			require.NoError(t, err)
			var env struct{ Error string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode, "%s: %s", tc.query, env.Error)
			require.Equal(t, tc.err, env.Error, tc.query)
		}
	})
}
