package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// loggingWriter is a ResponseWriter that keeps what web.Error logs.
type loggingWriter struct {
	http.ResponseWriter
	logged func(msg string, err error)
}

func (l loggingWriter) LogError(msg string, err error) { l.logged(msg, err) }

func (l loggingWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// TestStoreErrorFixedText: a write the store refuses is answered with a
// fixed text, never the store's error (which can name its host, a file
// path or SQL); the error is logged with the request. Both backends.
func TestStoreErrorFixedText(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		res, err := svc.Ingest(context.Background(), notification("a", "checkout", "critical"))
		require.NoError(t, err)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		var mu sync.Mutex
		var logged []error
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(loggingWriter{w, func(_ string, err error) {
				mu.Lock()
				defer mu.Unlock()
				logged = append(logged, err)
			}}, r)
		}))
		defer srv.Close()

		const cause = "could not write /var/lib/sred/sred.db"
		refuse := []string{`CREATE TRIGGER refused BEFORE UPDATE ON incidents BEGIN SELECT RAISE(ABORT, '` + cause + `'); END`}
		if db.Dialect == store.Postgres {
			refuse = []string{
				`CREATE FUNCTION refused() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION '` + cause + `'; END $$ LANGUAGE plpgsql`,
				`CREATE TRIGGER refused BEFORE UPDATE ON incidents FOR EACH ROW EXECUTE FUNCTION refused()`,
			}
		}
		for _, q := range refuse {
			_, err := db.Exec(q)
			require.NoError(t, err, q)
		}
		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/"+res.Created[0]+"/ack", `{"actor":"bob"}`)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, "unavailable", r.ErrorType)
		require.Equal(t, web.ErrStore.Error(), r.Error)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, logged, 1)
		require.ErrorContains(t, logged[0], cause)
		inc, err := svc.Get(context.Background(), res.Created[0])
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
	})
}

// TestExportStoreErrorFixedText: an export the store fails ends with an
// error line in the fixed text, the store's error logged.
func TestExportStoreErrorFixedText(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		_, err := svc.Ingest(context.Background(), notification("a", "checkout", "critical"))
		require.NoError(t, err)
		// The DROP locks incidents too (the foreign key), and PostgreSQL
		// may pick it to break a deadlock with the service's statement
		// preparer; it is run again then.
		require.NoError(t, store.RunAgain(t.Context(), func() error {
			_, err := db.Exec(`DROP TABLE incident_timeline`)
			return err
		}))
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: svc}).Register(mux)
		var logged []error
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mux.ServeHTTP(loggingWriter{w, func(_ string, err error) { logged = append(logged, err) }}, r)
		}))
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/api/v1/incidents/export")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Contains(t, string(b), `{"error":"`+web.ErrStore.Error()+`"}`)
		require.NotContains(t, string(b), "incident_timeline")
		require.Len(t, logged, 1)
		require.ErrorContains(t, logged[0], "incident_timeline")
	})
}
