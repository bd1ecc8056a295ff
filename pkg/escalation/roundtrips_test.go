package escalation_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestStepRoundTrips (PostgreSQL), counted on the wire: a new incident's
// escalation starts in the statement that writes the incident, 3 round
// trips for the delivery where they were 9 (its state, its first step's
// job and its timeline entry each cost one, the duplicate check of a
// group new to the process one before the transaction, and BEGIN and
// COMMIT one each before the connection sent them with the transaction's
// first and last statements): BEGIN with the group's insert, the
// allocation of its number (on the side pool), the statement writing the
// incident with COMMIT (store.AtCommit). Its first step
// reads the stored maintenance windows and the overrides of the level's
// schedule with its state, and writes who was paged, the messages, the
// next level's job, the state, the timeline entry and the job's
// completion in one statement: 4 round trips for the worker's claims (the
// due step's, and one finding nothing more due, a statement each without
// a transaction around it) and the step's transaction (BEGIN with the
// state, the writes with COMMIT), where they were 16.
func TestStepRoundTrips(t *testing.T) {
	ctx := context.Background()
	db, proxy := testutil.OpenPostgresThroughProxy(t, allMigrations...)
	clk := clock.NewManual(t0)
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	r := newRig(t, db, clk, escalationYAML, notifyConfig(t, sms, push, email, slack))
	db.SetMaxOpenConns(1) // one connection: its prepared statements are the incidents'

	// The first runs of a statement prepare it: the fewest of several.
	var opens, steps []int64
	for i := range 4 {
		before := proxy.Count()
		id := r.open(t, "critical", "instance", fmt.Sprint(i))
		opens = append(opens, proxy.Count()-before)
		before = proxy.Count()
		n, err := r.worker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		steps = append(steps, proxy.Count()-before)
		require.Len(t, r.paged(t, id), 3, "bob paged by SMS, phone and push")
		require.Len(t, r.timeline(t, id, "Escalation level 0"), 1)
		state, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 0, state.Level)
		pending, err := jobs.List(ctx, db, jobs.Filter{Queue: escalation.Queue, Group: id, States: []string{"pending"}})
		require.NoError(t, err)
		require.NotEmpty(t, pending, "level 1 and the handoff check are due later")
		clk.Advance(time.Second)
	}
	require.Equal(t, int64(3), slicesMin(opens), "round trips of a delivery opening an incident: %v", opens)
	require.Equal(t, int64(4), slicesMin(steps), "round trips of the first step (claim and step): %v", steps)
}

func slicesMin(s []int64) int64 {
	m := s[0]
	for _, v := range s[1:] {
		m = min(m, v)
	}
	return m
}
