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
