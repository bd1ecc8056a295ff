// Package runbook runs remediation runbooks when incidents open: runbooks are
// YAML files in git that match alert labels and list ordered steps (exec,
// http, kubernetes, promql, wait, notify, approval). An incident hook records
// a run in the incident's transaction; a worker claims runs and executes them
// with dry-run, kill switch, rate limits, per-target locks, approval gates and
// a maximum run time, and writes every step to the incident timeline, an
// audit table and metrics.
package runbook

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

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// StepType names a kind of step.
type StepType string

const (
	StepExec       StepType = "exec"
	StepHTTP       StepType = "http"
	StepKubernetes StepType = "kubernetes"
	StepPromQL     StepType = "promql"
	StepWait       StepType = "wait"
	StepNotify     StepType = "notify"
	StepApproval   StepType = "approval"
)

// OnFailure says what a failed step does to its run.
type OnFailure string

const (
	FailStop     OnFailure = "stop"
	FailContinue OnFailure = "continue"
	FailEscalate OnFailure = "escalate"
)

// Runbook is one runbook file.
type Runbook struct {
	// Name identifies the runbook; alerts may link it with the `runbook` annotation.
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// URLs are the runbook's documentation: alerts whose runbook_url
	// annotation is one of them link it (Linked), which starts nothing.
	URLs []string `yaml:"urls,omitempty"`
	// Matchers select incidents by their labels, in Alertmanager syntax; all must match.
	Matchers []string `yaml:"matchers,omitempty"`
	// Severities that trigger the runbook (empty: all).
	Severities []incident.Severity `yaml:"severities,omitempty"`
	// States of the incident that trigger it (default: triggered).
	States []incident.Status `yaml:"states,omitempty"`
	// Labels is the allow-list: each alert label a template uses must be
	// declared here (or in the step) with the pattern its values must match.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Target names what the runbook acts on (a template); one run at a time
	// per target, and the per-target rate limit counts by it.
	Target string `yaml:"target,omitempty"`
	// DryRun logs every step and executes none.
	DryRun bool `yaml:"dry_run,omitempty"`
	// RequireApproval makes every run wait for a responder before its first step.
	RequireApproval bool `yaml:"require_approval,omitempty"`
	// ContinueOnResolve keeps the run going when its incident resolves.
	ContinueOnResolve bool `yaml:"continue_on_resolve,omitempty"`
	// ResolveOnVerify resolves the incident when a verify step passes.
	ResolveOnVerify bool `yaml:"resolve_on_verify,omitempty"`
	// MaxRunTime bounds a run (default: the global max_run_time).
	MaxRunTime model.Duration `yaml:"max_run_time,omitempty"`
	// ApprovalTimeout is how long a run waits for a responder's approval
	// (the approval gate, and approval steps without their own timeout)
	// before it fails (default 1h).
	ApprovalTimeout model.Duration `yaml:"approval_timeout,omitempty"`
	// RateLimit overrides the global rate limit.
	RateLimit *RateLimit `yaml:"rate_limit,omitempty"`
	// MaxRuns bounds the runs of this runbook on one target within Window:
	// past it a run does not start, it ends escalated and pages a human
	// through its incident's escalation policy (no restart loops). 0: no bound.
	MaxRuns int `yaml:"max_runs,omitempty"`
	// Window is the span MaxRuns counts runs over (default 1h).
	Window model.Duration `yaml:"window,omitempty"`
	Steps  []*Step        `yaml:"steps"`

	// File is where the runbook was loaded from.
	File string `yaml:"-"`
	// raw is the text of File, where Locate places a check's error.
	raw []byte

	matchers labels.Matchers
	allow    allowList
	target   *tmpl
	// action marks the runbook that compiles an Action: its templates see
	// no incident (.IncidentID, .Severity and .Runbook are empty).
	action bool
}

