package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPostgresGenericPlans: sred's PostgreSQL sessions, the main pool's
// and the side pool's, plan prepared statements with the generic plan,
// unless the URL says otherwise.
func TestPostgresGenericPlans(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"default", "", "force_generic_plan"},
		{"url parameter", "plan_cache_mode=auto", "auto"},
		{"options", "options=-c%20plan_cache_mode%3Dforce_custom_plan", "force_custom_plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := testutil.PostgresSchemaURL(t)
			if tc.extra != "" {
				u += "&" + tc.extra
			}
			db, err := store.OpenPostgres(ctx, u, store.PostgresOptions{})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			for _, q := range []*sql.DB{db.DB, db.Side()} {
				var mode string
				require.NoError(t, q.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode))
				require.Equal(t, tc.want, mode)
			}
		})
	}
}
