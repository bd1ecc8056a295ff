package chaos_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/chaos/drivers/httpfault"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/testutil"
)

const demoSLO = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: demo
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: client_requests_total{job="client",code=~"5.."}
        totalSelector: client_requests_total{job="client"}
    alerting:
      page: {for: 1m}
`

// proof runs the demo service behind the HTTP fault proxy, a client that
// counts its answers (scraped by a real Prometheus evaluating the generated
// SLO rules), and the chaos service on top.
type proof struct {
	svc    *chaos.Service
	clock  *clock.Manual
	proxy  string
	prom   *budget.Prom
	slos   []chaos.SLOInfo
	served atomic.Int64
}

type staticBudgets struct{ slos []chaos.SLOInfo }

func (b staticBudgets) SLOs(context.Context, string, time.Time) ([]chaos.SLOInfo, error) {
	return b.slos, nil
}

func newProof(t *testing.T) *proof {
	t.Helper()
	root := testutil.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "demo-service")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "examples", "demo-service")).CombinedOutput(); err != nil {
		t.Fatalf("build demo-service: %v\n%s", err, out)
	}
	port := testutil.FreePort(t)
	demo := testutil.StartProcess(t, "demo-service", bin, []string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(port), "--traffic.rps=0"},
		t.TempDir(), "http://127.0.0.1:"+strconv.Itoa(port), "/-/ready")
	hf, err := httpfault.New([]chaos.ProxyConfig{{Name: "demo", Kind: "http", Listen: "127.0.0.1:0", Upstream: demo.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hf.Close)
	p := &proof{proxy: "http://" + hf.Addr("demo")}

	// The client: steady traffic through the proxy, counted by status code.
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "client_requests_total"}, []string{"code"})
	reg.MustRegister(reqs)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(exporter.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if code, _, err := p.get(ctx, "/api/work"); err == nil {
				reqs.WithLabelValues(strconv.Itoa(code)).Inc()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // load pacing, not a wait for a result
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	specs, err := slo.Parse([]byte(demoSLO), "demo.yml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := rulegen.Generate(specs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := "global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: client\n    static_configs: [{targets: ['" +
		strings.TrimPrefix(exporter.URL, "http://") + "']}]\nrule_files:\n"
	rules := map[string]string{}
	for _, f := range files {
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rules["rules/"+f.Name] = string(b)
		cfg += "  - rules/" + f.Name + "\n"
	}
	prom := testutil.StartPrometheus(t, testutil.PrometheusOptions{Config: cfg, Files: rules})
	p.prom, err = budget.NewProm(prom.URL, commoncfg.HTTPClientConfig{}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range budget.Objectives(specs) {
		s := o.SLO
		s.Period = model.Duration(o.Period())
		for _, w := range s.Windows() {
			if w.Severity == slo.SeverityPage {
				p.slos = append(p.slos, chaos.SLOInfo{BudgetState: chaos.BudgetState{SLO: o.SLO.Name, State: "green"},
					FastLong: w.Long, FastShort: w.Short, FastFactor: w.BurnRate})
				break
			}
		}
	}

	db, err := store.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, chaos.Migrations, targetlock.Migrations); err != nil {
		t.Fatal(err)
	}
	p.clock = clock.NewManual(time.Now())
	p.svc = chaos.New(chaos.Options{DB: db, Prom: p.prom, Clock: p.clock, Budgets: staticBudgets{p.slos},
		Drivers: map[string]chaos.Driver{chaos.DriverHTTPProxy: hf}})
	c := chaos.DefaultConfig
	c.Proxies = []chaos.ProxyConfig{{Name: "demo", Kind: "http", Listen: "127.0.0.1:0", Upstream: demo.URL}}
	if err := p.svc.ApplyConfig(c, nil); err != nil {
		t.Fatal(err)
	}
	// Steady state: Prometheus has the client's traffic in the SLO recordings.
	p.waitProm(t, `slo:sli_error:ratio_rate5m{service="demo"}`)
	return p
}

func (p *proof) get(ctx context.Context, path string) (int, time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.proxy+path, nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// waitProm waits until q returns a sample (the deadline is a safety net).
func (p *proof) waitProm(t *testing.T, q string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := p.prom.Instant(context.Background(), q, time.Time{})
		if err == nil && len(v) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never returned a sample for %s (last error %v)", q, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// step advances the runner's clock by d once it waits on it.
func (p *proof) step(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		n, ch := p.clock.Waiters()
		if n > 0 {
			p.clock.Advance(d)
			return
		}
		select {
		case <-ch:
		case <-deadline:
			buf := make([]byte, 1<<20)
			t.Fatalf("runner never waited on the clock\n%s", buf[:runtime.Stack(buf, true)])
		}
	}
}

func (p *proof) finish(t *testing.T, id string) *chaos.RunInfo {
	t.Helper()
	done := make(chan struct{})
	go func() { p.svc.Wait(); close(done) }()
	deadline := time.After(60 * time.Second)
	for {
		if n, ch := p.clock.Waiters(); n > 0 {
			p.clock.Advance(5 * time.Second)
		} else {
			select {
			case <-done:
				r, err := p.svc.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				return r
			case <-ch:
			case <-deadline:
				t.Fatal("run did not finish")
			}
		}
	}
}

func experiment(t *testing.T, faults string, abort string) *chaos.Experiment {
	t.Helper()
	e, err := chaos.Parse([]byte(`apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: demo-proof
