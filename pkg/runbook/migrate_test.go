package runbook

import (
	"context"
	"database/sql"
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
		js, err := jobs.List(ctx, db, jobs.Filter{Queue: Queue, AllGroups: true})
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

// Migration runbook/0004_run_per_target makes a run unique per incident,
// runbook and target (it was per incident and runbook): the runs stored
// stay as they were, with their ids, and no id is given twice, not even
// one of a run deleted before (jobs and audit rows name runs by id).
func TestMigrationRunPerTarget(t *testing.T) {
	sretest.Backends(t, [][]store.Migration{jobs.Migrations, Migrations[:3]}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for _, inc := range []string{"INC-1", "INC-2", "INC-3"} {
			_, err := db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, reason, severity, labels,
				dry_run, continue_on_resolve, cancel_requested, cancel_reason, current_step, verified, owner, created_at, started_at,
				finished_at, resumes) VALUES ($1, 'rb', 'pool/api', $2, 'why', 'HIGH', '{"service":"api"}', 1, 1, 1, 'stop', 2, 1,
				'me', $3, $4, $5, 2)`, inc, RunSucceeded, ms(created), ms(created)+1, ms(created)+2)
			require.NoError(t, err)
		}
		_, err := db.ExecContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at)
			VALUES ('INC-1', 'rb', 'pool/checkout', 'pending', 0)`)
		require.Error(t, err, "before: one run per incident and runbook")
		_, err = db.ExecContext(ctx, `DELETE FROM runbook_runs WHERE incident_id = 'INC-3'`)
		require.NoError(t, err)

		require.NoError(t, db.Migrate(ctx, jobs.Migrations, Migrations))
		run, err := getRun(ctx, db, 2)
		require.NoError(t, err)
		require.Equal(t, &Run{ID: 2, IncidentID: "INC-2", Runbook: "rb", Target: "pool/api", Status: RunSucceeded, Reason: "why",
			Severity: "HIGH", Labels: map[string]string{"service": "api"}, DryRun: true, ContinueOnResolve: true, CancelRequested: true,
			CurrentStep: 2, Verified: true, Owner: "me", CreatedAt: created, StartedAt: fromMS(ms(created) + 1),
			FinishedAt: fromMS(ms(created) + 2)}, run)
		var resumes int
		var reason string
		require.NoError(t, db.QueryRowContext(ctx, `SELECT resumes, cancel_reason FROM runbook_runs WHERE id = 2`).Scan(&resumes, &reason))
		require.Equal(t, 2, resumes)
		require.Equal(t, "stop", reason)

		insert := func(inc, target string) (int64, error) {
			var id int64
			err := db.QueryRowContext(ctx, `INSERT INTO runbook_runs (incident_id, runbook, target, status, created_at)
				VALUES ($1, 'rb', $2, 'pending', 0) ON CONFLICT (incident_id, runbook, target) DO NOTHING RETURNING id`, inc, target).Scan(&id)
			return id, err
		}
		id, err := insert("INC-1", "pool/checkout")
		require.NoError(t, err, "after: one run per incident, runbook and target")
		require.Greater(t, id, int64(3), "the id of the deleted run 3 is not given again")
		_, err = insert("INC-1", "pool/api")
		require.ErrorIs(t, err, sql.ErrNoRows, "the incident already has a run of rb on pool/api")

		if db.Dialect == store.SQLite {
			var n int
			require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'runbook_runs'
				AND name IN ('runbook_runs_status', 'runbook_runs_started', 'runbook_runs_target')`).Scan(&n))
			require.Equal(t, 3, n, "the indexes are made again")
		}
	})
}
