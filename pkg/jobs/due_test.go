package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
)

// TestDue: Due says whether Claim with the same options would take a job:
// pending jobs due by now, running ones whose lease expired, within the
// kinds asked for.
func TestDue(t *testing.T) {
	openers(t, func(t *testing.T, open func() *store.DB) {
		ctx := context.Background()
		db := open()
		due := func(o jobs.ClaimOptions) bool {
			t.Helper()
			o.Queue = "q"
			ok, err := jobs.Due(ctx, db, o)
			require.NoError(t, err)
			return ok
		}
		require.False(t, due(jobs.ClaimOptions{Now: t0}), "an empty queue")
		enqueue(t, db, jobs.New{Queue: "q", Kind: "a", Key: "1", RunAt: t0.Add(time.Minute)})
		enqueue(t, db, jobs.New{Queue: "other", Kind: "a", Key: "2", RunAt: t0})
		require.False(t, due(jobs.ClaimOptions{Now: t0}), "not yet due; another queue's job")
		require.True(t, due(jobs.ClaimOptions{Now: t0.Add(time.Minute)}))
		require.False(t, due(jobs.ClaimOptions{Now: t0.Add(time.Minute), ExcludeKinds: []jobs.Kind{"a"}}))
		require.False(t, due(jobs.ClaimOptions{Now: t0.Add(time.Minute), Kinds: []jobs.Kind{"b"}}))
		require.True(t, due(jobs.ClaimOptions{Now: t0.Add(time.Minute), Kinds: []jobs.Kind{"b", "a"}, ExcludeKinds: []jobs.Kind{"c"}}))

		got, err := jobs.Claim(ctx, db, jobs.ClaimOptions{Queue: "q", Owner: "me", Now: t0.Add(time.Minute), Lease: time.Minute, Limit: 10})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.False(t, due(jobs.ClaimOptions{Now: t0.Add(90 * time.Second)}), "leased")
		require.True(t, due(jobs.ClaimOptions{Now: t0.Add(2 * time.Minute)}), "the lease expired")
		require.False(t, due(jobs.ClaimOptions{Now: t0.Add(2 * time.Minute), ExcludeKinds: []jobs.Kind{"a"}}), "the lease expired, its kind left out")
		require.True(t, due(jobs.ClaimOptions{Now: t0.Add(2 * time.Minute), Kinds: []jobs.Kind{"a"}}), "the lease expired, its kind asked for")
	})
}
