package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/specfiles"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Strategies.
const (
	StrategyCanary    = "canary"
	StrategyBlueGreen = "blue_green"
)

// DefaultVersionPattern is what a version must look like unless the
// definition says otherwise: it reaches actions as .Vars.version.
const DefaultVersionPattern = `[A-Za-z0-9][A-Za-z0-9._+-]{0,62}`

// Definition is one rollout file of examples/rollouts/stages/: how a
// service's new version is shipped without Kubernetes controllers, stage
// by stage, through actuators.
type Definition struct {
	// Name identifies the definition (srectl rollout run NAME).
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Service is asked about at the deploy gate, and its changes recorded.
	Service string `yaml:"service"`
	// Environment and Service name the target lock shared with chaos
	// experiments and scaling (environment/service).
	Environment string `yaml:"environment"`
	// VersionPattern is what versions must match (anchored); default
	// DefaultVersionPattern.
	VersionPattern string `yaml:"version_pattern,omitempty"`
	// Change is the deploy gate's change kind: normal (default) or critical.
	Change string `yaml:"change,omitempty"`
	// Analysis judges each stage (docs/rollouts.md). Without it stages are
	// timed only.
	Analysis *AnalysisRef `yaml:"analysis,omitempty"`
	// Canary and BlueGreen: exactly one is set.
	Canary    *Canary    `yaml:"canary,omitempty"`
	BlueGreen *BlueGreen `yaml:"blue_green,omitempty"`

	// File is where the definition was loaded from.
	File string `yaml:"-"`
	// raw is the text of File, where Locate places a check's error.
	raw []byte
}

