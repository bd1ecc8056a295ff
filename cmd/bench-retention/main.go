// Command bench-retention measures what the retention compaction costs
// webhook ingestion. For each backend it seeds a store with --seed-rows
// rows of incidents resolved 30 days ago (incidents, their groups, alert
// episodes, links and two timeline entries each), then, alternately, starts
// sred on a fresh copy of that store with retention off and with
// resolved_incidents: 24h (the compaction deletes every seeded row in
// batches from sred's start on), and posts a steady webhook load (new
// groups of firing alerts, at --rate deliveries per second) for
// --duration. It prints each run's p50 and p99, the rows the compaction
// deleted during the load, the machine's load average, and the ratio of
// the p99 with compaction to the p99 without, per round.
//
//	go run ./cmd/bench-retention --seed-rows=1000000
//
// `make bench-retention` runs it with these defaults (both backends, two
// rounds, under five minutes on two idle cores).
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/cmd/internal/benchenv"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	sredBinary  string
	postgresURL string
	backends    []string
	seedRows    int
	duration    time.Duration
	rate        int
	conns       int
	alerts      int
	rounds      int
	keep        bool
}

func run(args []string) int {
	a := kingpin.New("bench-retention", "Webhook latency with and without the retention compaction on a store of old rows.")
	var o options
	var backends string
	a.Flag("sred.binary", "sred binary to run; built from ./cmd/sred into a temporary directory when empty.").StringVar(&o.sredBinary)
	a.Flag("postgres-url", "PostgreSQL server (a database the benchmark may create databases from).").
		Default("postgres://postgres@127.0.0.1:5432/test?sslmode=disable").StringVar(&o.postgresURL)
	a.Flag("backends", "Comma-separated backends: sqlite, postgres.").Default("sqlite,postgres").StringVar(&backends)
	a.Flag("seed-rows", "Rows of expired data seeded before every run (6 per incident).").Default("1000000").IntVar(&o.seedRows)
	a.Flag("duration", "Time the webhook load runs in every run.").Default("10s").DurationVar(&o.duration)
	a.Flag("rate", "Webhook deliveries per second (a steady, open-loop load).").Default("100").IntVar(&o.rate)
	a.Flag("connections", "Keep-alive connections the load is spread over.").Default("8").IntVar(&o.conns)
	a.Flag("alerts", "Alerts in every delivery.").Default("10").IntVar(&o.alerts)
	a.Flag("rounds", "Rounds per backend; each runs without, then with compaction.").Default("2").IntVar(&o.rounds)
	a.Flag("keep", "Keep the temporary directory (stores and sred logs).").BoolVar(&o.keep)
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "bench-retention: %v\n", err)
		return 2
	}
	for _, b := range strings.Split(backends, ",") {
		b = strings.TrimSpace(b)
		if b != "sqlite" && b != "postgres" {
			fmt.Fprintf(os.Stderr, "bench-retention: invalid --backends value %q (sqlite or postgres)\n", b)
			return 2
		}
		o.backends = append(o.backends, b)
	}
	if o.seedRows < 6 || o.duration <= 0 || o.rate < 1 || o.conns < 1 || o.alerts < 1 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench-retention: --seed-rows (at least 6), --duration, --rate, --connections, --alerts and --rounds must be positive")
		return 2
	}
	if err := bench(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench-retention: %v\n", err)
		return 1
	}
	return 0
}

const (
	configOff = "retention:\n  resolved_incidents: 0s\n"
	configOn  = "retention:\n  resolved_incidents: 24h\n"
)

func bench(o options) error {
	dir, done, err := benchenv.Dir("sred-bench-retention-", o.keep)
	if err != nil {
		return err
	}
	defer done()
	bin, err := benchenv.Binary(o.sredBinary, dir, "./cmd/sred")
	if err != nil {
		return err
	}
	for name, src := range map[string]string{"off.yml": configOff, "on.yml": configOn} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			return err
		}
	}
	incidents := o.seedRows / rowsPerIncident
	fmt.Printf("%d seeded rows (%d incidents resolved 30 days ago), webhook load %d deliveries/s of %d alerts over %d connections for %s, batch_size 100\n",
		incidents*rowsPerIncident, incidents, o.rate, o.alerts, o.conns, o.duration)
	const row = "%-9s %5s %-10s %8s %8s %8s %7s %6s %14s %11s  %s\n"
	fmt.Printf(row, "backend", "round", "compaction", "p50 ms", "p99 ms", "max ms", "2xx", "errors", "deleted (load)", "p99 on/off", "load avg (1m 5m 15m)")
	for _, backend := range o.backends {
		var s seeder
		switch backend {
		case "sqlite":
			s = &sqliteSeeder{dir: filepath.Join(dir, "sqlite")}
		case "postgres":
			s = newPostgresSeeder(o.postgresURL)
		}
		if err := benchBackend(o, bin, dir, backend, s, incidents, row); err != nil {
			s.cleanup()
			return fmt.Errorf("%s: %w", backend, err)
		}
		s.cleanup()
	}
	return nil
}

