package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestImportBodyLimit: an import body over the API's bound is a 413 in
// the error envelope naming the bound (it was a 400 quoting net/http's
// "request body too large"); the lines before the bound stay imported.
func TestImportBodyLimit(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		src := newIncidentService(t, db)
		ctx := t.Context()
		for _, g := range []string{"a", "b"} {
			_, err := src.Ingest(ctx, notification(g, "checkout", "critical"))
			require.NoError(t, err)
		}
		var exp bytes.Buffer
		_, err := src.Export(ctx, time.Time{}, &exp)
		require.NoError(t, err)
		lines := strings.SplitAfter(exp.String(), "\n")
		require.GreaterOrEqual(t, len(lines), 2)

		// The same store: the first line is skipped as already there,
		// the second is cut by the bound.
		limit := int64(len(lines[0]) + len(lines[1])/2)
		mux := http.NewServeMux()
		(&web.IncidentsAPI{Service: src, MaxImportBytes: limit}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", exp.String())
		require.Equal(t, http.StatusRequestEntityTooLarge, code, r.Error)
		require.Equal(t, "error", r.Status)
		require.Equal(t, "bad_data", r.ErrorType)
		require.Equal(t, fmt.Sprintf("request body larger than %d bytes (imported 0, skipped 1 before it)", limit), r.Error)
	})
}
