package probe

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootuip/sre/pkg/limits"
)

// Defaults of the health_checks section.
const (
	DefaultInterval = 30 * time.Second
	DefaultTimeout  = 10 * time.Second
)

// Config is the `health_checks` section of sred.yml.
type Config struct {
	// Interval is the default time between two runs of a check (30s).
	Interval model.Duration `yaml:"interval,omitempty"`
	// Timeout is the default bound of one run of a check (10s); at most the interval.
	Timeout model.Duration `yaml:"timeout,omitempty"`
	Checks  []*Check       `yaml:"checks,omitempty"`
}

// Check is one health check: exactly one of HTTP, TCP and PromQL.
type Check struct {
	// Name identifies the check (the `probe` label).
	Name string `yaml:"name"`
	// Service is the `service` label of its metrics: the healing rules
	// and runbooks match on it.
	Service  string         `yaml:"service"`
	Interval model.Duration `yaml:"interval,omitempty"`
	Timeout  model.Duration `yaml:"timeout,omitempty"`

	HTTP   *HTTPCheck   `yaml:"http,omitempty"`
	TCP    *TCPCheck    `yaml:"tcp,omitempty"`
	PromQL *PromQLCheck `yaml:"promql,omitempty"`

	bodyRE *regexp.Regexp
}

// HTTPCheck succeeds when a request gets an expected status and, when set,
// a body matching BodyRegexp.
type HTTPCheck struct {
	URL    string `yaml:"url"`
	Method string `yaml:"method,omitempty"` // GET (default) or HEAD
	// ExpectedStatus lists the status codes that pass (default: any 2xx).
	ExpectedStatus []int `yaml:"expected_status,omitempty"`
	// BodyRegexp must match the body (its first 1 MiB) when set.
	BodyRegexp string `yaml:"body_regexp,omitempty"`
}

// TCPCheck succeeds when a TCP connection to Address opens.
type TCPCheck struct {
	Address string `yaml:"address"`
}

// PromQLCheck succeeds when its query returns at least one sample
// (Expect "non_empty", the default) or none (Expect "empty").
type PromQLCheck struct {
	Query  string `yaml:"query"`
	Expect string `yaml:"expect,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// UnmarshalYAML sets the defaults and validates the section.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{}
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.Interval < 0 || c.Timeout < 0 {
		return errors.New("health_checks: interval and timeout must be positive")
	}
	if c.Interval == 0 {
		c.Interval = model.Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = model.Duration(min(DefaultTimeout, time.Duration(c.Interval)))
	}
	if c.Timeout > c.Interval {
		return fmt.Errorf("health_checks: timeout %s is longer than the interval %s", c.Timeout, c.Interval)
	}
	names := map[string]bool{}
	for i, ch := range c.Checks {
		if ch == nil {
			return fmt.Errorf("health_checks: checks[%d] is empty", i)
		}
		if err := ch.validate(c); err != nil {
			return fmt.Errorf("health_checks: check %q: %w", ch.Name, err)
		}
		if names[ch.Name] {
			return fmt.Errorf("health_checks: check %q is defined twice", ch.Name)
		}
		names[ch.Name] = true
	}
	return nil
}

func (ch *Check) validate(c *Config) error {
	if !nameRE.MatchString(ch.Name) {
		return errors.New("name: want letters, digits, '_', '.' or '-' (at most 63)")
	}
	if ch.Service == "" {
		return errors.New("service is required (the service label the healing rules match)")
	}
	if ch.Interval < 0 || ch.Timeout < 0 {
		return errors.New("interval and timeout must be positive")
	}
	if ch.Interval == 0 {
		ch.Interval = c.Interval
	}
	if ch.Timeout == 0 {
		ch.Timeout = model.Duration(min(time.Duration(c.Timeout), time.Duration(ch.Interval)))
	}
	if ch.Timeout > ch.Interval {
		return fmt.Errorf("timeout %s is longer than the interval %s", ch.Timeout, ch.Interval)
	}
	n := 0
	for _, set := range []bool{ch.HTTP != nil, ch.TCP != nil, ch.PromQL != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("set exactly one of http, tcp and promql")
	}
	switch {
	case ch.HTTP != nil:
		h := ch.HTTP
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http: url %q: want an absolute http:// or https:// URL", h.URL)
		}
		switch h.Method {
		case "":
			h.Method = "GET"
		case "GET", "HEAD":
		default:
			return fmt.Errorf("http: method %q: want GET or HEAD (a health check changes nothing)", h.Method)
		}
		for _, s := range h.ExpectedStatus {
			if s < 100 || s > 599 {
				return fmt.Errorf("http: expected_status %d is not an HTTP status code", s)
			}
		}
		if h.BodyRegexp != "" {
			re, err := regexp.Compile(h.BodyRegexp)
			if err != nil {
				return fmt.Errorf("http: body_regexp: %v", err)
			}
			ch.bodyRE = re
		}
	case ch.TCP != nil:
		if _, _, err := net.SplitHostPort(ch.TCP.Address); err != nil {
			return fmt.Errorf("tcp: address %q: want host:port", ch.TCP.Address)
		}
	case ch.PromQL != nil:
		p := ch.PromQL
		if p.Query == "" {
			return errors.New("promql: query is required")
		}
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(p.Query); err != nil {
			return fmt.Errorf("promql: query: %v", limits.ParseError(err))
		}
		switch p.Expect {
		case "":
			p.Expect = ExpectNonEmpty
		case ExpectNonEmpty, ExpectEmpty:
		default:
			return fmt.Errorf("promql: expect %q: want %s or %s", p.Expect, ExpectNonEmpty, ExpectEmpty)
		}
	}
	return nil
}

// PromQL expectations.
const (
	ExpectNonEmpty = "non_empty"
	ExpectEmpty    = "empty"
)

// HasPromQL reports whether a check needs Prometheus.
func (c Config) HasPromQL() bool {
	for _, ch := range c.Checks {
		if ch.PromQL != nil {
			return true
		}
	}
	return false
}

// Instance is the value of the check's `instance` label: the URL or address
// it probes, as blackbox_exporter users relabel it (the check name for a
// PromQL check, which probes no address).
func (ch *Check) Instance() string {
	switch {
	case ch.HTTP != nil:
		return ch.HTTP.URL
	case ch.TCP != nil:
		return ch.TCP.Address
	default:
		return ch.Name
	}
}

// Kind is http, tcp or promql.
func (ch *Check) Kind() string {
	switch {
	case ch.HTTP != nil:
		return "http"
	case ch.TCP != nil:
		return "tcp"
	default:
		return "promql"
	}
}
