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
// a fresh store (on PostgreSQL both share the database given), so that the
// cost of failing channels shows in the same run.
//
//	go run ./cmd/bench-http --config.file=examples/sred.yml --connections=8,32,64
//
// `make bench-http` runs it with these defaults.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"

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
}

func run(args []string) int {
	a := kingpin.New("bench-http", "Load sred's Alertmanager webhook over HTTP and compare with a no-op handler.")
	var o options
	var conns string
	a.Flag("config.file", "sred configuration file (its relative paths resolve from its directory).").Default("examples/sred.yml").StringVar(&o.configFile)
	a.Flag("sred.binary", "sred binary to run; built from ./cmd/sred into a temporary directory when empty.").StringVar(&o.sredBinary)
	a.Flag("storage.postgres-url", "Run sred on this PostgreSQL database instead of a temporary SQLite store.").StringVar(&o.postgresURL)
	a.Flag("connections", "Comma-separated numbers of concurrent keep-alive connections, one step each.").Default("8,32,64").StringVar(&conns)
	a.Flag("duration", "Time each step (handler x connections) runs.").Default("10s").DurationVar(&o.duration)
	a.Flag("max-requests", "Requests after which a step ends even before --duration.").Default("200000").IntVar(&o.maxRequests)
	a.Flag("alerts", "Alerts in every delivery.").Default("10").IntVar(&o.alerts)
	a.Flag("keep", "Keep the temporary directory (store and sred log).").BoolVar(&o.keep)
	var channels string
	a.Flag("channels", "Comma-separated notification set-ups, one sred each: failing (the configuration as it is; examples/sred.yml points every channel at 127.0.0.1:9, which refuses connections) and working (a copy whose 127.0.0.1:9 endpoints, secret files included, point at a local sink answering every request).").Default("failing,working").StringVar(&channels)
	a.Flag("rounds", "Rounds of every --channels set-up, in alternation, each on a fresh sred and store.").Default("1").IntVar(&o.rounds)
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
	if o.duration <= 0 || o.maxRequests < 1 || o.alerts < 1 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench-http: --duration, --max-requests and --alerts must be positive")
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

	fmt.Printf("config %s, store %s, %d alerts per delivery, %s or %d requests per step, loopback\n",
		o.configFile, storeName(o), o.alerts, o.duration, o.maxRequests)
	const row = "%-14s %6s %13s %8s %8s %8s %8s %7s  %s\n"
	fmt.Printf(row, "target", "conns", "deliveries/s", "p50 ms", "p99 ms", "max ms", "2xx", "errors", "load avg (1m 5m 15m)")
	nonce := time.Now().UnixNano()
	for round := 1; round <= o.rounds; round++ {
		for _, ch := range o.channels {
			if err := benchSred(o, bin, filepath.Join(dir, fmt.Sprintf("%s-%d", ch, round)), configs[ch], ch, noop, row, fmt.Sprintf("%x-%d", nonce, round)); err != nil {
				return err
			}
		}
	}
	return nil
}

// benchSred starts sred from config on a fresh store in dir and runs every
// step against the no-op handler and it.
func benchSred(o options, bin, dir, config, channels string, noop *noopServer, row, nonce string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sred, err := startSred(bin, dir, config, o)
	if err != nil {
		return err
	}
	defer sred.stop()
	fmt.Fprintf(os.Stderr, "sred (%s channels) at %s (profiles at %s/debug/pprof/), log %s\n", channels, sred.url, sred.url, sred.log)
	for _, c := range o.conns {
		for _, t := range []struct{ name, url string }{
			{"no-op", "http://" + noop.Addr().String() + "/"},
			{"sred/" + channels, sred.url + "/api/v1/webhook/alertmanager"},
		} {
			r := drive(t.url, c, o, fmt.Sprintf("%s-%s-%d", nonce, t.name, c))
			if r.ok == 0 && r.firstErr != nil {
				return fmt.Errorf("%s with %d connections: %w", t.name, c, r.firstErr)
			}
			fmt.Printf(row, t.name, strconv.Itoa(c), fmt.Sprintf("%.0f", r.rate()),
				fmt.Sprintf("%.1f", ms(r.quantile(0.5))), fmt.Sprintf("%.1f", ms(r.quantile(0.99))),
				fmt.Sprintf("%.1f", ms(r.quantile(1))), strconv.Itoa(r.ok), strconv.Itoa(r.errs), benchenv.LoadAvg())
			if r.firstErr != nil {
				fmt.Fprintf(os.Stderr, "  first error: %v\n", r.firstErr)
			}
		}
	}
	if !sred.alive() {
		return fmt.Errorf("sred exited during the run (log: %s)", sred.log)
	}
	return nil
}

func storeName(o options) string {
	if o.postgresURL != "" {
		return "PostgreSQL"
	}
	return "SQLite (temporary)"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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

type sredProc struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{}
}

func startSred(bin, dir, config string, o options) (*sredProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(dir, "sred.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"--config.file=" + config, "--web.listen-address=" + addr, "--log.level=warn", "--web.no-auth"}
	if o.postgresURL != "" {
		args = append(args, "--storage.postgres-url="+o.postgresURL)
	} else {
		args = append(args, "--storage.path="+filepath.Join(dir, "data"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start sred: %w", err)
	}
	p := &sredProc{cmd: cmd, url: "http://" + addr, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if !p.alive() {
			return nil, fmt.Errorf("sred exited at start (log: %s)", logPath)
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("sred not ready after 60s (log: %s)", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *sredProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *sredProc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

type result struct {
	ok, errs  int
	elapsed   time.Duration
	latencies []time.Duration
	firstErr  error
}

func (r *result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r *result) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latencies))+0.5) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

// drive posts distinct deliveries to url over conns keep-alive connections
// until o.duration has passed or o.maxRequests were sent.
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
				body := payload(prefix, i, o.alerts)
				t0 := time.Now()
				err := post(client, url, body)
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

func post(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

var services = []string{"api", "checkout", "payments", "search"}

// payload is delivery i: a new Alertmanager group of n firing alerts.
func payload(prefix string, i int64, n int) []byte {
	svc := services[i%int64(len(services))]
	name := "HighErrorRate"
	group := fmt.Sprintf("%s-%d", prefix, i)
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	m := map[string]any{
		"version": "4", "status": "firing", "receiver": "sred", "externalURL": "http://127.0.0.1:9093",
		"groupKey":          fmt.Sprintf(`{}:{alertname=%q, group=%q, service=%q}`, name, group, svc),
		"truncatedAlerts":   0,
		"groupLabels":       map[string]string{"alertname": name, "service": svc, "group": group},
		"commonLabels":      map[string]string{"alertname": name, "service": svc, "group": group, "severity": "critical"},
		"commonAnnotations": map[string]string{"summary": "error rate above 5%"},
	}
	alerts := make([]alert, n)
	for j := range alerts {
		alerts[j] = alert{
			Status: "firing",
			Labels: map[string]string{"alertname": name, "service": svc, "group": group, "severity": "critical",
				"instance": fmt.Sprintf("10.0.%d.%d:8080", j/256, j%256)},
			Annotations:  map[string]string{"summary": "error rate above 5%", "runbook_url": "https://runbooks.example.com/high-error-rate"},
			StartsAt:     start,
			GeneratorURL: "http://127.0.0.1:9090/graph",
			Fingerprint:  fmt.Sprintf("%012x%04x", i, j),
		}
	}
	m["alerts"] = alerts
	b, err := json.Marshal(m)
	if err != nil {
		panic(errors.Join(errors.New("encode payload"), err))
	}
	return b
}
