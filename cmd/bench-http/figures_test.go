package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name (go test -update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got, "%s differs (go test -run %s -update rewrites it)", path, t.Name())
}

// TestCheckStored: the step's deliveries in the store are at least its 2xx
// answers (every 2xx is durable) and at most every request that may have
// reached sred.
func TestCheckStored(t *testing.T) {
	tests := []struct {
		name                     string
		stored, ok, failed, left int
		durable                  bool
	}{
		{name: "all answered, all stored", stored: 100, ok: 100, durable: true},
		{name: "nothing sent", durable: true},
		{name: "a 2xx not stored", stored: 99, ok: 100},
		{name: "none of the 2xx stored", stored: 0, ok: 5},
		{name: "more stored than sent", stored: 101, ok: 100},
		{name: "errors may have been stored", stored: 103, ok: 100, failed: 3, durable: true},
		{name: "errors not stored", stored: 100, ok: 100, failed: 3, durable: true},
		{name: "more than the errors", stored: 104, ok: 100, failed: 3},
		{name: "wrk: in flight at the end stored", stored: 108, ok: 100, left: 8, durable: true},
		{name: "wrk: in flight and errors", stored: 110, ok: 100, failed: 2, left: 8, durable: true},
		{name: "wrk: beyond in flight and errors", stored: 111, ok: 100, failed: 2, left: 8},
		{name: "wrk: in flight does not excuse a lost 2xx", stored: 99, ok: 100, failed: 2, left: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkStored(tt.stored, &measure{ok: tt.ok, failed: tt.failed, unanswered: tt.left})
			if tt.durable {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "a 2xx that is not durable")
		})
	}
	err := checkStored(98, &measure{ok: 100, failed: 2, unanswered: 8})
	require.EqualError(t, err, "sred stored 98 of the step's deliveries, answered 100 with 2xx (2 other answers or errors, up to 8 in flight when the load stopped): a 2xx that is not durable")
}

// TestCPUPer1k: sred's CPU seconds per 1,000 deliveries stored, that is
// milliseconds per delivery.
func TestCPUPer1k(t *testing.T) {
	tests := []struct {
		name   string
		cpu    time.Duration
		stored int
		want   float64
		ok     bool
	}{
		{name: "1.5 s over 1,000", cpu: 1500 * time.Millisecond, stored: 1000, want: 1.5, ok: true},
		{name: "250 ms over 100", cpu: 250 * time.Millisecond, stored: 100, want: 2.5, ok: true},
		{name: "a 10 s step at 1,200/s", cpu: 10 * time.Second, stored: 12000, want: 10.0 / 12, ok: true},
		{name: "below one clock tick", cpu: 0, stored: 20, want: 0, ok: true},
		{name: "nothing stored", cpu: time.Second, stored: 0},
		{name: "CPU not read", cpu: -1, stored: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cpuPer1k(tt.cpu, tt.stored)
			require.Equal(t, tt.ok, ok)
			require.InDelta(t, tt.want, got, 1e-12)
		})
	}
}

// TestWrkMeasure: wrk's counts and histogram as a step's figures.
func TestWrkMeasure(t *testing.T) {
	r := &benchenv.WrkResult{Requests: 1000, NonOK: 10, SocketErrs: 3, Timeouts: 2, FirstError: "503 overloaded", Elapsed: 10 * time.Second,
		Latencies: benchenv.Histogram{{Micros: 1000, Count: 500}, {Micros: 2000, Count: 480}, {Micros: 5000, Count: 10}, {Micros: 90000, Count: 8}},
		CPU:       300 * time.Millisecond}
	m := wrkMeasure(r, 8)
	require.Equal(t, &measure{ok: 990, failed: 13, unanswered: 8, timeouts: 2, elapsed: 10 * time.Second,
		p50: time.Millisecond, p99: 5 * time.Millisecond, max: 90 * time.Millisecond, genCPU: 300 * time.Millisecond, firstErr: "503 overloaded"}, m)
	require.InDelta(t, 99.0, m.rate(), 1e-9)
}

