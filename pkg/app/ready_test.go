package app

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadyFollowsWrites: /-/ready answers 503 while the store answers
// pings but refuses writes (here a trigger refuses them, as a full disk or
// a read-only database would), and 200 again once it writes, on both
// backends. The probe needs no credentials: it answers the short reason
// only, never the store's error (which can name its host, a file or SQL);
// that goes to the log.
func TestReadyFollowsWrites(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			logs := &logBuffer{}
			o := appOptions(t, backend, "")
			o.Logger = logs.logger()
			a, srv := runAppOptions(t, o, nil)
			ready := func() (int, string) {
				resp, err := http.Get(srv.URL + "/-/ready")
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			code, body := ready()
			require.Equal(t, http.StatusOK, code, body)

			refuse := []string{
				`CREATE TRIGGER probe_refused BEFORE INSERT ON store_write_probe BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
				`CREATE TRIGGER probe_refused_update BEFORE UPDATE ON store_write_probe BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
			}
			allow := []string{`DROP TRIGGER probe_refused`, `DROP TRIGGER probe_refused_update`}
			if backend == "postgres" {
				refuse = []string{
					`CREATE FUNCTION probe_refused() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ LANGUAGE plpgsql`,
					`CREATE TRIGGER probe_refused BEFORE INSERT OR UPDATE ON store_write_probe FOR EACH ROW EXECUTE FUNCTION probe_refused()`,
				}
				allow = []string{`DROP TRIGGER probe_refused ON store_write_probe`}
			}
			for _, q := range refuse {
				_, err := a.DB.Exec(q)
				require.NoError(t, err, q)
			}
			require.NoError(t, a.DB.PingContext(t.Context()), "the store still answers pings")
			code, body = ready()
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			require.Equal(t, "sred is not ready: store cannot write\n", body)
			cause := "database or disk is full"
			if backend == "postgres" {
				cause = "No space left on device"
			}
			require.NotContains(t, body, cause)
			logged := logs.lines(t, "Not ready")
			require.Len(t, logged, 1, logs.String())
			require.Contains(t, logged[0]["err"], cause, "the cause is logged")
			for _, q := range allow {
				_, err := a.DB.Exec(q)
				require.NoError(t, err, q)
			}
			code, body = ready()
			require.Equal(t, http.StatusOK, code, body)
		})
	}
}
