// Package retention deletes old data in small batches (compaction) so the
// store does not grow forever, without blocking ingestion: each batch is
// one short transaction (on SQLite, one write of the incident service's
// group-commit writer, so batches queue behind webhook deliveries instead
// of competing for the write lock). It exports sre_store_rows{table}
// (counted after each compaction pass, not at scrape) and
// sre_store_deleted_rows_total{table}.
package retention

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
)

// Tables are the tables whose rows are counted for /metrics.
var Tables = []string{"incidents", "incident_alerts", "incident_timeline", "incident_links", "alert_groups", "jobs", "runbook_audit", "gate_decisions", "audit_log", "chaos_runs"}

// childTables hold rows of an incident, deleted with it (before it).
var childTables = []string{"incident_action_items", "incident_timeline", "incident_links", "incident_link_services", "incident_alerts"}

// NotifyQueue is the jobs queue of the notification outbox (notify.Queue;
// not imported, so that this package stays below the subsystems).
const NotifyQueue = "notify"

// WriteFunc runs fn in a transaction and returns once it committed:
// incident.Service.Write (group commit on SQLite), or the store's InTx.
type WriteFunc func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error

// Options configure a Compactor. Zero values take the defaults.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Clock tells the time of the cutoffs and paces Run (default: the wall clock).
	Clock clock.Timer
	// Write runs each batch (default: its own transaction, db.InTx).
	Write WriteFunc
	// Pause is called after each batch with the time it took; the default
	// sleeps as long (at most 1s), so that compaction takes at most about
	// half of the store's write time and ingestion keeps the rest.
	Pause func(ctx context.Context, batch time.Duration)
}

// pause is the default Options.Pause.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(min(d, time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Compactor deletes expired data.
type Compactor struct {
	db      *store.DB
	logger  *slog.Logger
	clock   clock.Timer
	write   WriteFunc
	pause   func(ctx context.Context, batch time.Duration)
	deleted *prometheus.CounterVec
	rows    *prometheus.Desc

	// countMu serialises counts; mu guards counts, the last one taken
	// (nil before the first).
	countMu sync.Mutex
	mu      sync.Mutex
	counts  map[string]float64
}

// New returns a compactor; its metrics register on o.Registerer.
func New(db *store.DB, o Options) (*Compactor, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Write == nil {
		o.Write = func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
			return db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
		}
	}
	if o.Pause == nil {
		o.Pause = pause
	}
	c := &Compactor{db: db, logger: o.Logger, clock: o.Clock, write: o.Write, pause: o.Pause,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sre_store_deleted_rows_total",
			Help: "Rows deleted by retention compaction (docs/storage.md, \"Retention\"), by table: the incident tables, incident_action_items, jobs (finished jobs and notifications); for runbook_audit, step outputs cleared (the audit rows stay).",
		}, []string{"table"}),
		rows: prometheus.NewDesc("sre_store_rows",
			"Rows stored in the tables retention compacts (incidents, incident_alerts, incident_timeline, incident_links, alert_groups, jobs, runbook_audit, gate_decisions, audit_log, chaos_runs), counted after each retention compaction pass (every retention.interval, default 10m), not at scrape: up to one interval old.",
			[]string{"table"}, nil),
	}
	for _, t := range append(append([]string(nil), childTables...), "incidents", "alert_groups", "jobs", "runbook_audit", "gate_decisions", "audit_log", "chaos_runs", "chaos_steps", "chaos_faults", "chaos_approvals") {
		c.deleted.WithLabelValues(t)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(c.deleted); err != nil {
			return nil, err
		}
		if err := o.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SetClock replaces the clock (tests: a manual clock); call it before Run.
func (c *Compactor) SetClock(clk clock.Timer) { c.clock = clk }

// Describe implements prometheus.Collector (sre_store_rows).
func (c *Compactor) Describe(ch chan<- *prometheus.Desc) { ch <- c.rows }

// Collect implements prometheus.Collector: the counts of the last
// compaction pass. A scrape runs no query, except the first one before
// any pass, which counts once (COUNT(*) of a large table reads all of it).
func (c *Compactor) Collect(ch chan<- prometheus.Metric) {
	counts := c.lastCounts()
	if counts == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.countMu.Lock()
		if counts = c.lastCounts(); counts == nil {
			counts = c.count(ctx)
		}
		c.countMu.Unlock()
	}
	for _, t := range Tables {
		if n, ok := counts[t]; ok {
			ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, n, t)
		}
	}
}

