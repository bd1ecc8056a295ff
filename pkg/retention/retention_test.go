package retention_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/audit"
	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/retention"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	tu "github.com/rootuip/sre/pkg/testutil"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ms(t time.Time) int64 { return t.UnixMilli() }

func migrations() [][]store.Migration {
	return [][]store.Migration{incident.Migrations, jobs.Migrations, runbook.Migrations, budget.Migrations, change.Migrations, audit.Migrations, chaos.Migrations, retention.Migrations}
}

func exec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), q, args...)
	require.NoError(t, err, q)
}

func strings(t *testing.T, db *store.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	slices.Sort(out)
	return out
}

func addIncident(t *testing.T, db *store.DB, id, status string, resolved time.Time) {
	t.Helper()
	var res any
	if !resolved.IsZero() {
		res = ms(resolved)
	}
	exec(t, db, `INSERT INTO incidents (id, title, service, severity, status, labels, group_key, detected_at, created_at, resolved_at, updated_at)
		VALUES ($1, $1, 'api', 'page', $2, '{}', $1, $3, $3, $4, $3)`, id, status, ms(t0.Add(-time.Hour)), res)
	exec(t, db, `INSERT INTO alert_groups (group_key, incident_id) VALUES ($1, $1)`, id)
	exec(t, db, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message) VALUES ($1, $2, 'created', 'sred', 'opened')`, id, ms(t0))
}

func addAlert(t *testing.T, db *store.DB, fp string, incidentID any, status string, ends time.Time) {
	t.Helper()
	var e any
	if !ends.IsZero() {
		e = ms(ends)
	}
	exec(t, db, `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, first_seen_at, updated_at)
		VALUES ('g', $1, $2, $3, $4, $5, '{"alertname":"X"}', '{"summary":"payload"}', $2, $2)`, fp, ms(t0.Add(-2*time.Hour)), incidentID, status, e)
}

func addJob(t *testing.T, db *store.DB, queue, key, state string, finished time.Time) {
	t.Helper()
	var f any
	if !finished.IsZero() {
		f = ms(finished)
	}
	exec(t, db, `INSERT INTO jobs (queue, dedup_key, run_at, state, created_at, finished_at) VALUES ($1, $2, $3, $4, $3, $5)`,
		queue, key, ms(t0), state, f)
}

func addRun(t *testing.T, db *store.DB, id int64, incidentID string, finished time.Time, outputs ...string) {
	t.Helper()
	var f int64
	status := "running"
	if !finished.IsZero() {
		f, status = ms(finished), "succeeded"
	}
	exec(t, db, `INSERT INTO runbook_runs (id, incident_id, runbook, target, status, created_at, finished_at) VALUES ($1, $2, 'restart', 'api', $3, $4, $5)`,
		id, incidentID, status, ms(t0), f)
	for i, o := range outputs {
		exec(t, db, `INSERT INTO runbook_audit (run_id, incident_id, runbook, at, event, step_index, status, output) VALUES ($1, $2, 'restart', $3, 'step', $4, 'ok', $5)`,
			id, incidentID, ms(t0), i, o)
	}
}

func addDecision(t *testing.T, db *store.DB, actor string, at time.Time) {
	t.Helper()
	exec(t, db, `INSERT INTO gate_decisions (time_ms, service, change_kind, allowed, state, reason, override, override_reason, actor)
		VALUES ($1, 'api', 'normal', 1, 'green', 'allowed', 0, '', $2)`, ms(at), actor)
}

// TestCompactKinds stores rows of every kind, some expired and some not,
// on both backends, moves a manual clock past each retention and checks
// that compaction (in batches of 2) deletes exactly the expired ones: the
// resolved incidents with their rows, the resolved alert episodes of
// closed incidents, finished notifications and jobs (each with its own
// retention), the outputs of finished runbook runs and the deploy gate's
// decisions; open incidents,
// firing alerts, pending jobs and running runbooks stay.
func TestCompactKinds(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := 24 * time.Hour
		// Incidents: two resolved on t0 (expire), one resolved 10 days
		// later, one open.
		addIncident(t, db, "INC-1", "resolved", t0)
		addIncident(t, db, "INC-2", "postmortem_done", t0)
		addIncident(t, db, "INC-3", "resolved", t0.Add(10*day))
		addIncident(t, db, "INC-4", "triggered", time.Time{})
		// Alert episodes.
		addAlert(t, db, "closed-old", "INC-3", "resolved", t0)            // expires
		addAlert(t, db, "orphan-old", nil, "resolved", t0)                // expires
		addAlert(t, db, "closed-new", "INC-3", "resolved", t0.Add(9*day)) // kept: recent
		addAlert(t, db, "open-old", "INC-4", "resolved", t0)              // kept: incident open
		addAlert(t, db, "firing", "INC-4", "firing", time.Time{})         // kept: firing
		// Jobs.
		addJob(t, db, "notify", "n-old", "done", t0)
		addJob(t, db, "notify", "n-failed", "failed", t0)
		addJob(t, db, "notify", "n-new", "done", t0.Add(10*day))
		addJob(t, db, "escalation", "e-old", "done", t0)
		addJob(t, db, "runbook", "r-old", "cancelled", t0)
		addJob(t, db, "escalation", "e-pending", "pending", time.Time{})
		// Runbook runs.
		addRun(t, db, 1, "INC-3", t0, "restarted", "healthy", "")
		addRun(t, db, 2, "INC-4", time.Time{}, "still running")
		// Deploy gate decisions: three on t0 (expire, two batches), one
		// 10 days later.
		for _, a := range []string{"old-1", "old-2", "old-3"} {
			addDecision(t, db, a, t0)
		}
		addDecision(t, db, "new", t0.Add(10*day))

		clk := clock.NewManual(t0.Add(3 * day))
		reg := prometheus.NewRegistry()
		c, err := retention.New(db, retention.Options{Clock: clk, Registerer: reg})
		require.NoError(t, err)

		// Defaults: only finished jobs (7d) and gate decisions (30d)
		// expire; nothing is 7 days old.
		conf := retention.Default()
		out, err := c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)

		d := func(x time.Duration) model.Duration { return model.Duration(x) }
		outbox := d(2 * day)
		conf.ResolvedIncidents = d(2 * day)
		conf.AlertPayloads = d(2 * day)
		conf.NotificationOutbox = &outbox
		conf.FinishedJobs = d(5 * day) // not yet
		conf.RunbookOutputs = d(2 * day)
		conf.GateDecisions = d(2 * day)
		conf.BatchSize = 2
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{
			"incidents": 2, "alert_groups": 2, "incident_timeline": 2,
			"incident_alerts": 2, "jobs": 2, "runbook_audit": 2, "gate_decisions": 3,
		}, out)
		require.Equal(t, []string{"new"}, strings(t, db, `SELECT actor FROM gate_decisions`))
		require.Equal(t, 3.0, deleted(t, reg, "gate_decisions"))
		require.Equal(t, []string{"INC-3", "INC-4"}, strings(t, db, `SELECT id FROM incidents`))
		require.Equal(t, []string{"INC-3", "INC-4"}, strings(t, db, `SELECT incident_id FROM incident_timeline`))
		require.Equal(t, []string{"closed-new", "firing", "open-old"}, strings(t, db, `SELECT fingerprint FROM incident_alerts`))
		require.Equal(t, []string{"e-old", "e-pending", "n-new", "r-old"}, strings(t, db, `SELECT dedup_key FROM jobs`))
		require.Equal(t, []string{"", "", "", "still running"}, strings(t, db, `SELECT output FROM runbook_audit`))
		require.Equal(t, 2.0, deleted(t, reg, "incidents"))
		require.Equal(t, 2.0, deleted(t, reg, "runbook_audit"))

		// Later, finished_jobs expires too; a second run finds nothing else.
		clk.Advance(3 * day)
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"jobs": 2}, out)
		require.Equal(t, []string{"e-pending", "n-new"}, strings(t, db, `SELECT dedup_key FROM jobs`))
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)

		require.Equal(t, map[string]float64{"incidents": 2, "incident_alerts": 3, "incident_timeline": 2,
			"incident_links": 0, "alert_groups": 2, "jobs": 2, "runbook_audit": 4, "gate_decisions": 1, "audit_log": 0, "chaos_runs": 0}, storeRows(t, reg))
	})
}

// TestAuditLogExpiresByDefault: every write action an authenticated user
// serves (and every acting ack link) adds an audit_log row; with the
// retention section's defaults the entries older than 400 days go, in
// batches, and the newer ones stay, so the table does not grow without
// bound. Entries are recorded by the real audit log. Both backends, a
// manual clock.
func TestAuditLogExpiresByDefault(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := 24 * time.Hour
		clk := clock.NewManual(t0)
		log := audit.New(db, clk)
		record := func(actor string) {
			t.Helper()
			require.NoError(t, log.Record(ctx, audit.Entry{Actor: actor, Role: "editor", Method: "POST",
				Route: "POST /api/v1/incidents/{id}/ack", Path: "/api/v1/incidents/INC-1/ack", Remote: "127.0.0.1:1", Status: 200}))
		}
		for range 5 {
			record("old")
		}
		clk.Advance(399 * day)
		record("recent")
		clk.Advance(2 * day) // the first five are 401 days old

		reg := prometheus.NewRegistry()
		c, err := retention.New(db, retention.Options{Clock: clk, Registerer: reg})
		require.NoError(t, err)
		conf := retention.Default()
		require.Equal(t, model.Duration(400*day), conf.AuditLog)
		conf.BatchSize = 2
		out, err := c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"audit_log": 5}, out)
		require.Equal(t, 5.0, deleted(t, reg, "audit_log"))
		left, err := log.List(ctx, audit.Query{})
		require.NoError(t, err)
		require.Len(t, left, 1)
		require.Equal(t, "recent", left[0].Actor)
		require.Equal(t, 1.0, storeRows(t, reg)["audit_log"])

		// 0s keeps them forever.
		clk.Advance(800 * day)
		conf.AuditLog = 0
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)
	})
}

// TestChaosRunsExpireByDefault: every chaos run is stored with its steps,
// fault journal and approval, refused runs included, so a flood of run
// requests grew the store without bound. With the retention section's
// defaults the runs finished more than 400 days ago go with their rows, in
// batches; a run still under way, and a finished one whose fault was not
// reverted (its journal says what to undo), stay. Both backends, a manual
// clock.
func TestChaosRunsExpireByDefault(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := 24 * time.Hour
		clk := clock.NewManual(t0)
		now := t0.Add(1000 * day)
		clk.Set(now)
		old, recent := ms(now.Add(-401*day)), ms(now.Add(-10*day))
		run := func(id, status string, finished any, faults ...string) {
			t.Helper()
			exec(t, db, `INSERT INTO chaos_runs (id, experiment, service, environment, actor, status, spec, owner, lease_ms, started_ms, finished_ms)
				VALUES ($1, 'pod-kill', 'api', 'staging', 'alice', $2, '{}', 'r1', 0, $3, $4)`, id, status, old-60000, finished)
			exec(t, db, `INSERT INTO chaos_steps (run_id, seq, step, status, started_ms) VALUES ($1, 1, 'safety', 'ok', $2), ($1, 2, 'inject', 'ok', $2)`, id, old-60000)
			for i, st := range faults {
				exec(t, db, `INSERT INTO chaos_faults (id, run_id, name, driver, spec, status, owner, lease_ms, created_ms)
					VALUES ($1, $2, 'f', 'process', '{}', $3, 'r1', 0, $4)`, fmt.Sprintf("%s-f%d", id, i), id, st, old-60000)
			}
		}
		run("old-1", chaos.StatusSucceeded, old, chaos.FaultReverted, chaos.FaultReverted)
		exec(t, db, `INSERT INTO chaos_approvals (run_id, approved_by, role, at_ms) VALUES ('old-1', 'bob', 'admin', $1)`, old-60000)
		run("old-2", chaos.StatusRefused, old)
		run("old-3", chaos.StatusAborted, old, chaos.FaultReverted)
		run("stuck", chaos.StatusFailed, old, chaos.FaultReverted, chaos.FaultFailed)
		run("running", chaos.StatusRunning, nil, chaos.FaultActive)
		run("recent", chaos.StatusSucceeded, recent, chaos.FaultReverted)

		reg := prometheus.NewRegistry()
		c, err := retention.New(db, retention.Options{Clock: clk, Registerer: reg})
		require.NoError(t, err)
		conf := retention.Default()
		require.Equal(t, model.Duration(400*day), conf.ChaosRuns)
		conf.BatchSize = 2
		out, err := c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"chaos_runs": 3, "chaos_steps": 6, "chaos_faults": 3, "chaos_approvals": 1}, out)
		require.Equal(t, 3.0, deleted(t, reg, "chaos_runs"))
		require.Equal(t, 3.0, storeRows(t, reg)["chaos_runs"])
		var left []string
		rows, err := db.QueryContext(ctx, `SELECT id FROM chaos_runs ORDER BY id`)
		require.NoError(t, err)
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			left = append(left, id)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Equal(t, []string{"recent", "running", "stuck"}, left)
		var faults int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM chaos_faults`).Scan(&faults))
		require.Equal(t, 4, faults, "the faults of the runs kept")

		// 0s keeps them forever.
		clk.Advance(800 * day)
		conf.ChaosRuns = 0
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)
	})
}

