// Package probe runs sred's health checks (HTTP, TCP, PromQL) at their
// intervals and exports their results under blackbox_exporter's metric
// names (probe_success, probe_duration_seconds, probe_http_status_code), so
// that alert rules read them the same whether sred or blackbox_exporter
// probes.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/english"
)

// Querier runs an instant PromQL query (v1.API's Query).
type Querier interface {
	Query(ctx context.Context, q string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

// Options are the dependencies of a Prober.
type Options struct {
	Clock      clock.Timer  // schedules the checks (real when nil)
	Client     *http.Client // of HTTP checks (a client with no redirects beyond 10 when nil)
	Prometheus Querier      // of PromQL checks (they fail without it)
	Logger     *slog.Logger
}

// Result is the outcome of a check's last run.
type Result struct {
	Check    string        `json:"check"`
	Service  string        `json:"service"`
	Kind     string        `json:"kind"`
	Instance string        `json:"instance"`
	Success  bool          `json:"success"`
	Duration time.Duration `json:"duration"`
	// StatusCode is the HTTP status of an HTTP check (0 when none came).
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// Prober runs the checks of its configuration when they are due, and is
// the collector of their metrics.
type Prober struct {
	opts Options
	wake chan struct{}

	mu      sync.Mutex
	cfg     Config
	next    map[string]time.Time
	results map[string]Result
}

// New returns a prober for cfg.
func New(cfg Config, opts Options) *Prober {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Prober{opts: opts, wake: make(chan struct{}, 1), next: map[string]time.Time{}, results: map[string]Result{}}
	p.setConfig(cfg)
	return p
}

// SetConfig installs a reloaded configuration: new and changed checks run
// at once, results of removed checks are dropped.
func (p *Prober) SetConfig(cfg Config) {
	p.setConfig(cfg)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Prober) setConfig(cfg Config) {
	p.mu.Lock()
	old := map[string]*Check{}
	for _, ch := range p.cfg.Checks {
		old[ch.Name] = ch
	}
	keep := map[string]bool{}
	for _, ch := range cfg.Checks {
		keep[ch.Name] = true
		if o, ok := old[ch.Name]; !ok || !sameCheck(o, ch) {
			delete(p.next, ch.Name)
			delete(p.results, ch.Name)
		}
	}
	for name := range p.results {
		if !keep[name] {
			delete(p.results, name)
			delete(p.next, name)
		}
	}
	p.cfg = cfg
	p.mu.Unlock()
}

func sameCheck(a, b *Check) bool {
	return a.Service == b.Service && a.Interval == b.Interval && a.Timeout == b.Timeout && a.Kind() == b.Kind() &&
		a.Instance() == b.Instance() && fmt.Sprint(a.HTTP, a.PromQL) == fmt.Sprint(b.HTTP, b.PromQL)
}

// RunDue runs, concurrently, every check due at the clock's time and waits
// for them; it returns how many ran and when the next one is due (zero
// without checks).
func (p *Prober) RunDue(ctx context.Context) (int, time.Time) {
	now := p.opts.Clock.Now()
	p.mu.Lock()
	var due []*Check
	for _, ch := range p.cfg.Checks {
		if n, ok := p.next[ch.Name]; !ok || !n.After(now) {
			due = append(due, ch)
			p.next[ch.Name] = now.Add(time.Duration(ch.Interval))
		}
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, ch := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.run(ctx, ch, now)
			if ctx.Err() != nil {
				return // shutting down: not a failure of the target
			}
			p.mu.Lock()
			if slices.Contains(p.cfg.Checks, ch) {
				p.results[ch.Name] = r
			}
			p.mu.Unlock()
			if !r.Success {
				p.opts.Logger.Debug("health check failed", "check", ch.Name, "service", ch.Service, "err", r.Error)
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var next time.Time
	for _, ch := range p.cfg.Checks {
		if n := p.next[ch.Name]; next.IsZero() || n.Before(next) {
			next = n
		}
	}
	return len(due), next
}

// Run runs the checks until ctx ends.
func (p *Prober) Run(ctx context.Context) error {
	for {
		_, next := p.RunDue(ctx)
		var wait <-chan time.Time
		if !next.IsZero() {
			wait = p.opts.Clock.After(next.Sub(p.opts.Clock.Now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		case <-p.wake:
		}
	}
}

// Results returns the last result of each check, in configuration order
// (checks that did not run yet are missing).
func (p *Prober) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Result
	for _, ch := range p.cfg.Checks {
		if r, ok := p.results[ch.Name]; ok {
			out = append(out, r)
		}
	}
	return out
}

func (p *Prober) run(ctx context.Context, ch *Check, at time.Time) Result {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(ch.Timeout))
	defer cancel()
	r := Result{Check: ch.Name, Service: ch.Service, Kind: ch.Kind(), Instance: ch.Instance(), At: at}
	start := time.Now() // a measurement, not a schedule
	var err error
	switch {
	case ch.HTTP != nil:
		r.StatusCode, err = p.probeHTTP(ctx, ch)
	case ch.TCP != nil:
		err = probeTCP(ctx, ch.TCP)
	case ch.PromQL != nil:
		err = p.probePromQL(ctx, ch.PromQL, at)
	}
	r.Duration = time.Since(start)
	r.Success = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (p *Prober) probeHTTP(ctx context.Context, ch *Check) (int, error) {
	h := ch.HTTP
	req, err := http.NewRequestWithContext(ctx, h.Method, h.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "sred health check")
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read body: %w", err)
	}
	if len(h.ExpectedStatus) > 0 {
		if !slices.Contains(h.ExpectedStatus, resp.StatusCode) {
			return resp.StatusCode, fmt.Errorf("status %d, want one of %v", resp.StatusCode, h.ExpectedStatus)
		}
	} else if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("status %d, want 2xx", resp.StatusCode)
	}
	if ch.bodyRE != nil && !ch.bodyRE.Match(body) {
		return resp.StatusCode, fmt.Errorf("body does not match %q", h.BodyRegexp)
	}
	return resp.StatusCode, nil
}

func probeTCP(ctx context.Context, t *TCPCheck) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return err
	}
	return c.Close()
}

func (p *Prober) probePromQL(ctx context.Context, q *PromQLCheck, at time.Time) error {
	if p.opts.Prometheus == nil {
		return errors.New("no Prometheus is configured (set prometheus.url)")
	}
	v, _, _, err := p.opts.Prometheus.Query(ctx, q.Query, at)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	n := 0
	switch v := v.(type) {
	case model.Vector:
		n = len(v)
	case *model.Scalar:
		n = 1
	default:
		return fmt.Errorf("query returned a %s, want a vector", v.Type())
	}
	switch {
	case q.Expect == ExpectEmpty && n > 0:
		return fmt.Errorf("query returned %s, want none", english.Count(n, "sample", "samples"))
	case q.Expect != ExpectEmpty && n == 0:
		return errors.New("query returned no sample")
	}
	return nil
}

// --- metrics ---------------------------------------------------------------

// Labels of the probe metrics: instance is the probed URL or address, as in
// the relabelling every blackbox_exporter setup uses; probe names the check.
var (
	labelNames = []string{"instance", "service", "probe"}

	descSuccess  = prometheus.NewDesc("probe_success", "Displays whether or not the probe was a success", labelNames, nil)
	descDuration = prometheus.NewDesc("probe_duration_seconds", "Returns how long the probe took to complete in seconds", labelNames, nil)
	descStatus   = prometheus.NewDesc("probe_http_status_code", "Response HTTP status code", labelNames, nil)
)

// Describe implements prometheus.Collector.
func (p *Prober) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSuccess
	ch <- descDuration
	ch <- descStatus
}

// Collect implements prometheus.Collector: one series per check that ran.
func (p *Prober) Collect(ch chan<- prometheus.Metric) {
	for _, r := range p.Results() {
		lv := []string{r.Instance, r.Service, r.Check}
		ok := 0.0
		if r.Success {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, ok, lv...)
		ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, r.Duration.Seconds(), lv...)
		if r.Kind == "http" {
			ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, float64(r.StatusCode), lv...)
		}
	}
}