// TestWrkStep: a wrk step's counts, from the line webhook.lua prints to
// the step's row. wrk counts an answer slower than its --timeout both in
// its requests and as a timeout error: the row counts it once, by its
// status (it was counted again among the errors).
func TestWrkStep(t *testing.T) {
	tests := []struct {
		name                 string
		result               string // webhook.lua's wrk-result line
		ok, failed, timeouts int
		errorsCol            string
	}{
		{name: "all answered in time", result: "requests=1000 duration_us=10000000 non2xx=0 connect=0 read=0 write=0 timeout=0", ok: 1000, errorsCol: "0"},
		{name: "slow 2xx answers", result: "requests=1000 duration_us=10000000 non2xx=0 connect=0 read=0 write=0 timeout=5", ok: 1000, timeouts: 5, errorsCol: "0"},
		{name: "slow answers and other answers", result: "requests=1000 duration_us=10000000 non2xx=10 connect=0 read=0 write=0 timeout=5", ok: 990, failed: 10, timeouts: 5, errorsCol: "10"},
		{name: "socket errors", result: "requests=1000 duration_us=10000000 non2xx=10 connect=1 read=2 write=3 timeout=4", ok: 990, failed: 16, timeouts: 4, errorsCol: "16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			wrk := filepath.Join(dir, "wrk")
			require.NoError(t, os.WriteFile(wrk, []byte("#!/bin/sh\necho 'wrk-result "+tt.result+"'\n"), 0o755))
			o := options{driver: "wrk", wrkBinary: wrk, wrkThreads: 2, duration: 10 * time.Second, alerts: 10}
			m, err := step("http://127.0.0.1:9/api/v1/webhook/alertmanager", 8, o, "t-sqlite-sred-8.1", dir)
			require.NoError(t, err)
			require.Equal(t, [3]int{tt.ok, tt.failed, tt.timeouts}, [3]int{m.ok, m.failed, m.timeouts}, "2xx, errors, timeouts")
			// target setup conns deliveries/s p50 p99 max 2xx errors ...
			f := strings.Fields(newStepTable(nil, nil).line("sred/failing", "sqlite", 8, m, "-", "-", "-", "-", "0.00 0.00 0.00"))
			require.Equal(t, []string{strconv.Itoa(tt.ok), tt.errorsCol}, f[7:9])
			// Every 2xx stored and one per connection in flight: at most
			// every request that may have reached sred, slow answers once.
			require.NoError(t, checkStored(tt.ok+tt.failed+8, m))
			require.Error(t, checkStored(tt.ok+tt.failed+8+1, m))
		})
	}
}

// TestGoMeasure: the Go client's counts and latencies (sorted, of the
// 2xx answers) as a step's figures.
func TestGoMeasure(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name          string
		r             *result
		p50, p99, max time.Duration
		rate          float64
		firstErr      string
	}{
		{name: "four answers", r: &result{ok: 4, errs: 1, elapsed: 2 * time.Second, latencies: []time.Duration{ms(1), ms(2), ms(3), ms(40)}, firstErr: errors.New("HTTP 500: boom")},
			p50: ms(2), p99: ms(40), max: ms(40), rate: 2, firstErr: "HTTP 500: boom"},
		// 1..200 ms: p99 is the 198th, not the largest.
		{name: "two hundred answers", r: &result{ok: 200, elapsed: 4 * time.Second, latencies: func() []time.Duration {
			var l []time.Duration
			for i := 1; i <= 200; i++ {
				l = append(l, ms(i))
			}
			return l
		}()}, p50: ms(100), p99: ms(198), max: ms(200), rate: 50},
		{name: "no answer", r: &result{errs: 3, elapsed: time.Second, firstErr: errors.New("connection refused")}, firstErr: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := goMeasure(tt.r, 120*time.Millisecond)
			require.Equal(t, tt.r.ok, m.ok)
			require.Equal(t, tt.r.errs, m.failed)
			require.Zero(t, m.unanswered, "the Go client waits for every answer")
			require.Equal(t, [3]time.Duration{tt.p50, tt.p99, tt.max}, [3]time.Duration{m.p50, m.p99, m.max})
			require.Equal(t, 120*time.Millisecond, m.genCPU)
			require.Equal(t, tt.firstErr, m.firstErr)
			require.InDelta(t, tt.rate, m.rate(), 1e-9)
		})
	}
}