// Step is one step of a runbook. Exactly one of the action blocks is set.
type Step struct {
	Name string `yaml:"name"`
	// OnFailure: stop (default), continue or escalate (default for verify steps).
	OnFailure OnFailure `yaml:"on_failure,omitempty"`
	// Verify marks the step that proves the remediation worked: when it
	// passes, the incident is marked mitigated by automation.
	Verify bool `yaml:"verify,omitempty"`
	// Timeout bounds the step (defaults depend on the type).
	Timeout model.Duration `yaml:"timeout,omitempty"`
	// Labels adds to or overrides the runbook's allow-list for this step.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Idempotent declares an exec, http or kubernetes step safe to run
	// again (scale to N, a check): when the replica running it dies, the
	// replica that resumes the run runs it again. A step that is not
	// idempotent is not repeated: the run ends interrupted at that step and
	// the incident escalates to a human. promql, wait, notify and approval
	// steps are always safe to repeat.
	Idempotent *bool `yaml:"idempotent,omitempty"`

	Exec       *ExecStep       `yaml:"exec,omitempty"`
	HTTP       *HTTPStep       `yaml:"http,omitempty"`
	Kubernetes *KubernetesStep `yaml:"kubernetes,omitempty"`
	PromQL     *PromQLStep     `yaml:"promql,omitempty"`
	Wait       *WaitStep       `yaml:"wait,omitempty"`
	Notify     *NotifyStep     `yaml:"notify,omitempty"`
	Approval   *ApprovalStep   `yaml:"approval,omitempty"`

	typ   StepType
	allow allowList
	tmpls map[string]*tmpl
}

// repeatable says whether steps of type t are always safe to run again: they
// only read (promql), wait, or act once per run and step (notify, approval).
func (t StepType) repeatable() bool {
	return t == StepPromQL || t == StepWait || t == StepNotify || t == StepApproval
}

// SafeToRepeat says whether the step may run again when the replica that
// ran it died before it finished: it declares idempotent: true, or its type
// is always safe to repeat.
func (s *Step) SafeToRepeat() bool {
	return s.typ.repeatable() || s.Idempotent != nil && *s.Idempotent
}

// ExecStep runs a program with an argument list: no shell is involved.
type ExecStep struct {
	// Command is argv: the program and its arguments, each a template.
	Command []string `yaml:"command"`
	// Env sets environment variables (templates). Their values are never
	// shown (audit, timeline, events): names only.
	Env map[string]string `yaml:"env,omitempty"`
	// EnvFiles sets environment variables to the content of files (without
	// surrounding white space), read each time the step runs, so that a
	// secret need not be written in the runbook. A relative path is taken
	// relative to the runbook file's directory.
	EnvFiles map[string]string `yaml:"env_files,omitempty"`
	Dir      string            `yaml:"dir,omitempty"`
}

// HTTPStep calls a configured endpoint.
type HTTPStep struct {
	// Endpoint names an entry of runbooks.http_endpoints: URLs come from config.
	Endpoint string            `yaml:"endpoint"`
	Path     string            `yaml:"path,omitempty"`
	Method   string            `yaml:"method,omitempty"`
	Headers  map[string]string `yaml:"headers,omitempty"`
	Body     string            `yaml:"body,omitempty"`
	// ExpectStatus lists the accepted status codes (default: any 2xx).
	ExpectStatus []int `yaml:"expect_status,omitempty"`
}

// Kubernetes step actions.
const (
	KubeScale          = "scale"
	KubeRolloutRestart = "rollout_restart"
	KubeDeletePod      = "delete_pod"
	KubePatch          = "patch"
)

// KubernetesStep acts on a deployment or a pod.
type KubernetesStep struct {
	Action     string `yaml:"action"`
	Namespace  string `yaml:"namespace"`
	Deployment string `yaml:"deployment,omitempty"`
	Pod        string `yaml:"pod,omitempty"`
	// Service is the service a patch changes (e.g. its selector, to switch
	// a blue-green deployment).
	Service string `yaml:"service,omitempty"`
	// Patch is a JSON merge patch (RFC 7386) of the deployment or service,
	// a template; it must render to a JSON object.
	Patch string `yaml:"patch,omitempty"`
	// Replicas scales to N; By scales by N (negative: down). Min and Max bound the result.
	Replicas *int32 `yaml:"replicas,omitempty"`
	By       *int32 `yaml:"by,omitempty"`
	Min      *int32 `yaml:"min,omitempty"`
	Max      *int32 `yaml:"max,omitempty"`
}

// PromQL step expectations.
const (
	ExpectNonEmpty = "non_empty"
	ExpectEmpty    = "empty"
)

// PromQLStep polls a query until its condition holds or the step times out.
type PromQLStep struct {
	// Query is a PromQL expression, a template. Put the threshold in it, as in
	// an alerting rule: `rate(http_errors_total[5m]) < 0.01`.
	Query string `yaml:"query"`
	// Expect is non_empty (default: the query returns at least one sample)
	// or empty (it returns none).
	Expect   string         `yaml:"expect,omitempty"`
	Interval model.Duration `yaml:"interval,omitempty"`
}

