package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

// The SQLite ceiling: after the sqlite set-up's steps, sred stopped,
// bench-http writes the rows of the last step's deliveries again into
// sred's store, copied as pgbench copies them on PostgreSQL (pgceiling.go),
// on one connection with sred's own settings (WAL, synchronous=FULL,
// foreign keys), replayBatch deliveries per transaction, each in a
// savepoint, as sred's writer applies them. It is what SQLite, the same
// library sred links, gives for those writes on this machine: an upper
// bound for sred's deliveries/s on SQLite.

// replayBatch is the deliveries of one replay transaction: about what
// sred's writer batched at 32 connections (16-19 writes per batch).
const replayBatch = 16

// replayTarget is the target column of the SQLite ceiling's row.
const replayTarget = "replay"

// replayResult is what one replay measured.
type replayResult struct {
	done    int
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time meanwhile
}

func (r *replayResult) rate() float64 { return float64(r.done) / r.elapsed.Seconds() }

// sqliteReplay replays the sample's deliveries into the SQLite store at
// path for d, or n deliveries when n > 0.
func sqliteReplay(path string, sm *deliverySample, d time.Duration, n int) (*replayResult, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"+
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stmts := map[string]*sql.Stmt{}
	exec := func(tx *sql.Tx, q string, args ...any) error {
		st, ok := stmts[q]
		if !ok {
			var err error
			if st, err = conn.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("prepare %s: %w", q, err)
			}
			stmts[q] = st
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		return nil
	}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	deliver := func(tx *sql.Tx, k int, create bool) error {
		group := "ceiling/0/" + strconv.Itoa(k)
		if err := exec(tx, `INSERT INTO alert_groups (group_key, incident_id, last_delivery_at) VALUES ($1, NULL, 0)`, group); err != nil {
			return err
		}
		inc, fromGroup := sm.joinInc, sm.joinGroup
		timeline := sm.joinTimeline
		if create {
			inc, fromGroup, timeline = "CEIL-0-"+strconv.Itoa(k), sm.createGroup, sm.createTimeline
			if err := exec(tx, `INSERT INTO incidents (id, title, service, severity, status, labels, group_key, receiver, runbook_urls, assignee, impact, flapping,
	reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at,
	snoozed_until, root_service, recovering_since, merged_into)
SELECT $1, title, service, severity, status, labels, $2, receiver, runbook_urls, assignee, impact, flapping,
	reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at,
	snoozed_until, root_service, recovering_since, merged_into FROM incidents WHERE id = $3`, inc, group, sm.createInc); err != nil {
				return err
			}
		}
		if err := exec(tx, `INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at)
SELECT $1, fingerprint, starts_at, $2, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at FROM incident_alerts WHERE group_key = $3`, group, inc, fromGroup); err != nil {
			return err
		}
		linkInc := sm.joinInc
		if create {
			linkInc = sm.createInc
		}
		if err := exec(tx, `INSERT INTO incident_links (incident_id, group_key, service, labels, reason, explanation, attached_at)
SELECT $1, $2, service, labels, reason, explanation, attached_at FROM incident_links WHERE incident_id = $3 AND group_key = $4`, inc, group, linkInc, fromGroup); err != nil {
			return err
		}
		if len(timeline) > 0 {
			if err := exec(tx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data)
SELECT $1, at, kind, actor, message, data FROM incident_timeline WHERE id IN (`+idList(timeline)+`) ORDER BY id`, inc); err != nil {
				return err
			}
		}
		if create {
			if err := exec(tx, `INSERT INTO incident_link_services (incident_id, service, last_at) SELECT $1, service, last_at FROM incident_link_services WHERE incident_id = $2`, inc, sm.createInc); err != nil {
				return err
			}
			if err := exec(tx, `INSERT INTO escalation_state (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
SELECT $1, policy, frozen, snapshot, epoch, state, level, started_at, updated_at FROM escalation_state WHERE incident_id = $2`, inc, sm.createInc); err != nil {
				return err
			}
			if len(sm.createJobs) > 0 {
				if err := exec(tx, `INSERT INTO jobs (queue, kind, dedup_key, grp, run_at, payload, state, attempts, last_error, created_at)
SELECT queue, kind, dedup_key || '/' || $1, $1, run_at, payload, 'pending', 0, '', created_at FROM jobs WHERE id IN (`+idList(sm.createJobs)+`)`, inc); err != nil {
					return err
				}
			}
		}
		return exec(tx, `UPDATE alert_groups SET incident_id = $1 WHERE group_key = $2`, inc, group)
	}
	cpu0 := selfCPU()
	start := time.Now()
	k := 0
	for (n > 0 && k < n) || (n <= 0 && time.Since(start) < d) {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		for b := 0; b < replayBatch && (n <= 0 || k < n); b++ {
			// The step's share of opening deliveries, spread evenly.
			create := (k+1)*sm.createPermille/1000 > k*sm.createPermille/1000
			if _, err := tx.ExecContext(ctx, `SAVEPOINT delivery`); err != nil {
				tx.Rollback() //nolint:errcheck
				return nil, err
			}
			if err := deliver(tx, k, create); err != nil {
				tx.Rollback() //nolint:errcheck
				return nil, fmt.Errorf("delivery %d: %w", k, err)
			}
			if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT delivery`); err != nil {
				tx.Rollback() //nolint:errcheck
				return nil, err
			}
			k++
		}
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	return &replayResult{done: k, elapsed: time.Since(start), cpu: selfCPU() - cpu0}, nil
}

// sqliteCeiling runs the SQLite ceiling after the sqlite set-up's steps: a
// replay of the last step's deliveries for as long as a step (or, on the
// Go client, as many deliveries as its --max-requests), one row of the
// table; last is sred's deliveries/s in its last step.
func (s *sredSet) sqliteCeiling(w io.Writer, o options, tab stepTable, st setup, prefix string, last float64) error {
	db, err := sql.Open("sqlite", "file:"+s.sqlitePath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	sm, err := readSample(db, "instr", prefix)
	db.Close()
	if err != nil {
		return err
	}
	n := 0
	if o.driver == "go" {
		n = o.maxRequests
	}
	r, err := sqliteReplay(s.sqlitePath, sm, o.duration, n)
	if err != nil {
		return err
	}
	// Its CPU per 1,000 is this process's, which did nothing else: the
	// writes' own cost, beside sred's cpu s/1k.
	cpu := "-"
	if perK, ok := cpuPer1k(r.cpu, r.done); ok {
		cpu = fmt.Sprintf("%.2f", perK)
	}
	fmt.Fprint(w, tab.row(replayTarget, st.name, "1", fmt.Sprintf("%.0f", r.rate()), "-", "-", "-",
		strconv.Itoa(r.done), "0", "-", cpu, "-", "-", "-", benchenv.LoadAvg()))
	if r.rate() > 0 {
		fmt.Fprintf(os.Stderr, "  %s: sred's last step reached %.0f%% of the replay's deliveries/s (%d deliveries per transaction; %.1f%% of them opened an incident)\n",
			st.name, 100*last/r.rate(), replayBatch, float64(sm.createPermille)/10)
	}
	return nil
}
