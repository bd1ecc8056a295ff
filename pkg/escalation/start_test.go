package escalation_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// statementLog is a SQLite connector that records the text of every
// statement run on its connections (as the code under test gives it).
type statementLog struct {
	driver.Connector
	mu    sync.Mutex
	texts []string
}

func (l *statementLog) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := l.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, log: l}, nil
}

func (l *statementLog) add(q string) {
	l.mu.Lock()
	l.texts = append(l.texts, q)
	l.mu.Unlock()
}

// count returns how many statements containing s ran since the last call
// of reset.
func (l *statementLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, q := range l.texts {
		if strings.Contains(q, s) {
			n++
		}
	}
	return n
}

func (l *statementLog) reset() {
	l.mu.Lock()
	l.texts = nil
	l.mu.Unlock()
}

type loggedConn struct {
	driver.Conn
	log *statementLog
}

func (c *loggedConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.log.add(q)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *loggedConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.log.add(q)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *loggedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.log.add(q)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *loggedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

// openLoggedSQLite opens a SQLite store on disk whose statements are logged.
func openLoggedSQLite(t *testing.T) (*store.DB, *statementLog) {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "sred.db") + "?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	conn, err := sqlite.NewConnector(dsn)
	require.NoError(t, err)
	log := &statementLog{Connector: conn}
	sqldb := sql.OpenDB(log)
	sqldb.SetMaxOpenConns(1)
	t.Cleanup(func() { sqldb.Close() })
	db := &store.DB{DB: sqldb, Dialect: store.SQLite}
	require.NoError(t, db.Migrate(context.Background(), allMigrations...))
	return db, log
}

// TestFirstEscalationCancelsNothing: the escalation of a new incident (its
// first epoch) runs no cancel of the incident's jobs, which cannot exist
// (one statement fewer in every delivery that opens an incident); a
// second epoch (the severity raised) still cancels the first's pending
// steps.
func TestFirstEscalationCancelsNothing(t *testing.T) {
	ctx := context.Background()
	db, log := openLoggedSQLite(t)
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	clock := clock.NewManual(t0)
	r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
	const cancel = "SET state = 'cancelled'"
	alert := func(tier, sev string) incident.NotifiedAlert {
		return incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-" + tier, StartsAt: t0,
			Labels: map[string]string{"alertname": "SLOBurnRate", "service": "api", "slo": "availability", "severity": sev, "burn_tier": tier}}
	}
	n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability"}`,
		CommonLabels: map[string]string{"service": "api", "slo": "availability"},
		Alerts:       []incident.NotifiedAlert{alert("ticket_fast", "ticket")}}

	log.reset()
	res, err := r.svc.Ingest(ctx, n)
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	id := res.Created[0]
	require.Positive(t, log.count("INSERT INTO escalation_state"), "the escalation started")
	require.Zero(t, log.count(cancel), "a first escalation has no jobs to cancel")
	r.tick(t) // level 0 runs; level 1 is pending, due in 15 minutes
	first, err := jobs.List(ctx, db, jobs.Filter{Queue: escalation.Queue, Group: id, States: []string{jobs.StatePending}})
	require.NoError(t, err)
	require.NotEmpty(t, first, "the first epoch's next level is pending")

	clock.Advance(2 * time.Minute)
	n.Alerts = append(n.Alerts, alert("page_fast", "page"))
	log.reset()
	_, err = r.svc.Ingest(ctx, n)
	require.NoError(t, err)
	require.Equal(t, 1, log.count(cancel), "the second epoch cancels the first's jobs")
	for _, j := range first {
		got, err := jobs.List(ctx, db, jobs.Filter{Queue: escalation.Queue, Group: id, States: []string{jobs.StateCancelled}})
		require.NoError(t, err)
		var ids []int64
		for _, g := range got {
			ids = append(ids, g.ID)
		}
		require.Contains(t, ids, j.ID, "the first epoch's pending job %s is cancelled", j.Key)
	}
}

// TestScheduleStepReadsOverridesOnce: a step that pages a schedule, and
// the shift handoff it then watches for, each read the schedule's stored
// overrides once: who is on call now and the next handoff come from the
// same read (they were one read each).
func TestScheduleStepReadsOverridesOnce(t *testing.T) {
	db, log := openLoggedSQLite(t)
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	clock := clock.NewManual(t0)
	r := newRig(t, db, clock, soloPolicy, notifyConfig(t, sms, push, email, slack))
	id := r.open(t, "critical")
	const read = "FROM oncall_overrides"

	log.reset()
	r.tick(t) // level 0 pages primary (bob) and watches its next handoff
	require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))
	require.Equal(t, 1, log.count(read), "one read of primary's overrides for the step")
	require.Equal(t, []time.Time{time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)}, pendingHandoffs(t, db, id), "the handoff to alice is watched")
	// The page's messages, the next level's step and the handoff check are
	// written in one statement (on PostgreSQL one round trip, not three).
	require.Equal(t, 1, log.count("INSERT INTO jobs"), "the step's jobs in one statement")
	var next []string
	for _, j := range pendingJobs(t, db, id, escalation.KindStep) {
		next = append(next, j.Key)
	}
	require.Equal(t, []string{id + "/1/step/0/1"}, next, "level 1's step is planned")

	// Level 1 (erin, no schedule) first, then the handoff: alice is paged
	// and the next handoff (back to bob) watched, from one read.
	clock.Set(t0.Add(2 * time.Hour))
	r.tick(t)
	clock.Set(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC))
	log.reset()
	r.tick(t)
	require.Contains(t, r.paged(t, id), "alice/sms")
	require.Equal(t, 1, log.count(read), "one read of primary's overrides for the handoff")
	require.Equal(t, []time.Time{time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}, pendingHandoffs(t, db, id), "the handoff back to bob is watched")
}

// pendingHandoffs lists when the pending handoff checks of incident id run.
func pendingHandoffs(t *testing.T, db *store.DB, id string) []time.Time {
	t.Helper()
	var at []time.Time
	for _, j := range pendingJobs(t, db, id, escalation.KindHandoff) {
		at = append(at, j.RunAt)
	}
	return at
}

// pendingJobs lists the pending escalation jobs of incident id of kind
// (every kind for "").
func pendingJobs(t *testing.T, db *store.DB, id string, kind jobs.Kind) []jobs.Job {
	t.Helper()
	pending, err := jobs.List(context.Background(), db, jobs.Filter{Queue: escalation.Queue, Group: id, States: []string{jobs.StatePending}})
	require.NoError(t, err)
	var out []jobs.Job
	for _, j := range pending {
		if kind == "" || j.Kind == kind {
			out = append(out, j)
		}
	}
	return out
}
