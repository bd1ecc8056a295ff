// Command bench-http measures Alertmanager webhook ingestion as a user meets
// it: it builds sred, starts it from a configuration on a fresh temporary
// store, and posts distinct Alertmanager deliveries (a new group per
// request, 10 firing alerts each) over N keep-alive connections on
// loopback, for a bounded time per step. Beside every sred figure it prints
// the ceiling of a no-op Go handler measured in the same run, with the same
// client, so that the load generator's own cost is visible. Every step runs
// against sred with the configuration's notification endpoints as they are
// ("failing": examples/sred.yml points them at 127.0.0.1:9, which refuses
// connections) and with them pointing at a local sink ("working"), each on
// a fresh store, so that the cost of failing channels shows in the same run.
// Every set-up of --setups runs in turn: sred on SQLite, one sred on
// PostgreSQL, and two sred replicas on one PostgreSQL database behind a
// round-robin TCP load balancer (a small proxy in this program, see
// proxy.go); each PostgreSQL sred gets a fresh schema of the database given.
// Beside each sred step it prints the CPU seconds the sred processes used
// per 1,000 deliveries (from /proc/PID/stat), which the machine's load
// changes far less than the throughput, and on PostgreSQL, when the server
// runs on this machine, the server's own (pgcpu.go): together with the
// load generator's, the whole CPU a delivery costs.
//
//	go run ./cmd/bench-http --config.file=examples/sred.yml --connections=8,32,64 --setups=sqlite
//
// `make bench-http` runs it with these defaults.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx", for the set-ups' schemas
	_ "modernc.org/sqlite"             // SQLite driver "sqlite", to count what sred stored

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	configFile  string
	sredBinary  string
	postgresURL string
	pgLatency   time.Duration
	pgPool      int
	conns       []int
	duration    time.Duration
	maxRequests int
	alerts      int
	keep        bool
	channels    []string
	rounds      int
	setups      []setup
	// rate is the offered load in deliveries/s shared by the connections
	// (open loop, as wrk2 runs); 0 sends each next delivery as soon as a
	// connection is free (closed loop).
	rate float64
	// driver is the load generator of the closed-loop steps: "wrk" (wrk
	// and benchenv.WrkScript) or "go" (drive, in this process). Open-loop
	// steps (rate > 0) always run on drive.
	driver     string
	wrkBinary  string
	wrkThreads int
	warm       bool // the Go driver opens its connections before a step's clock starts
	freshStore bool // every step (number of connections) on a fresh sred and store
	tailRate   float64
	skipNoop   bool
	// pgbench is the pgbench binary of the PostgreSQL ceiling run after
	// every postgres set-up's steps (pgceiling.go); empty: not run.
	pgbench string
	// pgbenchSet, above 1, adds a set-based row to the PostgreSQL
	// ceiling: transactions of that many deliveries, each table's rows of
	// them in one statement (deliverySample.setScript).
	pgbenchSet int
	// replay runs the SQLite ceiling after the sqlite set-up's steps
	// (sqliteceiling.go).
	replay bool
}

// setup is how sred runs: its store and how many replicas.
type setup struct {
	name     string // sqlite, postgres, postgres-2
	postgres bool
	replicas int
}

var setups = map[string]setup{
	"sqlite":     {name: "sqlite", replicas: 1},
	"postgres":   {name: "postgres", postgres: true, replicas: 1},
	"postgres-2": {name: "postgres-2", postgres: true, replicas: 2},
}

// run runs the benchmark as the command line args says, the figures on
// stdout and progress and errors on stderr, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench-http: %v\n", err)
		return 2
	}
	if err := bench(stdout, o); err != nil {
		fmt.Fprintf(stderr, "bench-http: %v\n", err)
		return 1
	}
	return 0
}

