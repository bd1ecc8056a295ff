package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

// The PostgreSQL ceiling: after a postgres set-up's steps, pgbench writes
// the rows that the deliveries of its last step wrote, copied from a
// delivery that opened an incident and one that joined one, in one
// transaction per delivery and in the same proportion, against the same
// schema, at every number of connections of the steps. It is what
// PostgreSQL gives for those writes on this machine with a client that
// does nothing else (prepared statements, none of sred's reads, no
// escalation steps afterwards): an upper bound for sred's deliveries/s on
// PostgreSQL, as the no-op handler is over HTTP. sqliteceiling.go does the
// same on SQLite with the same sample.

// deliverySample is what the ceilings' transactions copy: a delivery that opened
// an incident (its incident, group and creation time) and one that joined
// an incident opened by another group, each with the ids of the timeline
// entries and jobs it wrote.
type deliverySample struct {
	schema string
	// create: the incident, the group that opened it, its timeline
	// entries and jobs written at its creation.
	createInc, createGroup string
	createTimeline         []int64
	createJobs             []int64
	// join: the incident joined and the joining group, its timeline
	// entries written then (one per kind).
	joinInc, joinGroup string
	joinTimeline       []int64
	// permille of the step's deliveries that opened an incident.
	createPermille int
}

// pgCeilingSample reads the sample from the store of the step of prefix.
func (s *sredSet) pgCeilingSample(prefix string) (*deliverySample, error) {
	u, err := url.Parse(s.postgresURL)
	if err != nil {
		return nil, err
	}
	schema := u.Query().Get("search_path")
	if schema == "" {
		return nil, errors.New("no schema in the store's URL")
	}
	db, err := sql.Open("pgx", s.postgresURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	sm, err := readSample(db, "strpos", prefix)
	if err != nil {
		return nil, err
	}
	sm.schema = schema
	return sm, nil
}

// readSample reads the sample of the step of prefix from db (find: the
// backend's substring search).
func readSample(db *sql.DB, find, prefix string) (*deliverySample, error) {
	sm := &deliverySample{}
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	group := `group="` + prefix + `-`
	var createdAt, attachedAt int64
	// An incident with jobs (its escalation's first step) when there is
	// one: with a configuration whose escalation policies match no
	// incident, none has any.
	if err := db.QueryRowContext(ctx, `SELECT i.id, i.group_key, i.created_at FROM incidents i
WHERE `+find+`(i.group_key, $1) > 0
ORDER BY CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.grp = i.id) THEN 0 ELSE 1 END, i.created_at, i.id LIMIT 1`, group).Scan(&sm.createInc, &sm.createGroup, &createdAt); err != nil {
		return nil, fmt.Errorf("a delivery that opened an incident: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT l.incident_id, l.group_key, l.attached_at FROM incident_links l
WHERE `+find+`(l.group_key, $1) > 0 AND l.reason <> 'opened' ORDER BY l.attached_at LIMIT 1`, group).Scan(&sm.joinInc, &sm.joinGroup, &attachedAt); err != nil {
		return nil, fmt.Errorf("a delivery that joined an incident: %w", err)
	}
	ids := func(q string, args ...any) ([]int64, error) {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, rows.Err()
	}
	if sm.createTimeline, err = ids(`SELECT id FROM incident_timeline WHERE incident_id = $1 AND at = $2 ORDER BY id`, sm.createInc, createdAt); err != nil {
		return nil, err
	}
	if sm.createJobs, err = ids(`SELECT id FROM jobs WHERE grp = $1 AND created_at = $2 ORDER BY id`, sm.createInc, createdAt); err != nil {
		return nil, err
	}
	// Other deliveries may have joined the incident in the same
	// millisecond: one entry of each kind is what one delivery writes.
	if sm.joinTimeline, err = ids(`SELECT MIN(id) FROM incident_timeline WHERE incident_id = $1 AND at = $2 GROUP BY kind ORDER BY 1`, sm.joinInc, attachedAt); err != nil {
		return nil, err
	}
	var stored, opened int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM alert_groups WHERE `+find+`(group_key, $1) > 0),
	(SELECT count(*) FROM incidents WHERE `+find+`(group_key, $1) > 0)`, group).Scan(&stored, &opened); err != nil {
		return nil, err
	}
	if stored == 0 {
		return nil, errors.New("the step stored no delivery")
	}
	sm.createPermille = 1000 * opened / stored
	return sm, nil
}

// script is one delivery as pgbench runs it: the rows of the
// opening delivery or of the joining one (chosen at random in the step's
// proportion), copied under a new group key and, for an opening one, a new
// incident ID. :client_id and :g make the keys unique; the sample's keys
// are variables (-D), so they travel as parameters, never as SQL text.
// A new group key ends with the sample's (ceilingGroup), as long as the
// keys sred stored.
func (sm *deliverySample) script() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\\set g random(1, 1000000000000)\n\\set create random(1, 1000) <= %d\nBEGIN;\n", sm.createPermille)
	b.WriteString("\\if :create\n")
	sm.opening(&b, 0)
	b.WriteString("\\else\n")
	sm.joining(&b, 0)
	b.WriteString("\\endif\nCOMMIT;\n")
	return b.String()
}

// setScript is n deliveries in one transaction as a set-based ingestion
// path would write them: the rows of the opening ones (the step's share of
// n, rounded) in one statement per table, then the joining ones' the
// same way, each statement over generate_series (s, part of the new keys).
func (sm *deliverySample) setScript(n int) string {
	opening := (n*sm.createPermille + 500) / 1000
	var b strings.Builder
	b.WriteString("\\set g random(1, 1000000000000)\nBEGIN;\n")
	if opening > 0 {
		sm.opening(&b, opening)
	}
	if n > opening {
		sm.joining(&b, n-opening)
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// copySet is how the statements of opening and joining write one
// delivery (n 0) or n at once.
type copySet struct {
	schema string
	n      int
}

// t is a table of the sample's schema.
func (c copySet) t(name string) string { return `"` + c.schema + `".` + name }

// from is the source of a copying INSERT ... SELECT: the table, times n.
func (c copySet) from(name string) string {
	if c.n == 0 {
		return c.t(name)
	}
	return fmt.Sprintf("%s CROSS JOIN generate_series(1, %d) AS s", c.t(name), c.n)
}

// series is what makes a new key unique within the transaction.
func (c copySet) series() string {
	if c.n == 0 {
		return ""
	}
	return " || '/' || s"
}

// newInc is a new incident's ID.
func (c copySet) newInc() string {
	if c.n == 0 {
		return `'CEIL-' || :client_id || '-' || :g`
	}
	return `'CEIL-' || :client_id || '-' || :g || '-' || s`
}

// newGroup is a new group key ending with the sample's from.
func (c copySet) newGroup(from string) string {
	return `'ceiling/' || :client_id || '/' || :g` + c.series() + ` || '/' || ` + from
}

// insertGroup writes the new groups (no incident yet, as sred's first
// statement does).
func (c copySet) insertGroup(b *strings.Builder, group string) {
	if c.n == 0 {
		fmt.Fprintf(b, "INSERT INTO %s (group_key, incident_id, last_delivery_at) VALUES (%s, NULL, 0);\n", c.t("alert_groups"), group)
		return
	}
	fmt.Fprintf(b, "INSERT INTO %s (group_key, incident_id, last_delivery_at) SELECT %s, NULL, 0 FROM generate_series(1, %d) AS s;\n",
		c.t("alert_groups"), group, c.n)
}

// placeGroup sets the new groups' incident.
func (c copySet) placeGroup(b *strings.Builder, group, inc string) {
	if c.n == 0 {
		fmt.Fprintf(b, "UPDATE %s SET incident_id = %s WHERE group_key = %s;\n", c.t("alert_groups"), inc, group)
		return
	}
	fmt.Fprintf(b, "UPDATE %s SET incident_id = %s FROM generate_series(1, %d) AS s WHERE group_key = %s;\n", c.t("alert_groups"), inc, c.n, group)
}

// opening writes the statements of an opening delivery (n 0) or of n.
func (sm *deliverySample) opening(b *strings.Builder, n int) {
	c := copySet{schema: sm.schema, n: n}
	newGroup := c.newGroup(":cg")
	newInc := c.newInc()
	c.insertGroup(b, newGroup)
	fmt.Fprintf(b, `INSERT INTO %[1]s (id, title, service, severity, status, labels, group_key, receiver, runbook_urls, assignee, impact, flapping,
	reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at,
	snoozed_until, root_service, recovering_since, merged_into)
SELECT %[2]s, title, service, severity, status, labels, %[3]s, receiver, runbook_urls, assignee, impact, flapping,
	reopen_count, mitigated_by, detected_at, created_at, acknowledged_at, investigating_at, resolved_at, recovered_at, postmortem_at, updated_at,
	snoozed_until, root_service, recovering_since, merged_into FROM %[4]s WHERE id = :ci;
`, c.t("incidents"), newInc, newGroup, c.from("incidents"))
	c.copyRows(b, newInc, newGroup, ":ci", ":cg", sm.createTimeline)
	fmt.Fprintf(b, `INSERT INTO %[1]s (incident_id, service, last_at) SELECT %[2]s, service, last_at FROM %[3]s WHERE incident_id = :ci;
`, c.t("incident_link_services"), newInc, c.from("incident_link_services"))
	fmt.Fprintf(b, `INSERT INTO %[1]s (incident_id, policy, frozen, snapshot, epoch, state, level, started_at, updated_at)
SELECT %[2]s, policy, frozen, snapshot, epoch, state, level, started_at, updated_at FROM %[3]s WHERE incident_id = :ci;
`, c.t("escalation_state"), newInc, c.from("escalation_state"))
	if len(sm.createJobs) > 0 {
		fmt.Fprintf(b, `INSERT INTO %[1]s (queue, kind, dedup_key, grp, run_at, payload, state, attempts, last_error, created_at)
SELECT queue, kind, dedup_key || '/' || %[2]s, %[2]s, run_at, payload, 'pending', 0, '', created_at FROM %[3]s WHERE id IN (%[4]s);
`, c.t("jobs"), newInc, c.from("jobs"), idList(sm.createJobs))
	}
	c.placeGroup(b, newGroup, newInc)
}

// joining writes the statements of a joining delivery (n 0) or of n.
func (sm *deliverySample) joining(b *strings.Builder, n int) {
	c := copySet{schema: sm.schema, n: n}
	newGroup := c.newGroup(":jg")
	c.insertGroup(b, newGroup)
	c.copyRows(b, ":ji", newGroup, ":ji", ":jg", sm.joinTimeline)
	c.placeGroup(b, newGroup, ":ji")
}

// ceilingGroup is the group key of a ceiling's delivery g of client:
// unique, and ending with the sample's key from, so that the ceiling
// writes keys as long as the ones sred stored (a group key is in every
// alert row and its key index; keys of a dozen bytes made the replay about
// a tenth faster than with the benchmark's 100-byte ones, measured).
// pgbench's script builds the same key in SQL.
func ceilingGroup(client, g int, from string) string {
	return "ceiling/" + strconv.Itoa(client) + "/" + strconv.Itoa(g) + "/" + from
}

// copyRows writes the statements copying a delivery's alerts, link and
// timeline entries (of the group fromGroup on the incident fromInc) to the
// group toGroup on the incident toInc.
func (c copySet) copyRows(b *strings.Builder, toInc, toGroup, fromInc, fromGroup string, timeline []int64) {
	fmt.Fprintf(b, `INSERT INTO %[1]s (group_key, fingerprint, starts_at, incident_id, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at)
SELECT %[2]s, fingerprint, starts_at, %[3]s, status, ends_at, labels, annotations, generator_url, first_seen_at, updated_at FROM %[4]s WHERE group_key = %[5]s;
`, c.t("incident_alerts"), toGroup, toInc, c.from("incident_alerts"), fromGroup)
	fmt.Fprintf(b, `INSERT INTO %[1]s (incident_id, group_key, service, labels, reason, explanation, attached_at)
SELECT %[2]s, %[3]s, service, labels, reason, explanation, attached_at FROM %[4]s WHERE incident_id = %[5]s AND group_key = %[6]s;
`, c.t("incident_links"), toInc, toGroup, c.from("incident_links"), fromInc, fromGroup)
	if len(timeline) > 0 {
		fmt.Fprintf(b, `INSERT INTO %[1]s (incident_id, at, kind, actor, message, data)
SELECT %[2]s, at, kind, actor, message, data FROM %[3]s WHERE id IN (%[4]s) ORDER BY id;
`, c.t("incident_timeline"), toInc, c.from("incident_timeline"), idList(timeline))
	}
}

// idList is ids as an SQL list.
func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

// pgbenchResult is what one pgbench run measured.
type pgbenchResult struct {
	tps          float64
	done, failed int
	latencyAvg   time.Duration
	elapsed, cpu time.Duration
	output       string
}

var (
	pgbenchTPS    = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	pgbenchDone   = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	pgbenchFailed = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	pgbenchAvg    = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// parsePgbench reads pgbench's report.
func parsePgbench(out string) (*pgbenchResult, error) {
	r := &pgbenchResult{output: out}
	m := pgbenchTPS.FindStringSubmatch(out)
	d := pgbenchDone.FindStringSubmatch(out)
	if m == nil || d == nil {
		return nil, fmt.Errorf("no tps in pgbench's report:\n%s", out)
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	r.done, _ = strconv.Atoi(d[1])
	if f := pgbenchFailed.FindStringSubmatch(out); f != nil {
		r.failed, _ = strconv.Atoi(f[1])
	}
	if a := pgbenchAvg.FindStringSubmatch(out); a != nil {
		ms, _ := strconv.ParseFloat(a[1], 64)
		r.latencyAvg = time.Duration(ms * float64(time.Millisecond))
	}
	return r, nil
}

// runPgbench runs the sample's script on conns connections for d against
// the database of base (the store's URL without its schema, which the
// script names), or for transactions transactions per connection when
// transactions > 0.
func runPgbench(binary, base, dir string, sm *deliverySample, conns int, d time.Duration, transactions int) (*pgbenchResult, error) {
	return runPgbenchScript(binary, base, filepath.Join(dir, "pgbench-delivery.sql"), sm.script(), sm, conns, d, transactions)
}

// runPgbenchScript runs text, written to the file script, as runPgbench
// runs the sample's script.
func runPgbenchScript(binary, base, script, text string, sm *deliverySample, conns int, d time.Duration, transactions int) (*pgbenchResult, error) {
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--no-vacuum", "--protocol=prepared", "--client=" + strconv.Itoa(conns), "--jobs=" + strconv.Itoa(min(conns, 2)),
		"--file=" + script,
		"--define=ci=" + sm.createInc, "--define=cg=" + sm.createGroup, "--define=ji=" + sm.joinInc, "--define=jg=" + sm.joinGroup}
	if transactions > 0 {
		args = append(args, "--transactions="+strconv.Itoa(transactions))
	} else {
		args = append(args, "--time="+strconv.Itoa(max(1, int(d.Seconds()))))
	}
	args = append(args, libpqURL(base))
	cmd := exec.Command(binary, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	r, err := parsePgbench(string(out))
	if err != nil {
		return nil, err
	}
	r.elapsed = elapsed
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	return r, nil
}

// libpqURL is the PostgreSQL URL u as libpq reads it: without the
// parameters only pgx knows (search_path: the script names its schema).
func libpqURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Del("search_path")
	p.RawQuery = q.Encode()
	return p.String()
}

// pgbenchTarget is the target column of the ceiling's rows.
const pgbenchTarget = "pgbench"

// pgbenchSetTarget is the target column of the set-based ceiling's rows
// (--pgbench.set=n).
func pgbenchSetTarget(n int) string { return fmt.Sprintf("%s-set%d", pgbenchTarget, n) }

// ceiling runs the PostgreSQL ceiling after a set-up's steps: pgbench at
// every number of connections of the steps, for as long as a step (or, on
// the Go client, as many deliveries as its --max-requests), each a row of
// the table; last is sred's deliveries/s in its last step, given as a
// share of pgbench's at the same number of connections.
func (s *sredSet) ceiling(w io.Writer, o options, tab stepTable, st setup, dir, prefix string, last float64) error {
	sm, err := s.pgCeilingSample(prefix)
	if err != nil {
		return err
	}
	// row runs text (per deliveries a transaction) and prints its row.
	row := func(target, file, text string, per, c int) (*pgbenchResult, error) {
		transactions := 0
		if o.driver == "go" {
			transactions = (o.maxRequests + c*per - 1) / (c * per)
		}
		db0 := s.pg.cpu()
		r, err := runPgbenchScript(o.pgbench, s.postgresURL, filepath.Join(dir, file), text, sm, c, o.duration, transactions)
		if err != nil {
			return nil, err
		}
		r.tps *= float64(per)
		r.done *= per
		dbCol := "-"
		if dbK, ok := cpuPer1k(cpuSpent(db0, s.pg.cpu()), r.done); ok {
			dbCol = fmt.Sprintf("%.2f", dbK)
		}
		gen, cores := "-", "-"
		if r.done > 0 && r.cpu > 0 {
			gen = fmt.Sprintf("%.2f", r.cpu.Seconds()*1000/float64(r.done))
			cores = fmt.Sprintf("%.2f", r.cpu.Seconds()/r.elapsed.Seconds())
		}
		fmt.Fprint(w, tab.row(target, st.name, strconv.Itoa(c), fmt.Sprintf("%.0f", r.tps), "-", "-", "-",
			strconv.Itoa(r.done), strconv.Itoa(r.failed), "-", "-", dbCol, gen, cores, "-", benchenv.LoadAvg()))
		if r.failed > 0 {
			fmt.Fprintf(os.Stderr, "  pgbench: %d failed transactions\n%s\n", r.failed, r.output)
		}
		return r, nil
	}
	for i, c := range o.conns {
		r, err := row(pgbenchTarget, "pgbench-delivery.sql", sm.script(), 1, c)
		if err != nil {
			return err
		}
		if i == len(o.conns)-1 && r.tps > 0 {
			fmt.Fprintf(os.Stderr, "  %s: sred's last step reached %.0f%% of pgbench's deliveries/s at %d connections (latency average %.1f ms; %.1f%% of its deliveries opened an incident)\n",
				st.name, 100*last/r.tps, c, benchenv.Millis(r.latencyAvg), float64(sm.createPermille)/10)
		}
		if n := o.pgbenchSet; n > 1 {
			if _, err := row(pgbenchSetTarget(n), "pgbench-set.sql", sm.setScript(n), n, c); err != nil {
				return err
			}
		}
	}
	return nil
}