// TestGateDecisionsExpireByDefault: every GET /api/v1/gate (a viewer's
// right) records a decision; with the retention section's defaults the
// decisions older than 30 days go, so asking the gate does not grow the
// store without bound. Decisions are recorded by the real budget service
// (without Prometheus: its fail mode's answer, recorded as any other).
// Both backends, a manual clock.
func TestGateDecisionsExpireByDefault(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := 24 * time.Hour
		clk := clock.NewManual(t0)
		bs := budget.New(budget.Options{DB: db, Clock: clk, Registerer: prometheus.NewRegistry()})
		sp, err := slo.Parse([]byte(sloSpec), "api.yml")
		require.NoError(t, err)
		require.NoError(t, bs.Update(budget.DefaultConfig, sp, nil, nil))
		gate := func(actor string) {
			t.Helper()
			_, err := bs.Gate(ctx, budget.GateRequest{Service: "api", Actor: actor})
			require.NoError(t, err)
		}
		for range 5 {
			gate("ci-old")
			// A minute apart: identical decisions within a minute are
			// one row (budget.DecisionRepeatWindow).
			clk.Advance(budget.DecisionRepeatWindow)
		}
		clk.Advance(29 * day)
		gate("ci-recent")
		clk.Advance(2 * day) // the first five are 31 days old

		c, err := retention.New(db, retention.Options{Clock: clk, Registerer: prometheus.NewRegistry()})
		require.NoError(t, err)
		conf := retention.Default()
		require.Equal(t, model.Duration(30*day), conf.GateDecisions)
		conf.BatchSize = 2
		out, err := c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"gate_decisions": 5}, out)
		recs, err := budget.ListDecisions(ctx, db, "api", 10)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, "ci-recent", recs[0].Actor)

		// 0s keeps them forever.
		clk.Advance(60 * day)
		conf.GateDecisions = 0
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)
	})
}