// parseOptions reads and checks the command line; stderr gets the notes
// on a load generator chosen for the user.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	a := kingpin.New("bench-http", "Load sred's Alertmanager webhook over HTTP and compare with a no-op handler.")
	var o options
	var conns string
	a.Flag("config.file", "sred configuration file (its relative paths resolve from its directory).").Default("examples/sred.yml").StringVar(&o.configFile)
	a.Flag("sred.binary", "sred binary to run; built from ./cmd/sred into a temporary directory when empty.").StringVar(&o.sredBinary)
	a.Flag("storage.postgres-url", "PostgreSQL database of the postgres set-ups; every sred (or pair of replicas) gets a fresh schema of it, dropped at the end unless --keep.").Default("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").StringVar(&o.postgresURL)
	a.Flag("postgres.latency", "Round-trip time added between every sred and PostgreSQL on the postgres set-ups, as PostgreSQL on another host adds (a proxy in this program delays each direction by half; pgbench and this program's own reads go straight). 0: none.").Default("0").DurationVar(&o.pgLatency)
	a.Flag("sred.postgres-max-connections", "sred's --storage.postgres-max-connections on the postgres set-ups (every replica's main pool). 0: sred's default.").Default("0").IntVar(&o.pgPool)
	var setupList string
	a.Flag("setups", "Comma-separated set-ups, run in turn: sqlite (a temporary SQLite store), postgres (one sred on PostgreSQL), postgres-2 (two sred replicas on one PostgreSQL database behind a round-robin TCP load balancer).").Default("sqlite").StringVar(&setupList)
	a.Flag("connections", "Comma-separated numbers of concurrent keep-alive connections, one step each.").Default("8,32,64").StringVar(&conns)
	a.Flag("duration", "Time each step (handler x connections) runs.").Default("10s").DurationVar(&o.duration)
	a.Flag("max-requests", "Requests after which a step of the Go client ends even before --duration (wrk runs for --duration).").Default("200000").IntVar(&o.maxRequests)
	a.Flag("alerts", "Alerts in every delivery.").Default("10").IntVar(&o.alerts)
	a.Flag("keep", "Keep the temporary directory (store and sred log).").BoolVar(&o.keep)
	var channels string
	a.Flag("channels", "Comma-separated notification set-ups, one sred each: failing (the configuration as it is; examples/sred.yml points every channel at 127.0.0.1:9, which refuses connections) and working (a copy whose 127.0.0.1:9 endpoints, secret files included, point at a local sink answering every request).").Default("failing,working").StringVar(&channels)
	a.Flag("rounds", "Rounds of every --channels set-up, in alternation, each on a fresh sred and store.").Default("1").IntVar(&o.rounds)
	a.Flag("rate", "Offered load in deliveries/s (open loop): delivery k is due at k/rate after the step starts, whichever connection is free sends it, and its latency counts from when it was due, so time spent waiting for a free connection is in the figures (as wrk2 measures, without coordinated omission). 0: closed loop, each connection sends its next delivery when the previous one is answered.").Default("0").Float64Var(&o.rate)
	a.Flag("driver", "Load generator of the closed-loop steps: wrk (Debian's wrk running cmd/internal/benchenv/webhook.lua: the same deliveries from far less CPU) or go (a Go client in this process). Default: wrk when it is on PATH, else go. --rate steps always use the Go client (wrk has no open loop).").EnumVar(&o.driver, "wrk", "go")
	a.Flag("wrk.binary", "wrk binary for --driver=wrk.").Default("wrk").StringVar(&o.wrkBinary)
	a.Flag("wrk.threads", "wrk threads (each an event loop on its own core at most); at most the connections, which they must divide.").Default("2").IntVar(&o.wrkThreads)
	a.Flag("warm", "The Go client opens all its connections before a step's clock starts (wrk does too: its latencies start at a request's first byte).").Default("true").BoolVar(&o.warm)
	a.Flag("fresh-store", "Run every step (number of connections) on a fresh sred and store instead of the steps in turn on one: the later steps then do not run on the earlier steps' deliveries.").BoolVar(&o.freshStore)
	a.Flag("pgbench.set", "With --pgbench, also run the ceiling set-based, after each pgbench row: transactions of this many deliveries, the rows of the opening ones (the step's share) in one statement per table and the joining ones' the same way, as an ingestion path writing many deliveries at once would; its rows' target is pgbench-setN. 0: not run.").Default("0").IntVar(&o.pgbenchSet)
	a.Flag("pgbench", "pgbench binary: after a postgres set-up's steps (with the first --channels set-up), it writes the rows that the last step's deliveries wrote (copied from one that opened an incident and one that joined one, one transaction per delivery), at every number of connections: PostgreSQL's own ceiling for those writes on this machine, beside sred's. Empty: not run.").Default("pgbench").StringVar(&o.pgbench)
	a.Flag("replay", "After the sqlite set-up's steps (with the first --channels set-up), sred stopped, write the rows that the last step's deliveries wrote again into its store (those of one that opened an incident and one that joined one, in the step's proportion, values bound), on one connection in transactions of 16 deliveries as sred's writer batches them at 32 connections: SQLite's own ceiling for those writes on this machine, beside sred's.").Default("true").BoolVar(&o.replay)
	a.Flag("tail-rate", "After the steps of every set-up and round (those of every --channels set-up), run every number of connections again at this fixed offered load (open loop, Go client, the first --channels set-up only, a fresh sred and store each) and print the tail ratio at a fixed rate beside the closed-loop one. 0: not run.").Default("0").Float64Var(&o.tailRate)
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		return o, err
	}
	for _, f := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("invalid --connections value %q", f)
		}
		o.conns = append(o.conns, n)
	}
	for _, f := range strings.Split(channels, ",") {
		f = strings.TrimSpace(f)
		if f != "failing" && f != "working" {
			return o, fmt.Errorf("invalid --channels value %q (failing or working)", f)
		}
		o.channels = append(o.channels, f)
	}
	for _, f := range strings.Split(setupList, ",") {
		st, ok := setups[strings.TrimSpace(f)]
		if !ok {
			return o, fmt.Errorf("invalid --setups value %q (sqlite, postgres or postgres-2)", f)
		}
		o.setups = append(o.setups, st)
	}
	if o.duration <= 0 || o.maxRequests < 1 || o.alerts < 1 || o.rounds < 1 || o.rate < 0 || o.tailRate < 0 || o.wrkThreads < 1 {
		return o, errors.New("--duration, --max-requests, --alerts, --rounds and --wrk.threads must be positive, --rate and --tail-rate not negative")
	}
	if o.tailRate > 0 && o.tailRate == o.rate {
		// The summary keys the steps by their offered rate: the tail's
		// would be averaged with the main steps as more rounds of them.
		return o, errors.New("--tail-rate equal to --rate runs the steps again at the same offered load (and the summary would average them as more rounds): leave --tail-rate at 0")
	}
	if o.pgbench != "" && slices.ContainsFunc(o.setups, func(st setup) bool { return st.postgres }) {
		p, err := exec.LookPath(o.pgbench)
		if err != nil {
			return o, fmt.Errorf("--pgbench: %w (it comes with PostgreSQL's client, apt-get install postgresql-client; --pgbench='' runs without the PostgreSQL ceiling)", err)
		}
		o.pgbench = p
	}
	if o.driver == "" {
		o.driver = "go"
		if _, err := exec.LookPath(o.wrkBinary); err == nil {
			o.driver = "wrk"
		} else {
			fmt.Fprintf(stderr, "bench-http: %s not found, the closed-loop steps run on the Go client (apt-get install wrk; make bench-http installs it)\n", o.wrkBinary)
		}
	}
	if o.driver == "wrk" && o.rate > 0 {
		fmt.Fprintln(stderr, "bench-http: --rate runs on the Go client (--driver=go): wrk has no open loop")
		o.driver = "go"
	}
	return o, nil
}

