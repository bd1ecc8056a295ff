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
// changes far less than the throughput.
//
//	go run ./cmd/bench-http --config.file=examples/sred.yml --connections=8,32,64 --setups=sqlite
//
// `make bench-http` runs it with these defaults.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx", for the set-ups' schemas

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	configFile  string
	sredBinary  string
	postgresURL string
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

func run(args []string) int {
	a := kingpin.New("bench-http", "Load sred's Alertmanager webhook over HTTP and compare with a no-op handler.")
	var o options
	var conns string
	a.Flag("config.file", "sred configuration file (its relative paths resolve from its directory).").Default("examples/sred.yml").StringVar(&o.configFile)
	a.Flag("sred.binary", "sred binary to run; built from ./cmd/sred into a temporary directory when empty.").StringVar(&o.sredBinary)
	a.Flag("storage.postgres-url", "PostgreSQL database of the postgres set-ups; every sred (or pair of replicas) gets a fresh schema of it, dropped at the end unless --keep.").Default("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").StringVar(&o.postgresURL)
	var setupList string
	a.Flag("setups", "Comma-separated set-ups, run in turn: sqlite (a temporary SQLite store), postgres (one sred on PostgreSQL), postgres-2 (two sred replicas on one PostgreSQL database behind a round-robin TCP load balancer).").Default("sqlite").StringVar(&setupList)
	a.Flag("connections", "Comma-separated numbers of concurrent keep-alive connections, one step each.").Default("8,32,64").StringVar(&conns)
	a.Flag("duration", "Time each step (handler x connections) runs.").Default("10s").DurationVar(&o.duration)
	a.Flag("max-requests", "Requests after which a step ends even before --duration.").Default("200000").IntVar(&o.maxRequests)
	a.Flag("alerts", "Alerts in every delivery.").Default("10").IntVar(&o.alerts)
	a.Flag("keep", "Keep the temporary directory (store and sred log).").BoolVar(&o.keep)
	var channels string
	a.Flag("channels", "Comma-separated notification set-ups, one sred each: failing (the configuration as it is; examples/sred.yml points every channel at 127.0.0.1:9, which refuses connections) and working (a copy whose 127.0.0.1:9 endpoints, secret files included, point at a local sink answering every request).").Default("failing,working").StringVar(&channels)
	a.Flag("rounds", "Rounds of every --channels set-up, in alternation, each on a fresh sred and store.").Default("1").IntVar(&o.rounds)
	a.Flag("rate", "Offered load in deliveries/s (open loop): delivery k is due at k/rate after the step starts, whichever connection is free sends it, and its latency counts from when it was due, so time spent waiting for a free connection is in the figures (as wrk2 measures, without coordinated omission). 0: closed loop, each connection sends its next delivery when the previous one is answered.").Default("0").Float64Var(&o.rate)
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "bench-http: %v\n", err)
		return 2
	}
	for _, f := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench-http: invalid --connections value %q\n", f)
			return 2
		}
		o.conns = append(o.conns, n)
	}
	for _, f := range strings.Split(channels, ",") {
		f = strings.TrimSpace(f)
		if f != "failing" && f != "working" {
			fmt.Fprintf(os.Stderr, "bench-http: invalid --channels value %q (failing or working)\n", f)
			return 2
		}
		o.channels = append(o.channels, f)
	}
	for _, f := range strings.Split(setupList, ",") {
		st, ok := setups[strings.TrimSpace(f)]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench-http: invalid --setups value %q (sqlite, postgres or postgres-2)\n", f)
			return 2
		}
		o.setups = append(o.setups, st)
	}
	if o.duration <= 0 || o.maxRequests < 1 || o.alerts < 1 || o.rounds < 1 || o.rate < 0 {
		fmt.Fprintln(os.Stderr, "bench-http: --duration, --max-requests, --alerts and --rounds must be positive, --rate not negative")
		return 2
	}
	if err := bench(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-http: %v\n", err)
		return 1
	}
	return 0
}

func bench(o options) error {
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

	load := "closed loop (each connection sends when answered)"
	if o.rate > 0 {
		load = fmt.Sprintf("open loop at %.0f deliveries/s offered (latency from when each was due)", o.rate)
	}
	fmt.Printf("config %s, %d alerts per delivery, %s or %d requests per step, loopback, %s; cpu s/1k: sred's CPU seconds (user+system, all replicas) per 1,000 deliveries\n",
		o.configFile, o.alerts, o.duration, o.maxRequests, load)
	const row = "%-14s %-10s %6s %13s %8s %8s %8s %8s %7s %9s  %s\n"
	fmt.Printf(row, "target", "setup", "conns", "deliveries/s", "p50 ms", "p99 ms", "max ms", "2xx", "errors", "cpu s/1k", "load avg (1m 5m 15m)")
	nonce := time.Now().UnixNano()
	var all []stepResult
	for _, st := range o.setups {
		for round := 1; round <= o.rounds; round++ {
			for _, ch := range o.channels {
				rs, err := benchSred(o, st, bin, filepath.Join(dir, fmt.Sprintf("%s-%s-%d", st.name, ch, round)), configs[ch], ch, noop, row, fmt.Sprintf("%x-%d", nonce, round))
				if err != nil {
					return err
				}
				all = append(all, rs...)
			}
		}
	}
	summary(os.Stdout, all)
	return nil
}

// stepResult is one sred step, for the summary.
type stepResult struct {
	setup, channels string
	conns           int
	rate, noop      float64
	p99             time.Duration
	cpuPer1k        float64
}

