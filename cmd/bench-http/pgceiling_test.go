package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestPgCeiling runs the PostgreSQL ceiling as bench-http does after a
// postgres set-up's steps: a real sred on a fresh schema takes 20
// deliveries, pgbench copies what the deliveries wrote, and every one of
// its transactions is one delivery's rows, for a new group: an opening one
// (a new incident with its escalation state, link, timeline entries and
// jobs, as many as the sample's) or a joining one (on the sample's joined
// incident).
func TestPgCeiling(t *testing.T) {
	pgbench, err := exec.LookPath("pgbench")
	require.NoError(t, err, "pgbench (PostgreSQL's client) is needed")
	const prefix = "ceiling-test"
	dir := t.TempDir()
	set := sredWithDeliveries(t, dir, setups["postgres"], exampleConfig(t), prefix)

	sm, err := set.pgCeilingSample(prefix)
	require.NoError(t, err)
	require.NotEmpty(t, sm.createTimeline, "the opening delivery's timeline entries")
	require.NotEmpty(t, sm.createJobs, "the opening delivery's jobs (its escalation's first step)")
	require.NotEmpty(t, sm.joinTimeline, "the joining delivery's timeline entries")
	require.NotEqual(t, sm.createGroup, sm.joinGroup, "a delivery that joined another group's incident")
	require.True(t, sm.createPermille > 0 && sm.createPermille < 1000, "some deliveries opened an incident, some joined one: %d‰", sm.createPermille)

	const clients, each = 2, 10
	res, err := runPgbench(pgbench, set.postgresURL, dir, sm, clients, 0, each)
	require.NoError(t, err)
	require.Equal(t, clients*each, res.done, "transactions:\n%s", res.output)
	require.Zero(t, res.failed)
	require.Positive(t, res.tps)

	db, err := sql.Open("pgx", set.postgresURL)
	require.NoError(t, err)
	defer db.Close()
	checkCopies(t, db, sm, clients*each)

	// The set-based ceiling (--pgbench.set): every transaction writes per
	// deliveries, the step's share of them opening incidents, with the
	// same rows as that many deliveries one by one.
	opened := func() int {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM incidents WHERE id LIKE 'CEIL-%'`).Scan(&n))
		return n
	}
	before := opened()
	const transactions, per = 3, 16
	res, err = runPgbenchScript(pgbench, set.postgresURL, filepath.Join(dir, "set.sql"), sm.setScript(per), sm, clients, 0, transactions)
	require.NoError(t, err)
	require.Equal(t, clients*transactions, res.done, "transactions:\n%s", res.output)
	require.Zero(t, res.failed)
	checkCopies(t, db, sm, clients*each+clients*transactions*per)
	require.Equal(t, clients*transactions*((per*sm.createPermille+500)/1000), opened()-before, "opening deliveries of the set-based transactions")
}

// checkCopies checks the rows that n replayed deliveries of sm wrote to
// db: a new group each, with the sample's 10 alerts and its link, on a new
// incident with the opening delivery's escalation state, timeline entries
// and jobs, or on the joined incident with one more timeline entry of each
// of the joining delivery's kinds.
func checkCopies(t *testing.T, db *sql.DB, sm *deliverySample, n int) {
	t.Helper()
	ctx := context.Background()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, db.QueryRowContext(ctx, q, args...).Scan(&n), q)
		return n
	}
	rows, err := db.QueryContext(ctx, `SELECT group_key, incident_id FROM alert_groups WHERE group_key LIKE 'ceiling/%'`)
	require.NoError(t, err)
	groups := map[string]string{}
	for rows.Next() {
		var g string
		var inc sql.NullString
		require.NoError(t, rows.Scan(&g, &inc))
		require.True(t, inc.Valid, "group %s placed on an incident", g)
		groups[g] = inc.String
	}
	require.NoError(t, rows.Err())
	require.Len(t, groups, n, "one new group per delivery")
	opened := 0
	for g, inc := range groups {
		// A copy's key ends with its sample's, as long as sred's keys.
		from := sm.createGroup
		if inc == sm.joinInc {
			from = sm.joinGroup
		}
		require.True(t, strings.HasSuffix(g, "/"+from), "group %s is a copy of %s", g, from)
		require.Equal(t, 10, count(`SELECT count(*) FROM incident_alerts WHERE group_key = $1 AND incident_id = $2`, g, inc), "the alerts of %s", g)
		require.Equal(t, 1, count(`SELECT count(*) FROM incident_links WHERE group_key = $1 AND incident_id = $2`, g, inc), "the link of %s", g)
		if inc == sm.joinInc {
			continue
		}
		require.True(t, strings.HasPrefix(inc, "CEIL-"), "group %s opened a new incident, or joined %s: %s", g, sm.joinInc, inc)
		opened++
		require.Equal(t, 1, count(`SELECT count(*) FROM incidents WHERE id = $1 AND group_key = $2`, inc, g))
		require.Equal(t, 1, count(`SELECT count(*) FROM escalation_state WHERE incident_id = $1`, inc))
		require.Equal(t, len(sm.createTimeline), count(`SELECT count(*) FROM incident_timeline WHERE incident_id = $1`, inc))
		require.Equal(t, len(sm.createJobs), count(`SELECT count(*) FROM jobs WHERE grp = $1`, inc))
	}
	joined := n - opened
	// The joined incident holds the sample's own entries besides the
	// copies: each joining delivery adds one entry per kind.
	require.Equal(t, joined*len(sm.joinTimeline), count(`SELECT count(*) FROM incident_timeline t WHERE incident_id = $1
		AND EXISTS (SELECT 1 FROM incident_timeline s WHERE s.id IN (`+idList(sm.joinTimeline)+`) AND s.kind = t.kind AND s.data = t.data AND s.id <> t.id)`, sm.joinInc))
}

// TestSQLiteReplay runs the SQLite ceiling as bench-http does after the
// sqlite set-up's steps: a real sred on SQLite takes 20 deliveries and
// stops, and the replay writes 40 deliveries' rows into its store (more
// than one transaction of replayBatch), in the step's proportion of
// opening and joining ones.
func TestSQLiteReplay(t *testing.T) {
	const prefix = "replay-test"
	set := sredWithDeliveries(t, t.TempDir(), setups["sqlite"], exampleConfig(t), prefix)
	set.stopProcs()

	db, err := sql.Open("sqlite", "file:"+set.sqlitePath)
	require.NoError(t, err)
	defer db.Close()
	sm, err := readSample(db, "instr", prefix)
	require.NoError(t, err)
	require.NotEmpty(t, sm.createTimeline)
	require.NotEmpty(t, sm.createJobs)
	require.NotEmpty(t, sm.joinTimeline)
	const n = 2*replayBatch + 8
	res, err := sqliteReplay(set.sqlitePath, sm, 0, n)
	require.NoError(t, err)
	require.Equal(t, n, res.done)
	checkCopies(t, db, sm, n)
	var opened int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM incidents WHERE id LIKE 'CEIL-%'`).Scan(&opened))
	require.InDelta(t, n*sm.createPermille/1000, opened, 1, "the step's share of opening deliveries")
}