// WaitStep sleeps.
type WaitStep struct {
	Duration model.Duration `yaml:"duration"`
}

// NotifyStep sends a message to the incident's responders (the users its
// escalation paged and level 0's current targets, on level 0's channels) or
// to the channels it names, and writes it to the timeline and the event stream.
type NotifyStep struct {
	Message string `yaml:"message"`
	// Channels overrides the escalation policy's channels (email, sms,
	// phone, push, slack or chat, teams, mattermost, webhook).
	Channels []string `yaml:"channels,omitempty"`
}

// ApprovalStep pauses the run until a responder approves through the API.
type ApprovalStep struct {
	Message string `yaml:"message,omitempty"`
}

// Type returns the step's type.
func (s *Step) Type() StepType { return s.typ }

// Default step timeouts.
var defaultTimeouts = map[StepType]time.Duration{
	StepExec:       time.Minute,
	StepHTTP:       30 * time.Second,
	StepKubernetes: time.Minute,
	StepPromQL:     5 * time.Minute,
	StepNotify:     30 * time.Second,
}

// DefaultApprovalTimeout is how long a run waits for approval when its
// runbook sets no approval_timeout.
const DefaultApprovalTimeout = time.Hour

// DefaultMaxRunsWindow is the window max_runs counts over when a runbook sets none.
const DefaultMaxRunsWindow = time.Hour

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$`)
	headerRE = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	methods  = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
)

// UnmarshalYAML implements yaml.Unmarshaler: strict fields, defaults, validation.
func (s *Step) UnmarshalYAML(n *yaml.Node) error {
	type plain Step
	if err := decodeStrict(n, (*plain)(s), "step"); err != nil {
		return err
	}
	if !nameRE.MatchString(s.Name) {
		return errAt(n, "step name %q: want lower-case letters, digits, '-' or '_'", s.Name)
	}
	var set []StepType
	for t, p := range map[StepType]bool{
		StepExec: s.Exec != nil, StepHTTP: s.HTTP != nil, StepKubernetes: s.Kubernetes != nil,
		StepPromQL: s.PromQL != nil, StepWait: s.Wait != nil, StepNotify: s.Notify != nil, StepApproval: s.Approval != nil,
	} {
		if p {
			set = append(set, t)
		}
	}
	slices.Sort(set)
	if len(set) != 1 {
		return errAt(n, "step %q: want exactly one of exec, http, kubernetes, promql, wait, notify, approval (got %d)", s.Name, len(set))
	}
	s.typ = set[0]
	if s.Idempotent != nil && !*s.Idempotent && s.typ.repeatable() {
		return errAt(n, "step %q: idempotent: false does not apply to %s steps, which are always safe to run again", s.Name, s.typ)
	}
	switch s.OnFailure {
	case "":
		s.OnFailure = FailStop
		if s.Verify {
			s.OnFailure = FailEscalate
		}
	case FailStop, FailContinue, FailEscalate:
	default:
		return errAt(n, "step %q: on_failure %q: want stop, continue or escalate", s.Name, s.OnFailure)
	}
	if s.Timeout < 0 {
		return errAt(n, "step %q: timeout must be positive", s.Name)
	}
	if s.Timeout == 0 && s.typ != StepWait && s.typ != StepApproval {
		s.Timeout = model.Duration(defaultTimeouts[s.typ])
	}
	if s.Verify && s.typ != StepPromQL && s.typ != StepHTTP && s.typ != StepExec {
		return errAt(n, "step %q: verify is for promql, http or exec steps", s.Name)
	}
	switch s.typ {
	case StepExec:
		if len(s.Exec.Command) == 0 || s.Exec.Command[0] == "" {
			return errAt(n, "step %q: exec.command must name a program", s.Name)
		}
		if strings.Contains(s.Exec.Command[0], "{{") {
			return errAt(n, "step %q: the program (exec.command[0]) cannot be a template", s.Name)
		}
		for k := range s.Exec.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return errAt(n, "step %q: invalid environment variable name %q", s.Name, k)
			}
		}
		if err := s.Exec.checkEnvFiles(); err != nil {
			return errAt(n, "step %q: %v", s.Name, err)
		}
		if err := checkShellArgs(s.Exec.Command); err != nil {
			return errAt(n, "step %q: %v", s.Name, err)
		}
	case StepHTTP:
		h := s.HTTP
		if h.Endpoint == "" {
			return errAt(n, "step %q: http.endpoint must name an entry of runbooks.http_endpoints", s.Name)
		}
		if h.Method == "" {
			h.Method = "POST"
		}
		h.Method = strings.ToUpper(h.Method)
		if !slices.Contains(methods, h.Method) {
			return errAt(n, "step %q: http.method %q: want one of %s", s.Name, h.Method, strings.Join(methods, ", "))
		}
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			return errAt(n, "step %q: http.path %q must start with '/'", s.Name, h.Path)
		}
		for k := range h.Headers {
			if !headerRE.MatchString(k) {
				return errAt(n, "step %q: invalid header name %q", s.Name, k)
			}
		}
		for _, c := range h.ExpectStatus {
			if c < 100 || c > 599 {
				return errAt(n, "step %q: expect_status %d is not an HTTP status", s.Name, c)
			}
		}
	case StepKubernetes:
		if err := s.Kubernetes.validate(); err != nil {
			return errAt(n, "step %q: kubernetes: %v", s.Name, err)
		}
	case StepPromQL:
		p := s.PromQL
		if p.Query == "" {
			return errAt(n, "step %q: promql.query is required", s.Name)
		}
		switch p.Expect {
		case "":
			p.Expect = ExpectNonEmpty
		case ExpectNonEmpty, ExpectEmpty:
		default:
			return errAt(n, "step %q: promql.expect %q: want non_empty or empty", s.Name, p.Expect)
		}
		if p.Interval < 0 {
			return errAt(n, "step %q: promql.interval must be positive", s.Name)
		}
		if p.Interval == 0 {
			p.Interval = model.Duration(15 * time.Second)
		}
	case StepWait:
		if s.Wait.Duration <= 0 {
			return errAt(n, "step %q: wait.duration must be positive", s.Name)
		}
		if s.Timeout == 0 {
			s.Timeout = s.Wait.Duration + model.Duration(time.Minute)
		}
	case StepNotify:
		if s.Notify.Message == "" {
			return errAt(n, "step %q: notify.message is required", s.Name)
		}
		for i, c := range s.Notify.Channels {
			ch, err := notify.NormalizeChannel(c)
			if err != nil {
				return errAt(n, "step %q: notify.channels: %v", s.Name, err)
			}
			if ch == notify.ChannelPagerDuty {
				return errAt(n, "step %q: notify.channels: pagerduty opens pages, not messages; use the escalation policy", s.Name)
			}
			s.Notify.Channels[i] = ch
		}
	}
	return nil
}

// checkEnvFiles checks env_files: valid names, not also in env, and a
// literal path each.
func (x *ExecStep) checkEnvFiles() error {
	names := make([]string, 0, len(x.EnvFiles))
	for k := range x.EnvFiles {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		f := x.EnvFiles[k]
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			return fmt.Errorf("env_files: invalid environment variable name %q", k)
		case hasKey(x.Env, k):
			return fmt.Errorf("env_files: %s is also in env; set it in one of them", k)
		case strings.TrimSpace(f) == "":
			return fmt.Errorf("env_files.%s: want the path of the file that holds the value", k)
		case isTemplate(f):
			return fmt.Errorf("env_files.%s: the path %q cannot be a template", k, f)
		}
	}
	return nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// resolveEnvFiles makes the relative env_files paths of the runbook's exec
// steps relative to dir (the runbook file's directory).
func (r *Runbook) resolveEnvFiles(dir string) {
	for _, s := range r.Steps {
		if s.Exec == nil {
			continue
		}
		for k, f := range s.Exec.EnvFiles {
			if !filepath.IsAbs(f) {
				s.Exec.EnvFiles[k] = filepath.Join(dir, f)
			}
		}
	}
}

func (k *KubernetesStep) validate() error {
	if k.Namespace == "" {
		return errors.New("namespace is required")
	}
	switch k.Action {
	case KubeScale:
		if k.Deployment == "" {
			return errors.New("scale needs deployment")
		}
		if (k.Replicas == nil) == (k.By == nil) {
			return errors.New("scale needs exactly one of replicas (to N) or by (by N)")
		}
		if k.Replicas != nil && *k.Replicas < 0 {
			return errors.New("replicas must not be negative")
		}
		if k.Min != nil && k.Max != nil && *k.Min > *k.Max {
			return fmt.Errorf("min (%d) is above max (%d)", *k.Min, *k.Max)
		}
		if k.Min != nil && *k.Min < 0 {
			return errors.New("min must not be negative")
		}
		if k.By != nil && k.Max == nil && *k.By > 0 {
			return errors.New("scale by a positive N needs max, so that repeated runs cannot grow without bound")
		}
	case KubeRolloutRestart:
		if k.Deployment == "" {
			return errors.New("rollout_restart needs deployment")
		}
	case KubeDeletePod:
		if k.Pod == "" {
			return errors.New("delete_pod needs pod")
		}
	case KubePatch:
		if (k.Deployment == "") == (k.Service == "") {
			return errors.New("patch needs exactly one of deployment or service")
		}
		if strings.TrimSpace(k.Patch) == "" {
			return errors.New("patch needs patch (a JSON merge patch)")
		}
	default:
		return fmt.Errorf("action %q: want scale, rollout_restart, delete_pod or patch", k.Action)
	}
	if k.Action != KubePatch && (k.Service != "" || k.Patch != "") {
		return fmt.Errorf("service and patch are for patch only")
	}
	if k.Action != KubePatch && (k.Pod != "" && k.Action != KubeDeletePod || k.Deployment != "" && k.Action == KubeDeletePod) {
		return fmt.Errorf("%s takes %s only", k.Action, map[bool]string{true: "pod", false: "deployment"}[k.Action == KubeDeletePod])
	}
	if k.Action == KubePatch && k.Pod != "" {
		return errors.New("patch takes deployment or service, not pod")
	}
	if k.Action != KubeScale && (k.Replicas != nil || k.By != nil || k.Min != nil || k.Max != nil) {
		return fmt.Errorf("replicas, by, min and max are for scale only")
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: strict fields, defaults, validation.
func (r *Runbook) UnmarshalYAML(n *yaml.Node) error {
	type plain Runbook
	if err := decodeStrict(n, (*plain)(r), "runbook"); err != nil {
		return err
	}
	if !nameRE.MatchString(r.Name) {
		return errAt(n, "runbook name %q: want lower-case letters, digits, '-' or '_' (at most 64)", r.Name)
	}
	for _, m := range r.Matchers {
		ms, err := labels.ParseMatchers(m)
		if err != nil {
			return errAt(n, "runbook %q: matcher %q: %v", r.Name, m, err)
		}
		r.matchers = append(r.matchers, ms...)
	}
	if len(r.matchers) == 0 {
		return errAt(n, "runbook %q: needs matchers, or it would never run (urls only link its documentation)", r.Name)
	}
	for i, s := range r.Severities {
		sev, err := incident.ParseSeverity(string(s))
		if err != nil {
			return errAt(n, "runbook %q: severities: %v", r.Name, err)
		}
		r.Severities[i] = sev
	}
	if len(r.States) == 0 {
		r.States = []incident.Status{incident.StatusTriggered}
	}
	for _, st := range r.States {
		if !st.Open() {
			return errAt(n, "runbook %q: state %q: want triggered, acknowledged or investigating", r.Name, st)
		}
	}
	if r.MaxRunTime < 0 {
		return errAt(n, "runbook %q: max_run_time must be positive", r.Name)
	}
	if r.ApprovalTimeout < 0 {
		return errAt(n, "runbook %q: approval_timeout must be positive", r.Name)
	}
	if r.MaxRuns < 0 {
		return errAt(n, "runbook %q: max_runs must not be negative", r.Name)
	}
	if r.Window < 0 {
		return errAt(n, "runbook %q: window must be positive", r.Name)
	}
	if r.Window != 0 && r.MaxRuns == 0 {
		return errAt(n, "runbook %q: window is set without max_runs (the number of runs allowed in it)", r.Name)
	}
	if r.Window == 0 {
		r.Window = model.Duration(DefaultMaxRunsWindow)
	}
	if r.ApprovalTimeout == 0 {
		r.ApprovalTimeout = model.Duration(DefaultApprovalTimeout)
	}
	if len(r.Steps) == 0 {
		return errAt(n, "runbook %q: no steps", r.Name)
	}
	allow, err := compileAllowList(r.Labels)
	if err != nil {
		return errAt(n, "runbook %q: labels: %v", r.Name, err)
	}
	r.allow = allow
	if r.Target == "" {
		r.Target = r.Name
	}
	if r.target, err = newTmpl("target", r.Target, allow); err != nil {
		return errAt(n, "runbook %q: target: %v", r.Name, err)
	}
	stepsNode := yamlerr.Lookup(n, "steps")
	names := map[string]bool{}
	for i, s := range r.Steps {
		sn := n
		if stepsNode != nil && stepsNode.Kind == yaml.SequenceNode && i < len(stepsNode.Content) {
			if sn = stepsNode.Content[i]; sn.Kind == yaml.AliasNode {
				sn = sn.Alias
			}
		}
		if names[s.Name] {
			return errAt(sn, "runbook %q: step name %q used twice", r.Name, s.Name)
		}
		names[s.Name] = true
		if s.typ == StepApproval && s.Timeout == 0 {
			s.Timeout = r.ApprovalTimeout
		}
		if err := r.compileStep(s); err != nil {
			return errAt(sn, "runbook %q: step %q: %v", r.Name, s.Name, err)
		}
	}
	return nil
}

// compileStep parses the step's templates against its allow-list.
func (r *Runbook) compileStep(s *Step) error {
	own, err := compileAllowList(s.Labels)
	if err != nil {
		return fmt.Errorf("labels: %v", err)
	}
	s.allow = r.allow.merge(own)
	s.tmpls = map[string]*tmpl{}
	add := func(key, src string) error {
		t, err := newTmpl(key, src, s.allow)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		s.tmpls[key] = t
		return nil
	}
	var errs []error
	switch s.typ {
	case StepExec:
		for i, a := range s.Exec.Command {
			errs = append(errs, add(fmt.Sprintf("command[%d]", i), a))
		}
		for k, v := range s.Exec.Env {
			errs = append(errs, add("env."+k, v))
		}
		if err := errors.Join(errs...); err == nil {
			errs = append(errs, checkMetachars(s), checkDashes(s, r.action), checkCodeEnv(s))
		}
	case StepHTTP:
		errs = append(errs, add("path", s.HTTP.Path), add("body", s.HTTP.Body))
		for k, v := range s.HTTP.Headers {
			errs = append(errs, add("headers."+k, v))
		}
		// A JSON body (the default Content-Type of a body) is the patch's
		// case: a value that can hold a quote or a backslash could end its
		// string and add fields of its own.
		if t := s.tmpls["body"]; t != nil && jsonBody(s.HTTP.Headers) {
			for _, l := range t.labels {
				pat := s.allow[l].String()
				if c, ok := patternMatchesAny(pat, jsonQuotes); ok {
					errs = append(errs, fmt.Errorf("body: label %q is used in a JSON body, and its pattern %q can match %q, which could end a string and add fields to the body; restrict the pattern",
						l, strings.TrimSuffix(strings.TrimPrefix(pat, "^(?:"), ")$"), string(c)))
				}
			}
		}
	case StepKubernetes:
		errs = append(errs, add("namespace", s.Kubernetes.Namespace), add("deployment", s.Kubernetes.Deployment), add("pod", s.Kubernetes.Pod),
			add("service", s.Kubernetes.Service), add("patch", s.Kubernetes.Patch))
		// A value that can hold a quote or a backslash could end the JSON
		// string it is written in and add fields of its own to the patch.
		if t := s.tmpls["patch"]; t != nil {
			for _, l := range t.labels {
				pat := s.allow[l].String()
				if c, ok := patternMatchesAny(pat, jsonQuotes); ok {
					errs = append(errs, fmt.Errorf("patch: label %q is used in a JSON patch, and its pattern %q can match %q, which could end a string and add fields to the patch; restrict the pattern",
						l, strings.TrimSuffix(strings.TrimPrefix(pat, "^(?:"), ")$"), string(c)))
				}
			}
		}
	case StepPromQL:
		if err := add("query", s.PromQL.Query); err != nil {
			errs = append(errs, err)
			break
		}
		// A value that can hold a quote or a backslash could end the string
		// it is written in and become PromQL of its own (x"} or vector(1) or
		// {a=" makes every verification pass).
		for _, l := range s.tmpls["query"].labels {
			pat := s.allow[l].String()
			if c, ok := patternMatchesAny(pat, promQLQuotes); ok {
				errs = append(errs, fmt.Errorf("query: label %q is used in a PromQL query, and its pattern %q can match %q, which could end a string and become PromQL; restrict the pattern",
					l, strings.TrimSuffix(strings.TrimPrefix(pat, "^(?:"), ")$"), string(c)))
			}
		}
		if len(errs) > 0 {
			break
		}
		// Check the query's syntax with every label replaced by a sample
		// value of its own (a marker found again in the parsed matchers).
		d := TemplateData{Labels: map[string]string{}, IncidentID: "INC-0000-0001", Severity: "HIGH", Runbook: r.Name, RunID: 1}
		for i, l := range s.tmpls["query"].labels {
			d.Labels[l] = fmt.Sprintf("x%dsredlabel", i)
		}
		var b strings.Builder
		if err := s.tmpls["query"].t.Execute(&b, d); err != nil {
			errs = append(errs, fmt.Errorf("query: %w", err))
		} else if expr, err := parser.NewParser(parser.Options{}).ParseExpr(b.String()); err != nil {
			errs = append(errs, fmt.Errorf("query: %w", limits.ParseError(err)))
		} else {
			errs = append(errs, checkRegexMatchers(expr, s.tmpls["query"].labels, d.Labels, s.allow))
		}
	case StepNotify:
		errs = append(errs, add("message", s.Notify.Message))
	case StepApproval:
		errs = append(errs, add("message", s.Approval.Message))
	}
	return errors.Join(errs...)
}

// regexOperators are the characters with a meaning of their own in a
// regular expression (RE2, as Prometheus' =~ and !~ matchers take it).
const regexOperators = `.+*?()|[]{}^$\`

// checkRegexMatchers refuses a label written into a regex matcher (=~,
// !~) whose allow-list pattern can match a regex operator: there a value
// as ".*" or "api|payment" would widen the selection (a verification
// query then passes on series of other services). An equality matcher
// takes the value as it is. values holds each label's marker in expr.
func checkRegexMatchers(expr parser.Expr, labelNames []string, values map[string]string, allow allowList) error {
	var errs []error
	seen := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Type != promlabels.MatchRegexp && m.Type != promlabels.MatchNotRegexp {
				continue
			}
			for _, l := range labelNames {
				if seen[l] || !strings.Contains(m.Value, values[l]) {
					continue
				}
				pat := allow[l].String()
				if c, ok := patternMatchesAny(pat, regexOperators); ok {
					seen[l] = true
					errs = append(errs, fmt.Errorf("query: label %q is used in the regex matcher %s%s, and its pattern %q can match %q, which is a regex operator there and would widen the selection; use = or restrict the pattern",
						l, m.Name, m.Type, strings.TrimSuffix(strings.TrimPrefix(pat, "^(?:"), ")$"), string(c)))
				}
			}
		}
		return nil
	})
	return errors.Join(errs...)
}

// promQLQuotes are the characters that end or escape a PromQL string
// literal (and a newline, which no string literal holds).
const promQLQuotes = "\"'`\\\n"