// TestStepLine: the rows of a step, whose columns line up whatever the
// names' lengths (testdata/steps-*.golden): the target and set-up columns
// are as wide as the longest name of the run (runsTable), the load average
// starts under its heading on every row.
func TestStepLine(t *testing.T) {
	// The no-op handler with wrk: 12,000 answers in 10 s.
	noop := &measure{ok: 12000, unanswered: 8, elapsed: 10 * time.Second, p50: 620 * time.Microsecond, p99: 2140 * time.Microsecond, max: 9 * time.Millisecond, genCPU: 400 * time.Millisecond}
	// sred with wrk: 1,200/s, 3 errors, 1,000 + 8 in flight stored, 1.02 s/1k.
	sred := &measure{ok: 12000, failed: 3, unanswered: 8, elapsed: 10 * time.Second, p50: 5500 * time.Microsecond, p99: 41449 * time.Microsecond, max: 120 * time.Millisecond, genCPU: 450 * time.Millisecond}
	// Open loop on the Go client.
	open := &measure{ok: 3999, failed: 1, elapsed: 10 * time.Second, p50: 3 * time.Millisecond, p99: 55550 * time.Microsecond, max: 1234567 * time.Microsecond, genCPU: 2500 * time.Millisecond}
	// No answer at all and no CPU figure: no generator figures.
	none := &measure{elapsed: 10 * time.Second}
	type step struct {
		name, setup            string
		conns                  int
		m                      *measure
		stored, cpu, db, paged string
	}
	tests := []struct {
		name  string
		o     options
		steps []step
	}{
		{name: "closed loop", o: options{setups: []setup{setups["sqlite"], setups["postgres"]}, channels: []string{"failing", "working"}, rounds: 1, conns: []int{8, 32}},
			steps: []step{
				{"no-op", "sqlite", 8, noop, "-", "-", "-", "-"},
				{"sred/failing", "sqlite", 8, sred, "12008", "1.02", "-", "34%"},
				{"sred/working", "postgres", 32, none, "0", "-", "-", "-"},
			}},
		// The tail at 100,000/s with working channels first, two replicas:
		// a target name longer than the heading and than the default run's.
		{name: "long names", o: options{setups: []setup{setups["sqlite"], setups["postgres-2"]}, channels: []string{"working", "failing"}, rounds: 1, conns: []int{8, 64}, tailRate: 100000},
			steps: []step{
				{"no-op", "sqlite", 8, noop, "-", "-", "-", "-"},
				{"sred/failing", "sqlite", 8, sred, "12008", "1.02", "-", "34%"},
				{"sred/working@100000", "postgres-2", 64, open, "4000", "2.75", "1.31", "100%"},
				{"sred/failing", "postgres-2", 32, none, "0", "-", "-", "-"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := runsTable(tt.o, schedule(tt.o))
			var b strings.Builder
			b.WriteString(tab.header())
			for _, s := range tt.steps {
				b.WriteString(tab.line(s.name, s.setup, s.conns, s.m, s.stored, s.cpu, s.db, s.paged, "1.52 1.10 0.98"))
			}
			golden(t, "steps-"+strings.ReplaceAll(tt.name, " ", "-")+".golden", b.String())
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			at := strings.Index(lines[0], "load avg")
			for _, l := range lines[1:] {
				require.Equal(t, at, strings.Index(l, "1.52 1.10 0.98"), "the load average under its heading:\n%s\n%s", lines[0], l)
			}
		})
	}
}

// TestRunsTable: the target and set-up columns are as wide as the longest
// name a run prints, the headings at least.
func TestRunsTable(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want stepTable
	}{
		{name: "the default run", o: options{setups: []setup{setups["sqlite"], setups["postgres"], setups["postgres-2"]}, channels: []string{"failing", "working"}, tailRate: 400},
			want: stepTable{target: len("sred/failing@400"), setup: len("postgres-2")}},
		{name: "no tail, SQLite", o: options{setups: []setup{setups["sqlite"]}, channels: []string{"working"}},
			want: stepTable{target: len("sred/working"), setup: len("sqlite")}},
		{name: "open loop: no-op and sred at the rate", o: options{setups: []setup{setups["sqlite"]}, channels: []string{"failing"}, rate: 1500},
			want: stepTable{target: len("sred/failing@1500"), setup: len("sqlite")}},
		{name: "the set-based PostgreSQL ceiling", o: options{setups: []setup{setups["postgres"]}, channels: []string{"failing"}, pgbench: "pgbench", pgbenchSet: 128},
			want: stepTable{target: len("pgbench-set128"), setup: len("postgres")}},
		{name: "the tail: sred only, the first channels", o: options{setups: []setup{setups["sqlite"]}, channels: []string{"working", "failing"}, tailRate: 100000},
			want: stepTable{target: len("sred/working@100000"), setup: len("sqlite")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.rounds, tt.o.conns, tt.o.driver = 1, []int{8, 64}, "go"
			require.Equal(t, tt.want, runsTable(tt.o, schedule(tt.o)))
		})
	}
	require.Equal(t, stepTable{target: 6, setup: 5}, newStepTable([]string{"no-op"}, []string{"s"}), "the headings' widths at least")
}

