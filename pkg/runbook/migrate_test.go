package runbook

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// Migration runbook/0003_jobs carries the open runs of a store written
// before runs were jobs into the queue: each gets its job, due when its old
// heartbeat lease ends (at once if it ended); finished runs get none, and
// the heartbeat column goes.
func TestMigrationCarriesOpenRunsToQueue(t *testing.T) {
	sretest.Backends(t, [][]store.Migration{jobs.Migrations, Migrations[:2]}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		lease := created.Add(time.Hour)
		for _, r := range []struct {
			inc, status string
			lease       int64
		}{
			{"INC-1", RunPending, 0},
			{"INC-2", RunRunning, ms(lease)},
			{"INC-3", RunWaitingApproval, ms(created.Add(-time.Minute))},
			{"INC-4", RunSucceeded, 0},
		} {
			_, err := db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, lease_until, created_at)
				VALUES ($1, 'rb', 't', $2, $3, $4)`, r.inc, r.status, r.lease, ms(created))
			require.NoError(t, err)
		}
		// A run that already has its job keeps it.
		_, err := jobs.Enqueue(ctx, db, created, jobs.New{Queue: Queue, Kind: KindRun, Key: runKey(1), Group: "INC-1",
			RunAt: created.Add(time.Minute), Payload: runJob{RunID: 1}})
		require.NoError(t, err)

		require.NoError(t, db.Migrate(ctx, jobs.Migrations, Migrations))
		js, err := jobs.List(ctx, db, jobs.Filter{Queue: Queue})
		require.NoError(t, err)
		type got struct {
			Key, Group, State string
			Kind              jobs.Kind
			RunAt             time.Time
			RunID             int64
		}
		var out []got
		for _, j := range js {
			var p runJob
			require.NoError(t, j.Decode(&p))
			out = append(out, got{j.Key, j.Group, j.State, j.Kind, j.RunAt, p.RunID})
		}
		require.Equal(t, []got{
			{runKey(3), "INC-3", jobs.StatePending, KindRun, created, 3},
			{runKey(1), "INC-1", jobs.StatePending, KindRun, created.Add(time.Minute), 1},
			{runKey(2), "INC-2", jobs.StatePending, KindRun, lease, 2},
		}, out)
		_, err = db.ExecContext(ctx, `SELECT lease_until FROM runbook_runs`)
		require.Error(t, err, "the heartbeat column is gone")
		run, err := getRun(ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, RunRunning, run.Status)
	})
}
