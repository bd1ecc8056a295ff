package escalation_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/web"
)

// TestSimulateStoreFailureNotShown: a simulation whose read of a
// schedule's stored overrides fails does not answer the store's error (its
// SQL, a database host or file) in a step's Notes field, as for a schedule
// nobody is on call for: it is answered as every failure of the store is,
// the error in sred's log (web.ErrStore). Before, any viewer read the
// store's error in the Notes field of a 200.
func TestSimulateStoreFailureNotShown(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		const body = `{"labels":{"service":"api","severity":"high"},"at":"2026-03-02T10:30:00Z"}`
		got := a.do(t, "POST", "/api/v1/escalation/simulate", body)
		require.Equal(t, http.StatusOK, got.Code, got.Body)

		_, err := db.ExecContext(context.Background(), `DROP TABLE oncall_overrides`)
		require.NoError(t, err)
		got = a.do(t, "POST", "/api/v1/escalation/simulate", body)
		require.NotContains(t, got.Body, "oncall_overrides")
		requireError(t, got, http.StatusInternalServerError, "internal", web.ErrStore.Error())
	})
}
