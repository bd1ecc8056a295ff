package escalation_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// migrationRig is a sred with incidents, escalation and changes, whose
// incident exports carry the escalation and change parts (as pkg/app wires
// them).
type migrationRig struct {
	*rig
	changes *change.Service
}

func newMigrationRig(t *testing.T, db *store.DB, clk *clock.Manual, ncfg *notify.Config) *migrationRig {
	t.Helper()
	require.NoError(t, db.Migrate(context.Background(), append(allMigrations, change.Migrations)...))
	r := &migrationRig{rig: &rig{db: db, clock: clk}}
	r.changes = change.New(change.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clk})
	r.changes.SetConfig(change.DefaultConfig)
	var hooks []incident.Hook
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return hooks }, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clk
	r.svc = svc
	r.dir = oncall.NewDirectory(db, decode[oncall.Config](t, oncallYAML))
	r.engine = escalation.NewEngine(db, decode[escalation.Config](t, escalationYAML), r.dir, ncfg, "https://sred.example.com",
		escalation.Options{Clock: clk, Timeline: svc, Registerer: prometheus.NewRegistry()})
	hooks = append(hooks, r.engine, r.changes.Hook(svc))
	svc.AddExportPart("escalation", escalation.ExportPart{Dialect: db.Dialect})
	svc.AddExportPart("changes", change.ExportPart{Dialect: db.Dialect})
	svc.SetCorrelation(&incident.Correlation{Window: time.Hour,
		DependsOn: map[string]map[string][]string{"db": {}, "api": {"db": {"api", "db"}}, "web": {}}})
	r.worker = jobs.NewWorker(db, escalation.Queue, r.engine.Handle, jobs.Options{Clock: clk, Kinds: escalation.Kinds, Registerer: prometheus.NewRegistry()})
	r.sender = notify.NewSender(db, ncfg, clk, svc, nil, prometheus.NewRegistry())
	return r
}

func (r *migrationRig) fire(t *testing.T, gk, service, status string, starts time.Time) *incident.IngestResult {
	t.Helper()
	l := map[string]string{"alertname": "Down", "service": service, "severity": "critical", "cluster": "eu-1"}
	a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-" + gk, StartsAt: starts, Labels: l, GeneratorURL: "http://prometheus:9090/graph",
		Annotations: map[string]string{"summary": service + " is <down> & out", "runbook_url": "https://runbooks.example.com/" + service}}
	if status == "resolved" {
		a.EndsAt = r.clock.Now()
	}
	res, err := r.svc.Ingest(context.Background(), incident.Notification{Receiver: "sred", Status: status, GroupKey: gk, CommonLabels: l,
		Alerts: []incident.NotifiedAlert{a}})
	require.NoError(t, err)
	return res
}