func bench(w io.Writer, o options) error {
	dir, done, err := benchenv.Dir("sred-bench-http-", o.keep)
	if err != nil {
		return err
	}
	defer done()
	bin, err := benchenv.Binary(o.sredBinary, dir, "./cmd/sred")
	if err != nil {
		return err
	}

	// The no-op ceiling: a Go handler that reads the body and answers 200.
	noop, err := startNoop()
	if err != nil {
		return err
	}
	defer noop.Close()

	configs := map[string]string{"failing": o.configFile}
	if slices.Contains(o.channels, "working") {
		sink, err := startSinks()
		if err != nil {
			return err
		}
		defer sink.Close()
		working, cleanup, err := workingConfig(o.configFile, dir, sink)
		if err != nil {
			return err
		}
		defer cleanup()
		configs["working"] = working
	}

	load := fmt.Sprintf("closed loop (each connection sends when answered), load from %s", driverName(o.driver, o))
	if o.rate > 0 {
		load = fmt.Sprintf("open loop at %.0f deliveries/s offered (latency from when each was due), load from %s", o.rate, driverName("go", o))
	}
	network := "loopback"
	if o.pgLatency > 0 {
		network += fmt.Sprintf(" (PostgreSQL round trips +%s)", o.pgLatency)
	}
	fmt.Fprintf(w, "config %s, %d alerts per delivery, %s per step, %s, %s\n", o.configFile, o.alerts, o.duration, network, load)
	fmt.Fprintln(w, "cpu s/1k: sred's CPU seconds (user+system, all replicas) per 1,000 deliveries stored; gen s/1k and gen cores: the load generator's (wrk: its process; go: this whole process, no-op handler and notification sink included) per 1,000 answers and per second; stored: the step's deliveries sred stored (at least its 2xx answers, checked); paged: of the incidents the step's deliveries opened with an escalation, the share whose first escalation step (the first page) had run when the step ended")
	runs := schedule(o)
	tab := runsTable(o, runs)
	fmt.Fprint(w, tab.header())
	nonce := time.Now().UnixNano()
	var all []stepResult
	for _, r := range runs {
		po := o
		po.conns, po.rate, po.driver = r.conns, r.rate, r.driver
		po.skipNoop = r.skipsNoop(o)
		rs, err := benchSred(w, po, tab, r.setup, bin, filepath.Join(dir, fmt.Sprintf("%s-%s-%d-%s", r.setup.name, r.channels, r.round, r.name)), configs[r.channels], r.channels, noop, fmt.Sprintf("%x-%d", nonce, r.round))
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	summary(w, all, o.rate)
	return nil
}

// sredRun is one sred run of bench: a plan's steps on a set-up with a
// channels set-up, in a round.
type sredRun struct {
	setup    setup
	round    int
	channels string
	plan
}

// schedule is bench's sred runs in order: for every set-up and round, the
// steps with every --channels set-up in turn, then, after all of them, the
// fixed-rate tail of --tail-rate with the first channels set-up only.
func schedule(o options) []sredRun {
	var rs []sredRun
	for _, st := range o.setups {
		for round := 1; round <= o.rounds; round++ {
			var tail []sredRun
			for _, ch := range o.channels {
				for _, p := range plans(o) {
					r := sredRun{st, round, ch, p}
					switch {
					case p.rate == o.rate:
						rs = append(rs, r)
					case ch == o.channels[0]:
						tail = append(tail, r)
					}
				}
			}
			rs = append(rs, tail...)
		}
	}
	return rs
}

// skipsNoop tells whether r runs its steps against sred only: the no-op
// ceiling is measured with the main steps, not with the fixed-rate tail.
func (r sredRun) skipsNoop(o options) bool { return r.rate != o.rate }

// storeCeiling is the row the run ends with, its store's own ceiling:
// pgbenchTarget on PostgreSQL with pgbench, replayTarget on SQLite with
// --replay, after the main steps (not the fixed-rate tail's) of the first
// channels set-up; "" for none.
func storeCeiling(o options, st setup, channels string, tail bool) string {
	switch {
	case tail || channels != o.channels[0]:
		return ""
	case st.postgres && o.pgbench != "":
		return pgbenchTarget
	case !st.postgres && o.replay:
		return replayTarget
	}
	return ""
}

// runsTable is the layout of the rows of the steps of runs: the target
// and set-up columns as wide as the longest of their names, all known
// before the first step.
func runsTable(o options, runs []sredRun) stepTable {
	var targets, setups []string
	for _, r := range runs {
		if !r.skipsNoop(o) {
			targets = append(targets, stepName("no-op", r.rate))
		}
		targets = append(targets, stepName("sred/"+r.channels, r.rate))
		setups = append(setups, r.setup.name)
		if c := storeCeiling(o, r.setup, r.channels, r.skipsNoop(o)); c != "" {
			targets = append(targets, c)
			if c == pgbenchTarget && o.pgbenchSet > 1 {
				targets = append(targets, pgbenchSetTarget(o.pgbenchSet))
			}
		}
	}
	return newStepTable(targets, setups)
}

// plan is a sred run of one set-up and channels: the steps in turn on one
// sred, or each on its own (--fresh-store), or a fixed-rate step of
// --tail-rate on its own.
type plan struct {
	conns  []int
	rate   float64
	driver string
	name   string
}

// plans are the sred runs of every set-up, round and channels: the main
// steps', then the fixed-rate tail's (schedule runs these after the main
// steps of every channels set-up, with the first one only).
func plans(o options) []plan {
	var ps []plan
	if o.freshStore {
		for _, c := range o.conns {
			ps = append(ps, plan{[]int{c}, o.rate, o.driver, strconv.Itoa(c)})
		}
	} else {
		ps = append(ps, plan{o.conns, o.rate, o.driver, "steps"})
	}
	if o.tailRate > 0 {
		for _, c := range o.conns {
			ps = append(ps, plan{[]int{c}, o.tailRate, "go", fmt.Sprintf("rate-%.0f-%d", o.tailRate, c)})
		}
	}
	return ps
}

// stepTable is the layout of the step rows: the target and set-up columns
// as wide as the longest name they will hold (the rows are printed as the
// steps end, so the names are given beforehand), the figures right-aligned
// in columns as wide as their headings.
type stepTable struct{ target, setup int }

// newStepTable is the layout of rows of the targets and set-ups given.
func newStepTable(targets, setups []string) stepTable {
	t := stepTable{target: len("target"), setup: len("setup")}
	for _, n := range targets {
		t.target = max(t.target, len(n))
	}
	for _, n := range setups {
		t.setup = max(t.setup, len(n))
	}
	return t
}

func (t stepTable) row(target, setup string, figures ...any) string {
	return fmt.Sprintf("%-*s %-*s %6s %13s %8s %8s %8s %8s %7s %8s %8s %9s %9s %9s %6s  %s\n", append([]any{t.target, target, t.setup, setup}, figures...)...)
}

func (t stepTable) header() string {
	return t.row("target", "setup", "conns", "deliveries/s", "p50 ms", "p99 ms", "max ms", "2xx", "errors", "stored", "cpu s/1k", "db s/1k", "gen s/1k", "gen cores", "paged", "load avg (1m 5m 15m)")
}

// stepName is the target column of a step against target ("no-op",
// "sred/failing") at the offered rate (0: closed loop).
func stepName(target string, rate float64) string {
	if rate > 0 {
		return fmt.Sprintf("%s@%.0f", target, rate)
	}
	return target
}

func driverName(d string, o options) string {
	if d == "wrk" {
		return fmt.Sprintf("wrk (%d threads)", o.wrkThreads)
	}
	warm := "connections opened before the clock starts"
	if !o.warm {
		warm = "connections opened on first use"
	}
	return "the Go client, " + warm
}

// stepResult is one sred step, for the summary.
type stepResult struct {
	setup, channels string
	conns           int
	offered         float64 // deliveries/s offered (open loop); 0: closed loop
	rate, noop      float64
	p99             time.Duration
	cpuPer1k        float64
	noCPU           bool // no cpuPer1k: nothing stored, or the CPU time could not be read
}

// summary prints, per set-up and number of connections, the sred figures
// the goals are judged by: deliveries/s against the no-op ceiling, failing
// against working channels (throughput and CPU per delivery), and the tail
// at the most connections against the tail at the fewest (averages over
// rounds).
func summary(w io.Writer, rs []stepResult, mainRate float64) {
	type key struct {
		setup, channels string
		conns           int
		offered         float64
	}
	type agg struct {
		rate, noop, cpu float64
		p99             time.Duration
		n               int
		cpuN            int // the rounds with a CPU figure
	}
	m := map[key]*agg{}
	var setupOrder []string
	var connOrder []int
	for _, r := range rs {
		k := key{r.setup, r.channels, r.conns, r.offered}
		if m[k] == nil {
			m[k] = &agg{}
		}
		a := m[k]
		a.rate += r.rate
		a.noop += r.noop
		if !r.noCPU {
			a.cpu += r.cpuPer1k
			a.cpuN++
		}
		a.p99 = max(a.p99, r.p99)
		a.n++
		if !slices.Contains(setupOrder, r.setup) {
			setupOrder = append(setupOrder, r.setup)
		}
		if !slices.Contains(connOrder, r.conns) {
			connOrder = append(connOrder, r.conns)
		}
	}
	var offeredOrder []float64
	for _, r := range rs {
		if !slices.Contains(offeredOrder, r.offered) {
			offeredOrder = append(offeredOrder, r.offered)
		}
	}
	getAt := func(setup, ch string, c int, offered float64) *agg {
		a := m[key{setup, ch, c, offered}]
		if a == nil || a.n == 0 {
			return nil
		}
		avg := &agg{rate: a.rate / float64(a.n), noop: a.noop / float64(a.n), p99: a.p99, n: a.n, cpuN: a.cpuN}
		if a.cpuN > 0 {
			avg.cpu = a.cpu / float64(a.cpuN)
		}
		return avg
	}
	get := func(setup, ch string, c int) *agg { return getAt(setup, ch, c, mainRate) }
	fmt.Fprintln(w)
	fmt.Fprintln(w, "summary (averages over rounds; p99: the worst round)")
	const row = "%-10s %6s %10s %10s %10s %10s %10s %9s %12s %12s\n"
	fmt.Fprintf(w, row, "setup", "conns", "no-op/s", "failing/s", "p99 ms", "working/s", "p99 ms", "fail/work", "cpu/1k fail", "cpu/1k work")
	cpu := func(a *agg) string {
		if a.cpuN == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a.cpu)
	}
	pct := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*a/b)
	}
	for _, st := range setupOrder {
		for _, c := range connOrder {
			f, wk := get(st, "failing", c), get(st, "working", c)
			cell := func(a *agg, v func(*agg) string) string {
				if a == nil {
					return "-"
				}
				return v(a)
			}
			noop := 0.0
			for _, a := range []*agg{f, wk} {
				if a != nil {
					noop = max(noop, a.noop)
				}
			}
			ratio := "-"
			if f != nil && wk != nil {
				ratio = pct(f.rate, wk.rate)
			}
			fmt.Fprintf(w, row, st, strconv.Itoa(c), fmt.Sprintf("%.0f", noop),
				cell(f, func(a *agg) string { return fmt.Sprintf("%.0f", a.rate) }), cell(f, func(a *agg) string { return fmt.Sprintf("%.1f", benchenv.Millis(a.p99)) }),
				cell(wk, func(a *agg) string { return fmt.Sprintf("%.0f", a.rate) }), cell(wk, func(a *agg) string { return fmt.Sprintf("%.1f", benchenv.Millis(a.p99)) }),
				ratio, cell(f, cpu), cell(wk, cpu))
		}
		if len(connOrder) > 1 {
			lo, hi := slices.Min(connOrder), slices.Max(connOrder)
			for _, off := range offeredOrder {
				load := "closed loop"
				if off > 0 {
					load = fmt.Sprintf("%.0f/s offered", off)
				}
				for _, ch := range []string{"failing", "working"} {
					a, b := getAt(st, ch, lo, off), getAt(st, ch, hi, off)
					if a != nil && b != nil && a.p99 > 0 {
						fmt.Fprintf(w, "%-10s p99 at %d connections / p99 at %d (%s, %s): %.1fx\n", st, hi, lo, ch, load, float64(b.p99)/float64(a.p99))
					}
				}
			}
		}
	}
}

