// Package correlation holds the service dependency graph of sred.yml (the
// `services` section, and files it imports) and the correlation rules (the
// `correlation` section): validated, and compiled into the
// incident.Correlation the incident service places alert groups with.
package correlation

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// DefaultWindow is how long after a service's incident opened (or the
// service joined it) the alerts of related services still join it.
const DefaultWindow = 30 * time.Minute

// Service is one entry of the `services` section.
type Service struct {
	// DependsOn names the services this one needs to work.
	DependsOn []string `yaml:"depends_on,omitempty" json:"depends_on,omitempty"`
	// Description is shown in the console.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Services is the `services` section: services by name.
type Services map[string]Service

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]*$`)

// UnmarshalYAML implements yaml.Unmarshaler: names are checked, and a
// service listed twice in depends_on is an error. References and cycles are
// checked by Compile, once the imported files are read.
func (s *Services) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Services
	if err := unmarshal((*plain)(s)); err != nil {
		return err
	}
	for _, name := range slices.Sorted(mapsKeys(*s)) {
		if !serviceName.MatchString(name) {
			return fmt.Errorf("services: invalid service name %q", name)
		}
		seen := map[string]bool{}
		for _, d := range (*s)[name].DependsOn {
			if seen[d] {
				return fmt.Errorf("services: %s: depends_on lists %q twice", name, d)
			}
			seen[d] = true
		}
	}
	return nil
}

// Config is the `correlation` section.
type Config struct {
	// Window: alert groups of related services join an open incident when
	// the related service joined it at most this long ago (0: no
	// correlation by dependency).
	Window model.Duration `yaml:"window,omitempty"`
	// ServiceFiles are glob patterns of files (relative to sred.yml) with a
	// top-level `services` map, imported into the graph: the graph can
	// live in git next to the SLO specs.
	ServiceFiles []string `yaml:"service_files,omitempty"`
	// SharedDependencies (default true) also correlates the alert groups of
	// two services that depend on one service (api and search on db): in
	// a storm the dependants often alert before the root.
	SharedDependencies bool `yaml:"shared_dependencies"`
	// LabelRules correlate alert groups that share label values.
	LabelRules []LabelRule `yaml:"label_rules,omitempty"`
}

// LabelRule is one rule of correlation by shared labels.
type LabelRule struct {
	Name   string         `yaml:"name"`
	Labels []string       `yaml:"labels"`
	Window model.Duration `yaml:"window,omitempty"`
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// UnmarshalYAML implements yaml.Unmarshaler: defaults and validation.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{Window: model.Duration(DefaultWindow), SharedDependencies: true}
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if c.Window < 0 {
		return errors.New("correlation: window must not be negative")
	}
	names := map[string]bool{}
	for i, r := range c.LabelRules {
		if r.Name == "" {
			return fmt.Errorf("correlation: label_rules[%d]: name is required", i)
		}
		if names[r.Name] {
			return fmt.Errorf("correlation: label_rules: rule %q defined twice", r.Name)
		}
		names[r.Name] = true
		if len(r.Labels) == 0 {
			return fmt.Errorf("correlation: label rule %q: labels must not be empty", r.Name)
		}
		for _, l := range r.Labels {
			if !labelName.MatchString(l) {
				return fmt.Errorf("correlation: label rule %q: invalid label name %q", r.Name, l)
			}
		}
		if r.Window < 0 {
			return fmt.Errorf("correlation: label rule %q: window must not be negative", r.Name)
		}
		if r.Window == 0 && c.Window == 0 {
			return fmt.Errorf("correlation: label rule %q: no window (set its window or correlation.window)", r.Name)
		}
	}
	return nil
}

// Graph is the validated service dependency graph.
type Graph struct {
	// Services by name, with where each was defined.
	Services map[string]Service `json:"services"`
	// Sources says where each service was defined ("sred.yml" or a file).
	Sources map[string]string `json:"sources"`
}

// Names returns the services sorted by name.
func (g *Graph) Names() []string { return slices.Sorted(mapsKeys(g.Services)) }

// Load builds the graph from the `services` section and the files
// cfg.ServiceFiles imports (patterns resolved by resolve), and checks it:
// a service defined twice, a dependency on an unknown service and a cycle
// are errors naming them.
func Load(inline Services, cfg Config, resolve func(string) string) (*Graph, error) {
	g := &Graph{Services: map[string]Service{}, Sources: map[string]string{}}
	for name, s := range inline {
		g.Services[name] = s
		g.Sources[name] = "sred.yml"
	}
	for _, pat := range cfg.ServiceFiles {
		if resolve != nil {
			pat = resolve(pat)
		}
		files, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("correlation: service_files: %w", err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("correlation: service_files: %s matches no file", pat)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("correlation: service_files: %w", err)
			}
			var doc struct {
				Services Services `yaml:"services"`
			}
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			if err := dec.Decode(&doc); err != nil {
				return nil, fmt.Errorf("correlation: service file %s: %w", f, yamlerr.Rewrite(err))
			}
			for name, s := range doc.Services {
				if src, ok := g.Sources[name]; ok {
					return nil, fmt.Errorf("services: service %q defined twice (in %s and %s)", name, src, f)
				}
				g.Services[name] = s
				g.Sources[name] = f
			}
		}
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	return g, nil
}

// check rejects unknown dependencies and cycles.
func (g *Graph) check() error {
	for _, name := range g.Names() {
		for _, d := range g.Services[name].DependsOn {
			if _, ok := g.Services[d]; !ok {
				return fmt.Errorf("services: %s (%s) depends on unknown service %q", name, g.Sources[name], d)
			}
		}
	}
	// Depth-first search; a grey node reached again closes a cycle.
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(n string) error
	visit = func(n string) error {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range g.Services[n].DependsOn {
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				cycle := append(append([]string(nil), stack[i:]...), d)
				return fmt.Errorf("services: dependency cycle: %s", strings.Join(cycle, " -> "))
			case white:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, n := range g.Names() {
		if color[n] == white {
			if err := visit(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// Paths returns, for every service, its transitive dependencies with the
// shortest path to each (the service first, the dependency last).
func (g *Graph) Paths() map[string]map[string][]string {
	out := make(map[string]map[string][]string, len(g.Services))
	for _, name := range g.Names() {
		deps := map[string][]string{}
		// Breadth-first: the first path found to a service is a shortest one.
		queue := [][]string{{name}}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			last := p[len(p)-1]
			ds := append([]string(nil), g.Services[last].DependsOn...)
			sort.Strings(ds)
			for _, d := range ds {
				if _, ok := deps[d]; ok {
					continue
				}
				np := append(append([]string(nil), p...), d)
				deps[d] = np
				queue = append(queue, np)
			}
		}
		out[name] = deps
	}
	return out
}

// Compile returns the incident service's correlation rules.
func Compile(g *Graph, cfg Config) *incident.Correlation {
	c := &incident.Correlation{Window: time.Duration(cfg.Window), DependsOn: g.Paths(), SharedDependencies: cfg.SharedDependencies}
	for _, r := range cfg.LabelRules {
		c.LabelRules = append(c.LabelRules, incident.LabelRule{Name: r.Name, Labels: r.Labels, Window: time.Duration(r.Window)})
	}
	return c
}

func mapsKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
