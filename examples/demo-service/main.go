// Command demo-service is a small HTTP service to try ROOTUIP SRE against.
//
// It serves GET /api/work and instruments it the usual way:
//
//	http_requests_total{handler,method,code}             counter
//	http_request_duration_seconds{handler,method}        histogram (le 0.005 .. 10)
//
// Its error rate and added latency are set at run time through an admin API,
// so an SLO burn-rate alert can be provoked and then healed (for example by a
// runbook http step):
//
//	POST /admin/errors?rate=0.5        half of the requests fail with 500
//	POST /admin/latency?duration=300ms every request takes 300ms longer
//	POST /admin/heal                   back to no errors and no added latency
//	GET  /admin/state                  the current settings as JSON
//
// For the healing rules (examples/rules/healing.rules.yml) it also exports
// a memory gauge and a connection pool, labelled service (--service.name),
// that the admin API drives:
//
//	service_memory_used_bytes, service_memory_limit_bytes   gauges
//	db_pool_connections_in_use, db_pool_connections_max     gauges
//
//	POST /admin/memory?ratio=0.95      memory in use set to 95% of the limit (a leak)
//	POST /admin/pool?in_use=19         connections in use (of 20)
//	POST /admin/restart                a restart: memory back to its baseline, pool empty
//	POST /admin/db/pool/reset          the pool emptied
//	GET  /admin/resources              memory and pool as JSON
//
// A built-in load generator (--traffic.rps) sends requests to the service
// itself over loopback, so the metrics move without any outside traffic.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

// maxLatency bounds the latency that can be injected.
const maxLatency = time.Minute

func main() {
	os.Exit(run(os.Args[1:]))
}

// flags are the command line's settings.
type flags struct {
	listen    *string
	errorRate *float64
	latency   *time.Duration
	rps       *float64
	name      *string
	log       *promslog.Config
}

// newApp declares the command line (also read by the test of the
// Kubernetes examples' container arguments).
func newApp() (*kingpin.Application, *flags) {
	a := kingpin.New("demo-service", "A demo HTTP service with a controllable error rate and latency.")
	f := &flags{
		listen:    a.Flag("web.listen-address", "Address to listen on.").Default("127.0.0.1:8080").String(),
		errorRate: a.Flag("errors.rate", "Initial fraction of requests that fail with 500 (0..1).").Default("0").Float64(),
		latency:   a.Flag("latency", "Initial latency added to every request.").Default("0s").Duration(),
		rps:       a.Flag("traffic.rps", "Requests per second the built-in load generator sends to /api/work (0: off).").Default("20").Float64(),
		name:      a.Flag("service.name", "Value of the service label of the memory and pool gauges.").Default("api").String(),
		log:       &promslog.Config{},
	}
	promslogflag.AddFlags(a, f.log)
	a.HelpFlag.Short('h')
	return a, f
}

func run(args []string) int {
	a, f := newApp()
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "demo-service: %v\n", err)
		return 2
	}
	listen, errorRate, latency, rps, name, logCfg := f.listen, f.errorRate, f.latency, f.rps, f.name, f.log
	logger := promslog.New(logCfg)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc := newNamedService(reg, logger, *name)
	if err := svc.setErrorRate(*errorRate); err != nil {
		fmt.Fprintf(os.Stderr, "demo-service: --errors.rate: %v\n", err)
		return 2
	}
	if err := svc.setLatency(*latency); err != nil {
		fmt.Fprintf(os.Stderr, "demo-service: --latency: %v\n", err)
		return 2
	}

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("Listen", "address", *listen, "err", err)
		return 1
	}
	srv := &http.Server{Handler: svc.handler(reg), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var wg sync.WaitGroup
	if *rps > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			generateLoad(ctx, "http://"+l.Addr().String()+"/api/work", *rps, logger)
		}()
	}
	logger.Info("Listening", "address", l.Addr().String(), "traffic_rps", *rps)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		logger.Error("Serve", "err", err)
		return 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	logger.Info("Stopped")
	return 0
}

// service is the demo's state: the injected error rate and latency.
type service struct {
	logger *slog.Logger
	// errorRate is a float64 stored as bits; latency is nanoseconds.
	errorRate atomic.Uint64
	latency   atomic.Int64

	errorRateGauge prometheus.Gauge
	latencyGauge   prometheus.Gauge
	heals          prometheus.Counter
	requests       *prometheus.CounterVec
	integrity      *prometheus.CounterVec
	duration       *prometheus.HistogramVec

	// The simulated resources of the healing rules.
	resMu       sync.Mutex
	memoryUsed  prometheus.Gauge
	memoryLimit prometheus.Gauge
	poolInUse   prometheus.Gauge
	poolMax     prometheus.Gauge
	restarts    prometheus.Counter
	res         resources
}

