// Package httpfault injects application faults with an HTTP reverse proxy
// that sred runs in-process in front of a service or a dependency (chaos
// proxies of kind http): delays ("slow endpoints") and error codes
// ("dependency failures") for a share of the requests on chosen paths.
// Rules live in memory: if sred dies they die with it.
package httpfault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rootuip/sre/pkg/chaos"
)

type rule struct {
	paths  []string
	share  float64
	delay  time.Duration
	status int
}

func (r rule) matches(path string) bool {
	if len(r.paths) == 0 {
		return true
	}
	for _, p := range r.paths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

type proxy struct {
	name    string
	listen  string
	srv     *http.Server
	ln      net.Listener // nil while it cannot listen (bindErr says why)
	bindErr error
	rp      *httputil.ReverseProxy
	mu      sync.RWMutex
	rules   map[string]rule
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.RLock()
	var apply []rule
	for _, rl := range p.rules {
		if rl.matches(r.URL.Path) && rand.Float64() < rl.share {
			apply = append(apply, rl)
		}
	}
	p.mu.RUnlock()
	for _, rl := range apply {
		if rl.delay > 0 {
			select {
			case <-time.After(rl.delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	for _, rl := range apply {
		if rl.status > 0 {
			w.Header().Set("X-Chaos-Fault", p.name)
			http.Error(w, fmt.Sprintf("chaos: injected %d", rl.status), rl.status)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// Driver owns the HTTP fault proxies.
type Driver struct {
	mu      sync.Mutex
	proxies map[string]*proxy
}

// New starts one proxy per http proxy of cfgs.
func New(cfgs []chaos.ProxyConfig) (*Driver, error) {
	d := &Driver{proxies: map[string]*proxy{}}
	for _, c := range cfgs {
		if c.Kind != "http" {
			continue
		}
		u, err := url.Parse(c.Upstream)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("proxy %s: %w", c.Name, err)
		}
		p := &proxy{name: c.Name, listen: c.Listen, rp: httputil.NewSingleHostReverseProxy(u), rules: map[string]rule{}}
		p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
		d.proxies[c.Name] = p
		_ = p.bind() // else bound lazily (Bind, Inject)
	}
	return d, nil
}

// bind starts listening; it is a no-op once listening.
func (p *proxy) bind() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		p.bindErr = fmt.Errorf("http proxy %s cannot listen on %s: %w", p.name, p.listen, err)
		return p.bindErr
	}
	p.ln, p.bindErr = ln, nil
	go func() { _ = p.srv.Serve(ln) }()
	return nil
}

// Bind makes a proxy listen if it could not so far (another process held
// its address when sred started); it returns why it still cannot.
func (d *Driver) Bind(name string) error {
	d.mu.Lock()
	p, ok := d.proxies[name]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("no http proxy %q in the chaos configuration", name)
	}
	return p.bind()
}

// Unbound returns the proxies that are not listening, with the reason.
func (d *Driver) Unbound() map[string]error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]error{}
	for name, p := range d.proxies {
		p.mu.Lock()
		if p.ln == nil {
			out[name] = p.bindErr
		}
		p.mu.Unlock()
	}
	return out
}

// Addr returns the address a proxy listens on (the configured one while it
// is not listening).
func (d *Driver) Addr(name string) string {
	d.mu.Lock()
	p, ok := d.proxies[name]
	d.mu.Unlock()
	if !ok {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return p.ln.Addr().String()
	}
	return p.listen
}

// Close stops every proxy.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.proxies {
		_ = p.srv.Close()
	}
}

// Inject implements chaos.Driver.
func (d *Driver) Inject(_ context.Context, id string, f chaos.Fault) (json.RawMessage, error) {
	d.mu.Lock()
	p, ok := d.proxies[f.Proxy]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no http proxy %q in the chaos configuration", f.Proxy)
	}
	if err := p.bind(); err != nil {
		return nil, err
	}
	r := rule{paths: f.Paths, share: f.Percent / 100}
	switch f.Type {
	case chaos.FaultHTTPDelay:
		r.delay = time.Duration(f.Delay)
	case chaos.FaultHTTPError:
		r.status = f.Status
	default:
		return nil, errors.New("the httpproxy driver cannot inject " + f.Type + " faults")
	}
	p.mu.Lock()
	p.rules[id] = r
	p.mu.Unlock()
	return json.RawMessage(`{}`), nil
}

// Revert implements chaos.Driver.
func (d *Driver) Revert(_ context.Context, id string, f chaos.Fault, _ json.RawMessage) error {
	d.mu.Lock()
	p, ok := d.proxies[f.Proxy]
	d.mu.Unlock()
	if !ok {
		return nil
	}
	p.mu.Lock()
	delete(p.rules, id)
	p.mu.Unlock()
	return nil
}
