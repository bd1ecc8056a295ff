package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/rollout"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

// searchDef is a canary rollout of search in an environment (%[1]s): two
// environments are two targets, each with its own lock.
const searchDef = `
name: search-%[1]s
service: search
environment: %[1]s
canary:
  stages: [{weight: 10, duration: 1h}, {weight: 100}]
  set_weight: {http: {endpoint: proxy, method: PUT, path: /weight, body: '{"canary": {{ .Vars.weight }}}'}}
`

// turnCounter is a replica's change records as its gate's counter,
// counting in turn with another replica's: the first counts and then waits
// until the second has counted, the second counts once the first has, so
// that both count before either records its change, as they may when
// they arrive at once, and in this order.
type turnCounter struct {
	*change.Service
	// after, when set, is closed once the other replica counted: this
	// one counts after it.
	after <-chan struct{}
	// counted is closed once this replica counted.
	counted chan struct{}
	// hold, when set, is closed once the other replica counted: this one
	// answers after it.
	hold <-chan struct{}
}

// inTurn returns the counters of two replicas' gates, first and second.
func inTurn(a, b *change.Service) (first, second *turnCounter) {
	c1, c2 := make(chan struct{}), make(chan struct{})
	return &turnCounter{Service: a, counted: c1, hold: c2}, &turnCounter{Service: b, after: c1, counted: c2}
}

func (c *turnCounter) turn(count func()) {
	if c.after != nil {
		<-c.after
	}
	count()
	close(c.counted)
	if c.hold != nil {
		<-c.hold
	}
}

func (c *turnCounter) CountChanges(ctx context.Context, service string, since time.Time) (n int, err error) {
	c.turn(func() { n, err = c.Service.CountChanges(ctx, service, since) })
	return n, err
}

func (c *turnCounter) ReserveChange(ctx context.Context, service string, since time.Time, quota int) (n int, slot int64, err error) {
	c.turn(func() { n, slot, err = c.Service.ReserveChange(ctx, service, since, quota) })
	return n, slot, err
}

// quotaSetup is one sred replica's deploy gate, change records and stage
// runner on a store, the budget of search yellow.
type quotaSetup struct {
	db      *store.DB
	clock   *clock.Manual
	budgets *budget.Service
	changes *change.Service
	runner  *rollout.Service
}

func newQuotaSetup(t *testing.T, db *store.DB, prom *budget.Prom, specs []*slo.Spec, end time.Time) *quotaSetup {
	t.Helper()
	s := &quotaSetup{db: db, clock: clock.NewManual(end)}
	s.budgets = budget.New(budget.Options{DB: db, Clock: s.clock, Registerer: prometheus.NewRegistry()})
	require.NoError(t, s.budgets.Update(budget.DefaultConfig, specs, prom, nil))
	s.changes = change.New(change.Options{DB: db, Clock: s.clock, Gate: s.budgets})
	var defs []*rollout.Definition
	for _, env := range []string{"staging", "production"} {
		d, err := rollout.Parse(fmt.Appendf(nil, searchDef, env), env+".yml")
		require.NoError(t, err)
		defs = append(defs, d)
	}
	s.runner = rollout.New(rollout.Options{DB: db, Clock: s.clock, Registerer: prometheus.NewRegistry(),
		Gate: rollout.BudgetGate{Budgets: s.budgets}, Recorder: rollout.ChangeRecorder{Changes: s.changes}})
	require.NoError(t, s.runner.ApplyConfig(rollout.DefaultConfig, defs))
	return s
}

// start starts a rollout of search in env and reports whether the gate
// let it through (its state running), or else why not.
func (s *quotaSetup) start(t *testing.T, env string) (bool, string) {
	ro, err := s.runner.Start(context.Background(), rollout.StartRequest{Name: "search-" + env, Version: "v2", Stable: "v1", Actor: "alice"})
	require.NoError(t, err)
	return ro.State == rollout.StateRunning, ro.Reason
}

// submit records a normal change of search with POST /api/v1/changes'
// gate and reports whether the gate let it through, or else why not.
func (s *quotaSetup) submit(t *testing.T) (bool, string) {
	_, err := s.changes.Submit(context.Background(), change.Change{Service: "search", Actor: "ci"}, change.GateInput{})
	var refused *change.RefusedError
	if errors.As(err, &refused) {
		return false, err.Error()
	}
	require.NoError(t, err)
	return true, ""
}

// result is whether a replica's gate let a rollout or a change through,
// or else why not.
type result struct {
	allowed bool
	reason  string
}