// resources are the simulated memory and connection pool.
type resources struct {
	MemoryUsedBytes  float64 `json:"memory_used_bytes"`
	MemoryLimitBytes float64 `json:"memory_limit_bytes"`
	MemoryRatio      float64 `json:"memory_ratio"`
	PoolInUse        int     `json:"pool_in_use"`
	PoolMax          int     `json:"pool_max"`
	Restarts         int     `json:"restarts"`
}

// The simulated resources at start and after a restart.
const (
	memoryLimit    = 512 << 20
	memoryBaseline = 0.25
	poolMax        = 20
)

func newService(reg prometheus.Registerer, logger *slog.Logger) *service {
	return newNamedService(reg, logger, "api")
}

func newNamedService(reg prometheus.Registerer, logger *slog.Logger, name string) *service {
	svcLabel := prometheus.Labels{"service": name}
	s := &service{
		memoryUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "service_memory_used_bytes", Help: "Memory the service uses (simulated: POST /admin/memory).", ConstLabels: svcLabel,
		}),
		memoryLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "service_memory_limit_bytes", Help: "Memory the service may use.", ConstLabels: svcLabel,
		}),
		poolInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "db_pool_connections_in_use", Help: "Database connections in use (simulated: POST /admin/pool).", ConstLabels: svcLabel,
		}),
		poolMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "db_pool_connections_max", Help: "Size of the database connection pool.", ConstLabels: svcLabel,
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "demo_restarts_total", Help: "Calls of POST /admin/restart.",
		}),
		logger: logger,
		errorRateGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "demo_error_rate", Help: "Fraction of /api/work requests that currently fail with 500.",
		}),
		latencyGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "demo_added_latency_seconds", Help: "Latency currently added to every /api/work request.",
		}),
		heals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "demo_heals_total", Help: "Calls of POST /admin/heal.",
		}),
		integrity: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_integrity_checks_total", Help: "Read-back checks of the writes of /api/work, by result (match, mismatch).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests served, by handler, method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by handler and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .25, .5, 1, 2.5, 5, 10},
		}, []string{"handler", "method"}),
	}
	reg.MustRegister(s.errorRateGauge, s.latencyGauge, s.heals, s.requests, s.duration, s.integrity,
		s.memoryUsed, s.memoryLimit, s.poolInUse, s.poolMax, s.restarts)
	s.restart(false)
	// Export the success and failure series from the start, so that a rate
	// over them is 0 rather than missing before the first failure.
	for _, code := range []string{"200", "500"} {
		s.requests.WithLabelValues("/api/work", "get", code)
	}
	// The data-integrity SLO of examples/slos/api.yml reads these: every
	// request served checks its write, and none mismatches (the demo
	// breaks availability, not integrity).
	for _, result := range []string{"match", "mismatch"} {
		s.integrity.WithLabelValues(result)
	}
	return s
}

func (s *service) setErrorRate(r float64) error {
	if r != r || r < 0 || r > 1 { // r != r: NaN
		return fmt.Errorf("error rate %v out of range [0, 1]", r)
	}
	s.errorRate.Store(floatBits(r))
	s.errorRateGauge.Set(r)
	return nil
}

func (s *service) setLatency(d time.Duration) error {
	if d < 0 || d > maxLatency {
		return fmt.Errorf("latency %v out of range [0s, %v]", d, maxLatency)
	}
	s.latency.Store(int64(d))
	s.latencyGauge.Set(d.Seconds())
	return nil
}

type state struct {
	ErrorRate      float64 `json:"error_rate"`
	LatencySeconds float64 `json:"latency_seconds"`
}

func (s *service) state() state {
	return state{ErrorRate: floatFrom(s.errorRate.Load()), LatencySeconds: time.Duration(s.latency.Load()).Seconds()}
}

func (s *service) handler(reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	work := http.HandlerFunc(s.work)
	labels := prometheus.Labels{"handler": "/api/work"}
	mux.Handle("GET /api/work", promhttp.InstrumentHandlerDuration(s.duration.MustCurryWith(labels),
		promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(labels), work)))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("GET /admin/state", s.adminState)
	mux.HandleFunc("POST /admin/errors", s.adminErrors)
	mux.HandleFunc("POST /admin/latency", s.adminLatency)
	mux.HandleFunc("POST /admin/heal", s.adminHeal)
	mux.HandleFunc("GET /admin/resources", s.adminResources)
	mux.HandleFunc("POST /admin/memory", s.adminMemory)
	mux.HandleFunc("POST /admin/pool", s.adminPool)
	mux.HandleFunc("POST /admin/restart", s.adminRestart)
	mux.HandleFunc("POST /admin/db/pool/reset", s.adminPoolReset)
	return mux
}

