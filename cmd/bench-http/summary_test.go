package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func msDur(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// matrix is a run of `make bench-http BENCH_HTTP_SETUPS=sqlite,postgres-2
// --rounds=2`-like shape: SQLite at 8/32/64 connections with failing and
// working channels in two rounds and the fixed-rate tail at 400/s (failing
// channels, one round), and two replicas with failing channels only.
func matrix() []stepResult {
	r := func(setup, ch string, c int, offered, rate, noop, p99, cpu float64) stepResult {
		return stepResult{setup: setup, channels: ch, conns: c, offered: offered, rate: rate, noop: noop, p99: msDur(p99), cpuPer1k: cpu}
	}
	return []stepResult{
		// Round 1.
		r("sqlite", "failing", 8, 0, 985, 3000, 20, 1.32),
		r("sqlite", "failing", 32, 0, 1200, 3100, 41.5, 0.90),
		r("sqlite", "failing", 64, 0, 1548, 3050, 60, 0.72),
		r("sqlite", "working", 8, 0, 791, 2900, 25, 1.20),
		r("sqlite", "working", 32, 0, 1437, 3150, 55.6, 0.85),
		r("sqlite", "working", 64, 0, 1615, 3000, 70, 0.80),
		// Round 2.
		r("sqlite", "failing", 8, 0, 1015, 3200, 22, 1.28),
		r("sqlite", "failing", 32, 0, 1300, 3000, 40, 0.94),
		r("sqlite", "failing", 64, 0, 1452, 2950, 66, 0.76),
		r("sqlite", "working", 8, 0, 809, 3100, 24, 1.10),
		r("sqlite", "working", 32, 0, 1363, 2850, 50, 0.87),
		r("sqlite", "working", 64, 0, 1585, 3100, 84, 0.70),
		// The fixed-rate tail: no no-op step.
		r("sqlite", "failing", 8, 400, 399, 0, 10, 1.5),
		r("sqlite", "failing", 32, 400, 400, 0, 9.5, 1.4),
		r("sqlite", "failing", 64, 400, 398, 0, 9, 1.45),
		// Two replicas, failing channels only.
		r("postgres-2", "failing", 8, 0, 311, 2800, 80, 3.1),
		r("postgres-2", "failing", 32, 0, 366, 2900, 200, 2.9),
		r("postgres-2", "failing", 64, 0, 350, 2850, 400, 3.0),
	}
}

// TestSummary: the summary table and the tail lines (p99 at the most
// connections over p99 at the fewest), testdata/summary-*.golden.
func TestSummary(t *testing.T) {
	tests := []struct {
		name     string
		rs       []stepResult
		mainRate float64
		// lines must be in the output as they are.
		lines []string
	}{
		{name: "matrix", rs: matrix(), lines: []string{
			// Averages over the rounds: (985+1015)/2 deliveries/s, the
			// no-op's (3000+3200)/2 with failing and (2900+3100)/2 with
			// working channels, the larger of the two; p99 the worst round;
			// fail/work 1000/800; CPU (1.32+1.28)/2 and (1.20+1.10)/2.
			"sqlite          8       3100       1000       22.0        800       25.0      125%         1.30         1.15",
			// 66/22 and 84/25 (the worst rounds), 9/10 at the fixed rate.
			"sqlite     p99 at 64 connections / p99 at 8 (failing, closed loop): 3.0x",
			"sqlite     p99 at 64 connections / p99 at 8 (working, closed loop): 3.4x",
			"sqlite     p99 at 64 connections / p99 at 8 (failing, 400/s offered): 0.9x",
			"postgres-2      8       2800        311       80.0          -          -         -         3.10            -",
			"postgres-2 p99 at 64 connections / p99 at 8 (failing, closed loop): 5.0x",
		}},
		{name: "open loop", mainRate: 1000, rs: []stepResult{
			{setup: "sqlite", channels: "failing", conns: 8, offered: 1000, rate: 990, noop: 1000, p99: msDur(30), cpuPer1k: 1.1},
			{setup: "sqlite", channels: "failing", conns: 64, offered: 1000, rate: 995, noop: 1000, p99: msDur(45), cpuPer1k: 1.0},
		}, lines: []string{
			"sqlite          8       1000        990       30.0          -          -         -         1.10            -",
			"sqlite     p99 at 64 connections / p99 at 8 (failing, 1000/s offered): 1.5x",
		}},
		{name: "one step", rs: []stepResult{
			{setup: "sqlite", channels: "working", conns: 32, rate: 1300, noop: 3000, p99: msDur(47.7), cpuPer1k: 0.84},
		}, lines: []string{
			"sqlite         32       3000          -          -       1300       47.7         -            -         0.84",
		}},
		// Steps that stored nothing have no CPU figure: "-" as in their
		// rows, not 0.00.
		{name: "no p99 at the fewest", rs: []stepResult{
			{setup: "sqlite", channels: "failing", conns: 8, rate: 0, noop: 3000, noCPU: true},
			{setup: "sqlite", channels: "failing", conns: 64, rate: 1500, noop: 3000, p99: msDur(60), cpuPer1k: 0.8},
			{setup: "sqlite", channels: "working", conns: 8, rate: 0, noop: 3000, noCPU: true},
		}, lines: []string{
			"sqlite          8       3000          0        0.0          0        0.0         -            -            -",
		}},
		// A round without a CPU figure is left out of the CPU average, not
		// counted as 0: (1.2+1.0)/2, not (1.2+1.0+0)/3.
		{name: "a round without CPU", rs: []stepResult{
			{setup: "sqlite", channels: "failing", conns: 32, rate: 1200, noop: 3000, p99: msDur(40), cpuPer1k: 1.2},
			{setup: "sqlite", channels: "failing", conns: 32, rate: 1100, noop: 3000, p99: msDur(50), noCPU: true},
			{setup: "sqlite", channels: "failing", conns: 32, rate: 1300, noop: 3000, p99: msDur(45), cpuPer1k: 1.0},
		}, lines: []string{
			"sqlite         32       3000       1200       50.0          -          -         -         1.10            -",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			summary(&b, tt.rs, tt.mainRate)
			got := b.String()
			golden(t, "summary-"+strings.ReplaceAll(tt.name, " ", "-")+".golden", got)
			for _, l := range tt.lines {
				require.Contains(t, strings.Split(got, "\n"), l)
			}
			if tt.name == "one step" || tt.name == "no p99 at the fewest" {
				require.NotContains(t, got, "p99 at ", "no tail ratio without two numbers of connections and a p99 at the fewest")
			}
		})
	}
}
