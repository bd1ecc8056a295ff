// Command weighted-proxy is a small HTTP reverse proxy that splits traffic
// between a stable and a canary upstream by weight: the stage runner of
// sred (docs/rollout-runner.md) sets the weight with an http action.
//
//	PUT  /admin/weight {"canary": 10}   10% of the requests go to the canary
//	GET  /admin/weight                  {"canary":10,"stable_requests":..,"canary_requests":..}
//
// The split is exact, not random: with weight w, w of every 100
// consecutive requests go to the canary, spread evenly.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	a := kingpin.New("weighted-proxy", "An HTTP reverse proxy splitting traffic between a stable and a canary upstream by weight.")
	listen := a.Flag("web.listen-address", "Address to listen on.").Default("127.0.0.1:8090").String()
	stable := a.Flag("stable.url", "URL of the stable upstream.").Required().String()
	canary := a.Flag("canary.url", "URL of the canary upstream.").Required().String()
	weight := a.Flag("canary.weight", "Initial percentage of requests sent to the canary (0..100).").Default("0").Int()
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(a, logCfg)
	a.HelpFlag.Short('h')
	if _, err := a.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "weighted-proxy: %v\n", err)
		return 2
	}
	logger := promslog.New(logCfg)
	p, err := newProxy(*stable, *canary, *weight, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weighted-proxy: %v\n", err)
		return 2
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("Listen", "address", *listen, "err", err)
		return 1
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("Listening", "address", l.Addr().String(), "stable", *stable, "canary", *canary, "canary_weight", *weight)
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
	return 0
}

// proxy splits requests between two upstreams.
type proxy struct {
	logger         *slog.Logger
	stable, canary *httputil.ReverseProxy

	mu     sync.Mutex
	weight int
	acc    int // Bresenham accumulator: exact shares, evenly spread
	counts [2]int64
}

func newProxy(stableURL, canaryURL string, weight int, logger *slog.Logger) (*proxy, error) {
	rp := func(name, raw string) (*httputil.ReverseProxy, error) {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("--%s.url %q: want an http(s) URL", name, raw)
		}
		return httputil.NewSingleHostReverseProxy(u), nil
	}
	p := &proxy{logger: logger}
	var err error
	if p.stable, err = rp("stable", stableURL); err != nil {
		return nil, err
	}
	if p.canary, err = rp("canary", canaryURL); err != nil {
		return nil, err
	}
	if err := p.setWeight(weight); err != nil {
		return nil, fmt.Errorf("--canary.weight: %w", err)
	}
	return p, nil
}

func (p *proxy) setWeight(w int) error {
	if w < 0 || w > 100 {
		return fmt.Errorf("weight %d out of range [0, 100]", w)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.weight, p.acc = w, 0
	return nil
}

// pick says whether the next request goes to the canary.
func (p *proxy) pick() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acc += p.weight
	canary := p.acc >= 100
	if canary {
		p.acc -= 100
		p.counts[1]++
	} else {
		p.counts[0]++
	}
	return canary
}

type weightState struct {
	Canary         int   `json:"canary"`
	StableRequests int64 `json:"stable_requests"`
	CanaryRequests int64 `json:"canary_requests"`
}

func (p *proxy) state() weightState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return weightState{Canary: p.weight, StableRequests: p.counts[0], CanaryRequests: p.counts[1]}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/admin/weight":
		p.admin(w, r)
		return
	case "/-/healthy", "/-/ready":
		fmt.Fprintln(w, "OK")
		return
	}
	if p.pick() {
		p.canary.ServeHTTP(w, r)
		return
	}
	p.stable.ServeHTTP(w, r)
}

func (p *proxy) admin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, p.state())
	case http.MethodPut, http.MethodPost:
		var req struct {
			Canary *int `json:"canary"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Canary == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body: want {"canary": <0..100>}`})
			return
		}
		if err := p.setWeight(*req.Canary); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		p.logger.Info("Canary weight set", "weight", *req.Canary)
		writeJSON(w, http.StatusOK, p.state())
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or PUT"})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