// jsonQuotes are the characters that end or escape a JSON string (and a
// newline, which no JSON string holds).
const jsonQuotes = "\"\\\n"

// jsonBody reports whether an http step's body is sent as JSON: its
// Content-Type header names JSON, or it has none (the step's default).
func jsonBody(headers map[string]string) bool {
	for k, v := range headers {
		if strings.EqualFold(k, "Content-Type") {
			return strings.Contains(strings.ToLower(v), "json")
		}
	}
	return true
}

// Parse reads one runbook from YAML; file names it in errors.
func Parse(data []byte, file string) (*Runbook, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rb Runbook
	if err := dec.Decode(&rb); err != nil {
		return nil, yamlerr.FileDecoded(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		return nil, fmt.Errorf("%s:%d: one runbook per file, found a second YAML document", file, line)
	}
	rb.File = file
	rb.raw = data
	rb.resolveEnvFiles(filepath.Dir(file))
	return &rb, nil
}

// Locate positions err, a check made after parsing the runbook (an
// endpoint it names that does not exist, a name already used), in its
// file as "file:line:col: msg" at the node the message names, else "file:
// msg" (yamlerr.FileChecks).
func (rb *Runbook) Locate(err error) error {
	if err == nil {
		return nil
	}
	return yamlerr.FileChecks(rb.File, rb.raw, nil, err)
}

// LoadFile reads one runbook file.
func LoadFile(file string) (*Runbook, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load runbook: %w", err)
	}
	return Parse(data, file)
}

