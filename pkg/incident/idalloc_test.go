package incident

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIDAllocatorShares (PostgreSQL): creators asking for incident numbers
// while an allocation runs share the next one. The first creator's
// allocation waits on the year's row (another transaction holds it); n-1
// creators ask meanwhile; once the row is free, all n numbers are taken in
// two statements (1 and n-1), each creator gets its own, 1 to n, the first
// the first.
func TestIDAllocatorShares(t *testing.T) {
	const n = 6
	ctx := context.Background()
	db := openMigratedPostgres(t)
	_, err := db.Exec(`INSERT INTO incident_seq (year, last) VALUES (2026, 0)`)
	require.NoError(t, err)
	holder, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var pid int
	require.NoError(t, holder.QueryRow(`SELECT pg_backend_pid() FROM incident_seq WHERE year = 2026 FOR UPDATE`).Scan(&pid))

	var a idAllocator
	var mu sync.Mutex
	var sizes []int
	a.onAllocate = func(k int) { mu.Lock(); sizes = append(sizes, k); mu.Unlock() }
	got := make([]int64, n)
	var wg sync.WaitGroup
	ask := func(i int) {
		wg.Go(func() {
			v, err := a.next(ctx, db.DB, 2026)
			require.NoError(t, err)
			got[i] = v
		})
	}
	ask(0)
	for blocked := 0; blocked == 0; {
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&blocked))
	}
	for i := 1; i < n; i++ {
		ask(i)
	}
	for queued := 0; queued < n-1; {
		a.mu.Lock()
		queued = len(a.queue)
		a.mu.Unlock()
	}
	require.NoError(t, holder.Rollback())
	wg.Wait()
	require.Equal(t, []int{1, n - 1}, sizes)
	require.Equal(t, int64(1), got[0])
	slices.Sort(got)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, got)
}

// TestIDAllocationCommitsAsync (PostgreSQL): the shared allocation's
// statement turns synchronous_commit off for its own transaction only (see
// allocateIDsAsyncSQL): the transaction that runs it sees it off, the next
// one on the same connection sees the server's setting again, and the
// numbers are taken as before.
func TestIDAllocationCommitsAsync(t *testing.T) {
	ctx := context.Background()
	db := openMigratedPostgres(t)
	db.SetMaxOpenConns(1) // one connection: the setting must not outlive its transaction on it

	var server string
	require.NoError(t, db.QueryRow(`SHOW synchronous_commit`).Scan(&server))
	require.NotEqual(t, "off", server, "the test needs synchronous commits by default")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var last int64
	require.NoError(t, tx.QueryRow(allocateIDsAsyncSQL, 2026, 3).Scan(&last))
	require.Equal(t, int64(3), last)
	var inTx string
	require.NoError(t, tx.QueryRow(`SHOW synchronous_commit`).Scan(&inTx))
	require.Equal(t, "off", inTx)
	require.NoError(t, tx.Commit())

	var after string
	require.NoError(t, db.QueryRow(`SHOW synchronous_commit`).Scan(&after))
	require.Equal(t, server, after)

	var a idAllocator
	v, err := a.next(ctx, db.DB, 2026)
	require.NoError(t, err)
	require.Equal(t, int64(4), v)
	require.NoError(t, db.QueryRow(`SHOW synchronous_commit`).Scan(&after))
	require.Equal(t, server, after)
}
