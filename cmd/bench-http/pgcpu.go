package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pgServer reads the CPU time of a PostgreSQL server running on this
// machine: its postmaster's own, its children's that have ended (reaped
// by the postmaster: the kernel adds them to its cutime and cstime), and
// its living children's (the backends, the WAL writer, the checkpointer,
// ...). Read before and after a step, the difference is what the server
// spent on that step, whichever backends served it and whether they
// ended since: pgbench's connections end with its run.
//
// With sred's own CPU (cpu s/1k) beside it, the table shows where a
// delivery's CPU goes on a machine that runs sred, the load generator and
// PostgreSQL on the same cores.
type pgServer struct {
	pid int // the postmaster
}

// findPgServer finds the postmaster of the server at url through its data
// directory's postmaster.pid; nil when the server is not on this machine
// or the file cannot be read (the table then has no db figure).
func findPgServer(url string) (*pgServer, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var dir string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		return nil, fmt.Errorf("PostgreSQL's data directory: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("%s: no process ID on its first line", filepath.Join(dir, "postmaster.pid"))
	}
	if _, err := procStat(pid); err != nil {
		return nil, err
	}
	return &pgServer{pid: pid}, nil
}

// cpu is the server's CPU time so far, -1 when it could not be read (no
// server found, or its postmaster ended).
func (p *pgServer) cpu() time.Duration {
	if p == nil {
		return -1
	}
	st, err := procStat(p.pid)
	if err != nil {
		return -1
	}
	total := st.self + st.children
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == p.pid {
			continue
		}
		c, err := procStat(pid)
		if err != nil || c.ppid != p.pid {
			continue // not a child, or it ended while the list was read
		}
		total += c.self
	}
	return total
}

// stat is what pgServer reads of a /proc/PID/stat line: the parent's
// process ID, the process's own user and system CPU time, and its ended
// children's (those it waited for).
type stat struct {
	ppid           int
	self, children time.Duration
}

func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat reads fields 4 (ppid), 14 and 15 (utime, stime) and 16 and 17
// (cutime, cstime) of a /proc/PID/stat line.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("unexpected format")
	}
	// f[0] is field 3 (the state).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return stat{}, errors.New("unexpected format")
	}
	var n [5]int64
	for k, j := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return stat{}, err
		}
		n[k] = v
	}
	tick := func(v int64) time.Duration { return time.Duration(v) * time.Second / clockTicks }
	return stat{ppid: int(n[0]), self: tick(n[1] + n[2]), children: tick(n[3] + n[4])}, nil
}