// AnalysisRef names the analysis spec that judges the stages and the
// label sets telling the canary's series from the stable version's.
type AnalysisRef struct {
	// Spec is the name of an analysis spec (analysis.spec_files).
	Spec string `yaml:"spec" json:"spec"`
	// Canary and Baseline select the series of the new and the stable
	// version, e.g. {job: api, track: canary} and {job: api, track: stable}.
	// GET /api/v1/rollouts/definitions answers them by their YAML names.
	Canary   map[string]string `yaml:"canary" json:"canary"`
	Baseline map[string]string `yaml:"baseline,omitempty" json:"baseline,omitempty"`
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// UnmarshalYAML implements yaml.Unmarshaler: validation.
func (a *AnalysisRef) UnmarshalYAML(unmarshal func(any) error) error {
	type plain AnalysisRef
	if err := unmarshal((*plain)(a)); err != nil {
		return err
	}
	if a.Spec == "" {
		return errors.New("analysis.spec: name the analysis spec that judges the stages")
	}
	if len(a.Canary) == 0 {
		return errors.New("analysis.canary: the labels selecting the canary's series are required (e.g. {track: canary})")
	}
	for side, ls := range map[string]map[string]string{"canary": a.Canary, "baseline": a.Baseline} {
		for k, v := range ls {
			if !labelNameRE.MatchString(k) {
				return fmt.Errorf("analysis.%s: %q is not a Prometheus label name", side, k)
			}
			// PromQL's {k=""} selects the series without the label:
			// the analysis would judge other series than this side's.
			if v == "" {
				return fmt.Errorf("analysis.%s: label %s has an empty value, which selects the series without that label: give the value of the %s's series", side, k, side)
			}
		}
	}
	return nil
}

// Canary shifts traffic to the new version in weighted stages.
type Canary struct {
	// Stages in order; the last one should reach weight 100.
	Stages []CanaryStage `yaml:"stages"`
	// SetWeight sets the share of traffic of the canary (.Vars.weight, 0 to
	// 100, of version .Vars.version; .Vars.stable is the stable version).
	SetWeight *runbook.Action `yaml:"set_weight"`
	// Rollback returns all traffic to the stable version (default:
	// set_weight with weight 0).
	Rollback *runbook.Action `yaml:"rollback,omitempty"`
	// Promote makes the canary the stable version once it has all the
	// traffic (optional).
	Promote *runbook.Action `yaml:"promote,omitempty"`
}

// CanaryStage is one weight held for a duration, then analysed.
type CanaryStage struct {
	Weight   int            `yaml:"weight"`
	Duration model.Duration `yaml:"duration,omitempty"`
}

// BlueGreen deploys the new version next to the old, checks it, switches
// all traffic, watches, and retires the old one.
type BlueGreen struct {
	// Deploy starts the green version (.Vars.version).
	Deploy *runbook.Action `yaml:"deploy"`
	// Health checks green before the switch; failing it rolls back.
	Health *runbook.Action `yaml:"health"`
	// Switch sends all traffic to .Vars.version.
	Switch *runbook.Action `yaml:"switch"`
	// Watch is how long green serves alone before it is analysed and blue
	// retired (default 5m).
	Watch model.Duration `yaml:"watch,omitempty"`
	// Retire stops blue (.Vars.stable).
	Retire *runbook.Action `yaml:"retire,omitempty"`
	// Rollback sends the traffic back to blue (.Vars.stable) and stops green.
	Rollback *runbook.Action `yaml:"rollback"`
}

// Vars are the variables actions may use, with the pattern of each.
func (d *Definition) Vars() map[string]string {
	return map[string]string{
		"weight":  `[0-9]{1,3}`,
		"version": d.VersionPattern,
		"stable":  d.VersionPattern,
		"rollout": `[0-9]{1,19}`,
		"stage":   `[a-z0-9_-]{1,64}`,
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$`)

// UnmarshalYAML implements yaml.Unmarshaler: defaults, then validation.
func (d *Definition) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Definition
	if err := unmarshal((*plain)(d)); err != nil {
		return err
	}
	return d.validate()
}

func (d *Definition) validate() error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("name %q: want lower-case letters, digits, '-' or '_' (at most 64)", d.Name)
	}
	if d.Service == "" {
		return fmt.Errorf("rollout %q: service is required (the deploy gate and the target lock need it)", d.Name)
	}
	if d.Environment == "" {
		return fmt.Errorf("rollout %q: environment is required (the target lock is environment/service)", d.Name)
	}
	if d.VersionPattern == "" {
		d.VersionPattern = DefaultVersionPattern
	}
	if _, err := regexp.Compile("^(?:" + d.VersionPattern + ")$"); err != nil {
		return fmt.Errorf("rollout %q: version_pattern: %v", d.Name, err)
	}
	switch d.Change {
	case "":
		d.Change = "normal"
	case "normal", "critical":
	default:
		return fmt.Errorf("rollout %q: change %q: want normal or critical", d.Name, d.Change)
	}
	if (d.Canary == nil) == (d.BlueGreen == nil) {
		return fmt.Errorf("rollout %q: want exactly one of canary or blue_green", d.Name)
	}
	vars := d.Vars()
	compile := func(what string, a *runbook.Action, required bool) error {
		if a == nil {
			if required {
				return fmt.Errorf("rollout %q: %s is required", d.Name, what)
			}
			return nil
		}
		if err := a.Compile(vars); err != nil {
			return fmt.Errorf("rollout %q: %s: %w", d.Name, what, err)
		}
		return nil
	}
	if c := d.Canary; c != nil {
		if len(c.Stages) == 0 {
			return fmt.Errorf("rollout %q: canary.stages: at least one stage", d.Name)
		}
		prev := 0
		for i, s := range c.Stages {
			if s.Weight < 1 || s.Weight > 100 {
				return fmt.Errorf("rollout %q: canary.stages[%d]: weight %d: want 1 to 100 (percent of traffic)", d.Name, i, s.Weight)
			}
			if s.Weight <= prev {
				return fmt.Errorf("rollout %q: canary.stages[%d]: weight %d: weights must increase (previous %d)", d.Name, i, s.Weight, prev)
			}
			if s.Duration < 0 {
				return fmt.Errorf("rollout %q: canary.stages[%d]: duration must not be negative", d.Name, i)
			}
			if s.Weight < 100 && s.Duration == 0 {
				return fmt.Errorf("rollout %q: canary.stages[%d]: weight %d needs a duration (how long the canary is watched)", d.Name, i, s.Weight)
			}
			prev = s.Weight
		}
		if prev != 100 {
			return fmt.Errorf("rollout %q: canary.stages: the last stage has weight %d; end with weight 100", d.Name, prev)
		}
		return errors.Join(compile("canary.set_weight", c.SetWeight, true), compile("canary.rollback", c.Rollback, false),
			compile("canary.promote", c.Promote, false))
	}
	b := d.BlueGreen
	if b.Watch < 0 {
		return fmt.Errorf("rollout %q: blue_green.watch must not be negative", d.Name)
	}
	if b.Watch == 0 {
		b.Watch = model.Duration(5 * time.Minute)
	}
	return errors.Join(compile("blue_green.deploy", b.Deploy, true), compile("blue_green.health", b.Health, true),
		compile("blue_green.switch", b.Switch, true), compile("blue_green.retire", b.Retire, false),
		compile("blue_green.rollback", b.Rollback, true))
}

// Strategy is canary or blue_green.
func (d *Definition) Strategy() string {
	if d.Canary != nil {
		return StrategyCanary
	}
	return StrategyBlueGreen
}

// Target is the lock target: environment/service.
func (d *Definition) Target() string { return targetlock.ServiceKey(d.Environment, d.Service) }

// Stage is one step of a rollout's plan.
type Stage struct {
	// Name is the stage's name: weight-10, deploy, health, switch, watch, retire, promote.
	Name string `json:"name"`
	// Weight is the canary's share of traffic during the stage (canary),
	// or 100 once blue-green switched.
	Weight int `json:"weight"`
	// Duration is how long the stage is held before it is analysed.
	Duration time.Duration `json:"duration"`
	// Analyze: the stage ends with an analysis of the new version.
	Analyze bool `json:"analyze"`

	action *runbook.Action
}

// Plan returns the stages of a rollout of d.
func (d *Definition) Plan() []Stage {
	if c := d.Canary; c != nil {
		out := make([]Stage, 0, len(c.Stages)+1)
		for _, s := range c.Stages {
			out = append(out, Stage{Name: fmt.Sprintf("weight-%d", s.Weight), Weight: s.Weight, Duration: time.Duration(s.Duration),
				Analyze: s.Weight < 100 || s.Duration > 0, action: c.SetWeight})
		}
		if c.Promote != nil {
			out = append(out, Stage{Name: "promote", Weight: 100, action: c.Promote})
		}
		return out
	}
	b := d.BlueGreen
	out := []Stage{
		{Name: "deploy", action: b.Deploy},
		{Name: "health", action: b.Health},
		{Name: "switch", Weight: 100, action: b.Switch},
		{Name: "watch", Weight: 100, Duration: time.Duration(b.Watch), Analyze: true},
	}
	if b.Retire != nil {
		out = append(out, Stage{Name: "retire", Weight: 100, action: b.Retire})
	}
	return out
}

// Endpoints returns the http endpoints (runbooks.http_endpoints) the
// definition's actions call.
func (d *Definition) Endpoints() []string {
	var acts []*runbook.Action
	if c := d.Canary; c != nil {
		acts = []*runbook.Action{c.SetWeight, c.Rollback, c.Promote}
	} else {
		b := d.BlueGreen
		acts = []*runbook.Action{b.Deploy, b.Health, b.Switch, b.Retire, b.Rollback}
	}
	var out []string
	for _, a := range acts {
		if a != nil && a.Endpoint() != "" && !slices.Contains(out, a.Endpoint()) {
			out = append(out, a.Endpoint())
		}
	}
	return out
}

// rollbackAction is what undoes the rollout; rollbackWeight the weight it sets.
func (d *Definition) rollbackAction() *runbook.Action {
	if c := d.Canary; c != nil {
		if c.Rollback != nil {
			return c.Rollback
		}
		return c.SetWeight
	}
	return d.BlueGreen.Rollback
}

// Parse reads one definition; file names it in errors.
func Parse(data []byte, file string) (*Definition, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var d Definition
	if err := dec.Decode(&d); err != nil {
		if kind := otherKind(data); kind != "" {
			// An error per line ("unknown field apiVersion", ...) would
			// hide that the file is of another kind altogether.
			return nil, fmt.Errorf("%s: a document of kind %s, not a rollout definition (name, service, analysis, and canary or blue_green: docs/rollout-runner.md); analysis specs (RolloutAnalysis) are loaded from sred.yml's analysis.spec_files and checked by srectl check config",
				file, limits.Quote(kind))
		}
		return nil, yamlerr.FileDecoded(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s: one rollout per file, found a second YAML document", file)
	}
	d.File = file
	d.raw = data
	return &d, nil
}

// Locate positions err, a check made after loading the definition (an
// analysis spec or an endpoint it names that does not exist), in its file
// as "file:line:col: msg" at the node the message names, else "file: msg"
// (yamlerr.FileChecks).
func (d *Definition) Locate(err error) error {
	if err == nil {
		return nil
	}
	return yamlerr.FileChecks(d.File, d.raw, nil, err)
}

// otherKind returns the top-level kind of a YAML document that has one:
// a rollout definition has none, so a kind names a file of another kind
// (an analysis spec, a chaos experiment, a Kubernetes object).
func otherKind(data []byte) string {
	var head struct {
		Kind string `yaml:"kind"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return ""
	}
	return head.Kind
}

// Load reads the definitions of the files and directories named (relative
// ones resolved with resolve), every error joined; names must be unique.
func Load(paths []string, resolve func(string) string) ([]*Definition, error) {
	var (
		out  []*Definition
		errs []error
		seen = map[string]string{}
	)
	for _, p := range paths {
		if resolve != nil {
			p = resolve(p)
		}
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			if files, err = specfiles.Files(p); err != nil {
				errs = append(errs, fmt.Errorf("rollouts: %w", err))
				continue
			}
		} else if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("rollouts: files %q: %w", p, err))
				continue
			}
			files = m
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("rollouts: %w", err))
				continue
			}
			d, err := Parse(data, f)
			if err != nil {
				errs = append(errs, fmt.Errorf("rollouts: %w", err))
				continue
			}
			if prev, ok := seen[d.Name]; ok {
				errs = append(errs, fmt.Errorf("rollouts: %w", d.Locate(fmt.Errorf("name %q already used by %s", d.Name, prev))))
				continue
			}
			seen[d.Name] = f
			out = append(out, d)
		}
	}
	return out, errors.Join(errs...)
}