func (s *service) work(w http.ResponseWriter, r *http.Request) {
	st := s.state()
	if st.LatencySeconds > 0 {
		t := time.NewTimer(time.Duration(s.latency.Load()))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if st.ErrorRate > 0 && rand.Float64() < st.ErrorRate {
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	s.integrity.WithLabelValues("match").Inc()
	fmt.Fprintln(w, "ok")
}

func (s *service) adminState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.state())
}

func (s *service) adminErrors(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("rate")
	rate, err := strconv.ParseFloat(v, 64)
	if err != nil {
		err = errors.New("not a number")
	} else {
		err = s.setErrorRate(rate)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("parameter rate=%q: %v", v, err)})
		return
	}
	s.logger.Info("Error rate set", "rate", rate)
	writeJSON(w, http.StatusOK, s.state())
}

func (s *service) adminLatency(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("duration")
	d, err := time.ParseDuration(v)
	if err != nil {
		err = errors.New("not a duration such as 300ms")
	} else {
		err = s.setLatency(d)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("parameter duration=%q: %v", v, err)})
		return
	}
	s.logger.Info("Latency set", "latency", d)
	writeJSON(w, http.StatusOK, s.state())
}

func (s *service) adminHeal(w http.ResponseWriter, _ *http.Request) {
	_ = s.setErrorRate(0)
	_ = s.setLatency(0)
	s.heals.Inc()
	s.logger.Info("Healed")
	writeJSON(w, http.StatusOK, s.state())
}

// setResources changes the simulated resources under the lock and
// updates the gauges; it returns the new state.
func (s *service) setResources(change func(r *resources)) resources {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	change(&s.res)
	s.res.MemoryRatio = s.res.MemoryUsedBytes / s.res.MemoryLimitBytes
	s.memoryUsed.Set(s.res.MemoryUsedBytes)
	s.memoryLimit.Set(s.res.MemoryLimitBytes)
	s.poolInUse.Set(float64(s.res.PoolInUse))
	s.poolMax.Set(float64(s.res.PoolMax))
	return s.res
}

// restart brings memory back to its baseline and empties the pool.
func (s *service) restart(count bool) resources {
	if count {
		s.restarts.Inc()
	}
	return s.setResources(func(r *resources) {
		r.MemoryLimitBytes, r.MemoryUsedBytes = memoryLimit, memoryBaseline*memoryLimit
		r.PoolMax, r.PoolInUse = poolMax, 0
		if count {
			r.Restarts++
		}
	})
}

func (s *service) adminResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.setResources(func(*resources) {}))
}

func (s *service) adminMemory(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("ratio")
	ratio, err := strconv.ParseFloat(v, 64)
	if err != nil || ratio != ratio || ratio < 0 || ratio > 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("parameter ratio=%q: want a number in [0, 1]", v)})
		return
	}
	res := s.setResources(func(r *resources) { r.MemoryUsedBytes = ratio * r.MemoryLimitBytes })
	s.logger.Info("Memory set", "ratio", ratio)
	writeJSON(w, http.StatusOK, res)
}

func (s *service) adminPool(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("in_use")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > poolMax {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("parameter in_use=%q: want an integer in [0, %d]", v, poolMax)})
		return
	}
	res := s.setResources(func(r *resources) { r.PoolInUse = n })
	s.logger.Info("Pool set", "in_use", n)
	writeJSON(w, http.StatusOK, res)
}

func (s *service) adminRestart(w http.ResponseWriter, _ *http.Request) {
	res := s.restart(true)
	s.logger.Info("Restarted", "restarts", res.Restarts)
	writeJSON(w, http.StatusOK, res)
}

func (s *service) adminPoolReset(w http.ResponseWriter, _ *http.Request) {
	res := s.setResources(func(r *resources) { r.PoolInUse = 0 })
	s.logger.Info("Pool reset")
	writeJSON(w, http.StatusOK, res)
}

func floatBits(f float64) uint64 { return math.Float64bits(f) }
func floatFrom(b uint64) float64 { return math.Float64frombits(b) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// generateLoad sends GET requests to url at rps until ctx ends, with at most
// 64 requests in flight (slow responses do not pile up without bound).
func generateLoad(ctx context.Context, url string, rps float64, logger *slog.Logger) {
	client := &http.Client{Timeout: maxLatency + 10*time.Second}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	defer tick.Stop()
	inflight := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case inflight <- struct{}{}:
		default:
			continue // saturated: skip this tick
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					logger.Debug("Load request", "err", err)
				}
				return
			}
			resp.Body.Close()
		}()
	}
}
