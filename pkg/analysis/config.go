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
type Config struct {
	// SpecFiles are analysis spec files or directories of them.
	SpecFiles []string `yaml:"spec_files"`
	// QueryTimeout bounds each Prometheus query.
	QueryTimeout model.Duration `yaml:"query_timeout"`
}

// DefaultConfig is the section's defaults.
var DefaultConfig = Config{QueryTimeout: model.Duration(30 * time.Second)}

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