// Set is the runbooks in force, by name.
type Set struct {
	byName map[string]*Runbook
	list   []*Runbook
}

// NewSet checks names are unique and endpoints referenced exist in cfg.
func NewSet(cfg Config, rbs ...*Runbook) (*Set, error) {
	s := &Set{byName: map[string]*Runbook{}}
	for _, rb := range rbs {
		if prev, ok := s.byName[rb.Name]; ok {
			return nil, rb.Locate(fmt.Errorf("runbook name %q already used by %s", rb.Name, prev.File))
		}
		for _, st := range rb.Steps {
			if st.HTTP != nil {
				if _, ok := cfg.HTTPEndpoints[st.HTTP.Endpoint]; !ok {
					return nil, rb.Locate(fmt.Errorf("runbook %q: step %q: http endpoint %q is not in runbooks.http_endpoints", rb.Name, st.Name, st.HTTP.Endpoint))
				}
			}
		}
		s.byName[rb.Name] = rb
		s.list = append(s.list, rb)
	}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Name < s.list[j].Name })
	return s, nil
}

// Load reads every file matching cfg.Files (relative patterns are taken
// relative to baseDir) and returns the set, with every error joined.
func Load(cfg Config, baseDir string) (*Set, error) {
	var (
		rbs  []*Runbook
		errs []error
	)
	for _, pat := range cfg.Files {
		if !filepath.IsAbs(pat) && baseDir != "" {
			pat = filepath.Join(baseDir, pat)
		}
		files, err := filepath.Glob(pat)
		if err != nil {
			errs = append(errs, fmt.Errorf("runbook files %q: %w", pat, err))
			continue
		}
		for _, f := range files {
			rb, err := LoadFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rbs = append(rbs, rb)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewSet(cfg, rbs...)
}

// List returns the runbooks sorted by name.
func (s *Set) List() []*Runbook {
	if s == nil {
		return nil
	}
	return s.list
}

// Get returns a runbook by name.
func (s *Set) Get(name string) *Runbook {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Matches reports whether the runbook runs for inc in its current state:
// the incident's severity and state are among those the runbook triggers
// on, and its matchers all match the labels of one of the incident's alert
// groups (its Links, as Get fills them: the group that opened it and those
// that joined it; the incident's own labels when it has none). A link
// (Linked) never makes a runbook run: an alert chooses its annotations,
// not where a runbook may act.
func (r *Runbook) Matches(inc *incident.Incident) bool {
	return r.triggers(inc) && r.Selects(inc)
}

// Selects reports whether the runbook's matchers all match the labels of
// one of inc's alert groups (as Matches reads them), whatever inc's
// severity and state: a runbook that selects an incident but does not
// match it runs once the incident reaches one of its severities and
// states (Trigger).
func (r *Runbook) Selects(inc *incident.Incident) bool {
	if len(inc.Links) == 0 {
		return r.selects(inc.Labels)
	}
	for _, l := range inc.Links {
		if r.selects(l.Labels) {
			return true
		}
	}
	return false
}

// triggers reports whether inc's severity and state are among those the
// runbook triggers on.
func (r *Runbook) triggers(inc *incident.Incident) bool {
	if len(r.Severities) > 0 && !slices.Contains(r.Severities, inc.Severity) {
		return false
	}
	return slices.Contains(r.States, inc.Status)
}

// Trigger describes the severities and states the runbook runs in, as
// people read them: "LOW or MEDIUM, triggered or acknowledged" (any
// severity when it names none).
func (r *Runbook) Trigger() string {
	join := func(vs []string) string {
		if len(vs) <= 1 {
			return strings.Join(vs, "")
		}
		return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
	}
	sevs := make([]string, len(r.Severities))
	for i, s := range r.Severities {
		sevs[i] = string(s)
	}
	states := make([]string, len(r.States))
	for i, s := range r.States {
		states[i] = string(s)
	}
	if len(sevs) == 0 {
		return "of any severity, " + join(states)
	}
	return join(sevs) + ", " + join(states)
}

// selects reports whether the runbook's matchers all match labels (an
// alert group's common labels).
func (r *Runbook) selects(labels map[string]string) bool {
	return len(r.matchers) > 0 && r.matchers.Matches(toLabelSet(labels))
}

// Linked reports whether an alert of inc links the runbook's
// documentation: its runbook_url annotation is one of the runbook's urls,
// or its `runbook` annotation names it. A link only documents (the
// console's incident page lists linked runbooks as documentation); it
// starts nothing (see Matches).
func (r *Runbook) Linked(inc *incident.Incident) bool {
	for _, u := range inc.RunbookURLs {
		if slices.Contains(r.URLs, u) {
			return true
		}
	}
	for _, a := range inc.Alerts {
		if a.Annotations["runbook"] == r.Name {
			return true
		}
	}
	return false
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}
