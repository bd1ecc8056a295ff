// Package scaling is auto-scaling policies kept in git: what to scale
// (a service, its Kubernetes workload or an actuator), between which bounds,
// on which metric, with which thresholds or target, steps, cooldowns,
// stabilization windows and schedules. One pure function (Decide) turns a
// policy, the state of its target and the metric's samples into a decision
// with its reason; the live controller of sred and the backtest both use it.
// On Kubernetes the policies are rendered as KEDA ScaledObjects and HPA v2
// objects instead (Render), and sred only observes.
package scaling

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/specfiles"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Metric kinds.
const (
	MetricCPU    = "cpu"
	MetricMemory = "memory"
	MetricPromQL = "promql"
)

// Directions of a decision.
const (
	Up   = "up"
	Down = "down"
	None = "none"
)

// Policy is one scaling policy file.
type Policy struct {
	// Name names the policy (default: the service).
	Name string `yaml:"name,omitempty" json:"name"`
	// Service is the service scaled: the label of its metrics, events and
	// of the per-target lock (with Environment).
	Service     string `yaml:"service" json:"service"`
	Environment string `yaml:"environment,omitempty" json:"environment"`
	Target      Target `yaml:"target" json:"target"`
	// MinInstances and MaxInstances bound every decision.
	MinInstances int `yaml:"min_instances" json:"min_instances"`
	MaxInstances int `yaml:"max_instances" json:"max_instances"`
	// InitialInstances is what the controller assumes runs when it starts
	// (default min_instances): it has no way to count the instances of an
	// exec or http target.
	InitialInstances int    `yaml:"initial_instances,omitempty" json:"initial_instances"`
	Metric           Metric `yaml:"metric" json:"metric"`
	// TargetValue, when set, scales proportionally as the HPA does:
	// desired = ceil(current × value / target_value). Without it the
	// policy is a threshold policy: step instances at a time.
	TargetValue float64 `yaml:"target_value,omitempty" json:"target_value,omitempty"`
	ScaleUp     Rule    `yaml:"scale_up" json:"scale_up"`
	ScaleDown   Rule    `yaml:"scale_down" json:"scale_down"`
	// Interval is how often the controller evaluates the policy (and the
	// step of the backtest).
	Interval  model.Duration `yaml:"interval,omitempty" json:"interval"`
	Schedules []Schedule     `yaml:"schedules,omitempty" json:"schedules,omitempty"`
	// DryRun makes the controller decide and report without acting.
	DryRun bool `yaml:"dry_run,omitempty" json:"dry_run"`

	// File is where the policy was loaded from.
	File string `yaml:"-" json:"file,omitempty"`
	// raw is the text of File, where Locate places a check's error.
	raw []byte
}

// Target is what a policy scales: a Kubernetes workload (rendered for KEDA
// and the HPA, or scaled by sred through the runbook engine's kubernetes
// client) and/or an action (exec or http, through the runbook engine's
// actuator) for targets off Kubernetes.
type Target struct {
	Kubernetes *KubeTarget `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
	// Action is an exec or http action whose templates see .Vars.service,
	// .Vars.policy, .Vars.replicas (the desired count), .Vars.current and
	// .Vars.direction.
	Action *runbook.Action `yaml:"action,omitempty" json:"-"`
	// Controller says who acts: "kubernetes" (the default for a Kubernetes
	// target: the HPA or KEDA that `srectl scaling generate` renders;
	// sred only observes) or "sred" (sred's controller acts).
	Controller string `yaml:"controller,omitempty" json:"controller"`
}

// Controllers of a target.
const (
	ControllerKubernetes = "kubernetes"
	ControllerSred       = "sred"
)

// KubeTarget names a workload.
type KubeTarget struct {
	Namespace string `yaml:"namespace" json:"namespace"`
	// Kind is Deployment (default) or StatefulSet.
	Kind string `yaml:"kind,omitempty" json:"kind"`
	Name string `yaml:"name" json:"name"`
}

// PodPattern is the regular expression of the names of the workload's
// pods: <name>-<ordinal> for a StatefulSet, <name>-<pod-template-hash>-<5
// characters> for a Deployment (the last dash missing where Kubernetes
// cut a long ReplicaSet name), not the pods of another workload whose
// name starts with <name>-, such as <name>-worker's.
func (k *KubeTarget) PodPattern() string {
	if k.Kind == "StatefulSet" {
		return regexp.QuoteMeta(k.Name) + "-[0-9]+"
	}
	return regexp.QuoteMeta(k.Name) + "-[a-z0-9]+(-[a-z0-9]{5})?"
}

// Metric is what a policy measures.
type Metric struct {
	// Type is cpu or memory (utilisation in percent, 0-100) or promql.
	Type string `yaml:"type" json:"type"`
	// Query is the PromQL expression (required for promql; for cpu and
	// memory it replaces the default query). It must return one series.
	Query string `yaml:"query,omitempty" json:"query"`
	// Selector are the label matchers of the default cpu and memory
	// queries over node_exporter (default job="<service>"); on Kubernetes
	// the default queries select the workload's pods.
	Selector string `yaml:"selector,omitempty" json:"selector,omitempty"`
}

// Rule is one direction of a policy.
type Rule struct {
	// Threshold: scale up when the metric is above it (scale down: below).
	// Optional for a target_value policy, where it gates the proportional
	// change; required for a threshold policy.
	Threshold *float64 `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	// Step is how many instances one decision adds or removes (threshold
	// policies, default 1), or at most (target_value policies, 0: no limit).
	Step int `yaml:"step,omitempty" json:"step"`
	// Cooldown is the time after any scaling action before this direction
	// may act again.
	Cooldown model.Duration `yaml:"cooldown,omitempty" json:"cooldown"`
	// Stabilization is how long the condition must hold: every sample of
	// the window must be past the threshold (and, for target_value
	// policies, the most conservative recommendation of the window is
	// taken, as the HPA does). No flapping on a noisy signal.
	Stabilization model.Duration `yaml:"stabilization,omitempty" json:"stabilization"`
}