// benchSred starts sred (st.replicas processes) from config on a fresh
// store in dir and runs every step against the no-op handler and it.
func benchSred(w io.Writer, o options, tab stepTable, st setup, bin, dir, config, channels string, noop *noopServer, nonce string) ([]stepResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sred, err := startSreds(bin, dir, config, st, o)
	if err != nil {
		return nil, err
	}
	defer sred.stop()
	for _, p := range sred.procs {
		fmt.Fprintf(os.Stderr, "sred (%s, %s channels) at %s (profiles at %s/debug/pprof/), log %s\n", st.name, channels, p.URL, p.URL, p.Log)
	}
	if sred.proxy != nil {
		fmt.Fprintf(os.Stderr, "round-robin load balancer at %s\n", sred.url)
	}
	var out []stepResult
	var noopRate float64
	lastPrefix := "" // the last sred step's
	for k, c := range o.conns {
		targets := []struct{ name, url string }{
			{"no-op", "http://" + noop.Addr().String() + "/"},
			{"sred/" + channels, sred.url + "/api/v1/webhook/alertmanager"},
		}
		if o.skipNoop {
			targets = targets[1:]
		}
		for _, t := range targets {
			isSred := t.name != "no-op"
			name := stepName(t.name, o.rate)
			// The step's number too: --connections may repeat a value.
			prefix := fmt.Sprintf("%s-%s-%s-%d.%d", nonce, st.name, name, c, k+1)
			cpu0, db0 := sred.cpu(), sred.pg.cpu()
			m, err := step(t.url, c, o, prefix, dir)
			if err != nil {
				return nil, fmt.Errorf("%s (%s) with %d connections: %w", t.name, st.name, c, err)
			}
			if m.ok == 0 && m.firstErr != "" {
				return nil, fmt.Errorf("%s (%s) with %d connections: no 2xx answer; first error: %s", t.name, st.name, c, m.firstErr)
			}
			cpuCol, storedCol, pagedC := "-", "-", "-"
			stored := 0
			if isSred {
				// Every 2xx is durable: the step's groups in the store are
				// at least its 2xx answers, and at most every request
				// that may have reached sred. wrk stops with requests in
				// flight: their deliveries are let settle first, so that
				// the CPU they cost and they themselves fall in this step.
				n, err := sred.settled(prefix, m.unanswered > 0)
				if err != nil {
					return nil, fmt.Errorf("count the deliveries sred stored: %w", err)
				}
				stored, storedCol = n, strconv.Itoa(n)
				if err := checkStored(n, m); err != nil {
					return nil, fmt.Errorf("%s (%s) with %d connections: %w", t.name, st.name, c, err)
				}
				opened, first, err := sred.paged(prefix)
				if err != nil {
					return nil, fmt.Errorf("count the step's incidents paged: %w", err)
				}
				pagedC = pagedCol(opened, first)
			}
			cpu := cpuSpent(cpu0, sred.cpu())
			perK, cpuOK := cpuPer1k(cpu, stored)
			dbCol := "-"
			if isSred && cpuOK {
				cpuCol = fmt.Sprintf("%.2f", perK)
			}
			if dbK, ok := cpuPer1k(cpuSpent(db0, sred.pg.cpu()), stored); isSred && ok {
				dbCol = fmt.Sprintf("%.2f", dbK)
			}
			fmt.Fprint(w, tab.line(name, st.name, c, m, storedCol, cpuCol, dbCol, pagedC, benchenv.LoadAvg()))
			if m.firstErr != "" {
				fmt.Fprintf(os.Stderr, "  first error: %s\n", m.firstErr)
			}
			if m.timeouts > 0 {
				fmt.Fprintf(os.Stderr, "  %d answers slower than wrk's timeout (%s): counted by their status, not in the latencies\n", m.timeouts, wrkTimeout)
			}
			if m.corrected {
				fmt.Fprintln(os.Stderr, "  latencies: wrk's own percentiles, corrected for coordinated omission (its histogram could not be read)")
			}
			if !isSred {
				noopRate = m.rate()
				continue
			}
			lastPrefix = prefix
			sr := stepResult{setup: st.name, channels: channels, conns: c, offered: o.rate, rate: m.rate(), noop: noopRate, p99: m.p99, cpuPer1k: perK, noCPU: !cpuOK}
			out = append(out, sr)
		}
	}
	if !sred.alive() {
		return nil, fmt.Errorf("sred exited during the run (log: %s)", sred.procs[0].Log)
	}
	if c := storeCeiling(o, st, channels, o.skipNoop); c != "" && lastPrefix != "" {
		// The ceiling has the store to itself: sred's connections and
		// its workers would take from its CPU (and its clients).
		sred.stopProcs()
		if st.postgres {
			err = sred.ceiling(w, o, tab, st, dir, lastPrefix, out[len(out)-1].rate)
		} else {
			err = sred.sqliteCeiling(w, o, tab, st, lastPrefix, out[len(out)-1].rate)
		}
		if err != nil {
			return nil, fmt.Errorf("%s ceiling: %w", st.name, err)
		}
	}
	return out, nil
}

