package budget_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestGateDecisionsOfTwoReplicas (PostgreSQL): two sred replicas sharing
// one database record the same caller's gate decisions at one instant
// (Flagger's requests balanced across both). Each compares the decision
// with the recorded rows and then adds or counts one; the test holds the
// table (SHARE: reads pass, writes wait) until both replicas are waiting
// on a lock, so that both have gone as far as they can before either
// writes. The same decision is still one row with one repeat, not two
// rows, and the caller's decisions for other subjects still take at most
// MaxSubjectDecisions rows within the minute, the one beyond counted in
// the row of the other subjects, not an eleventh subject row.
func TestGateDecisionsOfTwoReplicas(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clk := clock.NewManual(start)
	// The replicas' connections are named nameA and nameB in
	// pg_stat_activity.
	db, dbB, nameA, nameB := testutil.PostgresReplicas(t, "sred-gate", budget.Migrations)
	service := func(on *store.DB) *budget.Service {
		s := budget.New(budget.Options{DB: on, Clock: clk, Registerer: prometheus.NewRegistry()})
		// No Prometheus: both answer deny (on_prometheus_error).
		require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), nil, budget.ErrNoPrometheus))
		return s
	}
	a, b := service(db), service(dbB)
	req := func(subject string) budget.GateRequest {
		return budget.GateRequest{Service: "web", Actor: "flagger", Subject: "flagger canary shop/" + subject}
	}

	// atOnce records ra on replica a and rb on replica b while the table
	// is held, and returns their decisions once both waited on a lock.
	atOnce := func(ra, rb budget.GateRequest) (da, db2 *budget.Decision) {
		t.Helper()
		holder, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = holder.ExecContext(ctx, `LOCK TABLE gate_decisions IN SHARE MODE`)
		require.NoError(t, err)
		type result struct {
			d   *budget.Decision
			err error
		}
		doneA, doneB := make(chan result, 1), make(chan result, 1)
		go func() { d, err := a.Gate(ctx, ra); doneA <- result{d, err} }()
		go func() { d, err := b.Gate(ctx, rb); doneB <- result{d, err} }()
		for waiting := 0; waiting < 2; {
			select {
			case r := <-doneA:
				holder.Rollback() //nolint:errcheck
				t.Fatalf("replica a recorded its decision while the table was held: %+v, %v", r.d, r.err)
			case r := <-doneB:
				holder.Rollback() //nolint:errcheck
				t.Fatalf("replica b recorded its decision while the table was held: %+v, %v", r.d, r.err)
			default:
			}
			require.NoError(t, db.QueryRowContext(ctx, `SELECT count(DISTINCT application_name) FROM pg_stat_activity
WHERE application_name IN ($1, $2) AND wait_event_type = 'Lock'`, nameA, nameB).Scan(&waiting))
		}
		require.NoError(t, holder.Rollback())
		r1, r2 := <-doneA, <-doneB
		require.NoError(t, r1.err)
		require.NoError(t, r2.err)
		return r1.d, r2.d
	}
	subjectRows := func() (rows, others int, recs []budget.GateRecord) {
		t.Helper()
		recs, err := budget.ListDecisions(ctx, db, "web", 100)
		require.NoError(t, err)
		for _, r := range recs {
			if r.Time.After(clk.Now().Add(-budget.DecisionRepeatWindow)) {
				if r.Subject == budget.OtherSubjects {
					others++
				} else {
					rows++
				}
			}
		}
		return rows, others, recs
	}

	// The same decision on both replicas: one row, one repeat.
	d1, d2 := atOnce(req("checkout"), req("checkout"))
	require.Equal(t, "deny", d1.Answer)
	require.Equal(t, d1.ID, d2.ID, "the same decision recorded at once on two replicas is one row")
	_, _, recs := subjectRows()
	require.Len(t, recs, 1)
	require.Equal(t, 1, recs[0].Repeats)

	// A minute on: 9 subjects, then two more at once on both replicas.
	clk.Advance(budget.DecisionRepeatWindow)
	for i := 1; i < budget.MaxSubjectDecisions; i++ {
		_, err := a.Gate(ctx, req(fmt.Sprintf("c%d", i)))
		require.NoError(t, err)
	}
	d1, d2 = atOnce(req("c10"), req("c11"))
	require.NotEqual(t, d1.ID, d2.ID)
	rows, others, _ := subjectRows()
	require.Equal(t, budget.MaxSubjectDecisions, rows, "subject rows of the caller within the minute, on two replicas")
	require.Equal(t, 1, others, "the decision beyond the bound is recorded for the other subjects")
}

// TestGateDecisionsOfTwoHandlesOnSQLite: SQLite runs one write transaction
// at a time (BEGIN IMMEDIATE), reads included, so two services on one
// database file recording the same decision at once never both add a row.
func TestGateDecisionsOfTwoHandlesOnSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := clock.NewManual(time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC))
	open := func() (*store.DB, *budget.Service) {
		db, err := store.OpenSQLite(ctx, dir)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Migrate(ctx, budget.Migrations))
		s := budget.New(budget.Options{DB: db, Clock: clk, Registerer: prometheus.NewRegistry()})
		require.NoError(t, s.Update(budget.DefaultConfig, loadSpecs(t), nil, budget.ErrNoPrometheus))
		return db, s
	}
	db, a := open()
	_, b := open()
	const rounds = 20
	for i := range rounds {
		clk.Advance(budget.DecisionRepeatWindow)
		req := budget.GateRequest{Service: "web", Actor: "flagger", Subject: fmt.Sprintf("flagger canary shop/c%d", i)}
		done := make(chan *budget.Decision, 2)
		for _, s := range []*budget.Service{a, b} {
			go func() {
				d, err := s.Gate(ctx, req)
				assert.NoError(t, err)
				done <- d
			}()
		}
		d1, d2 := <-done, <-done
		require.NotNil(t, d1)
		require.NotNil(t, d2)
		require.Equal(t, d1.ID, d2.ID, "round %d", i)
	}
	recs, err := budget.ListDecisions(ctx, db, "web", 100)
	require.NoError(t, err)
	require.Len(t, recs, rounds)
	for _, r := range recs {
		require.Equal(t, 1, r.Repeats)
	}
}