func (c *Compactor) lastCounts() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// count counts the rows of each table (a table that fails keeps its last
// count) and keeps the result for Collect; the caller holds countMu.
func (c *Compactor) count(ctx context.Context) map[string]float64 {
	counts := map[string]float64{}
	last := c.lastCounts()
	for _, t := range Tables {
		var n float64
		if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
			c.logger.Warn("Count rows", "table", t, "err", err)
			if v, ok := last[t]; ok {
				counts[t] = v
			}
			continue
		}
		counts[t] = n
	}
	c.mu.Lock()
	c.counts = counts
	c.mu.Unlock()
	return counts
}

// Run compacts every interval until ctx ends; cfg returns the config in force.
func (c *Compactor) Run(ctx context.Context, cfg func() Config) error {
	for {
		conf := cfg()
		if _, err := c.Compact(ctx, conf); err != nil && ctx.Err() == nil {
			c.logger.Warn("Retention compaction", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(time.Duration(conf.Interval)):
		}
	}
}

// policy is one kind of data: its retention and how one batch goes.
// A kind whose rows carry their own expiry (expiring) has no retention:
// its batch gets now as the cutoff.
type policy struct {
	name     string
	keep     time.Duration
	batch    func(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error)
	expiring bool
}

func (c *Compactor) policies(conf Config) []policy {
	return []policy{
		{"resolved incidents", time.Duration(conf.ResolvedIncidents), c.incidentsBatch, false},
		{"alert payloads", time.Duration(conf.AlertPayloads), alertsBatch, false},
		{"notification outbox", conf.Outbox(), c.jobsBatch(`queue = '` + NotifyQueue + `'`), false},
		{"finished jobs", time.Duration(conf.FinishedJobs), c.jobsBatch(`queue <> '` + NotifyQueue + `'`), false},
		{"runbook outputs", time.Duration(conf.RunbookOutputs), outputsBatch, false},
		{"gate decisions", time.Duration(conf.GateDecisions), gateBatch, false},
		{"audit log", time.Duration(conf.AuditLog), auditBatch, false},
		{"chaos runs", time.Duration(conf.ChaosRuns), chaosBatch, false},
		{"expired quota slots", 0, quotaSlotsBatch, true},
	}
}

// Compact deletes what expired, kind after kind, in batches of
// conf.BatchSize, each batch in its own short write, and returns the rows
// deleted by table. Then (also after an error) it counts the rows of
// Tables for sre_store_rows.
func (c *Compactor) Compact(ctx context.Context, conf Config) (map[string]int64, error) {
	defer func() {
		if ctx.Err() == nil {
			c.countMu.Lock()
			c.count(ctx)
			c.countMu.Unlock()
		}
	}()
	out := map[string]int64{}
	now := c.clock.Now()
	for _, p := range c.policies(conf) {
		cutoff := now.Add(-p.keep).UnixMilli()
		if p.expiring {
			cutoff = now.UnixMilli()
		} else if p.keep <= 0 {
			continue
		}
		for {
			var n int
			counts := map[string]int64{}
			began := time.Now()
			err := c.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				clear(counts)
				var err error
				n, err = p.batch(ctx, tx, cutoff, conf.BatchSize, counts)
				return err
			})
			if err != nil {
				return out, fmt.Errorf("%s: %w", p.name, err)
			}
			for t, k := range counts {
				if k == 0 {
					continue
				}
				out[t] += k
				c.deleted.WithLabelValues(t).Add(float64(k))
			}
			if n < conf.BatchSize {
				break
			}
			c.pause(ctx, time.Since(began))
		}
	}
	return out, nil
}

