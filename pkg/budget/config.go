package budget

import (
	"errors"
	"fmt"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
)

// Config is the `slos` section of sred.yml.
//
//	slos:
//	  spec_files: [slos/]            # files or directories, relative to sred.yml
//	  poll_interval: 1m
//	  query_timeout: 30s
//	  history_range: 7d
//	  history_step: 1h
//	  gate:
//	    on_prometheus_error: deny    # fail closed (deny) or open (allow)
//	    on_no_data: allow
//	    override_tokens: [<secret>]
//	    override_token_files: [gate-token]
//	    request_limit: {burst: 1000, every: 50ms}
type Config struct {
	// SpecFiles are the SLO spec files and directories that `srectl generate`
	// compiles, relative to the config file. Empty disables budgets.
	SpecFiles []string `yaml:"spec_files,omitempty"`
	// PollInterval is how often budgets are recomputed to detect state changes.
	PollInterval model.Duration `yaml:"poll_interval"`
	// QueryTimeout bounds each Prometheus query.
	QueryTimeout model.Duration `yaml:"query_timeout"`
	// HistoryRange and HistoryStep shape the chart history of one SLO.
	HistoryRange model.Duration `yaml:"history_range"`
	HistoryStep  model.Duration `yaml:"history_step"`
	Gate         GateConfig     `yaml:"gate"`
}

// DefaultConfig holds the defaults of the `slos` section.
var DefaultConfig = Config{
	PollInterval: model.Duration(time.Minute),
	QueryTimeout: model.Duration(30 * time.Second),
	HistoryRange: model.Duration(7 * 24 * time.Hour),
	HistoryStep:  model.Duration(time.Hour),
	Gate:         DefaultGateConfig,
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.validate()
}

func (c *Config) validate() error {
	for i, f := range c.SpecFiles {
		if f == "" {
			return fmt.Errorf("slos: spec_files[%d] is empty", i)
		}
	}
	if c.PollInterval < model.Duration(time.Second) {
		return fmt.Errorf("slos: poll_interval must be at least 1s, got %s", c.PollInterval)
	}
	if c.QueryTimeout <= 0 {
		return fmt.Errorf("slos: query_timeout must be positive, got %s", c.QueryTimeout)
	}
	if c.HistoryRange <= 0 || c.HistoryStep <= 0 {
		return fmt.Errorf("slos: history_range and history_step must be positive, got %s and %s", c.HistoryRange, c.HistoryStep)
	}
	if time.Duration(c.HistoryRange)/time.Duration(c.HistoryStep) > 11000 {
		return fmt.Errorf("slos: history_range / history_step must not exceed 11000 points (Prometheus' limit), got %s / %s", c.HistoryRange, c.HistoryStep)
	}
	return nil
}

// Fail modes of the gate when Prometheus cannot be queried or has no data.
const (
	FailDeny  = "deny"
	FailAllow = "allow"
)

// GateConfig configures the deploy gate.
type GateConfig struct {
	// OnPrometheusError is the answer when Prometheus is unreachable or
	// errors: "deny" (fail closed, the default) or "allow" (fail open).
	OnPrometheusError string `yaml:"on_prometheus_error"`
	// OnNoData is the answer for a service none of whose SLOs has data
	// (no traffic yet): "allow" (default) or "deny".
	OnNoData string `yaml:"on_no_data"`
	// OverrideTokens are the emergency override tokens; a request presenting
	// one (header X-SRE-Override-Token) is allowed whatever the budget, and
	// recorded with its reason.
	OverrideTokens []commoncfg.Secret `yaml:"override_tokens,omitempty"`
	// OverrideTokenFiles read tokens from files (relative to the config file).
	OverrideTokenFiles []string `yaml:"override_token_files,omitempty"`
	// RequestLimit bounds the gate requests of one client (address and
	// principal): GET /api/v1/gate and the Flagger pre-rollout hook, each
	// a set of Prometheus queries.
	RequestLimit RequestLimit `yaml:"request_limit"`
}

// RequestLimit is a rate limit of gate requests: Burst requests in a row,
// then one per Every. It is the type of analysis.run_limit too, with the
// same defaults (limits.DefaultRate: 1,000 in a row, then one per 50ms) and
// bounds.
type RequestLimit = limits.Rate

// Defaults of RequestLimit, those of analysis.run_limit (see limits.Rate).
const (
	DefaultRequestBurst = limits.DefaultRateBurst
	DefaultRequestEvery = limits.DefaultRateEvery
)

// DefaultGateConfig holds the gate defaults.
var DefaultGateConfig = GateConfig{OnPrometheusError: FailDeny, OnNoData: FailAllow,
	RequestLimit: limits.DefaultRate}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *GateConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultGateConfig
	type plain GateConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.OnPrometheusError != FailDeny && c.OnPrometheusError != FailAllow {
		return fmt.Errorf("slos: gate: on_prometheus_error must be %q or %q, got %q", FailDeny, FailAllow, c.OnPrometheusError)
	}
	if c.OnNoData != FailDeny && c.OnNoData != FailAllow {
		return fmt.Errorf("slos: gate: on_no_data must be %q or %q, got %q", FailDeny, FailAllow, c.OnNoData)
	}
	for i, t := range c.OverrideTokens {
		if len(t) < MinOverrideTokenLen {
			return fmt.Errorf("slos: gate: override_tokens[%d] must be at least %d characters", i, MinOverrideTokenLen)
		}
	}
	for i, f := range c.OverrideTokenFiles {
		if f == "" {
			return errors.New("slos: gate: override_token_files[" + fmt.Sprint(i) + "] is empty")
		}
	}
	if err := c.RequestLimit.Validate(); err != nil {
		return fmt.Errorf("slos: gate: request_limit: %w", err)
	}
	return nil
}