// TestMigrateSQLiteToPostgres moves a SQLite store of 100,000 incidents
// (bulkIncidents; 10,000 under the race detector, see volume_race_test.go) to
// PostgreSQL through Export and Import and compares every column of every
// exported table, row by row in both stores (streaming). A few incidents
// are written through sred's own write path (webhook deliveries with
// correlation, acknowledgement, notes, status updates, snoozes, action
// items, post-mortem, a linked change, a running escalation); the volume
// is bulk-inserted with every column set. After the move, the open
// incident's escalation goes on in PostgreSQL at the next level, without
// paging again the levels paged in SQLite; importing again adds nothing.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	ncfg := notifyConfig(t, sms, push, email, slack)
	clk := clock.NewManual(t0)

	srcDB, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer srcDB.Close()
	src := newMigrationRig(t, srcDB, clk, ncfg)

	// The write path: a database outage with a dependant attached, paged
	// at levels 0 and 1, still open.
	start := time.Now()
	dbInc := src.fire(t, "g-db", "db", "firing", clk.Now()).Created[0]
	src.tick(t)
	clk.Advance(time.Minute)
	require.Equal(t, []string{dbInc}, src.fire(t, "g-api", "api", "firing", clk.Now()).Incidents)
	clk.Advance(14 * time.Minute)
	src.tick(t)
	pagedBefore := src.paged(t, dbInc)
	require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "carol/sms", "carol/phone"}, pagedBefore)
	_, err = src.svc.AddNote(ctx, dbInc, "alice", "failing over the primary")
	require.NoError(t, err)
	_, err = src.svc.PostStatusUpdate(ctx, dbInc, incident.StatusUpdate{Actor: "alice", Impact: "checkout errors", Actions: "failover",
		NextUpdate: clk.Now().Add(30 * time.Minute), Public: true})
	require.NoError(t, err)

	// A change shortly before a web outage: linked as its likely cause.
	ch, err := src.changes.Record(ctx, change.Change{Service: "web", Source: change.SourceRollout, Version: "v2", Commit: "abc1234",
		CommitTime: tp(clk.Now().Add(-time.Hour)), Outcome: change.Succeeded, Actor: "ci", Key: "deploy-web-v2"})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	webInc := src.fire(t, "g-web", "web", "firing", clk.Now()).Created[0]
	_, err = src.svc.Acknowledge(ctx, webInc, "bob")
	require.NoError(t, err)
	_, err = src.svc.Snooze(ctx, webInc, "bob", time.Hour)
	require.NoError(t, err)
	_, err = src.svc.SetImpact(ctx, webInc, "bob", "pages slow")
	require.NoError(t, err)
	due := clk.Now().Add(7 * 24 * time.Hour)
	item, err := src.svc.AddActionItem(ctx, webInc, "bob", incident.ActionItem{Title: "canary the web rollout", Owner: "bob", DueAt: &due})
	require.NoError(t, err)
	state := incident.ActionInProgress
	_, err = src.svc.UpdateActionItem(ctx, webInc, item.ID, "bob", incident.ActionItemUpdate{State: &state})
	require.NoError(t, err)
	_, err = src.svc.AddActionItem(ctx, webInc, "bob", incident.ActionItem{Title: "alert on 5xx ratio"})
	require.NoError(t, err)
	// A resolved one that went through investigation and its post-mortem.
	clk.Advance(time.Minute)
	batchInc := src.fire(t, "g-batch", "batch", "firing", clk.Now()).Created[0]
	_, err = src.svc.Investigate(ctx, batchInc, "erin", "erin")
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, err = src.svc.Resolve(ctx, batchInc, "erin", "restarted")
	require.NoError(t, err)
	src.fire(t, "g-batch", "batch", "resolved", clk.Now().Add(-time.Minute))
	writePath := []string{dbInc, webInc, batchInc}

	// The volume, bulk-inserted.
	fillBulk(t, srcDB, bulkIncidents)
	t.Logf("filled SQLite with %d incidents in %s", bulkIncidents+len(writePath), time.Since(start).Round(time.Millisecond))

	// The destination: another process on PostgreSQL, the same clock.
	dstDB, err := store.OpenPostgres(ctx, testutil.PostgresSchemaURL(t), store.PostgresOptions{})
	require.NoError(t, err)
	defer dstDB.Close()
	dst := newMigrationRig(t, dstDB, clk, ncfg)

	start = time.Now()
	res := move(t, src, dst, time.Time{})
	require.Equal(t, incident.ImportResult{Imported: bulkIncidents + len(writePath)}, *res)
	t.Logf("exported and imported %d incidents in %s", res.Imported, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	compareStores(t, srcDB, dstDB)
	t.Logf("compared every exported table in %s", time.Since(start).Round(time.Millisecond))
	for _, id := range writePath {
		a, err := src.svc.Get(ctx, id)
		require.NoError(t, err)
		b, err := dst.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, a, b, id)
		pa, err := src.svc.Postmortem(ctx, id)
		require.NoError(t, err)
		pb, err := dst.svc.Postmortem(ctx, id)
		require.NoError(t, err)
		require.Equal(t, pa.Markdown, pb.Markdown, id)
	}
	linked, err := dst.changes.LinkedTo(ctx, webInc)
	require.NoError(t, err)
	require.Len(t, linked, 1)
	require.Equal(t, ch.ID, linked[0].ID)

	// Importing the newest ones again (export --since) adds nothing.
	res = move(t, src, dst, t0)
	require.Equal(t, incident.ImportResult{Skipped: len(writePath)}, *res)
	compareCounts(t, srcDB, dstDB)

	// The escalation goes on in PostgreSQL: level 2 (dave) at +30m, and
	// nobody paged in SQLite is paged again.
	clk.Advance(30*time.Minute - 18*time.Minute - time.Second)
	dst.tick(t)
	require.Empty(t, dst.paged(t, dbInc), "level 2 is not due yet")
	clk.Advance(time.Second)
	dst.tick(t)
	require.Equal(t, []string{"dave/sms", "dave/phone"}, dst.paged(t, dbInc))
	st, err := dst.engine.Get(ctx, dbInc)
	require.NoError(t, err)
	require.Equal(t, escalation.StateActive, st.State)
	require.Equal(t, 2, st.Level)
	// The acknowledged incident keeps its acknowledgement timeout.
	st, err = dst.engine.Get(ctx, webInc)
	require.NoError(t, err)
	require.Equal(t, escalation.StateAcknowledged, st.State)
	require.NotEmpty(t, st.Pending)

	// The next incident gets the next ID; a new change the next change ID.
	next := dst.fire(t, "g-new", "cache", "firing", clk.Now()).Created[0]
	require.Equal(t, "INC-2026-0004", next)
	c2, err := dst.changes.Record(ctx, change.Change{Service: "cache", Kind: change.KindConfig})
	require.NoError(t, err)
	require.Greater(t, c2.ID, int64(1000+(bulkIncidents-1)/1000), "after the imported changes")
}

