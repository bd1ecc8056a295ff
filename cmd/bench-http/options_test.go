package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeWrk is an executable file standing for wrk: the load generator is
// chosen by whether --wrk.binary is found, not by whether wrk is installed
// on the machine that runs the tests.
func fakeWrk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wrk")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o755))
	return p
}

func TestParseOptions(t *testing.T) {
	wrk := fakeWrk(t)
	missing := filepath.Join(t.TempDir(), "no-wrk")
	tests := []struct {
		name string
		args []string
		// want is checked field by field where set; err is a part of the
		// error's text when parsing must fail.
		want     func(t *testing.T, o options)
		err      string
		stderrRE string
	}{
		{name: "defaults with wrk found", args: []string{"--wrk.binary=" + wrk}, want: func(t *testing.T, o options) {
			require.Equal(t, []int{8, 32, 64}, o.conns)
			require.Equal(t, []string{"failing", "working"}, o.channels)
			require.Equal(t, []setup{setups["sqlite"]}, o.setups)
			require.Equal(t, "wrk", o.driver)
			require.Equal(t, 10*time.Second, o.duration)
			require.Equal(t, 200000, o.maxRequests)
			require.Equal(t, 10, o.alerts)
			require.Equal(t, 1, o.rounds)
			require.Equal(t, 2, o.wrkThreads)
			require.True(t, o.warm)
			require.Zero(t, o.rate)
			require.Zero(t, o.tailRate)
			require.False(t, o.freshStore)
			require.True(t, o.replay)
		}},
		{name: "no replay", args: []string{"--no-replay", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.False(t, o.replay) }},
		{name: "wrk missing: the Go client", args: []string{"--wrk.binary=" + missing}, stderrRE: `no-wrk not found, the closed-loop steps run on the Go client`,
			want: func(t *testing.T, o options) { require.Equal(t, "go", o.driver) }},
		{name: "rate moves wrk to the Go client", args: []string{"--driver=wrk", "--rate=1000", "--wrk.binary=" + wrk}, stderrRE: `--rate runs on the Go client`,
			want: func(t *testing.T, o options) { require.Equal(t, "go", o.driver); require.Equal(t, 1000.0, o.rate) }},
		{name: "tail rate keeps wrk for the closed loop", args: []string{"--driver=wrk", "--tail-rate=400", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Equal(t, "wrk", o.driver); require.Equal(t, 400.0, o.tailRate) }},
		{name: "pgbench found for a postgres set-up", args: []string{"--setups=sqlite,postgres", "--pgbench=" + wrk, "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Equal(t, wrk, o.pgbench) }},
		{name: "pgbench missing for a postgres set-up", args: []string{"--setups=postgres-2", "--pgbench=" + missing, "--wrk.binary=" + wrk},
			err: "--pgbench: "},
		{name: "pgbench missing, no postgres set-up", args: []string{"--setups=sqlite", "--pgbench=" + missing, "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Equal(t, missing, o.pgbench) }},
		{name: "no ceiling", args: []string{"--setups=postgres", "--pgbench=", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Empty(t, o.pgbench) }},
		{name: "go driver asked for", args: []string{"--driver=go", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Equal(t, "go", o.driver) }},
		{name: "connections with spaces and repeats", args: []string{"--connections=8, 32,8", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) { require.Equal(t, []int{8, 32, 8}, o.conns) }},
		{name: "every set-up and channels", args: []string{"--setups=postgres-2, postgres,sqlite", "--channels=working", "--wrk.binary=" + wrk},
			want: func(t *testing.T, o options) {
				require.Equal(t, []setup{
					{name: "postgres-2", postgres: true, replicas: 2},
					{name: "postgres", postgres: true, replicas: 1},
					{name: "sqlite", replicas: 1},
				}, o.setups)
				require.Equal(t, []string{"working"}, o.channels)
			}},
		{name: "no-warm", args: []string{"--no-warm", "--driver=go"}, want: func(t *testing.T, o options) { require.False(t, o.warm) }},

		{name: "empty connection", args: []string{"--connections=8,,32"}, err: `invalid --connections value ""`},
		{name: "zero connections", args: []string{"--connections=0"}, err: `invalid --connections value "0"`},
		{name: "negative connections", args: []string{"--connections=8,-1"}, err: `invalid --connections value "-1"`},
		{name: "connections not a number", args: []string{"--connections=8x"}, err: `invalid --connections value "8x"`},
		{name: "connections empty", args: []string{"--connections="}, err: `invalid --connections value ""`},
		{name: "unknown set-up", args: []string{"--setups=sqlite,mysql"}, err: `invalid --setups value "mysql"`},
		{name: "set-up case", args: []string{"--setups=SQLite"}, err: `invalid --setups value "SQLite"`},
		{name: "unknown channels", args: []string{"--channels=failing,broken"}, err: `invalid --channels value "broken"`},
		{name: "unknown driver", args: []string{"--driver=wrk2"}, err: `wrk2`},
		{name: "unknown flag", args: []string{"--connection=8"}, err: `unknown long flag '--connection'`},
		{name: "negative rate", args: []string{"--rate=-1"}, err: `--rate and --tail-rate not negative`},
		{name: "negative tail rate", args: []string{"--tail-rate=-400"}, err: `--rate and --tail-rate not negative`},
		{name: "zero duration", args: []string{"--duration=0s"}, err: `must be positive`},
		{name: "zero max requests", args: []string{"--max-requests=0"}, err: `must be positive`},
		{name: "zero alerts", args: []string{"--alerts=0"}, err: `must be positive`},
		{name: "zero rounds", args: []string{"--rounds=0"}, err: `must be positive`},
		// The tail's steps would be the main steps again, on every channels
		// set-up, and averaged with them in the summary.
		{name: "tail rate equal to the rate", args: []string{"--rate=400", "--tail-rate=400"}, err: `--tail-rate equal to --rate`},
		{name: "zero wrk threads", args: []string{"--wrk.threads=0"}, err: `must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			o, err := parseOptions(tt.args, &stderr)
			if tt.err != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			tt.want(t, o)
			if tt.stderrRE != "" {
				require.Regexp(t, tt.stderrRE, stderr.String())
			} else {
				require.Empty(t, stderr.String())
			}
		})
	}
}

// TestRunInvalid: a command line parseOptions refuses exits with 2 and
// says why on stderr, before anything is built or started.
func TestRunInvalid(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, run([]string{"--connections=8,0"}, &stdout, &stderr))
	require.Equal(t, "bench-http: invalid --connections value \"0\"\n", stderr.String())
	require.Empty(t, stdout.String())
}

// TestPlans: the sred runs of a set-up and channels: the main steps', then
// the fixed-rate tail's.
func TestPlans(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want []plan
	}{
		{name: "steps in turn", o: options{conns: []int{8, 32, 64}, driver: "wrk"},
			want: []plan{{[]int{8, 32, 64}, 0, "wrk", "steps"}}},
		{name: "fresh store", o: options{conns: []int{8, 32}, driver: "wrk", freshStore: true},
			want: []plan{{[]int{8}, 0, "wrk", "8"}, {[]int{32}, 0, "wrk", "32"}}},
		{name: "open loop", o: options{conns: []int{8, 32}, driver: "go", rate: 1000},
			want: []plan{{[]int{8, 32}, 1000, "go", "steps"}}},
		{name: "tail rate: the Go client", o: options{conns: []int{8, 64}, driver: "wrk", tailRate: 400},
			want: []plan{{[]int{8, 64}, 0, "wrk", "steps"}, {[]int{8}, 400, "go", "rate-400-8"}, {[]int{64}, 400, "go", "rate-400-64"}}},
		{name: "fresh store and tail rate", o: options{conns: []int{8, 64}, driver: "go", freshStore: true, tailRate: 250.4},
			want: []plan{{[]int{8}, 0, "go", "8"}, {[]int{64}, 0, "go", "64"}, {[]int{8}, 250.4, "go", "rate-250-8"}, {[]int{64}, 250.4, "go", "rate-250-64"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.channels = []string{"failing", "working"}
			require.Equal(t, tt.want, plans(tt.o))
		})
	}
}

// TestSchedule: the sred runs in order. The fixed-rate tail runs after the
// steps of every channels set-up of a set-up and round (as --tail-rate's
// help says), with the first channels set-up only; it ran right after the
// first channels set-up's steps, before the others'.
func TestSchedule(t *testing.T) {
	sqlite, pg2 := setups["sqlite"], setups["postgres-2"]
	tests := []struct {
		name string
		o    options
		// want: set-up, round, channels and plan name of every run.
		want []string
	}{
		{name: "no tail", o: options{setups: []setup{sqlite}, rounds: 1, channels: []string{"failing", "working"}},
			want: []string{"sqlite 1 failing steps", "sqlite 1 working steps"}},
		{name: "tail after both channels set-ups", o: options{setups: []setup{sqlite}, rounds: 1, channels: []string{"failing", "working"}, tailRate: 400},
			want: []string{"sqlite 1 failing steps", "sqlite 1 working steps", "sqlite 1 failing rate-400-8", "sqlite 1 failing rate-400-64"}},
		{name: "the first channels set-up, whichever it is", o: options{setups: []setup{sqlite}, rounds: 1, channels: []string{"working", "failing"}, tailRate: 400},
			want: []string{"sqlite 1 working steps", "sqlite 1 failing steps", "sqlite 1 working rate-400-8", "sqlite 1 working rate-400-64"}},
		{name: "one channels set-up", o: options{setups: []setup{sqlite}, rounds: 1, channels: []string{"working"}, tailRate: 400},
			want: []string{"sqlite 1 working steps", "sqlite 1 working rate-400-8", "sqlite 1 working rate-400-64"}},
		{name: "every round and set-up", o: options{setups: []setup{sqlite, pg2}, rounds: 2, channels: []string{"failing", "working"}, tailRate: 400, freshStore: true},
			want: []string{
				"sqlite 1 failing 8", "sqlite 1 failing 64", "sqlite 1 working 8", "sqlite 1 working 64", "sqlite 1 failing rate-400-8", "sqlite 1 failing rate-400-64",
				"sqlite 2 failing 8", "sqlite 2 failing 64", "sqlite 2 working 8", "sqlite 2 working 64", "sqlite 2 failing rate-400-8", "sqlite 2 failing rate-400-64",
				"postgres-2 1 failing 8", "postgres-2 1 failing 64", "postgres-2 1 working 8", "postgres-2 1 working 64", "postgres-2 1 failing rate-400-8", "postgres-2 1 failing rate-400-64",
				"postgres-2 2 failing 8", "postgres-2 2 failing 64", "postgres-2 2 working 8", "postgres-2 2 working 64", "postgres-2 2 failing rate-400-8", "postgres-2 2 failing rate-400-64",
			}},
		// The main steps open loop too: the tail is told apart by its rate.
		{name: "open loop and tail", o: options{setups: []setup{sqlite}, rounds: 1, channels: []string{"failing", "working"}, rate: 1000, tailRate: 400},
			want: []string{"sqlite 1 failing steps", "sqlite 1 working steps", "sqlite 1 failing rate-400-8", "sqlite 1 failing rate-400-64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.conns, tt.o.driver = []int{8, 64}, "go"
			var got []string
			for _, r := range schedule(tt.o) {
				got = append(got, fmt.Sprintf("%s %d %s %s", r.setup.name, r.round, r.channels, r.name))
				require.Equal(t, r.rate == tt.o.tailRate && tt.o.tailRate > 0, strings.HasPrefix(r.name, "rate-"), "%s: the tail's rate", r.name)
			}
			require.Equal(t, tt.want, got)
		})
	}
}