// summary prints, per set-up and number of connections, the sred figures
// the goals are judged by: deliveries/s against the no-op ceiling, failing
// against working channels (throughput and CPU per delivery), and the tail
// at the most connections against the tail at the fewest (averages over
// rounds).
func summary(w io.Writer, rs []stepResult) {
	type key struct {
		setup, channels string
		conns           int
	}
	type agg struct {
		rate, noop, cpu float64
		p99             time.Duration
		n               int
	}
	m := map[key]*agg{}
	var setupOrder []string
	var connOrder []int
	for _, r := range rs {
		k := key{r.setup, r.channels, r.conns}
		if m[k] == nil {
			m[k] = &agg{}
		}
		a := m[k]
		a.rate += r.rate
		a.noop += r.noop
		a.cpu += r.cpuPer1k
		a.p99 = max(a.p99, r.p99)
		a.n++
		if !slices.Contains(setupOrder, r.setup) {
			setupOrder = append(setupOrder, r.setup)
		}
		if !slices.Contains(connOrder, r.conns) {
			connOrder = append(connOrder, r.conns)
		}
	}
	get := func(setup, ch string, c int) *agg {
		a := m[key{setup, ch, c}]
		if a == nil || a.n == 0 {
			return nil
		}
		return &agg{rate: a.rate / float64(a.n), noop: a.noop / float64(a.n), cpu: a.cpu / float64(a.n), p99: a.p99, n: a.n}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "summary (averages over rounds; p99: the worst round)")
	const row = "%-10s %6s %10s %10s %10s %10s %10s %9s %12s %12s\n"
	fmt.Fprintf(w, row, "setup", "conns", "no-op/s", "failing/s", "p99 ms", "working/s", "p99 ms", "fail/work", "cpu/1k fail", "cpu/1k work")
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
				ratio, cell(f, func(a *agg) string { return fmt.Sprintf("%.2f", a.cpu) }), cell(wk, func(a *agg) string { return fmt.Sprintf("%.2f", a.cpu) }))
		}
		if len(connOrder) > 1 {
			lo, hi := slices.Min(connOrder), slices.Max(connOrder)
			for _, ch := range []string{"failing", "working"} {
				a, b := get(st, ch, lo), get(st, ch, hi)
				if a != nil && b != nil && a.p99 > 0 {
					fmt.Fprintf(w, "%-10s p99 at %d connections / p99 at %d (%s): %.1fx\n", st, hi, lo, ch, float64(b.p99)/float64(a.p99))
				}
			}
		}
	}
}

// benchSred starts sred (st.replicas processes) from config on a fresh
// store in dir and runs every step against the no-op handler and it.
func benchSred(o options, st setup, bin, dir, config, channels string, noop *noopServer, row, nonce string) ([]stepResult, error) {
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
	for _, c := range o.conns {
		for _, t := range []struct{ name, url string }{
			{"no-op", "http://" + noop.Addr().String() + "/"},
			{"sred/" + channels, sred.url + "/api/v1/webhook/alertmanager"},
		} {
			isSred := t.name != "no-op"
			cpu0 := sred.cpu()
			r := drive(t.url, c, o, fmt.Sprintf("%s-%s-%s-%d", nonce, st.name, t.name, c))
			cpu := sred.cpu() - cpu0
			if r.ok == 0 && r.firstErr != nil {
				return nil, fmt.Errorf("%s (%s) with %d connections: %w", t.name, st.name, c, r.firstErr)
			}
			cpuCol := "-"
			if isSred && r.ok > 0 && cpu >= 0 {
				cpuCol = fmt.Sprintf("%.2f", cpu.Seconds()*1000/float64(r.ok))
			}
			q := func(x float64) string { return fmt.Sprintf("%.1f", benchenv.Millis(benchenv.Quantile(r.latencies, x))) }
			fmt.Printf(row, t.name, st.name, strconv.Itoa(c), fmt.Sprintf("%.0f", r.rate()),
				q(0.5), q(0.99), q(1), strconv.Itoa(r.ok), strconv.Itoa(r.errs), cpuCol, benchenv.LoadAvg())
			if r.firstErr != nil {
				fmt.Fprintf(os.Stderr, "  first error: %v\n", r.firstErr)
			}
			if !isSred {
				noopRate = r.rate()
				continue
			}
			sr := stepResult{setup: st.name, channels: channels, conns: c, rate: r.rate(), noop: noopRate, p99: benchenv.Quantile(r.latencies, 0.99)}
			if r.ok > 0 && cpu >= 0 {
				sr.cpuPer1k = cpu.Seconds() * 1000 / float64(r.ok)
			}
			out = append(out, sr)
		}
	}
	if !sred.alive() {
		return nil, fmt.Errorf("sred exited during the run (log: %s)", sred.procs[0].Log)
	}
	return out, nil
}

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
	url   string
	drop  func() // drops the PostgreSQL schema
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
	}
	for i := range st.replicas {
		p, err := startSred(bin, filepath.Join(dir, fmt.Sprintf("replica-%d", i+1)), config, pgURL)
		if err != nil {
			set.stop()
			return nil, err
		}
		set.procs = append(set.procs, p)
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
	if s.proxy != nil {
		s.proxy.Close()
	}
	for _, p := range s.procs {
		p.Stop()
	}
	s.drop()
}

func (s *sredSet) alive() bool {
	for _, p := range s.procs {
		if !p.Alive() {
			return false
		}
	}
	return true
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// startSred starts one sred on a SQLite store in dir, or on postgresURL.
func startSred(bin, dir, config, postgresURL string) (*benchenv.Sred, error) {
	store := "--storage.path=" + filepath.Join(dir, "data")
	if postgresURL != "" {
		store = "--storage.postgres-url=" + postgresURL
	}
	return benchenv.StartSred(bin, dir, config, 60*time.Second, store)
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
func drive(url string, conns int, o options, prefix string) *result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
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
				body := benchenv.Payload(prefix, i, o.alerts, "https://runbooks.example.com/high-error-rate")
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