// move exports src's incidents created since from and imports them into dst
// through a pipe, as `srectl incidents export | srectl incidents import -`.
func move(t *testing.T, src, dst *migrationRig, since time.Time) *incident.ImportResult {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := src.svc.Export(context.Background(), since, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	res, err := dst.svc.Import(context.Background(), pr)
	pr.CloseWithError(io.ErrClosedPipe)
	require.NoError(t, err)
	require.NoError(t, <-done)
	return res
}

// fillBulk inserts n incidents with every column set (nullable ones set on
// some rows and NULL on others), each with an alert, its group, two
// timeline entries, a link and an escalation state; every 10th with action
// items and a page, every 100th open one with a pending escalation step,
// every 1000th with a linked change (every 2000th one failed and rolled
// back later). Each 20,000 incidents are one
// transaction of multi-row inserts.
func fillBulk(t *testing.T, db *store.DB, n int) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	statuses := []string{"triggered", "acknowledged", "investigating", "resolved", "postmortem_done"}
	sevs := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	frozen := `{"policy":"default","severity":"HIGH","levels":[{"offset":0,"schedules":["primary"],"channels":["sms","push"]}],"repeat":0,"repeat_after":900000000000,"ack_timeout":1800000000000}`
	orNull := func(ok bool, v int64) any {
		if ok {
			return v
		}
		return nil
	}
	// The volume is written on one connection that does not wait for the
	// disk at each commit (synchronous=OFF, set back to FULL before the
	// connection goes back to the pool): it is this test's set-up, not
	// what it checks, and it took a quarter longer waiting for fsyncs
	// of the write-ahead log and its checkpoints on a loaded machine.
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	if db.Dialect == store.SQLite {
		_, err = conn.ExecContext(ctx, `PRAGMA synchronous = OFF`)
		require.NoError(t, err)
		defer func() {
			_, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`)
			require.NoError(t, err)
		}()
	}
	const per = 20_000
	for from := 0; from < n; from += per {
		var inc, alerts, groups, tl, links, items, states, pages, jobRows, changes, chLinks [][]any
		for i := from; i < min(n, from+per); i++ {
			id := fmt.Sprintf("INC-2025-%06d", i+1)
			at := base + int64(i)*60_000
			st := statuses[i%len(statuses)]
			open := i%len(statuses) < 3
			svc := fmt.Sprintf("svc-%d", i%50)
			gk := fmt.Sprintf(`{}/{service="%s"}:{alertname="Down%d"}`, svc, i)
			labels := fmt.Sprintf(`{"alertname":"Down%d","service":"%s","severity":"%s"}`, i, svc, strings.ToLower(sevs[i%4]))
			merged := ""
			if i%997 == 0 && i > 0 {
				merged = fmt.Sprintf("INC-2025-%06d", i)
			}
			inc = append(inc, []any{id, fmt.Sprintf("Down%d on %s", i, svc), svc, sevs[i%4], st, labels, gk, "sred",
				`["https://runbooks.example.com/` + svc + `"]`, []string{"", "alice", "bob"}[i%3], []string{"", "checkout slow"}[i%2],
				i % 7 / 6, i % 3, []string{"", "automation"}[i%11/10], at - 30_000, at, orNull(st != "triggered", at+120_000),
				orNull(i%5 == 2, at+180_000), orNull(!open, at+600_000), orNull(!open || i%13 == 0, at+590_000),
				orNull(st == "postmortem_done", at+86_400_000), at + 600_000, orNull(open && i%4 == 1, at+3_600_000), svc,
				orNull(i%17 == 0, at+300_000), merged})
			alerts = append(alerts, []any{gk, fmt.Sprintf("%016x", i), at - 30_000, id, []string{"firing", "resolved"}[i%2],
				orNull(i%2 == 1, at+590_000), labels, `{"summary":"` + svc + ` is down"}`, "http://prometheus:9090/graph?i=" + fmt.Sprint(i),
				at, at + 590_000})
			groups = append(groups, []any{gk, id, at + int64(i%3)*1000})
			tl = append(tl, []any{id, at, "alert_fired", "alertmanager", "Down" + fmt.Sprint(i) + " fired", `{"fingerprint":"` + fmt.Sprintf("%016x", i) + `"}`},
				[]any{id, at + 60_000, "note", "alice", "looking <into> it & more", "{}"})
			links = append(links, []any{id, gk, svc, labels, "opened", "", at})
			states = append(states, []any{id, "default", frozen, `{"id":"` + id + `","title":"Down","service":"` + svc + `","severity":"HIGH","labels":{},"started":"2025-01-01T00:00:00Z"}`,
				1 + i%2, map[bool]string{true: "active", false: "resolved"}[open], i % 3, at, at + 1000})
			if i%10 == 0 {
				items = append(items, []any{id, "fix " + svc, "bob", "open", orNull(i%20 == 0, at+7*86_400_000), at, at},
					[]any{id, "document " + svc, "", "done", nil, at + 1, at + 2})
				pages = append(pages, []any{id, 1 + i%2, "bob", 0, at + 5000})
			}
			if open && i%100 == 0 {
				jobRows = append(jobRows, []any{escalation.Queue, "step", fmt.Sprintf("%s/%d/step/0/1", id, 1+i%2), id, at + 2*365*86_400_000,
					fmt.Sprintf(`{"incident":%q,"epoch":%d,"cycle":0,"level":1}`, id, 1+i%2), "pending", 0, "", at, "step"})
			}
			if i%1000 == 0 {
				cid := int64(1000 + i/1000)
				// Every other one failed and was rolled back later.
				outcome, rolledBack := "succeeded", i%2000 == 0
				if rolledBack {
					outcome = "rolled_back"
				}
				changes = append(changes, []any{cid, svc, "deploy", "api", "", "v" + fmt.Sprint(i), "deadbeef", at - 7_200_000, "deploy " + svc,
					"ci", outcome, 1, "", "", "", 0, "", at - 600_000, at - 300_000, fmt.Sprintf("bulk-%d", i), orNull(rolledBack, at-200_000)})
				chLinks = append(chLinks, []any{cid, id, svc, at, orNull(!open, at+600_000)})
			}
		}
		err := inConnTx(ctx, conn, func(tx *sql.Tx) error {
			for _, ins := range []struct {
				table string
				cols  string
				rows  [][]any
			}{
				{"incidents", "id, title, service, severity, status, labels, group_key, receiver, runbook_urls, assignee, impact, flapping, reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at, snoozed_until, root_service, recovering_since, merged_into", inc},
				{"incident_alerts", "group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at", alerts},
				{"alert_groups", "group_key, incident_id, last_delivery_at", groups},
				{"incident_timeline", "incident_id, at, kind, actor, message, data", tl},
				{"incident_links", "incident_id, group_key, service, labels, reason, explanation, attached_at", links},
				{"incident_action_items", "incident_id, title, owner, state, due_at, created_at, updated_at", items},
				{"escalation_state", "incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at", states},
				{"escalation_pages", "incident_id, epoch, user_name, level, paged_at", pages},
				{"changes", "id, service, kind, source, ref, version, commit_sha, commit_at, description, actor, outcome, failed, gate_decision, gate_state, gate_reason, gate_override, override_reason, started_at, finished_at, idem_key, rolled_back_at", changes},
				{"change_incidents", "change_id, incident_id, service, opened_at, resolved_at", chLinks},
			} {
				if err := store.InsertRows(ctx, tx, db.Dialect, ins.table, strings.Split(ins.cols, ", "), ins.rows, ""); err != nil {
					return err
				}
			}
			for _, j := range jobRows {
				if _, err := jobs.Enqueue(ctx, tx, time.UnixMilli(j[9].(int64)), jobs.New{Queue: escalation.Queue, Kind: escalation.KindStep,
					Key: j[2].(string), Group: j[3].(string), RunAt: time.UnixMilli(j[4].(int64)), Payload: json.RawMessage(j[5].(string))}); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO incident_seq (year, last) VALUES (2025, $1)`, n)
	require.NoError(t, err)
}

// inConnTx is store.DB.InTx on one connection.
func inConnTx(ctx context.Context, conn *sql.Conn, fn func(tx *sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck
		return err
	}
	return tx.Commit()
}

// exportedTables are the tables an export carries, with the columns
// compared (all but surrogate keys: timeline entries and jobs get new IDs,
// in the same order) and the order rows are read in.
var exportedTables = []struct {
	table, cols, where string
	order              []string // "name" or "name:text" (compared bytewise)
}{
	{"incidents", "id, title, service, severity, status, labels, group_key, receiver, runbook_urls, assignee, impact, flapping, reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at, snoozed_until, root_service, recovering_since, merged_into", "", []string{"id:text"}},
	{"incident_seq", "year, last", "", []string{"year"}},
	{"alert_groups", "group_key, incident_id, last_delivery_at", "incident_id IS NOT NULL", []string{"group_key:text"}},
	{"incident_alerts", "group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at", "incident_id IS NOT NULL", []string{"group_key:text", "fingerprint:text", "starts_at"}},
	{"incident_timeline", "incident_id, at, kind, actor, message, data", "", []string{"incident_id:text", "id"}},
	// Action items keep their IDs (the post-mortem and the API name them).
	{"incident_links", "incident_id, group_key, service, labels, reason, explanation, attached_at", "", []string{"incident_id:text", "group_key:text"}},
	{"incident_action_items", "id, incident_id, title, owner, state, due_at, created_at, updated_at", "", []string{"incident_id:text", "id"}},
	{"escalation_state", "incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at, acked_by", "", []string{"incident_id:text"}},
	{"escalation_pages", "incident_id, epoch, user_name, level, paged_at", "", []string{"incident_id:text", "epoch", "user_name:text", "level"}},
	{"jobs", "queue, kind, dedup_key, grp, run_at, payload, state, attempts, last_error, created_at", "queue = 'escalation' AND state = 'pending'", []string{"dedup_key:text"}},
	{"changes", "id, service, kind, source, ref, version, commit_sha, commit_at, description, actor, outcome, failed, gate_decision, gate_state, gate_reason, gate_override, override_reason, started_at, finished_at, idem_key, rolled_back_at", "", []string{"id"}},
	{"change_incidents", "change_id, incident_id, service, opened_at, resolved_at", "", []string{"change_id", "incident_id:text"}},
}

func tableQuery(db *store.DB, table, cols, where string, order []string) string {
	q := "SELECT " + cols + " FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var ob []string
	for _, o := range order {
		name, text := strings.CutSuffix(o, ":text")
		if text && db.Dialect == store.Postgres {
			name += ` COLLATE "C"`
		}
		ob = append(ob, name)
	}
	return q + " ORDER BY " + strings.Join(ob, ", ")
}

// compareStores reads every exported table from both stores in the same
// order and compares them row by row, column by column; a row missing on
// either side fails.
func compareStores(t *testing.T, a, b *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, tb := range exportedTables {
		cols := strings.Split(tb.cols, ", ")
		ra, err := a.QueryContext(ctx, tableQuery(a, tb.table, tb.cols, tb.where, tb.order))
		require.NoError(t, err)
		rb, err := b.QueryContext(ctx, tableQuery(b, tb.table, tb.cols, tb.where, tb.order))
		require.NoError(t, err)
		va, vb := make([]any, len(cols)), make([]any, len(cols))
		pa, pb := make([]any, len(cols)), make([]any, len(cols))
		for i := range cols {
			pa[i], pb[i] = &va[i], &vb[i]
		}
		n := 0
		for {
			na, nb := ra.Next(), rb.Next()
			if !na || !nb {
				require.NoError(t, ra.Err())
				require.NoError(t, rb.Err())
				require.Equal(t, na, nb, "%s: SQLite has more rows: %v, PostgreSQL has more rows: %v (after %d equal rows)", tb.table, na, nb, n)
				break
			}
			require.NoError(t, ra.Scan(pa...))
			require.NoError(t, rb.Scan(pb...))
			for i, c := range cols {
				if x, y := norm(va[i]), norm(vb[i]); x != y {
					t.Fatalf("%s row %d (%v): column %s: SQLite %q, PostgreSQL %q", tb.table, n, norm(va[0]), c, x, y)
				}
			}
			n++
		}
		ra.Close()
		rb.Close()
		require.Positive(t, n, tb.table)
		t.Logf("%s: %d rows equal", tb.table, n)
	}
}

func compareCounts(t *testing.T, a, b *store.DB) {
	t.Helper()
	for _, tb := range exportedTables {
		q := "SELECT COUNT(*) FROM " + tb.table
		if tb.where != "" {
			q += " WHERE " + tb.where
		}
		var na, nb int
		require.NoError(t, a.QueryRow(q).Scan(&na))
		require.NoError(t, b.QueryRow(q).Scan(&nb))
		require.Equal(t, na, nb, tb.table)
	}
}

func norm(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return "s:" + string(v)
	case string:
		return "s:" + v
	default:
		return fmt.Sprintf("%T:%v", v, v)
	}
}