// measure is what one step measured, whichever the load generator.
type measure struct {
	ok         int // 2xx answers
	failed     int // other answers and transport errors
	unanswered int // requests that may have reached the target without being counted
	timeouts   int // wrk: answers (in ok or failed) slower than its timeout, not in the latencies
	elapsed    time.Duration
	p50, p99   time.Duration
	max        time.Duration
	genCPU     time.Duration // the load generator's CPU time
	firstErr   string
	corrected  bool // wrk's corrected percentiles (see benchenv.WrkResult)
}

func (m *measure) rate() float64 { return float64(m.ok) / m.elapsed.Seconds() }

// checkStored is the durability check of a sred step: every 2xx is
// durable, so the step's groups in the store (stored) are at least its 2xx
// answers, and at most every request that may have reached sred (the
// other answers and errors, and those in flight when the load stopped).
func checkStored(stored int, m *measure) error {
	if stored < m.ok || stored > m.ok+m.failed+m.unanswered {
		return fmt.Errorf("sred stored %d of the step's deliveries, answered %d with 2xx (%d other answers or errors, up to %d in flight when the load stopped): a 2xx that is not durable",
			stored, m.ok, m.failed, m.unanswered)
	}
	return nil
}

// cpuSpent is the CPU time spent between two readings of sredSet.cpu;
// -1 (no figure) when either failed.
func cpuSpent(before, after time.Duration) time.Duration {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

// cpuPer1k is sred's CPU seconds per 1,000 deliveries stored, cpu spent
// over a step that stored them; false when there is no figure (nothing
// stored, or the CPU time could not be read). Per delivery stored, not
// answered: with wrk, those in flight at its end were processed (and
// their CPU spent) without being counted as answered.
func cpuPer1k(cpu time.Duration, stored int) (float64, bool) {
	if stored <= 0 || cpu < 0 {
		return 0, false
	}
	return cpu.Seconds() * 1000 / float64(stored), true
}

// line is the output row of one step: name, set-up and connections,
// what the load generator measured (m), the deliveries sred stored, its
// CPU per 1,000, PostgreSQL's (db: "-" but on a PostgreSQL set-up whose
// server runs on this machine), and the share of the step's new incidents
// paged (stored, cpu, db and paged: "-" for the no-op handler) and the
// load average.
func (t stepTable) line(name, setup string, conns int, m *measure, stored, cpu, db, paged, load string) string {
	gen, cores := "-", "-"
	if m.ok+m.failed > 0 && m.genCPU > 0 {
		gen = fmt.Sprintf("%.2f", m.genCPU.Seconds()*1000/float64(m.ok+m.failed))
		cores = fmt.Sprintf("%.2f", m.genCPU.Seconds()/m.elapsed.Seconds())
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", benchenv.Millis(d)) }
	return t.row(name, setup, strconv.Itoa(conns), fmt.Sprintf("%.0f", m.rate()),
		ms(m.p50), ms(m.p99), ms(m.max), strconv.Itoa(m.ok), strconv.Itoa(m.failed), stored, cpu, db, gen, cores, paged, load)
}

// step runs one step's load against url: wrk for the closed loop when
// o.driver is "wrk", else the Go client.
func step(url string, conns int, o options, prefix, dir string) (*measure, error) {
	if o.driver == "wrk" && o.rate == 0 {
		r, err := benchenv.RunWrk(benchenv.WrkOptions{Binary: o.wrkBinary, Dir: dir, URL: url, Connections: conns, Threads: o.wrkThreads,
			Duration: o.duration, Timeout: wrkTimeout, Prefix: prefix, Alerts: o.alerts, RunbookURL: runbookURL})
		if err != nil {
			return nil, err
		}
		return wrkMeasure(r, conns), nil
	}
	cpu0 := selfCPU()
	r := drive(url, conns, o, prefix)
	return goMeasure(r, selfCPU()-cpu0), nil
}

// wrkTimeout is wrk's --timeout: answers slower than this are left out of
// its latency histogram.
const wrkTimeout = 30 * time.Second

// wrkMeasure is what a wrk run of conns connections measured: it stops
// with up to one request per connection in flight. wrk's timeouts are
// answers, in its 2xx or other answers already: not errors besides.
func wrkMeasure(r *benchenv.WrkResult, conns int) *measure {
	return &measure{ok: r.OK(), failed: r.NonOK + r.SocketErrs, unanswered: conns, timeouts: r.Timeouts, elapsed: r.Elapsed,
		p50: r.Quantile(0.5), p99: r.Quantile(0.99), max: r.Quantile(1), genCPU: r.CPU, firstErr: r.FirstError, corrected: r.Corrected}
}

// goMeasure is what a run of the Go client (drive) measured, gen the CPU
// time this process spent meanwhile.
func goMeasure(r *result, gen time.Duration) *measure {
	m := &measure{ok: r.ok, failed: r.errs, elapsed: r.elapsed, genCPU: gen,
		p50: benchenv.Quantile(r.latencies, 0.5), p99: benchenv.Quantile(r.latencies, 0.99), max: benchenv.Quantile(r.latencies, 1)}
	if r.firstErr != nil {
		m.firstErr = r.firstErr.Error()
	}
	return m
}

// selfCPU is this process's CPU time (user and system) so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const runbookURL = "https://runbooks.example.com/high-error-rate"

type noopServer struct {
	ln  net.Listener
	srv *http.Server
}

func startNoop() (*noopServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"incidents":[],"duplicate":false,"alerts":{}}`)
	})}
	go func() { _ = srv.Serve(ln) }()
	return &noopServer{ln: ln, srv: srv}, nil
}

func (n *noopServer) Addr() net.Addr { return n.ln.Addr() }
func (n *noopServer) Close()         { _ = n.srv.Close() }

// sredSet is the sred processes of one set-up and the URL the load goes to
// (the load balancer's when there are several).
type sredSet struct {
	procs []*benchenv.Sred
	proxy *proxy
	// pgProxy is the latency between the replicas and PostgreSQL
	// (--postgres.latency), nil without.
	pgProxy *proxy
	url     string
	drop    func() // drops the PostgreSQL schema
	// store is the SQLite file (of the one replica) or the PostgreSQL URL
	// (with the schema's search_path) of the set-up's store.
	sqlitePath, postgresURL string
	// pg is the PostgreSQL server, when it runs on this machine (the
	// db s/1k column; nil: no figure).
	pg *pgServer
}

// startSreds starts st.replicas sred processes on a fresh store: a SQLite
// directory in dir, or a new schema of the PostgreSQL database shared by
// the replicas, behind a round-robin load balancer when there are several.
func startSreds(bin, dir, config string, st setup, o options) (*sredSet, error) {
	set := &sredSet{drop: func() {}}
	pgURL := ""
	if st.postgres {
		u, drop, err := freshSchema(o.postgresURL, filepath.Base(dir), o.keep)
		if err != nil {
			return nil, err
		}
		pgURL, set.drop = u, drop
		set.postgresURL = pgURL
		pg, err := findPgServer(pgURL)
		if err != nil {
			fmt.Fprintf(os.Stderr, "PostgreSQL's CPU time (db s/1k) cannot be read: %v\n", err)
		}
		set.pg = pg
	}
	sredPgURL := pgURL
	if pgURL != "" && o.pgLatency > 0 {
		u, err := url.Parse(pgURL)
		if err != nil {
			set.stop()
			return nil, err
		}
		px, err := startDelayProxy([]string{u.Host}, o.pgLatency/2)
		if err != nil {
			set.stop()
			return nil, fmt.Errorf("PostgreSQL latency proxy: %w", err)
		}
		set.pgProxy = px
		u.Host = px.Addr()
		sredPgURL = u.String()
	}
	for i := range st.replicas {
		p, err := startSred(bin, filepath.Join(dir, fmt.Sprintf("replica-%d", i+1)), config, sredPgURL, o.pgPool)
		if err != nil {
			set.stop()
			return nil, err
		}
		set.procs = append(set.procs, p)
		if pgURL == "" {
			set.sqlitePath = filepath.Join(dir, fmt.Sprintf("replica-%d", i+1), "data", "sred.db")
		}
	}
	set.url = set.procs[0].URL
	if len(set.procs) > 1 {
		var backends []string
		for _, p := range set.procs {
			backends = append(backends, strings.TrimPrefix(p.URL, "http://"))
		}
		px, err := startProxy(backends)
		if err != nil {
			set.stop()
			return nil, err
		}
		set.proxy, set.url = px, "http://"+px.Addr()
	}
	return set, nil
}

func (s *sredSet) stop() {
	s.stopProcs()
	s.drop()
}

// stopProcs stops the load balancer and the replicas, and leaves the
// store.
func (s *sredSet) stopProcs() {
	if s.proxy != nil {
		s.proxy.Close()
		s.proxy = nil
	}
	for _, p := range s.procs {
		p.Stop()
	}
	if s.pgProxy != nil {
		s.pgProxy.Close()
		s.pgProxy = nil
	}
}

func (s *sredSet) alive() bool {
	for _, p := range s.procs {
		if !p.Alive() {
			return false
		}
	}
	return true
}

// query runs q (FIND(column) stands for the backend's substring search)
// on sred's store with the group label of the step's deliveries (prefix)
// as its only argument, and scans its one row into dest.
func (s *sredSet) query(q, prefix string, dest ...any) error {
	driver, dsn, find := "pgx", s.postgresURL, "strpos"
	if dsn == "" {
		driver, dsn, find = "sqlite", "file:"+s.sqlitePath+"?_pragma=busy_timeout(10000)", "instr"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The group key holds group="PREFIX-N" (benchenv.Payload).
	return db.QueryRowContext(ctx, strings.ReplaceAll(q, "FIND(", find+"("), `group="`+prefix+`-`).Scan(dest...)
}

// stored counts the alert groups in the store whose group label starts
// with prefix: the deliveries of one step (each is a new group).
func (s *sredSet) stored(prefix string) (int, error) {
	var n int
	err := s.query(`SELECT count(*) FROM alert_groups WHERE FIND(group_key, $1) > 0`, prefix, &n)
	return n, err
}

// paged counts the incidents the step's deliveries opened (the group that
// opened an incident is its group_key) that have an escalation, and of
// them those whose first escalation step (level 0: the first page) has run.
func (s *sredSet) paged(prefix string) (opened, first int, err error) {
	err = s.query(`SELECT count(*), COALESCE(SUM(CASE WHEN e.level >= 0 THEN 1 ELSE 0 END), 0)
FROM incidents i JOIN escalation_state e ON e.incident_id = i.id WHERE FIND(i.group_key, $1) > 0`, prefix, &opened, &first)
	return opened, first, err
}

// pagedCol is the paged column: the share of the step's new incidents
// with an escalation whose first page had run when the step ended ("-"
// when it opened none).
func pagedCol(opened, first int) string {
	if opened <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(first)/float64(opened))
}