// TestSampleWithoutEscalation: with a configuration whose escalation
// policies match no incident (bench-http --config.file), no delivery
// writes jobs; the ceilings still find their sample, an opening delivery
// without jobs, and replay it. (The sample's query asked for an incident
// with jobs, and the run ended on "no rows in result set".)
func TestSampleWithoutEscalation(t *testing.T) {
	example := exampleConfig(t)
	data, err := os.ReadFile(example)
	require.NoError(t, err)
	text := string(data)
	const none = "      matchers: ['service=\"no-such-service\"']\n"
	for from, to := range map[string]string{
		"    - name: api\n      matchers: ['service=~\"api|checkout\"']\n": "    - name: api\n" + none,
		"    - name: default\n": "    - name: default\n" + none,
	} {
		require.Contains(t, text, from, "the example's escalation policies")
		text = strings.Replace(text, from, to, 1)
	}
	// In a copy of examples/, so that its relative paths still resolve.
	examples := filepath.Join(t.TempDir(), "examples")
	require.NoError(t, os.CopyFS(examples, os.DirFS(filepath.Dir(example))))
	config := filepath.Join(examples, "no-escalation.yml")
	require.NoError(t, os.WriteFile(config, []byte(text), 0o644))

	const prefix = "no-escalation"
	set := sredWithDeliveries(t, t.TempDir(), setups["sqlite"], config, prefix)
	set.stopProcs()
	db, err := sql.Open("sqlite", "file:"+set.sqlitePath)
	require.NoError(t, err)
	defer db.Close()
	var jobs int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM jobs WHERE queue = 'escalation'`).Scan(&jobs))
	require.Zero(t, jobs, "no escalation step planned")

	sm, err := readSample(db, "instr", prefix)
	require.NoError(t, err)
	require.Empty(t, sm.createJobs)
	require.NotEmpty(t, sm.createTimeline)
	require.NotEmpty(t, sm.joinTimeline)
	const n = replayBatch + 4
	res, err := sqliteReplay(set.sqlitePath, sm, 0, n)
	require.NoError(t, err)
	require.Equal(t, n, res.done)
	checkCopies(t, db, sm, n)
}

// exampleConfig is examples/sred.yml's absolute path.
func exampleConfig(t *testing.T) string {
	t.Helper()
	config, err := filepath.Abs("../../examples/sred.yml")
	require.NoError(t, err)
	return config
}

// sredWithDeliveries starts sred from config in dir on the set-up's store
// and sends it 20 deliveries of the step prefix over 2 connections, each
// answered 2xx.
func sredWithDeliveries(t *testing.T, dir string, st setup, config, prefix string) *sredSet {
	t.Helper()
	o := options{postgresURL: testutil.PostgresURL(), duration: 10 * time.Minute, maxRequests: 20, alerts: 10, warm: true}
	set, err := startSreds(sredBinary(t), dir, config, st, o)
	require.NoError(t, err)
	t.Cleanup(set.stop)
	r := drive(set.url+"/api/v1/webhook/alertmanager", 2, o, prefix)
	require.Equal(t, 20, r.ok, "deliveries answered 2xx (first error: %v)", r.firstErr)
	return set
}

// TestStartSredsPostgresPool starts the replicas of a postgres-2 set-up
// with --sred.postgres-max-connections: each replica's main pool has that
// size (its /metrics), so the pool sizes compared in docs/benchmarks.md
// are the ones asked for.
func TestStartSredsPostgresPool(t *testing.T) {
	o := options{postgresURL: testutil.PostgresURL(), pgPool: 3}
	set, err := startSreds(sredBinary(t), t.TempDir(), exampleConfig(t), setups["postgres-2"], o)
	require.NoError(t, err)
	t.Cleanup(set.stop)
	require.Len(t, set.procs, 2)
	for _, p := range set.procs {
		resp, err := http.Get(p.URL + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		const series = `go_sql_max_open_connections{db_name="main"} `
		i := strings.Index(string(body), "\n"+series)
		require.GreaterOrEqual(t, i, 0, "%s/metrics has no %s", p.URL, series)
		value, _, _ := strings.Cut(string(body[i+1+len(series):]), "\n")
		require.Equal(t, "3", value, "%s/metrics: %s", p.URL, series)
	}
}
