package chaos

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
)

// Config is the `chaos` section of sred.yml.
//
//	chaos:
//	  experiment_files: [examples/chaos]
//	  lease: 30s
//	  query_timeout: 30s
//	  safety:
//	    max_instance_fraction: 0.5
//	    excluded_services: [payment, auth]
//	    excluded_environments: [production]
//	    max_duration: 1h
//	  proxies:
//	    - {name: checkout-db, kind: tcp, listen: 127.0.0.1:15432, upstream: 127.0.0.1:5432}
//	    - {name: checkout-api, kind: http, listen: 127.0.0.1:18080, upstream: http://127.0.0.1:8080}
type Config struct {
	// ExperimentFiles are experiment files or directories, relative to the config file.
	ExperimentFiles []string `yaml:"experiment_files,omitempty"`
	// Lease is how long a journaled fault stays owned without renewal; after
	// it expires any replica (or the next start) rolls the fault back.
	Lease model.Duration `yaml:"lease"`
	// QueryTimeout bounds each PromQL query of a run (steady state, abort
	// conditions, measurements); a query without an answer by then fails.
	QueryTimeout model.Duration `yaml:"query_timeout"`
	Safety       Safety         `yaml:"safety"`
	Proxies      []ProxyConfig  `yaml:"proxies,omitempty"`
	// Kubernetes enables the chaosmesh driver: the cluster of this
	// kubeconfig file and context, or the in-cluster service account when
	// the section is present with an empty kubeconfig.
	Kubernetes *KubernetesConfig `yaml:"kubernetes,omitempty"`
}

// KubernetesConfig names the cluster of the chaosmesh driver.
type KubernetesConfig struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty"`
}

// DefaultConfig holds the defaults of the `chaos` section.
var DefaultConfig = Config{Lease: model.Duration(30 * time.Second), QueryTimeout: model.Duration(30 * time.Second), Safety: DefaultSafety}

// MaxQueryTimeout is the longest chaos.query_timeout.
const MaxQueryTimeout = 5 * time.Minute

// UnmarshalYAML sets defaults and validates.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.Lease < model.Duration(3*time.Second) {
		return fmt.Errorf("chaos.lease %v is below 3s", c.Lease)
	}
	if c.QueryTimeout < model.Duration(time.Second) || c.QueryTimeout > model.Duration(MaxQueryTimeout) {
		return fmt.Errorf("chaos.query_timeout %v must be 1s to %v", c.QueryTimeout, model.Duration(MaxQueryTimeout))
	}
	seen := map[string]bool{}
	for _, p := range c.Proxies {
		if seen[p.Name] {
			return fmt.Errorf("chaos.proxies: name %q used twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// Safety are the blast-radius limits, checked before anything starts.
type Safety struct {
	MaxInstanceFraction  float64        `yaml:"max_instance_fraction" json:"max_instance_fraction"`
	ExcludedServices     []string       `yaml:"excluded_services" json:"excluded_services"`
	ExcludedEnvironments []string       `yaml:"excluded_environments" json:"excluded_environments"`
	MaxDuration          model.Duration `yaml:"max_duration" json:"max_duration"`
}

// DefaultSafety holds the default limits.
var DefaultSafety = Safety{
	MaxInstanceFraction:  0.5,
	ExcludedServices:     []string{"payment", "auth"},
	ExcludedEnvironments: []string{"production"},
	MaxDuration:          model.Duration(time.Hour),
}

// UnmarshalYAML sets defaults and validates.
func (s *Safety) UnmarshalYAML(unmarshal func(any) error) error {
	*s = DefaultSafety
	type plain Safety
	if err := unmarshal((*plain)(s)); err != nil {
		return err
	}
	if s.MaxInstanceFraction <= 0 || s.MaxInstanceFraction > 1 {
		return fmt.Errorf("max_instance_fraction %v must be in (0, 1], e.g. 0.5 for 50%%", s.MaxInstanceFraction)
	}
	if s.MaxDuration <= 0 {
		return errors.New("max_duration must be positive")
	}
	return nil
}

// ProxyConfig is a fault proxy sred runs in-process between a service and a dependency.
type ProxyConfig struct {
	Name string `yaml:"name"`
	// Kind is tcp (Toxiproxy: network faults) or http (HTTP faults).
	Kind     string `yaml:"kind"`
	Listen   string `yaml:"listen"`
	Upstream string `yaml:"upstream"`
}

// UnmarshalYAML validates.
func (p *ProxyConfig) UnmarshalYAML(unmarshal func(any) error) error {
	type plain ProxyConfig
	if err := unmarshal((*plain)(p)); err != nil {
		return err
	}
	if p.Name == "" {
		return errors.New("proxy name is required")
	}
	if _, _, err := net.SplitHostPort(p.Listen); err != nil {
		return fmt.Errorf("proxy %q: listen %q must be host:port", p.Name, p.Listen)
	}
	switch p.Kind {
	case "tcp":
		if _, _, err := net.SplitHostPort(p.Upstream); err != nil {
			return fmt.Errorf("proxy %q: upstream %q must be host:port", p.Name, p.Upstream)
		}
	case "http":
		u, err := url.Parse(p.Upstream)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("proxy %q: upstream %q must be an http(s) URL", p.Name, p.Upstream)
		}
	default:
		return fmt.Errorf("proxy %q: kind %q must be tcp or http", p.Name, p.Kind)
	}
	return nil
}