// settled is stored(prefix), once it no longer grows when inFlight says
// requests may still be in sred's hands (read every 200 ms, 10 s at most).
func (s *sredSet) settled(prefix string, inFlight bool) (int, error) {
	n, err := s.stored(prefix)
	if err != nil || !inFlight {
		return n, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		m, err := s.stored(prefix)
		if err != nil || m == n {
			return m, err
		}
		n = m
	}
	return n, nil
}

// cpu is the CPU time (user and system) the processes have used so far.
func (s *sredSet) cpu() time.Duration {
	var t time.Duration
	for _, p := range s.procs {
		c, err := procCPU(p.Cmd.Process.Pid)
		if err != nil {
			return -1
		}
		t += c
	}
	return t
}

// freshSchema creates a schema in the database at base and returns a URL
// whose connections use it (search_path) and a function dropping it.
func freshSchema(base, name string, keep bool) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("--storage.postgres-url: %w", err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("open %s: %w", u.Redacted(), err)
	}
	defer admin.Close()
	schema := "bench_http_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(name)) + fmt.Sprintf("_%d", time.Now().UnixNano()%1e9)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s (--storage.postgres-url; --setups=sqlite runs without it): create schema: %w", u.Redacted(), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		if keep {
			fmt.Fprintf(os.Stderr, "keeping schema %s\n", schema)
			return
		}
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	}
	return u.String(), drop, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times:
