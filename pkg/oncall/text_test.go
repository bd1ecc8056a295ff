package oncall

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	sretestutil "github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWhoText: srectl oncall's text of the shifts of service api over the
// night Europe/Berlin moves to summer time, read from the API (JSON, as
// srectl does against a running sred) and from the configuration
// (offline), is the same, its times in each schedule's zone with offset
// and abbreviation (testdata/who.text). Before, the API's answer printed
// bare numeric offsets ("+0100") where the offline one printed "CET".
func TestWhoText(t *testing.T) {
	sretestutil.Backends(t, [][]store.Migration{Migrations}, func(t *testing.T, db *store.DB) {
		dir := NewDirectory(db, loadGood(t))
		mux := http.NewServeMux()
		NewAPI(dir, fixedClock(mustTime(t, "2026-03-28T10:00:00Z")), nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		res, err := http.Get(srv.URL + "/api/v1/oncall?service=api&at=2026-03-28T10:00:00Z&days=2")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		var env struct{ Data []OnCallEntry }
		require.NoError(t, json.NewDecoder(res.Body).Decode(&env))
		var fromAPI strings.Builder
		require.NoError(t, WriteText(&fromAPI, env.Data))

		golden := filepath.Join("testdata", "who.text")
		if *update {
			require.NoError(t, os.WriteFile(golden, []byte(fromAPI.String()), 0o644))
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err)
		require.Equal(t, string(want), fromAPI.String())

		offline, err := dir.Who(t.Context(), "api", "", mustTime(t, "2026-03-28T10:00:00Z"), 2)
		require.NoError(t, err)
		var fromConfig strings.Builder
		require.NoError(t, WriteText(&fromConfig, offline))
		require.Equal(t, fromAPI.String(), fromConfig.String(), "the API's answer prints as the configuration's")
	})
}

func TestTimeText(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		return loc
	}
	at := time.Date(2026, 3, 29, 8, 0, 0, 0, time.UTC)
	decoded, err := time.Parse(time.RFC3339, "2026-03-29T10:00:00+02:00")
	require.NoError(t, err)
	for _, tc := range []struct {
		t    time.Time
		loc  *time.Location
		want string
	}{
		{at, load("Europe/Berlin"), "2026-03-29 10:00 +02:00 CEST"},
		{at.Add(-24 * time.Hour), load("Europe/Berlin"), "2026-03-28 09:00 +01:00 CET"},
		{at, load("America/New_York"), "2026-03-29 04:00 -04:00 EDT"},
		{at, time.UTC, "2026-03-29 08:00 +00:00 UTC"},
		{at, load("America/Sao_Paulo"), "2026-03-29 05:00 -03:00"},               // the zone's name is its offset
		{decoded.In(time.FixedZone("", 2*3600)), nil, "2026-03-29 10:00 +02:00"}, // RFC 3339 carries no name
		{decoded, load("Europe/Berlin"), "2026-03-29 10:00 +02:00 CEST"},
	} {
		require.Equal(t, tc.want, TimeText(tc.t, tc.loc))
	}
}