// TestStatCPU: utime and stime (fields 14 and 15 of /proc/PID/stat, in
// clock ticks of 10 ms) after a command name that may hold spaces and
// parentheses.
func TestStatCPU(t *testing.T) {
	const tail = " S 1 4242 4242 0 -1 4194560 1521 0 0 0 %s 0 0 20 0 12 0 1234 1633181696 7551 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	tests := []struct {
		name, line string
		want       time.Duration
		err        bool
	}{
		{name: "sred", line: "4242 (sred)" + fmt.Sprintf(tail, "153 47"), want: 2 * time.Second},
		{name: "name with spaces and parentheses", line: "4242 (sred (replica 1))" + fmt.Sprintf(tail, "1 0"), want: 10 * time.Millisecond},
		{name: "nothing yet", line: "4242 (sred)" + fmt.Sprintf(tail, "0 0")},
		{name: "hours", line: "4242 (sred)" + fmt.Sprintf(tail, "360000 360000"), want: 2 * time.Hour},
		{name: "no name", line: "4242 sred S 1", err: true},
		{name: "cut short", line: "4242 (sred) S 1 4242 4242 0 -1 4194560 1521 0 0 0 153", err: true},
		{name: "not a number", line: "4242 (sred)" + fmt.Sprintf(tail, "x 47"), err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.line))
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.self)
		})
	}
	// This process's own, as the benchmark reads sred's.
	self, err := procCPU(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, self, time.Duration(0))
}

// TestCPUSpent: the CPU time of a step from sred's readings before and
// after it; a reading that failed (-1) leaves the step without a figure
// (cpuPer1k says none), not with sred's whole CPU time so far.
func TestCPUSpent(t *testing.T) {
	tests := []struct {
		name          string
		before, after time.Duration
		want          time.Duration
	}{
		{name: "a step", before: 3 * time.Second, after: 4500 * time.Millisecond, want: 1500 * time.Millisecond},
		{name: "nothing spent", before: time.Second, after: time.Second, want: 0},
		{name: "first reading failed", before: -1, after: 40 * time.Second, want: -1},
		{name: "second reading failed", before: 40 * time.Second, after: -1, want: -1},
		{name: "both failed", before: -1, after: -1, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cpuSpent(tt.before, tt.after)
			require.Equal(t, tt.want, got)
			_, ok := cpuPer1k(got, 1000)
			require.Equal(t, tt.want >= 0, ok)
		})
	}
}