hypothesis:
  description: the demo service stays available
  steadyState:
    - {name: scraped, promql: 'up{job="client"} == 1'}
target: {service: demo, environment: staging, instances: 1, totalInstances: 2}
faults:
`+faults+`
duration: 30s
abort:
`+abort), "proof.yml")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Latency and errors injected on the demo service are seen by its clients,
// and gone after the run.
func TestProofClientSideFaults(t *testing.T) {
	p := newProof(t)
	ctx := context.Background()
	e := experiment(t, `  - {name: slow, type: http-delay, proxy: demo, paths: [/api/work], percent: 100, delay: 300ms}
  - {name: errors, type: http-error, proxy: demo, paths: [/api/work], percent: 30, status: 503}
`, "  burnRate: false\n  maxErrorRate: 1\n")
	info, err := p.svc.Start(ctx, e, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// The faults are active once the runner waits in its monitor step.
	p.step(t, 0)
	errs := 0
	for range 20 {
		code, took, err := p.get(ctx, "/api/work")
		if err != nil {
			t.Fatal(err)
		}
		if took < 300*time.Millisecond {
			t.Fatalf("request took %v during a 300ms delay fault", took)
		}
		if code == 503 {
			errs++
		}
	}
	if errs == 0 || errs == 20 {
		t.Fatalf("%d of 20 requests failed during a 30%% error fault", errs)
	}
	r := p.finish(t, info.ID)
	if r.Status != chaos.StatusSucceeded && r.Status != chaos.StatusFailed {
		t.Fatalf("run %s %q", r.Status, r.Reason)
	}
	for range 20 {
		code, took, err := p.get(ctx, "/api/work")
		if err != nil || code != 200 || took >= 300*time.Millisecond {
			t.Fatalf("after the run: %d in %v (%v)", code, took, err)
		}
	}
	if r.Score == nil {
		t.Fatal("no resilience score")
	}
}

// A burn-rate condition becoming true in Prometheus aborts the run, and
// every fault is rolled back.
func TestProofBurnRateAbort(t *testing.T) {
	p := newProof(t)
	ctx := context.Background()
	e := experiment(t, `  - {name: errors, type: http-error, proxy: demo, percent: 50, status: 503}
`, "  burnRate: true\n  maxErrorRate: 1\n")
	info, err := p.svc.Start(ctx, e, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p.step(t, 0) // faults active
	w := p.slos[0]
	factor := strconv.FormatFloat(w.FastFactor, 'f', -1, 64)
	p.waitProm(t, rulegen.BurnRateRecord(w.FastShort)+`{service="demo"} > `+factor)
	p.waitProm(t, rulegen.BurnRateRecord(w.FastLong)+`{service="demo"} > `+factor)
	r := p.finish(t, info.ID)
	if r.Status != chaos.StatusAborted || !strings.Contains(r.Reason, "SLO availability burns its error budget") {
		t.Fatalf("run %s %q, want aborted by the burn rate", r.Status, r.Reason)
	}
	for _, f := range r.Faults {
		if f.Status != chaos.FaultReverted {
			t.Fatalf("fault %s %s", f.Name, f.Status)
		}
	}
	for range 20 {
		if code, _, err := p.get(ctx, "/api/work"); err != nil || code != 200 {
			t.Fatalf("after the abort: %d (%v)", code, err)
		}
	}
}
