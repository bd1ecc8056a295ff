package runbook

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/incident"
)

// DefaultConfig is the `runbooks` section when sred.yml leaves it out.
var DefaultConfig = Config{
	MaxRunTime:     model.Duration(30 * time.Minute),
	MaxOutputBytes: 4096,
	PollInterval:   model.Duration(time.Second),
	LeaseDuration:  model.Duration(30 * time.Second),
	MaxConcurrent:  4,
	RateLimit:      RateLimit{PerHour: 10, PerTargetPerHour: 3},
}

// Config is the `runbooks` section of sred.yml.
type Config struct {
	// Files are glob patterns of runbook files (YAML, one runbook per file).
	Files []string `yaml:"files,omitempty"`
	// DryRun makes every runbook log what it would do and execute nothing.
	DryRun bool `yaml:"dry_run,omitempty"`
	// MaxRunTime bounds every run; a runbook may set a shorter one.
	MaxRunTime model.Duration `yaml:"max_run_time,omitempty"`
	// MaxOutputBytes truncates the output kept from each step.
	MaxOutputBytes int `yaml:"max_output_bytes,omitempty"`
	// PollInterval is how often the worker looks for pending runs,
	// approvals, cancellations and expired leases.
	PollInterval model.Duration `yaml:"poll_interval,omitempty"`
	// LeaseDuration is how long a run's job (in the work queue) and its
	// target lock stay owned by a replica that stopped renewing them. A run
	// whose lease expired (its replica died) is resumed by another replica.
	LeaseDuration model.Duration `yaml:"lease_duration,omitempty"`
	// MaxConcurrent is the number of runs one replica executes at once.
	MaxConcurrent int `yaml:"max_concurrent,omitempty"`
	// ApprovalSeverities lists incident severities whose runs wait for a
	// responder's approval before their first step.
	ApprovalSeverities []incident.Severity `yaml:"approval_severities,omitempty"`
	// RateLimit is the default limit of runbooks that set none.
	RateLimit RateLimit `yaml:"rate_limit,omitempty"`
	// HTTPEndpoints are the only URLs `http` steps may call, by name.
	HTTPEndpoints map[string]HTTPEndpoint `yaml:"http_endpoints,omitempty"`
	// Kubernetes says how `kubernetes` steps reach the cluster.
	Kubernetes KubernetesConfig `yaml:"kubernetes,omitempty"`
}

// RateLimit bounds how often runs start.
type RateLimit struct {
	// PerHour is the maximum of runs of one runbook started in any hour (0: no limit).
	PerHour int `yaml:"per_hour,omitempty"`
	// PerTargetPerHour is the maximum of runs started on one target in any hour (0: no limit).
	PerTargetPerHour int `yaml:"per_target_per_hour,omitempty"`

	// omitPerHour and omitPerTarget say that the YAML left the field out:
	// a runbook's rate_limit takes the global value of such a field.
	omitPerHour, omitPerTarget bool
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *RateLimit) UnmarshalYAML(unmarshal func(any) error) error {
	type plain RateLimit
	if err := unmarshal((*plain)(r)); err != nil {
		return err
	}
	if r.PerHour < 0 || r.PerTargetPerHour < 0 {
		return errors.New("rate_limit: per_hour and per_target_per_hour must not be negative")
	}
	var raw map[string]any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	_, hour := raw["per_hour"]
	_, target := raw["per_target_per_hour"]
	r.omitPerHour, r.omitPerTarget = !hour, !target
	return nil
}

// Over returns r with the fields its YAML left out taken from global: a
// runbook that sets only per_target_per_hour keeps the global per_hour,
// instead of running without a bound on its runs per hour.
func (r RateLimit) Over(global RateLimit) RateLimit {
	out := RateLimit{PerHour: r.PerHour, PerTargetPerHour: r.PerTargetPerHour}
	if r.omitPerHour {
		out.PerHour = global.PerHour
	}
	if r.omitPerTarget {
		out.PerTargetPerHour = global.PerTargetPerHour
	}
	return out
}

// HTTPEndpoint is a named base URL for `http` steps, with its client settings.
type HTTPEndpoint struct {
	URL        string                     `yaml:"url"`
	HTTPConfig commoncfg.HTTPClientConfig `yaml:"http_config,omitempty"`
}

// UnmarshalYAML implements yaml.Unmarshaler. Unlike prometheus/common's
// default, follow_redirects is false: a redirect would re-send the step's
// method, body and headers to a URL that is not in http_endpoints. Set to
// true, it follows redirects to the endpoint's own scheme, host and port
// only (newHTTPClient).
func (e *HTTPEndpoint) UnmarshalYAML(unmarshal func(any) error) error {
	*e = HTTPEndpoint{HTTPConfig: commoncfg.DefaultHTTPClientConfig}
	type plain HTTPEndpoint
	if err := unmarshal((*plain)(e)); err != nil {
		return err
	}
	// HTTPClientConfig starts from its own defaults when http_config is
	// set: read whether follow_redirects was written.
	var raw map[string]any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	hc, _ := raw["http_config"].(map[string]any)
	follow, _ := hc["follow_redirects"].(bool)
	e.HTTPConfig.FollowRedirects = follow
	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Errorf("http endpoint url %q: %w", e.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("http endpoint url %q: want an absolute http or https URL", e.URL)
	}
	return e.HTTPConfig.Validate()
}

// KubernetesConfig says where `kubernetes` steps find the cluster: the
// kubeconfig file (and context) if set, else the in-cluster service account.
type KubernetesConfig struct {
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	Context    string `yaml:"context,omitempty"`
}

var endpointName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// UnmarshalYAML implements yaml.Unmarshaler: defaults, then validation.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks a Config built in code (UnmarshalYAML calls it).
func (c *Config) Validate() error {
	if c.MaxRunTime <= 0 {
		return errors.New("runbooks: max_run_time must be positive")
	}
	if c.MaxOutputBytes <= 0 {
		return errors.New("runbooks: max_output_bytes must be positive")
	}
	if c.PollInterval <= 0 {
		return errors.New("runbooks: poll_interval must be positive")
	}
	if c.LeaseDuration < 3*c.PollInterval {
		return fmt.Errorf("runbooks: lease_duration (%s) must be at least 3 poll intervals (%s)", c.LeaseDuration, 3*c.PollInterval)
	}
	if c.MaxConcurrent <= 0 {
		return errors.New("runbooks: max_concurrent must be positive")
	}
	for _, s := range c.ApprovalSeverities {
		if _, err := incident.ParseSeverity(string(s)); err != nil {
			return fmt.Errorf("runbooks: approval_severities: %w", err)
		}
	}
	for i, s := range c.ApprovalSeverities {
		c.ApprovalSeverities[i], _ = incident.ParseSeverity(string(s))
	}
	for name := range c.HTTPEndpoints {
		if !endpointName.MatchString(name) {
			return fmt.Errorf("runbooks: http endpoint name %q: want letters, digits, '_' or '-'", name)
		}
	}
	for _, f := range c.Files {
		if f == "" {
			return errors.New("runbooks: empty pattern in files")
		}
	}
	return nil
}