// Schedule raises the floor during a recurring window (business hours).
type Schedule struct {
	Name string `yaml:"name" json:"name"`
	// Days are mon..sun (default: every day).
	Days []string `yaml:"days,omitempty" json:"days,omitempty"`
	// Start and End are HH:MM in TimeZone; End after Start.
	Start    string `yaml:"start" json:"start"`
	End      string `yaml:"end" json:"end"`
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone"`
	// MinInstances is the floor inside the window.
	MinInstances int `yaml:"min_instances" json:"min_instances"`

	loc        *time.Location
	start, end int // minutes after midnight
	days       map[time.Weekday]bool
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// lineErr is a problem at node n: "line N: msg", and file:line:col in the
// errors of Parse (yamlerr.File).
func lineErr(n *yaml.Node, format string, args ...any) error {
	return yamlerr.At(n, format, args...)
}

// scheduleNode returns the node of schedule i of policy n, n itself when
// it has none.
func scheduleNode(n *yaml.Node, i int) *yaml.Node {
	if v := yamlerr.Lookup(n, "schedules"); v != nil && v.Kind == yaml.SequenceNode && i < len(v.Content) {
		if s := v.Content[i]; s.Kind == yaml.AliasNode {
			return s.Alias
		}
		return v.Content[i]
	}
	return n
}

// checkKeys refuses keys of mapping n not in allowed, those a merge key
// (<<: *defaults) brings in too, at the anchor.
func checkKeys(n *yaml.Node, what string, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "%s: want a mapping", what)
	}
	pairs, err := yamlerr.Pairs(n)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		k := p.Key
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			return lineErr(k, "%s: unknown field %q (want %s)", what, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: strict fields, defaults, checks.
func (p *Policy) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "policy", "name", "service", "environment", "target", "min_instances", "max_instances",
		"initial_instances", "metric", "target_value", "scale_up", "scale_down", "interval", "schedules", "dry_run"); err != nil {
		return err
	}
	type plain Policy
	v := plain{Environment: "production", Interval: model.Duration(30 * time.Second)}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = Policy(v)
	return p.validate(n)
}