func tp(t time.Time) *time.Time { return &t }

// TestImportPartLongValuesCut: an imported escalation state or timer kind
// that is not one is quoted cut at 64 bytes ending with "…" (limits.Quote),
// never the 5,000 characters whole.
func TestImportPartLongValuesCut(t *testing.T) {
	long := strings.Repeat("n", 5000)
	cut := `"` + strings.Repeat("n", 61) + `…"`
	valid := `"epoch":1,"level":0,"started_at":"2026-11-27T12:00:00Z","frozen":{},"snapshot":{}`
	for _, tc := range []struct{ name, raw, err string }{
		{"state", `{"state":"` + long + `",` + valid + `}`, "state: " + cut + " is not an escalation state"},
		{"timer kind", `{"state":"active",` + valid + `,"timers":[{"kind":"` + long + `"}]}`, "timers[0].kind: " + cut + " is not an escalation timer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, escalation.ExportPart{}.ValidateIncident("INC-2026-0001", json.RawMessage(tc.raw)), tc.err)
		})
	}
}

// TestImportPartTypeErrorsNameJSON: a value of the wrong type in an
// imported escalation part named the Go type it did not decode into
// ("want int", "want time.Time"); it names the field's path and the JSON
// it wants, as the API's bodies and the rest of the import line do.
func TestImportPartTypeErrorsNameJSON(t *testing.T) {
	valid := `"state":"active","frozen":{},"snapshot":{}`
	for _, tc := range []struct{ name, raw, err string }{
		{"level", `{` + valid + `,"epoch":1,"level":"two","started_at":"2026-11-27T12:00:00Z"}`, "level: want an integer, got a string"},
		{"time", `{` + valid + `,"epoch":1,"level":0,"started_at":1764244800}`, "started_at: want an RFC 3339 time, got a number"},
		{"in a list", `{` + valid + `,"epoch":1,"level":0,"started_at":"2026-11-27T12:00:00Z","pages":[{"epoch":1,"user":["rita"]}]}`,
			"pages[0].user: want a string, got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, escalation.ExportPart{}.ValidateIncident("INC-2026-0001", json.RawMessage(tc.raw)), tc.err)
		})
	}
}