// incidentsBatch deletes up to size incidents resolved (or post-mortem
// done) before cutoff, with their rows in the child tables and their
// groups' rows (a group that fires again opens a new incident).
func (c *Compactor) incidentsBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	// On SQLite the index is named: without statistics its planner prefers
	// incidents_status and sorts every resolved incident for each batch.
	from := `incidents INDEXED BY incidents_resolved`
	if c.db.Dialect == store.Postgres {
		from = `incidents`
	}
	q := `SELECT id FROM ` + from + ` WHERE resolved_at < $1 AND status IN ('resolved', 'postmortem_done')
		ORDER BY resolved_at LIMIT $2`
	if c.db.Dialect == store.Postgres {
		q += ` FOR UPDATE SKIP LOCKED` // replicas share the work
	}
	rows, err := tx.QueryContext(ctx, q, cutoff, size)
	if err != nil {
		return 0, fmt.Errorf("select expired incidents: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	ph := make([]string, len(ids))
	for i := range ids {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	in := "(" + strings.Join(ph, ", ") + ")"
	del := func(table, where string) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+where+` IN `+in, ids...)
		if err != nil {
			return fmt.Errorf("delete from %s: %w", table, err)
		}
		n, _ := res.RowsAffected()
		counts[table] += n
		return nil
	}
	for _, t := range childTables {
		if err := del(t, "incident_id"); err != nil {
			return 0, err
		}
	}
	if err := del("alert_groups", "incident_id"); err != nil {
		return 0, err
	}
	if err := del("incidents", "id"); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// alertsBatch deletes up to size alert episodes (labels, annotations,
// generator URL: the payload Alertmanager delivered) that resolved before
// cutoff and whose incident is closed (or that never had one). The
// incident and its timeline stay.
func alertsBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM incident_alerts WHERE (group_key, fingerprint, starts_at) IN (
		SELECT a.group_key, a.fingerprint, a.starts_at FROM incident_alerts a
		LEFT JOIN incidents i ON i.id = a.incident_id
		WHERE a.status = 'resolved' AND a.ends_at < $1
			AND (a.incident_id IS NULL OR i.status IN ('resolved', 'postmortem_done'))
		ORDER BY a.ends_at LIMIT $2)`, cutoff, size)
	if err != nil {
		return 0, fmt.Errorf("delete resolved alert episodes: %w", err)
	}
	n, _ := res.RowsAffected()
	counts["incident_alerts"] += n
	return int(n), nil
}

// jobsBatch returns the batch that deletes up to size jobs of the queues
// matching where that finished (done, cancelled, failed) before cutoff.
func (c *Compactor) jobsBatch(where string) func(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	from := `jobs INDEXED BY jobs_finished` // as in incidentsBatch
	if c.db.Dialect == store.Postgres {
		from = `jobs`
	}
	return func(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id IN (
			SELECT id FROM `+from+` WHERE state IN ('done', 'cancelled', 'failed') AND finished_at < $1 AND `+where+`
			LIMIT $2)`, cutoff, size) // in no order: sorting would read every expired job per batch
		if err != nil {
			return 0, fmt.Errorf("delete finished jobs: %w", err)
		}
		n, _ := res.RowsAffected()
		counts["jobs"] += n
		return int(n), nil
	}
}