// TestExpiredQuotaSlotsDeleted: a slot of the deploy gate's yellow quota
// (change.ReserveChange) that no recorded change consumed stops counting
// after change.QuotaSlotTTL, but the gate deletes expired slots of a
// service only when it takes another slot of it: the slots of a service
// not gated again stayed forever. Compaction deletes every expired slot,
// in batches, with the retention section's defaults (slots have no
// retention of their own); a slot still counting stays, and the quota's
// count is unchanged. Both backends, a manual clock.
func TestExpiredQuotaSlotsDeleted(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(t0)
		cs := change.New(change.Options{DB: db, Clock: clk})
		reserve := func(service string) int64 {
			t.Helper()
			_, slot, err := cs.ReserveChange(ctx, service, clk.Now().Add(-24*time.Hour), 10)
			require.NoError(t, err)
			require.NotZero(t, slot)
			return slot
		}
		reserve("api")
		reserve("web")
		reserve("web")
		require.NoError(t, cs.ReleaseSlot(ctx, reserve("db"))) // given back: deleted at once
		clk.Advance(change.QuotaSlotTTL - time.Minute)
		kept := reserve("api")
		clk.Advance(2 * time.Minute) // the first three expired, the last counts

		reg := prometheus.NewRegistry()
		c, err := retention.New(db, retention.Options{Clock: clk, Registerer: reg})
		require.NoError(t, err)
		conf := retention.Default()
		conf.BatchSize = 2
		out, err := c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"change_quota_slots": 3}, out)
		require.Equal(t, 3.0, deleted(t, reg, "change_quota_slots"))
		require.Equal(t, []string{fmt.Sprint(kept)}, strings(t, db, `SELECT CAST(id AS TEXT) FROM change_quota_slots`))
		n, err := cs.CountChanges(ctx, "api", clk.Now().Add(-24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, n, "the slot still counting counts")

		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Empty(t, out)
		clk.Advance(change.QuotaSlotTTL - 2*time.Minute) // the last one expires too
		out, err = c.Compact(ctx, conf)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"change_quota_slots": 1}, out)
	})
}

