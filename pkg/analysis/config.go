package analysis

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
)

// Config is the analysis section of sred.yml:
//
//	analysis:
//	  spec_files: [rollouts/]   # files or directories, relative to sred.yml
//	  query_timeout: 30s
//	  run_limit: {burst: 1000, every: 50ms}
type Config struct {
	// SpecFiles are analysis spec files or directories of them.
	SpecFiles []string `yaml:"spec_files"`
	// QueryTimeout bounds each Prometheus query.
	QueryTimeout model.Duration `yaml:"query_timeout"`
	// RunLimit bounds the runs of each analysis that one client (address
	// and principal) starts: each costs a set of Prometheus queries.
	RunLimit RunLimit `yaml:"run_limit"`
}

// RunLimit is a rate limit of analysis runs: Burst runs in a row, then one
// per Every. Runs that join an identical run in progress are not counted.
// It is the type of slos.gate.request_limit too, with the same defaults
// (limits.DefaultRate: 1,000 in a row, then one per 50ms) and bounds.
type RunLimit = limits.Rate

// Defaults of RunLimit, those of slos.gate.request_limit (see limits.Rate).
const (
	DefaultRunBurst = limits.DefaultRateBurst
	DefaultRunEvery = limits.DefaultRateEvery
)

// DefaultConfig is the section's defaults.
var DefaultConfig = Config{QueryTimeout: model.Duration(30 * time.Second),
	RunLimit: limits.DefaultRate}

// UnmarshalYAML sets defaults and validates.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.QueryTimeout <= 0 {
		return fmt.Errorf("analysis: query_timeout must be positive, got %s", c.QueryTimeout)
	}
	if err := c.RunLimit.Validate(); err != nil {
		return fmt.Errorf("analysis: run_limit: %w", err)
	}
	for i, f := range c.SpecFiles {
		if f == "" {
			return fmt.Errorf("analysis: spec_files[%d] is empty", i)
		}
	}
	return nil
}

// LoadSpecs reads the spec files of c, each path resolved by resolve
// (against the directory of sred.yml); names must be unique.
func LoadSpecs(c Config, resolve func(string) string) ([]*Spec, error) {
	var out []*Spec
	seen := map[string]string{}
	for _, f := range c.SpecFiles {
		specs, err := LoadDir(resolve(f))
		if err != nil {
			return nil, fmt.Errorf("analysis: %w", err)
		}
		for _, s := range specs {
			if prev, ok := seen[s.Name]; ok {
				return nil, fmt.Errorf("analysis: %s: analysis %q already defined in %s", s.File, s.Name, prev)
			}
			seen[s.Name] = s.File
			out = append(out, s)
		}
	}
	return out, nil
}
