package analysis

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
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
type RunLimit struct {
	Burst int            `yaml:"burst"`
	Every model.Duration `yaml:"every"`
}

// Defaults of RunLimit. One controller calls for all its canaries from
// one address as one principal: Flagger two hooks per canary and analysis
// interval, Argo Rollouts one measurement per rollout and interval. 1,000
// in a row, then one per 50ms (1,200 a minute), keeps 600 canaries
// analysed each minute by one Flagger far from the limit, while a client
// looping on the API still gets no more than 20 sets of queries a second.
const (
	DefaultRunBurst = 1000
	DefaultRunEvery = 50 * time.Millisecond
)

// DefaultConfig is the section's defaults.
var DefaultConfig = Config{QueryTimeout: model.Duration(30 * time.Second),
	RunLimit: RunLimit{Burst: DefaultRunBurst, Every: model.Duration(DefaultRunEvery)}}

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
	if c.RunLimit.Burst < 1 || c.RunLimit.Burst > 100000 {
		return fmt.Errorf("analysis: run_limit: burst must be 1 to 100000, got %d", c.RunLimit.Burst)
	}
	if c.RunLimit.Every <= 0 || time.Duration(c.RunLimit.Every) > time.Hour {
		return fmt.Errorf("analysis: run_limit: every must be positive and at most 1h, got %s", c.RunLimit.Every)
	}
	for i, f := range c.SpecFiles {
		if f == "" {
			return fmt.Errorf("analysis: spec_files[%d] is empty", i)
		}
	}
	return nil
}

// UnmarshalYAML sets the defaults of the keys not given.
func (l *RunLimit) UnmarshalYAML(unmarshal func(any) error) error {
	*l = DefaultConfig.RunLimit
	type plain RunLimit
	return unmarshal((*plain)(l))
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