// outputsBatch clears the output text of up to size runbook steps recorded
// before cutoff in runs that finished before cutoff; the audit rows
// (who ran what, status, exit code, duration) stay.
func outputsBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE runbook_audit SET output = '' WHERE id IN (
		SELECT a.id FROM runbook_audit a JOIN runbook_runs r ON r.id = a.run_id
		WHERE a.output <> '' AND a.at < $1 AND r.finished_at > 0 AND r.finished_at < $1
		ORDER BY a.at LIMIT $2)`, cutoff, size)
	if err != nil {
		return 0, fmt.Errorf("clear runbook outputs: %w", err)
	}
	n, _ := res.RowsAffected()
	counts["runbook_audit"] += n
	return int(n), nil
}

// gateBatch deletes up to size deploy gate decisions (gate_decisions, a
// table of pkg/budget) taken before cutoff, walking its index by time
// (migration budget/0002_gate_decisions_time).
func gateBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM gate_decisions WHERE id IN (
		SELECT id FROM gate_decisions WHERE time_ms < $1 LIMIT $2)`, cutoff, size) // in no order, as jobsBatch
	if err != nil {
		return 0, fmt.Errorf("delete gate decisions: %w", err)
	}
	n, _ := res.RowsAffected()
	counts["gate_decisions"] += n
	return int(n), nil
}

// auditBatch deletes up to size audit log entries recorded before cutoff
// (the index audit_log_at, migration audit/0002_at).
func auditBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE at < $1 LIMIT $2)`, cutoff, size)
	if err != nil {
		return 0, fmt.Errorf("delete audit log entries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	counts["audit_log"] += n
	return int(n), nil
}

// chaosBatch deletes up to size chaos runs (tables of pkg/chaos) that
// finished before cutoff, through the index chaos_runs_finished (migration
// chaos/0003_runs_finished), with their steps, approval and fault journal.
// A run still running or waiting has no finished_ms; a finished run with a
// fault that is not reverted (a rollback that failed, left for a human)
// is kept, since its journal entry is what says what to undo.
func chaosBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT r.id FROM chaos_runs r
		WHERE r.finished_ms IS NOT NULL AND r.finished_ms < $1
		AND NOT EXISTS (SELECT 1 FROM chaos_faults f WHERE f.run_id = r.id AND f.status <> 'reverted')
		ORDER BY r.finished_ms LIMIT $2`, cutoff, size)
	if err != nil {
		return 0, fmt.Errorf("find expired chaos runs: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find expired chaos runs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("find expired chaos runs: %w", err)
	}
	rows.Close()
	if len(ids) == 0 {
		return 0, nil
	}
	in := store.Placeholders(1, len(ids))
	for _, t := range []string{"chaos_approvals", "chaos_steps", "chaos_faults", "chaos_runs"} {
		col := "run_id"
		if t == "chaos_runs" {
			col = "id"
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE `+col+` IN (`+in+`)`, ids...)
		if err != nil {
			return 0, fmt.Errorf("delete expired chaos runs (%s): %w", t, err)
		}
		n, _ := res.RowsAffected()
		counts[t] += n
	}
	return len(ids), nil
}

// quotaSlotsBatch deletes up to size slots of the deploy gate's yellow
// quota (change_quota_slots, a table of pkg/change) that expired at or
// before cutoff (now) without a change consuming them: the change the gate
// allowed was never recorded (sred stopped in between, or a rollout's gate
// step was left). Recording a change deletes its slot, and the gate deletes
// a service's expired slots only when it takes another slot of that
// service, so the slots of a service that is not gated again would stay
// forever. An expired slot no longer counts (change.countQuota), so
// deleting it changes no answer of the gate.
func quotaSlotsBatch(ctx context.Context, tx *sql.Tx, cutoff int64, size int, counts map[string]int64) (int, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM change_quota_slots WHERE id IN (
		SELECT id FROM change_quota_slots WHERE expires_at <= $1 LIMIT $2)`, cutoff, size) // a small table: slots live minutes
	if err != nil {
		return 0, fmt.Errorf("delete expired quota slots: %w", err)
	}
	n, _ := res.RowsAffected()
	counts["change_quota_slots"] += n
	return int(n), nil
}
