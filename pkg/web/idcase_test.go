package web_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// An incident ID typed in another case (inc-2026-0001) names the
// incident (INC-2026-0001) in every route of an incident and in a merge's
// "from"; IDs that differ only in case (imported ones) are not guessed
// between: the 404 names them.
func TestIncidentIDCaseInsensitive(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		ctx := context.Background()
		for _, n := range []incident.Notification{notification("a", "checkout", "critical"), notification("b", "search", "warning"),
			notification("c", "cart", "warning")} {
			_, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
		}
		srv := incidentsServer(t, svc)
		year := time.Now().UTC().Year()
		id := func(n int) string { return incidentID(year, n) }
		lower := func(n int) string { return strings.ToLower(id(n)) }

		for _, tc := range []struct {
			name, method, path, body string
			code                     int
			want                     string
		}{
			{"get", "GET", "/api/v1/incidents/" + lower(1), "", 200, `"id":"` + id(1) + `"`},
			{"mixed case", "GET", "/api/v1/incidents/Inc-" + id(1)[4:], "", 200, `"id":"` + id(1) + `"`},
			{"timeline", "GET", "/api/v1/incidents/" + lower(1) + "/timeline", "", 200, `incident created`},
			{"ack", "POST", "/api/v1/incidents/" + lower(1) + "/ack", `{"actor":"alice"}`, 200, `"status":"acknowledged"`},
			{"note", "POST", "/api/v1/incidents/" + lower(1) + "/notes", `{"actor":"alice","text":"looking"}`, 200, `looking`},
			{"merge from", "POST", "/api/v1/incidents/" + lower(1) + "/merge", `{"actor":"alice","from":"` + lower(2) + `"}`, 200, `"id":"` + id(1) + `"`},
			{"merge from itself", "POST", "/api/v1/incidents/" + id(1) + "/merge", `{"actor":"alice","from":"` + lower(1) + `"}`, 400, `cannot be merged into itself`},
			{"unknown", "GET", "/api/v1/incidents/" + lower(404), "", 404, `incident not found: ` + lower(404)},
			{"unknown merge from", "POST", "/api/v1/incidents/" + id(1) + "/merge", `{"actor":"alice","from":"` + lower(404) + `"}`, 404, `incident not found: ` + lower(404)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body := rawCall(t, tc.method, srv.URL+tc.path, tc.body)
				require.Equal(t, tc.code, code, body)
				require.Contains(t, body, tc.want)
			})
		}
		inc, err := svc.Get(ctx, id(2))
		require.NoError(t, err)
		require.Equal(t, id(1), inc.MergedInto, "the merge named by its lower-case ID merged the wrong incident")

		// An imported incident whose ID is another's in lower case.
		var exp bytes.Buffer
		_, err = svc.Export(ctx, time.Time{}, &exp)
		require.NoError(t, err)
		var line string
		for _, l := range strings.Split(exp.String(), "\n") {
			if strings.Contains(l, `"id":"`+id(3)+`"`) {
				line = l
			}
		}
		require.NotEmpty(t, line)
		imported := strings.ReplaceAll(line, id(3), lower(3))
		code, body := rawCall(t, "POST", srv.URL+"/api/v1/incidents/import", imported+"\n")
		require.Equal(t, http.StatusConflict, code, body)
		require.Contains(t, body, "import line 1 ("+lower(3)+"): incident "+lower(3)+" differs only in case from incident "+id(3)+", which exists here")
		// A store that holds both from before the import refused them.
		require.NoError(t, svc.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE twin AS SELECT * FROM incidents WHERE id = $1`, id(3)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE twin SET id = $1`, lower(3)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO incidents SELECT * FROM twin`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DROP TABLE twin`)
			return err
		}))
		code, body = rawCall(t, "GET", srv.URL+"/api/v1/incidents/"+lower(3), "")
		require.Equal(t, 200, code, body)
		require.Contains(t, body, `"id":"`+lower(3)+`"`, "an exact ID is the incident it names")
		code, body = rawCall(t, "GET", srv.URL+"/api/v1/incidents/Inc-"+id(3)[4:], "")
		require.Equal(t, 404, code, body)
		require.Contains(t, body, "incident IDs "+id(3)+", "+lower(3)+" differ from it only in case: name one exactly")
	})
}

func rawCall(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	code, r := call(t, method, url, body)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return code, string(b)
}
