package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestParseStat: the parent's process ID and the CPU times of a
// /proc/PID/stat line: the process's own (utime, stime) and its ended
// children's (cutime, cstime), in clock ticks of 10 ms.
func TestParseStat(t *testing.T) {
	const line = "%d (postgres: bench (1)) S %d 4242 4242 0 -1 4194560 1521 0 0 0 %s 20 0 12 0 1234 1633181696 7551 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	tests := []struct {
		name  string
		line  string
		want  stat
		error bool
	}{
		{name: "postmaster", line: fmt.Sprintf(line, 900, 1, "100 50 3000 1000"), want: stat{ppid: 1, self: 1500 * time.Millisecond, children: 40 * time.Second}},
		{name: "backend", line: fmt.Sprintf(line, 4242, 900, "7 3 0 0"), want: stat{ppid: 900, self: 100 * time.Millisecond}},
		{name: "no children's times", line: "4242 (postgres) S 900 4242 4242 0 -1 4194560 1521 0 0 0 7 3\n", error: true},
		{name: "not a number", line: fmt.Sprintf(line, 4242, 900, "7 3 x 0"), error: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if tt.error {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestPgServerCPU: the CPU time of the PostgreSQL server on this machine
// counts what a backend spent, also after the backend ended (its
// connection closed): the db s/1k of a pgbench run, whose connections end
// with it, depends on it.
func TestPgServerCPU(t *testing.T) {
	u := testutil.PostgresURL()
	pg, err := findPgServer(u)
	require.NoError(t, err, "the PostgreSQL server at %s runs on this machine", u)
	before := pg.cpu()
	require.Positive(t, before)

	db, err := sql.Open("pgx", u)
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var pid int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	// Work on the backend until it has used some CPU time (clock ticks
	// of 10 ms).
	var spent time.Duration
	for i := 0; i < 1000 && spent < 200*time.Millisecond; i++ {
		var n int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM generate_series(1, 200000)`).Scan(&n))
		st, err := procStat(pid)
		require.NoError(t, err)
		require.Equal(t, pg.pid, st.ppid, "the backend is the postmaster's child")
		spent = st.self
	}
	require.GreaterOrEqual(t, spent, 200*time.Millisecond)
	require.GreaterOrEqual(t, pg.cpu()-before, spent, "a living backend's CPU time is counted")

	// Its connection closed, the backend ends and the postmaster reaps it:
	// its CPU time is still counted, in the postmaster's children's.
	require.NoError(t, db.Close())
	require.Eventually(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	}, time.Minute, 10*time.Millisecond, "backend %d ends", pid)
	require.GreaterOrEqual(t, pg.cpu()-before, spent, "an ended backend's CPU time is counted")

	require.Equal(t, time.Duration(-1), (*pgServer)(nil).cpu(), "no server found: no figure")
}