// inTurnOnTwoReplicas sets up two replicas on db whose gates, at a quota
// of 1, count in turn (inTurn), runs first on the first replica and
// second on the second at once, and returns the replicas and what each
// gate answered.
func inTurnOnTwoReplicas(t *testing.T, db *store.DB, prom *budget.Prom, specs []*slo.Spec, end time.Time,
	first, second func(*quotaSetup) (bool, string)) (a, b *quotaSetup, r1, r2 result) {
	t.Helper()
	a, b = newQuotaSetup(t, db, prom, specs, end), newQuotaSetup(t, db, prom, specs, end)
	c1, c2 := inTurn(a.changes, b.changes)
	a.budgets.SetChangeQuota(c1, 1)
	b.budgets.SetChangeQuota(c2, 1)
	done1, done2 := make(chan result, 1), make(chan result, 1)
	go func() {
		ok, why := first(a)
		done1 <- result{ok, why}
	}()
	go func() {
		ok, why := second(b)
		done2 <- result{ok, why}
	}()
	r1, r2 = <-done1, <-done2
	return a, b, r1, r2
}

// check checks that k changes of search count in the quota, recorded as
// allowed, and that no slot of the quota is left over.
func (s *quotaSetup) check(t *testing.T, k int) {
	t.Helper()
	ctx := context.Background()
	list, err := s.changes.List(ctx, change.Query{Service: "search", Limit: change.MaxLimit})
	require.NoError(t, err)
	shipped := 0
	for _, c := range list {
		if c.Outcome != change.Refused {
			shipped++
		}
	}
	require.Equal(t, k, shipped, "changes of search recorded as allowed")
	n, err := s.changes.CountChanges(ctx, "search", s.clock.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, k, n, "the quota's count")
	var slots int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM change_quota_slots`).Scan(&slots))
	require.Zero(t, slots, "slots of the quota left over")
}

// TestYellowQuotaOfRollouts: the deploy gate's yellow quota holds for
// sred's own rollouts. At a quota of 1 on yellow service search, a
// rollout and a change recorded with POST /api/v1/changes at once, or two
// rollouts of search (two environments, two target locks) at once, are
// one allowed and one refused on the quota: the rollout's gate step takes
// its slot of the quota in the transaction of the count and its change
// record consumes it. A rollout whose target lock is refused gives its
// slot back at once. SQLite and PostgreSQL.
func TestYellowQuotaOfRollouts(t *testing.T) {
	prom, specs, end := budgettest.StartYellow(t)
	migrations := [][]store.Migration{jobs.Migrations, targetlock.Migrations, rollout.Migrations, budget.Migrations, change.Migrations}
	const quotaUsed = "its quota while yellow"
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		// A rollout on one replica counts, then a change recorded on
		// another: before either records its change.
		t.Run("rollout and recorded change", func(t *testing.T) {
			a, _, r, c := inTurnOnTwoReplicas(t, db, prom, specs, end,
				func(a *quotaSetup) (bool, string) { return a.start(t, "staging") },
				func(b *quotaSetup) (bool, string) { return b.submit(t) })
			require.True(t, r.allowed, "the rollout counted first: %s", r.reason)
			require.False(t, c.allowed, "a change recorded while a rollout holds the quota of 1")
			require.Contains(t, c.reason, quotaUsed)
			a.check(t, 1)
		})
		clearCase(t, db)

		// Two rollouts of search (two environments, two target locks) on
		// two replicas.
		t.Run("two rollouts", func(t *testing.T) {
			_, b, r1, r2 := inTurnOnTwoReplicas(t, db, prom, specs, end,
				func(a *quotaSetup) (bool, string) { return a.start(t, "staging") },
				func(b *quotaSetup) (bool, string) { return b.start(t, "production") })
			require.True(t, r1.allowed, "the first rollout counted first: %s", r1.reason)
			require.False(t, r2.allowed, "a rollout started while another holds the quota of 1")
			require.Contains(t, r2.reason, quotaUsed)
			b.check(t, 1)
		})
		clearCase(t, db)

		t.Run("target lock refused", func(t *testing.T) {
			ctx := context.Background()
			s := newQuotaSetup(t, db, prom, specs, end)
			s.budgets.SetChangeQuota(s.changes, 1)
			require.NoError(t, targetlock.New(db).Acquire(ctx, targetlock.ServiceKey("staging", "search"), "chaos", "experiment/1", end, time.Hour))
			ok, why := s.start(t, "staging")
			require.False(t, ok)
			require.Contains(t, why, "chaos")
			s.check(t, 0)
			ok, why = s.submit(t)
			require.True(t, ok, "the slot of the refused rollout is given back: %s", why)
			s.check(t, 1)
		})
	})
}

// clearCase deletes the changes and the target locks of a test case.
func clearCase(t *testing.T, db *store.DB) {
	t.Helper()
	for _, table := range []string{"changes", "target_locks"} {
		_, err := db.ExecContext(context.Background(), `DELETE FROM `+table)
		require.NoError(t, err)
	}
}
