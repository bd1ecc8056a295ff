package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

// The SQLite ceiling: after the sqlite set-up's steps, sred stopped,
// bench-http writes the rows of the last step's deliveries again into
// sred's store: the rows of a delivery that opened an incident and of one
// that joined one (the sample pgceiling.go reads), read once, then written
// for every replayed delivery under its own keys with their values bound,
// as sred binds them, in the step's proportion of the two, on one
// connection with sred's own settings (WAL, synchronous=FULL, foreign
// keys), replayBatch deliveries per transaction, each in a savepoint, as
// sred's writer applies them. It is what SQLite, the same library sred
// links, gives for those writes on this machine at that batch size: an
// upper bound for sred's deliveries/s when its writer batches as many.

// replayBatch is the deliveries of one replay transaction: about what
// sred's writer batched at 32 connections (16-19 writes per batch).
const replayBatch = 16

// replayTarget is the target column of the SQLite ceiling's row.
const replayTarget = "replay"

// text is a TEXT value as read into an any.
func text(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	s, _ := v.(string)
	return s
}

// tableRows are rows of a table read from the sample, by column.
type tableRows struct {
	table string
	cols  []string
	rows  [][]any
}

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
	// The sample's rows, read once: every delivery writes them again
	// with its own keys, its values bound as sred binds them (a read of
	// the source rows per copy would cost the replay about a quarter of
	// its time, measured).
	load := func(table string, cols []string, where string, args ...any) (*tableRows, error) {
		rows, err := conn.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+table+` WHERE `+where, args...)
		if err != nil {
			return nil, fmt.Errorf("read the sample's %s: %w", table, err)
		}
		defer rows.Close()
		tr := &tableRows{table: table, cols: cols}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			tr.rows = append(tr.rows, vals)
		}
		return tr, rows.Err()
	}
	var (
		incidentCols = []string{"id", "group_key", "title", "service", "severity", "status", "labels", "receiver", "runbook_urls", "assignee", "impact",
			"flapping", "reopen_count", "mitigated_by", "detected_at", "created_at", "acknowledged_at", "investigating_at", "resolved_at", "recovered_at",
			"postmortem_at", "updated_at", "snoozed_until", "root_service", "recovering_since", "merged_into"}
		alertCols = []string{"group_key", "incident_id", "fingerprint", "starts_at", "status", "ends_at", "labels", "annotations", "generator_url",
			"first_seen_at", "updated_at"}
		linkCols     = []string{"group_key", "incident_id", "service", "labels", "reason", "explanation", "attached_at"}
		timelineCols = []string{"incident_id", "at", "kind", "actor", "message", "data"}
	)
	type delivery struct{ incident, alerts, link, timeline, services, escalation, jobs *tableRows }
	var create, join delivery
	for _, l := range []struct {
		dst   **tableRows
		table string
		cols  []string
		where string
		args  []any
	}{
		{&create.incident, "incidents", incidentCols, "id = $1", []any{sm.createInc}},
		{&create.alerts, "incident_alerts", alertCols, "group_key = $1", []any{sm.createGroup}},
		{&create.link, "incident_links", linkCols, "incident_id = $1 AND group_key = $2", []any{sm.createInc, sm.createGroup}},
		{&create.timeline, "incident_timeline", timelineCols, "id IN (" + idList(sm.createTimeline) + ") ORDER BY id", nil},
		{&create.services, "incident_link_services", []string{"incident_id", "service", "last_at"}, "incident_id = $1", []any{sm.createInc}},
		{&create.escalation, "escalation_state", []string{"incident_id", "policy", "frozen", "snapshot", "epoch", "state", "level", "started_at", "updated_at"},
			"incident_id = $1", []any{sm.createInc}},
		{&create.jobs, "jobs", []string{"grp", "dedup_key", "queue", "kind", "run_at", "payload", "created_at"}, "id IN (" + idList(sm.createJobs) + ") ORDER BY id", nil},
		{&join.alerts, "incident_alerts", alertCols, "group_key = $1", []any{sm.joinGroup}},
		{&join.link, "incident_links", linkCols, "incident_id = $1 AND group_key = $2", []any{sm.joinInc, sm.joinGroup}},
		{&join.timeline, "incident_timeline", timelineCols, "id IN (" + idList(sm.joinTimeline) + ") ORDER BY id", nil},
	} {
		tr, err := load(l.table, l.cols, l.where, l.args...)
		if err != nil {
			return nil, err
		}
		*l.dst = tr
	}
	// insert writes tr's rows in one statement, their first column set
	// to first and the second (when second is not nil) to second.
	insert := func(tx *sql.Tx, tr *tableRows, first any, second func(v any) any, extra string) error {
		if tr == nil || len(tr.rows) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString(`INSERT INTO ` + tr.table + ` (` + strings.Join(tr.cols, ", ") + extra + `) VALUES `)
		args := make([]any, 0, len(tr.rows)*len(tr.cols))
		for i, row := range tr.rows {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(")
			for j, v := range row {
				if j > 0 {
					q.WriteString(", ")
				}
				fmt.Fprintf(&q, "$%d", len(args)+1)
				switch {
				case j == 0:
					v = first
				case j == 1 && second != nil:
					v = second(v)
				}
				args = append(args, v)
			}
			if extra != "" {
				q.WriteString(", 'pending', 0, ''")
			}
			q.WriteString(")")
		}
		return exec(tx, q.String(), args...)
	}
	const jobsState = ", state, attempts, last_error"
	deliver := func(tx *sql.Tx, k int, opens bool) error {
		d, inc, group := join, sm.joinInc, ceilingGroup(0, k, sm.joinGroup)
		if opens {
			d, inc, group = create, "CEIL-0-"+strconv.Itoa(k), ceilingGroup(0, k, sm.createGroup)
		}
		if err := exec(tx, `INSERT INTO alert_groups (group_key, incident_id, last_delivery_at) VALUES ($1, NULL, 0)`, group); err != nil {
			return err
		}
		if opens {
			if err := insert(tx, d.incident, inc, func(any) any { return group }, ""); err != nil {
				return err
			}
		}
		steps := []struct {
			tr     *tableRows
			second func(any) any
			extra  string
		}{
			{d.alerts, func(any) any { return inc }, ""},
			{d.link, func(any) any { return inc }, ""},
			{d.timeline, nil, ""},
			{d.services, nil, ""},
			{d.escalation, nil, ""},
			{d.jobs, func(v any) any { return text(v) + "/" + inc }, jobsState},
		}
		for _, st := range steps {
			first := any(inc)
			if st.tr != nil && st.tr.cols[0] == "group_key" {
				first = group
			}
			if err := insert(tx, st.tr, first, st.second, st.extra); err != nil {
				return err
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
			opens := (k+1)*sm.createPermille/1000 > k*sm.createPermille/1000
			if _, err := tx.ExecContext(ctx, `SAVEPOINT delivery`); err != nil {
				tx.Rollback() //nolint:errcheck
				return nil, err
			}
			if err := deliver(tx, k, opens); err != nil {
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
		strconv.Itoa(r.done), "0", "-", cpu, "-", "-", "-", "-", benchenv.LoadAvg()))
	if r.rate() > 0 {
		fmt.Fprintf(os.Stderr, "  %s: sred's last step reached %.0f%% of the replay's deliveries/s (%d deliveries per transaction; %.1f%% of them opened an incident)\n",
			st.name, 100*last/r.rate(), replayBatch, float64(sm.createPermille)/10)
	}
	return nil
}