func (p *Policy) validate(n *yaml.Node) error {
	if p.Service == "" {
		return yamlerr.AtNamed(n, "policy: service is required")
	}
	if p.Name == "" {
		p.Name = strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(p.Service), "-"), "-")
	}
	if !nameRE.MatchString(p.Name) {
		return yamlerr.AtNamed(n, "policy %q: name must be lower-case letters, digits and dashes (it names Kubernetes objects)", p.Name)
	}
	if p.MinInstances < 0 {
		return yamlerr.AtNamed(n, "policy %s: min_instances %d is negative", p.Name, p.MinInstances)
	}
	if p.MaxInstances < 1 {
		return yamlerr.AtNamed(n, "policy %s: max_instances is required (at least 1)", p.Name)
	}
	if p.MinInstances > p.MaxInstances {
		return yamlerr.AtNamed(n, "policy %s: min_instances %d is above max_instances %d", p.Name, p.MinInstances, p.MaxInstances)
	}
	if p.InitialInstances == 0 {
		p.InitialInstances = max(p.MinInstances, 1)
	}
	if p.InitialInstances < p.MinInstances || p.InitialInstances > p.MaxInstances {
		return yamlerr.AtNamed(n, "policy %s: initial_instances %d is outside [%d, %d]", p.Name, p.InitialInstances, p.MinInstances, p.MaxInstances)
	}
	if p.Interval <= 0 {
		return yamlerr.AtNamed(n, "policy %s: interval must be positive", p.Name)
	}
	if p.Target.Kubernetes == nil && p.Target.Action == nil {
		return yamlerr.AtNamed(n, "policy %s: target needs kubernetes (a workload) or action (exec or http)", p.Name)
	}
	if p.Target.Controller == "" {
		p.Target.Controller = ControllerSred
		if p.Target.Kubernetes != nil {
			p.Target.Controller = ControllerKubernetes
		}
	}
	switch p.Target.Controller {
	case ControllerKubernetes:
		if p.Target.Kubernetes == nil {
			return yamlerr.AtNamed(n, "policy %s: controller kubernetes needs target.kubernetes", p.Name)
		}
	case ControllerSred:
	default:
		return yamlerr.AtNamed(n, "policy %s: target.controller %q: want kubernetes or sred", p.Name, p.Target.Controller)
	}
	if a := p.Target.Action; a != nil {
		if a.Type() == runbook.StepKubernetes {
			return yamlerr.AtNamed(n, "policy %s: target.action: use target.kubernetes for a workload (sred scales it with the runbook engine's client)", p.Name)
		}
		if err := a.Compile(ActionVars); err != nil {
			return yamlerr.AtNamed(n, "policy %s: target.%v", p.Name, err)
		}
	}
	if p.Metric.Type == "" {
		return yamlerr.AtNamed(n, "policy %s: metric.type is required (cpu, memory or promql)", p.Name)
	}
	if p.Metric.Query != "" {
		if _, err := parser.NewParser(parser.Options{}).ParseExpr(p.Metric.Query); err != nil {
			return yamlerr.AtNamed(n, "policy %s: metric.query: %v", p.Name, limits.ParseError(err))
		}
	}
	if err := p.checkThresholds(n); err != nil {
		return err
	}
	names := map[string]bool{}
	for i := range p.Schedules {
		s := &p.Schedules[i]
		if s.MinInstances < p.MinInstances || s.MinInstances > p.MaxInstances {
			return yamlerr.AtNamed(n, "policy %s: schedule %s: min_instances %d is outside [%d, %d]", p.Name, s.Name, s.MinInstances, p.MinInstances, p.MaxInstances)
		}
		// Each schedule is a KEDA cron trigger named after it, next to
		// the metric's trigger (named after its type): KEDA refuses a
		// ScaledObject whose trigger names repeat.
		if names[s.Name] {
			// At the name of the second: the schedule's own node.
			return yamlerr.AtNamed(scheduleNode(n, i), "policy %s: schedule %s is given twice: schedule names must be unique", p.Name, limits.Quote(s.Name))
		}
		names[s.Name] = true
		if p.Target.Kubernetes != nil && s.Name == p.Metric.Type {
			return yamlerr.AtNamed(n, "policy %s: schedule %s has the name of the metric's KEDA trigger (%s): rename the schedule", p.Name, limits.Quote(s.Name), p.Metric.Type)
		}
	}
	if p.Target.Kubernetes != nil {
		// The HPA takes periods of at most 30 minutes, windows of at most an hour.
		for _, r := range []struct {
			what string
			r    Rule
		}{{"scale_up", p.ScaleUp}, {"scale_down", p.ScaleDown}} {
			if time.Duration(r.r.Cooldown) > 30*time.Minute {
				return yamlerr.AtNamed(n, "policy %s: %s.cooldown %s: the HPA allows at most 30m", p.Name, r.what, r.r.Cooldown)
			}
			if time.Duration(r.r.Stabilization) > time.Hour {
				return yamlerr.AtNamed(n, "policy %s: %s.stabilization %s: the HPA allows at most 1h", p.Name, r.what, r.r.Stabilization)
			}
		}
	}
	return nil
}