// 100 on every Linux architecture sred runs on.
const clockTicks = 100

// procCPU reads a process's user and system CPU time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	st, err := procStat(pid)
	return st.self, err
}

// hostPort is the host:port of an http:// URL.
func hostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// startSred starts one sred on a SQLite store in dir, or on postgresURL
// with a main pool of pgPool connections (0: sred's default).
func startSred(bin, dir, config, postgresURL string, pgPool int) (*benchenv.Sred, error) {
	store := []string{"--storage.path=" + filepath.Join(dir, "data")}
	if postgresURL != "" {
		store = []string{"--storage.postgres-url=" + postgresURL}
		if pgPool > 0 {
			store = append(store, "--storage.postgres-max-connections="+strconv.Itoa(pgPool))
		}
	}
	return benchenv.StartSred(bin, dir, config, 60*time.Second, store...)
}

type result struct {
	ok, errs  int
	elapsed   time.Duration
	latencies []time.Duration
	firstErr  error
}

func (r *result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// drive posts distinct deliveries to url over conns keep-alive connections
// until o.duration has passed or o.maxRequests were sent. With o.rate set,
// delivery k (from 0) is due at start + k/o.rate: a free connection waits
// until the next delivery is due, and a delivery's latency runs from when it
// was due, so a server that falls behind the offered rate shows it in the
// latencies rather than in a slower schedule.
//
// With o.warm the connections are opened before the clock starts, as wrk
// does: otherwise the first delivery of every connection pays for its
// connection's set-up, conns of them in a step (64 of 4,000 deliveries at
// 400/s for 10 s is more than the 1% above p99).
func drive(url string, conns int, o options, prefix string) *result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	if o.warm {
		warm := make(chan net.Conn, conns)
		var d net.Dialer
		for range conns {
			c, err := d.Dial("tcp", hostPort(url))
			if err != nil {
				break // the step's requests will say why
			}
			warm <- c
		}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			select {
			case c := <-warm:
				return c, nil
			default:
				return d.DialContext(ctx, network, addr)
			}
		}
		defer func() {
			close(warm)
			for c := range warm {
				c.Close()
			}
		}()
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var seq atomic.Int64
	var mu sync.Mutex
	res := &result{}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ok, errs := 0, 0
			var first error
			for ctx.Err() == nil {
				i := seq.Add(1)
				if i > int64(o.maxRequests) {
					break
				}
				body := benchenv.Payload(prefix, i, o.alerts, runbookURL)
				t0 := time.Now()
				if o.rate > 0 {
					t0 = start.Add(time.Duration(float64(i-1) / o.rate * float64(time.Second)))
					if wait := time.Until(t0); wait > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(wait):
						}
						if ctx.Err() != nil {
							break
						}
					}
				}
				err := benchenv.Post(client, url, body)
				d := time.Since(t0)
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				ok++
				lat = append(lat, d)
			}
			mu.Lock()
			res.ok += ok
			res.errs += errs
			res.latencies = append(res.latencies, lat...)
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}