func benchBackend(o options, bin, dir, backend string, s seeder, incidents int, row string) error {
	fmt.Fprintf(os.Stderr, "%s: migrating and seeding %d incidents ...\n", backend, incidents)
	start := time.Now()
	// sred creates the schema on an empty store; the seed goes in after.
	storeArg, err := s.fresh()
	if err != nil {
		return err
	}
	p, err := startSred(bin, filepath.Join(dir, backend+"-migrate"), filepath.Join(dir, "off.yml"), storeArg)
	if err != nil {
		return err
	}
	p.Stop()
	fmt.Fprintf(os.Stderr, "%s: migrated in %s\n", backend, time.Since(start).Round(time.Second))
	if err := s.seed(incidents); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: seeded in %s\n", backend, time.Since(start).Round(time.Second))
	for round := 1; round <= o.rounds; round++ {
		var p99off time.Duration
		// Alternate which goes first, so that neither always meets a
		// colder machine.
		modes := []string{"off", "on"}
		if round%2 == 0 {
			modes = []string{"on", "off"}
		}
		var p99on time.Duration
		for _, mode := range modes {
			storeArg, err := s.copy()
			if err != nil {
				return err
			}
			runDir := filepath.Join(dir, fmt.Sprintf("%s-%d-%s", backend, round, mode))
			p, err := startSred(bin, runDir, filepath.Join(dir, mode+".yml"), storeArg)
			if err != nil {
				return err
			}
			before, err := deletedRows(p.URL)
			if err != nil {
				p.Stop()
				return err
			}
			r := drive(p.URL+"/api/v1/webhook/alertmanager", o, fmt.Sprintf("%s-%d-%s-%d", backend, round, mode, time.Now().UnixNano()))
			after, err := deletedRows(p.URL)
			alive := p.Alive()
			p.Stop()
			if err != nil {
				return err
			}
			if !alive {
				return fmt.Errorf("sred exited during the run (log: %s)", p.Log)
			}
			if r.ok == 0 && r.firstErr != nil {
				return fmt.Errorf("webhook load: %w", r.firstErr)
			}
			ratio := ""
			if mode == "off" {
				p99off = benchenv.Quantile(r.latencies, 0.99)
			} else {
				p99on = benchenv.Quantile(r.latencies, 0.99)
			}
			if p99on > 0 && p99off > 0 {
				ratio = fmt.Sprintf("%.2f", float64(p99on)/float64(p99off))
			}
			q := func(x float64) string { return fmt.Sprintf("%.1f", benchenv.Millis(benchenv.Quantile(r.latencies, x))) }
			fmt.Printf(row, backend, strconv.Itoa(round), mode, q(0.5), q(0.99), q(1),
				strconv.Itoa(r.ok), strconv.Itoa(r.errs), strconv.FormatInt(int64(after-before), 10), ratio, benchenv.LoadAvg())
			if r.firstErr != nil {
				fmt.Fprintf(os.Stderr, "  first error: %v\n", r.firstErr)
			}
		}
	}
	return nil
}

// deletedRows sums sre_store_deleted_rows_total over its tables.
func deletedRows(base string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "sre_store_deleted_rows_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// startSred runs sred with config on the store storeArg (a --storage flag)
// and waits until it is ready.
func startSred(bin, dir, config, storeArg string) (*benchenv.Sred, error) {
	return benchenv.StartSred(bin, dir, config, 2*time.Minute, storeArg)
}

type result struct {
	ok, errs  int
	latencies []time.Duration
	firstErr  error
}

// drive posts o.rate deliveries per second for o.duration, open loop: the
// i-th delivery is due at start + i/rate and its latency is measured from
// when it was due, so that a stalled sred shows in the figures instead of
// slowing the load down (coordinated omission).
func drive(url string, o options, prefix string) *result {
	tr := &http.Transport{MaxIdleConnsPerHost: o.conns, MaxConnsPerHost: o.conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	total := int(o.duration.Seconds() * float64(o.rate))
	interval := time.Second / time.Duration(o.rate)
	due := make(chan int, total)
	res := &result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range o.conns * 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				at := start.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				err := benchenv.Post(client, url, benchenv.Payload(prefix, int64(i), o.alerts, ""))
				d := time.Since(at)
				mu.Lock()
				if err != nil {
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.ok++
					res.latencies = append(res.latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		due <- i
	}
	close(due)
	wg.Wait()
	slices.Sort(res.latencies)
	return res
}