func (p *Policy) checkThresholds(n *yaml.Node) error {
	switch p.Metric.Type {
	case MetricCPU, MetricMemory:
		for _, t := range []*float64{p.ScaleUp.Threshold, p.ScaleDown.Threshold, &p.TargetValue} {
			if t != nil && (*t < 0 || *t > 100) {
				return lineErr(n, "policy %s: %s is a percentage: %g is outside 0-100", p.Name, p.Metric.Type, *t)
			}
		}
		if t := p.ScaleUp.Threshold; t != nil && *t > 0 && *t <= 1 {
			return lineErr(n, "policy %s: scale_up.threshold %g looks like a fraction; %s is in percent (write %g)", p.Name, *t, p.Metric.Type, *t*100)
		}
	case MetricPromQL:
		if p.Metric.Query == "" {
			return lineErr(n, "policy %s: metric.query is required for a promql metric", p.Name)
		}
		if p.Metric.Selector != "" {
			return lineErr(n, "policy %s: metric.selector only applies to cpu and memory", p.Name)
		}
	default:
		return lineErr(n, "policy %s: metric.type %q: want cpu, memory or promql", p.Name, p.Metric.Type)
	}
	up, down := p.ScaleUp.Threshold, p.ScaleDown.Threshold
	if p.TargetValue < 0 {
		return lineErr(n, "policy %s: target_value must be positive", p.Name)
	}
	if p.TargetValue == 0 {
		if up == nil || down == nil {
			return lineErr(n, "policy %s: a threshold policy needs scale_up.threshold and scale_down.threshold (or set target_value)", p.Name)
		}
		if p.ScaleUp.Step == 0 {
			p.ScaleUp.Step = 1
		}
		if p.ScaleDown.Step == 0 {
			p.ScaleDown.Step = 1
		}
	} else {
		if up != nil && *up < p.TargetValue {
			return lineErr(n, "policy %s: scale_up.threshold %g is below target_value %g", p.Name, *up, p.TargetValue)
		}
		if down != nil && *down > p.TargetValue {
			return lineErr(n, "policy %s: scale_down.threshold %g is above target_value %g", p.Name, *down, p.TargetValue)
		}
	}
	if up != nil && down != nil && *down >= *up {
		return lineErr(n, "policy %s: scale_down.threshold %g must be below scale_up.threshold %g (no flapping)", p.Name, *down, *up)
	}
	if p.ScaleUp.Step < 0 || p.ScaleDown.Step < 0 {
		return lineErr(n, "policy %s: step must not be negative", p.Name)
	}
	if p.ScaleUp.Cooldown < 0 || p.ScaleDown.Cooldown < 0 || p.ScaleUp.Stabilization < 0 || p.ScaleDown.Stabilization < 0 {
		return lineErr(n, "policy %s: cooldowns and stabilization windows must not be negative", p.Name)
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "target", "kubernetes", "action", "controller"); err != nil {
		return err
	}
	type plain Target
	return n.Decode((*plain)(t))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (k *KubeTarget) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "target.kubernetes", "namespace", "kind", "name"); err != nil {
		return err
	}
	type plain KubeTarget
	v := plain{Kind: "Deployment"}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*k = KubeTarget(v)
	if k.Namespace == "" || k.Name == "" {
		return lineErr(n, "target.kubernetes: namespace and name are required")
	}
	if k.Kind != "Deployment" && k.Kind != "StatefulSet" {
		return lineErr(n, "target.kubernetes: kind %q: want Deployment or StatefulSet", k.Kind)
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *Metric) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "metric", "type", "query", "selector"); err != nil {
		return err
	}
	type plain Metric
	return n.Decode((*plain)(m))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "scale_up/scale_down", "threshold", "step", "cooldown", "stabilization"); err != nil {
		return err
	}
	type plain Rule
	return n.Decode((*plain)(r))
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Schedule) UnmarshalYAML(n *yaml.Node) error {
	if err := checkKeys(n, "schedule", "name", "days", "start", "end", "time_zone", "min_instances"); err != nil {
		return err
	}
	type plain Schedule
	v := plain{TimeZone: "UTC"}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*s = Schedule(v)
	// Each check at the value it names (the time zone, the day), else at
	// the schedule.
	if s.Name == "" {
		return lineErr(n, "schedule: name is required")
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return yamlerr.AtNamed(n, "schedule %s: time_zone %q: %v", s.Name, s.TimeZone, err)
	}
	s.loc = loc
	if s.start, err = clockMinutes(s.Start); err != nil {
		return yamlerr.AtNamed(n, "schedule %s: start: %v", s.Name, err)
	}
	if s.end, err = clockMinutes(s.End); err != nil {
		return yamlerr.AtNamed(n, "schedule %s: end: %v", s.Name, err)
	}
	if s.end <= s.start {
		return yamlerr.AtNamed(n, "schedule %s: end %s must be after start %s (split a window that crosses midnight)", s.Name, s.End, s.Start)
	}
	s.days = map[time.Weekday]bool{}
	for _, d := range s.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return yamlerr.AtNamed(n, "schedule %s: day %q: want mon, tue, wed, thu, fri, sat or sun", s.Name, d)
		}
		s.days[wd] = true
	}
	return nil
}

