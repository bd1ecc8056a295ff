// Package toxiproxy injects network faults (latency and jitter, timeouts,
// connection resets, bandwidth limits, partitions) with Toxiproxy running
// in-process: sred owns one proxy per configured dependency link
// (chaos.proxies of kind tcp), the service reaches its dependency through
// it, and each fault is a toxic named after its journal id.
//
// The proxies live in sred's process: if sred dies, its toxics die with it,
// so reverting a fault journaled by a dead process has nothing left to undo.
package toxiproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	toxi "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rootuip/sre/pkg/chaos"
)

// Driver owns the proxies.
type Driver struct {
	server *toxi.ApiServer
	mu     sync.Mutex
	// proxies by name; partitioned holds the ids of partition faults per proxy.
	proxies     map[string]*toxi.Proxy
	partitioned map[string]map[string]bool
	// unbound holds the proxies that could not listen yet, with the error.
	unbound map[string]error
}

// New starts one proxy per tcp proxy of cfgs. A proxy whose address cannot
// be bound now (another process holds it) does not stop sred: it is bound
// lazily, by Bind before a run that uses it (see Unbound).
func New(cfgs []chaos.ProxyConfig) (*Driver, error) {
	d := &Driver{
		server:      toxi.NewServer(toxi.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
		proxies:     map[string]*toxi.Proxy{},
		partitioned: map[string]map[string]bool{},
		unbound:     map[string]error{},
	}
	for _, c := range cfgs {
		if c.Kind != "tcp" {
			continue
		}
		p := toxi.NewProxy(d.server, c.Name, c.Listen, c.Upstream)
		d.proxies[c.Name] = p
		if err := p.Start(); err != nil {
			d.unbound[c.Name] = fmt.Errorf("tcp proxy %s cannot listen on %s: %w", c.Name, c.Listen, err)
		}
	}
	return d, nil
}

// Bind makes a proxy listen if it could not so far; it returns why it
// still cannot.
func (d *Driver) Bind(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bind(name)
}

func (d *Driver) bind(name string) error {
	p, err := d.proxy(name)
	if err != nil {
		return err
	}
	if _, down := d.unbound[name]; !down {
		return nil
	}
	if err := p.Start(); err != nil {
		d.unbound[name] = fmt.Errorf("tcp proxy %s cannot listen on %s: %w", name, p.Listen, err)
		return d.unbound[name]
	}
	delete(d.unbound, name)
	return nil
}

// Unbound returns the proxies that are not listening, with the reason.
func (d *Driver) Unbound() map[string]error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]error{}
	for k, v := range d.unbound {
		out[k] = v
	}
	return out
}

// Addr returns the address a proxy listens on (useful with port 0).
func (d *Driver) Addr(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.proxies[name]; ok {
		return p.Listen
	}
	return ""
}

// Close stops every proxy.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.proxies {
		p.Stop()
	}
}

func (d *Driver) proxy(name string) (*toxi.Proxy, error) {
	p, ok := d.proxies[name]
	if !ok {
		return nil, fmt.Errorf("no tcp proxy %q in the chaos configuration", name)
	}
	return p, nil
}

type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float32        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxics returns the Toxiproxy toxics of f.
func toxics(id string, f chaos.Fault) ([]toxic, error) {
	switch f.Type {
	case chaos.FaultLatency:
		return []toxic{{Name: id, Type: "latency", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{
			"latency": int64(f.Latency) / 1e6, "jitter": int64(f.Jitter) / 1e6}}}, nil
	case chaos.FaultTimeout:
		return []toxic{{Name: id, Type: "timeout", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{
			"timeout": int64(f.Timeout) / 1e6}}}, nil
	case chaos.FaultReset:
		return []toxic{{Name: id, Type: "reset_peer", Stream: "upstream", Toxicity: float32(f.Percent / 100), Attributes: map[string]any{
			"timeout": 0}}}, nil
	case chaos.FaultBandwidth:
		return []toxic{{Name: id, Type: "bandwidth", Stream: "downstream", Toxicity: 1, Attributes: map[string]any{"rate": f.RateKBps}}}, nil
	}
	return nil, fmt.Errorf("the toxiproxy driver cannot inject %s faults", f.Type)
}

type state struct {
	Proxy string `json:"proxy"`
}

// Inject implements chaos.Driver.
func (d *Driver) Inject(_ context.Context, id string, f chaos.Fault) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.proxy(f.Proxy)
	if err != nil {
		return nil, err
	}
	if err := d.bind(f.Proxy); err != nil {
		return nil, err
	}
	st, _ := json.Marshal(state{Proxy: f.Proxy})
	if f.Type == chaos.FaultPartition {
		if d.partitioned[f.Proxy] == nil {
			d.partitioned[f.Proxy] = map[string]bool{}
		}
		if len(d.partitioned[f.Proxy]) == 0 {
			p.Stop() // closes the listener and every connection
		}
		d.partitioned[f.Proxy][id] = true
		return st, nil
	}
	ts, err := toxics(id, f)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		b, _ := json.Marshal(t)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			return st, fmt.Errorf("add %s toxic to proxy %s: %w", t.Type, f.Proxy, err)
		}
	}
	return st, nil
}

// Revert implements chaos.Driver.
func (d *Driver) Revert(ctx context.Context, id string, f chaos.Fault, _ json.RawMessage) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.proxy(f.Proxy)
	if err != nil {
		return nil // proxy gone with a previous configuration or process: nothing to undo
	}
	if f.Type == chaos.FaultPartition {
		set := d.partitioned[f.Proxy]
		if !set[id] {
			return nil
		}
		delete(set, id)
		if len(set) == 0 {
			if err := p.Start(); err != nil {
				return fmt.Errorf("restart proxy %s: %w", f.Proxy, err)
			}
		}
		return nil
	}
	if err := p.Toxics.RemoveToxic(ctx, id); err != nil && !errors.Is(err, toxi.ErrToxicNotFound) {
		return fmt.Errorf("remove toxic %s from proxy %s: %w", id, f.Proxy, err)
	}
	return nil
}
