package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPaged: the paged column counts, in sred's own schema on both
// backends, the incidents whose opening group is one of the step's and that
// have an escalation, and of them those whose first step has run (level 0
// or later); incidents of another step, and without an escalation, are
// not counted.
func TestPaged(t *testing.T) {
	migrations := [][]store.Migration{jobs.Migrations, oncall.Migrations, notify.Migrations, incident.Migrations, escalation.Migrations}
	check := func(t *testing.T, db *store.DB, set *sredSet) {
		ctx := context.Background()
		require.NoError(t, db.Migrate(ctx, migrations...))
		const step = "n1-sqlite-sred-failing-32.2"
		for _, inc := range []struct {
			id, group string
			level     int // -2: no escalation
		}{
			{"INC-1", step + "-1", -1},
			{"INC-2", step + "-2", 0},
			{"INC-3", step + "-3", 2},
			{"INC-4", step + "-4", -2},
			{"INC-5", "n1-sqlite-sred-failing-8.1-1", 0}, // another step
		} {
			key := `{}/{}:{group="` + inc.group + `"}`
			_, err := db.ExecContext(ctx, `INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, updated_at)
VALUES ($1, 't', 'api', 'CRITICAL', 'triggered', '{}', $2, 1, 1, 1)`, inc.id, key)
			require.NoError(t, err)
			if inc.level == -2 {
				continue
			}
			_, err = db.ExecContext(ctx, `INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
VALUES ($1, 'api', '{}', '{}', 1, 'active', $2, 1, 1)`, inc.id, inc.level)
			require.NoError(t, err)
		}
		opened, first, err := set.paged(step)
		require.NoError(t, err)
		require.Equal(t, [2]int{3, 2}, [2]int{opened, first}, "opened with an escalation, first page run")
		require.Equal(t, "67%", pagedCol(opened, first))
		opened, first, err = set.paged("n1-postgres-sred-failing-32.2")
		require.NoError(t, err)
		require.Equal(t, [2]int{0, 0}, [2]int{opened, first})
		require.Equal(t, "-", pagedCol(opened, first))
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db, err := store.OpenSQLite(context.Background(), dir)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		check(t, db, &sredSet{sqlitePath: filepath.Join(dir, "sred.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		u := testutil.PostgresSchemaURL(t)
		db, err := store.OpenPostgres(context.Background(), u, store.PostgresOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		check(t, db, &sredSet{postgresURL: u})
	})
}
