package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

// TestBenchSQLite runs the program as `make bench-http` does, on a sred
// built from this checkout on SQLite, with both channels set-ups and the
// fixed-rate tail, one connection, on the Go client with a request count
// per step (the duration is far longer than the steps take): every sred
// row says what sred answered and stored, the durability check passed,
// and the summary has its row. (Three sred runs: 5-8 s at load 20 on the
// 2 cores.)
// Nothing here depends on how fast the machine is.
// sredBinary builds cmd/sred of this checkout, into the same file on every
// run: go build leaves a binary that is up to date as it is, so that only
// the first run pays for linking sred (seconds of CPU; a fresh file would
// be linked every time).
func sredBinary(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	// One file per checkout (worktrees build their own sred).
	dir := filepath.Join(cache, "sre-bench-http-test", fmt.Sprintf("%x", sha256.Sum256([]byte(wd)))[:16])
	require.NoError(t, os.MkdirAll(dir, 0o755))
	bin := filepath.Join(dir, "sred")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/rootuip/sre/cmd/sred").CombinedOutput()
	require.NoError(t, err, "build sred: %s", out)
	return bin
}

func TestBenchSQLite(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	bin := sredBinary(t)
	t.Logf("sred built in %v", time.Since(start))
	// workingConfig writes its copy next to the configuration: a copy of
	// examples/, not the checkout, gets it.
	examples := filepath.Join(dir, "examples")
	require.NoError(t, os.CopyFS(examples, os.DirFS("../../examples")))

	const n = "25"
	var stdout, stderr bytes.Buffer
	code := run([]string{"--sred.binary=" + bin, "--config.file=" + filepath.Join(examples, "sred.yml"), "--setups=sqlite",
		"--channels=failing,working", "--connections=1", "--driver=go", "--max-requests=" + n, "--duration=10m",
		"--tail-rate=100000"}, &stdout, &stderr)
	t.Logf("ran in %v", time.Since(start))
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, 0, code)
	require.NotContains(t, stderr.String(), "not durable")

	// Rows: target setup conns deliveries/s p50 p99 max 2xx errors stored cpu db gen cores paged load...
	type rowKey struct{ target, conns string }
	rows := map[rowKey][]string{}
	var order []rowKey
	setupAt := -1 // where the set-up column starts
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "target" && setupAt < 0 {
			setupAt = strings.Index(line, " setup ") + 1
		}
		if len(f) < 15 || f[1] != "sqlite" || !(strings.HasPrefix(f[0], "sred/") || f[0] == "no-op") {
			continue
		}
		// The longest target, sred/failing@100000, does not push the
		// columns of its row out of line.
		require.Positive(t, setupAt, "the heading before the rows")
		require.True(t, strings.HasPrefix(line[min(setupAt, len(line)):], "sqlite "), "the set-up under its heading:\n%s", line)
		k := rowKey{f[0], f[2]}
		rows[k] = f
		order = append(order, k)
	}
	require.Equal(t, []rowKey{
		{"no-op", "1"}, {"sred/failing", "1"},
		{"no-op", "1"}, {"sred/working", "1"},
		{"sred/failing@100000", "1"},
	}, order, "per channels set-up the steps in turn, then, after them all, the tail at a fixed rate with the first one, without the no-op")
	for k, f := range rows {
		require.Equal(t, n, f[7], "%v: 2xx", k)
		require.Equal(t, "0", f[8], "%v: errors", k)
		if k.target == "no-op" {
			require.Equal(t, "-", f[9], "%v: stored", k)
			require.Equal(t, "-", f[14], "%v: paged", k)
			continue
		}
		require.Equal(t, n, f[9], "%v: every 2xx stored, nothing else", k)
		require.NotEqual(t, "-", f[10], "%v: a CPU figure", k)
		require.Equal(t, "-", f[11], "%v: no PostgreSQL on a SQLite set-up", k)
		// One connection, one delivery at a time: the escalation worker
		// keeps up, but may not have run the last page yet when the step
		// ends.
		require.Regexp(t, `^[0-9]+%$`, f[14], "%v: the share of new incidents paged", k)
	}

	// After the failing channels' steps, the SQLite ceiling: the replay of
	// as many deliveries as the step's.
	var replays [][]string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 15 && f[0] == replayTarget {
			replays = append(replays, f)
		}
	}
	require.Len(t, replays, 1, "one replay, after the first channels set-up's steps")
	require.Equal(t, []string{"sqlite", "1", n, "0"}, []string{replays[0][1], replays[0][2], replays[0][7], replays[0][8]}, "set-up, connections, deliveries, errors")

	// setup conns no-op/s failing/s p99 working/s p99 fail/work cpu/1k fail, work
	sum := strings.Fields(stdout.String()[strings.LastIndex(stdout.String(), "\nsqlite "):])
	require.Len(t, sum, 10, "the summary's row")
	for i, f := range sum {
		require.NotEqual(t, "-", f, "summary column %d: failing and working channels both ran", i+1)
	}
}

// TestBenchPostgres runs bench-http's postgres set-up as a user does, on a
// few deliveries: the sred row and the pgbench rows carry PostgreSQL's own
// CPU per 1,000 deliveries (db s/1k), read from the server on this
// machine, beside sred's.
func TestBenchPostgres(t *testing.T) {
	_, err := exec.LookPath("pgbench")
	require.NoError(t, err, "pgbench (PostgreSQL's client) is needed")
	dir := t.TempDir()
	bin := sredBinary(t)
	examples := filepath.Join(dir, "examples")
	require.NoError(t, os.CopyFS(examples, os.DirFS("../../examples")))
	var stdout, stderr bytes.Buffer
	code := run([]string{"--sred.binary=" + bin, "--config.file=" + filepath.Join(examples, "sred.yml"), "--setups=postgres",
		"--storage.postgres-url=" + testutil.PostgresURL(), "--channels=failing", "--connections=1", "--driver=go", "--max-requests=25",
		"--duration=10m"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Equal(t, 0, code)
	require.NotContains(t, stderr.String(), "cannot be read")

	// target setup conns deliveries/s p50 p99 max 2xx errors stored cpu db gen cores paged load...
	seen := map[string]bool{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 15 || f[1] != "postgres" || (f[0] != "sred/failing" && f[0] != pgbenchTarget) {
			continue
		}
		seen[f[0]] = true
		require.Regexp(t, `^[0-9]+\.[0-9]{2}$`, f[11], "%s: PostgreSQL's CPU per 1,000 deliveries:\n%s", f[0], line)
		if f[0] == pgbenchTarget {
			require.Equal(t, "-", f[10], "pgbench: no sred")
		} else {
			require.Regexp(t, `^[0-9]+\.[0-9]{2}$`, f[10], "sred's CPU per 1,000 deliveries")
		}
	}
	require.Equal(t, map[string]bool{"sred/failing": true, pgbenchTarget: true}, seen, "a sred row and a pgbench row")
}