func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Active reports whether t is inside the schedule's window.
func (s *Schedule) Active(t time.Time) bool {
	lt := t.In(s.loc)
	if len(s.days) > 0 && !s.days[lt.Weekday()] {
		return false
	}
	m := lt.Hour()*60 + lt.Minute()
	return m >= s.start && m < s.end
}

// ActionVars are the variables of a target action, each with the pattern
// its values match.
var ActionVars = map[string]string{
	"service":   `[A-Za-z0-9_.-]+`,
	"policy":    `[a-z0-9-]+`,
	"replicas":  `[0-9]+`,
	"current":   `[0-9]+`,
	"direction": `up|down`,
}

// Query is the PromQL expression of the policy's metric.
func (p *Policy) Query() string {
	if p.Metric.Query != "" {
		return p.Metric.Query
	}
	if k := p.Target.Kubernetes; k != nil {
		pods := fmt.Sprintf(`namespace=%q, pod=~%q`, k.Namespace, k.PodPattern())
		if p.Metric.Type == MetricCPU {
			return fmt.Sprintf(`100 * sum(rate(container_cpu_usage_seconds_total{%s, container!=""}[2m])) / sum(kube_pod_container_resource_requests{%s, resource="cpu"})`, pods, pods)
		}
		return fmt.Sprintf(`100 * sum(container_memory_working_set_bytes{%s, container!=""}) / sum(kube_pod_container_resource_requests{%s, resource="memory"})`, pods, pods)
	}
	sel := p.Metric.Selector
	if sel == "" {
		sel = fmt.Sprintf(`job=%q`, p.Service)
	}
	if p.Metric.Type == MetricCPU {
		return fmt.Sprintf(`100 * (1 - avg(rate(node_cpu_seconds_total{%s, mode="idle"}[2m])))`, sel)
	}
	return fmt.Sprintf(`100 * (1 - sum(node_memory_MemAvailable_bytes{%s}) / sum(node_memory_MemTotal_bytes{%s}))`, sel, sel)
}

// TargetKey is the per-target lock key shared with chaos and rollouts.
func (p *Policy) TargetKey() string { return targetlock.ServiceKey(p.Environment, p.Service) }

// Window is the longest stabilization window (how far back Decide looks).
func (p *Policy) Window() time.Duration {
	return max(time.Duration(p.ScaleUp.Stabilization), time.Duration(p.ScaleDown.Stabilization))
}

// Parse reads one policy.
func Parse(b []byte, file string) (*Policy, error) {
	var docs []*Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var p Policy
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// At the line and column of the problem, as chaos
			// experiments and rollout definitions say it.
			return nil, yamlerr.FileDecoded(file, b, err)
		}
		p.File = file
		p.raw = b
		docs = append(docs, &p)
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("%s: want exactly one policy, found %d", file, len(docs))
	}
	return docs[0], nil
}

// Locate positions err, a check made after loading the policy (an
// endpoint it names that does not exist), in its file as
// "file:line:col: msg" at the node the message names, else "file: msg"
// (yamlerr.FileChecks).
func (p *Policy) Locate(err error) error {
	if err == nil {
		return nil
	}
	return yamlerr.FileChecks(p.File, p.raw, nil, err)
}

// LoadFile reads a policy file.
func LoadFile(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scaling policy: %w", err)
	}
	return Parse(b, path)
}

// LoadPaths reads policy files and directories (*.yml, *.yaml); names must
// be unique.
func LoadPaths(paths ...string) ([]*Policy, error) {
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("scaling policy: %w", err)
		}
	}
	return specfiles.Load("policy", LoadFile, func(p *Policy) string { return p.Name }, paths...)
}