const sloSpec = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
`

// TestStoreRowsCountedPerPass: sre_store_rows is counted after each
// compaction pass, not at scrape (COUNT(*) reads a whole table). The first
// scrape before any pass counts once; rows added later show only after the
// next pass, whether or not it deleted anything; a pass that fails
// (a table missing) still counts the others. Both backends.
func TestStoreRowsCountedPerPass(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		addIncident(t, db, "INC-1", "triggered", time.Time{})
		reg := prometheus.NewRegistry()
		c, err := retention.New(db, retention.Options{Clock: clock.NewManual(t0), Registerer: reg})
		require.NoError(t, err)
		want := map[string]float64{"incidents": 1, "incident_alerts": 0, "incident_timeline": 1,
			"incident_links": 0, "alert_groups": 1, "jobs": 0, "runbook_audit": 0, "gate_decisions": 0, "audit_log": 0, "chaos_runs": 0}
		require.Equal(t, want, storeRows(t, reg), "the first scrape counts")

		addIncident(t, db, "INC-2", "triggered", time.Time{})
		addJob(t, db, "escalation", "e-pending", "pending", time.Time{})
		for range 3 {
			require.Equal(t, want, storeRows(t, reg), "a scrape does not count again")
		}

		out, err := c.Compact(ctx, retention.Default())
		require.NoError(t, err)
		require.Empty(t, out)
		want["incidents"], want["incident_timeline"], want["alert_groups"], want["jobs"] = 2, 2, 2, 1
		require.Equal(t, want, storeRows(t, reg), "the pass counted")

		addIncident(t, db, "INC-3", "triggered", time.Time{})
		require.Equal(t, want, storeRows(t, reg))
		exec(t, db, `DROP TABLE runbook_audit`)
		_, err = c.Compact(ctx, retention.Config{RunbookOutputs: model.Duration(time.Hour), BatchSize: 10})
		require.ErrorContains(t, err, "runbook outputs")
		want["incidents"], want["incident_timeline"], want["alert_groups"] = 3, 3, 3
		require.Equal(t, want, storeRows(t, reg), "a failed pass counts too; runbook_audit keeps its last count")
	})
}

// storeRows returns sre_store_rows by table.
func storeRows(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	rows := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "sre_store_rows" {
			for _, m := range mf.GetMetric() {
				rows[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return rows
}

// deleted returns sre_store_deleted_rows_total{table}.
func deleted(t *testing.T, reg *prometheus.Registry, table string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "sre_store_deleted_rows_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == table {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no sre_store_deleted_rows_total{table=%q}", table)
	return 0
}
