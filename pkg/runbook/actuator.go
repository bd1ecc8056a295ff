package runbook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// Actuator runs the steps that act on a system (exec, http, kubernetes).
// The runbook engine executes its action steps through one, and other
// subsystems (progressive delivery, scaling) run their own Actions through
// the engine's (Engine.Actuator) under the same rules: exec runs argv with
// no shell, in its own process group, with only PATH and the declared
// environment; http calls only the endpoints of runbooks.http_endpoints;
// kubernetes uses the client of runbooks.kubernetes; output is capped at
// runbooks.max_output_bytes and every call is bounded by its timeout.
type Actuator struct {
	clock   clock.Clock
	newKube func(KubernetesConfig) (Kubernetes, error)

	mu      sync.RWMutex
	cfg     Config
	clients map[string]*http.Client
	kube    Kubernetes
	kubeCfg KubernetesConfig // the settings kube was built from
}

// NewActuator returns an actuator with the runbooks section cfg. newKube
// builds the Kubernetes client from the settings in force (nil:
// kubernetes actions fail); clk stamps restarts (nil: the wall clock).
func NewActuator(cfg Config, newKube func(KubernetesConfig) (Kubernetes, error), clk clock.Clock) (*Actuator, error) {
	a := &Actuator{clock: clock.OrReal(clk), newKube: newKube}
	if err := a.Update(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Update installs a new runbooks section (on reload): its http endpoints,
// output cap and Kubernetes settings. A changed kubernetes section makes
// the next kubernetes action build a new client.
func (a *Actuator) Update(cfg Config) error {
	clients := map[string]*http.Client{}
	for name, ep := range cfg.HTTPEndpoints {
		c, err := newHTTPClient(name, ep)
		if err != nil {
			return fmt.Errorf("runbooks: http endpoint %q: %w", name, err)
		}
		clients[name] = c
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.clients = cfg, clients
	return nil
}

// MissingEndpoints returns those of names that are not http endpoints of
// the configuration in force.
func (a *Actuator) MissingEndpoints(names ...string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []string
	for _, n := range names {
		if _, ok := a.cfg.HTTPEndpoints[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// Action is one exec, http or kubernetes step run on its own, outside a
// runbook: `timeout` and exactly one of `exec`, `http`, `kubernetes`, as
// in a runbook step. Its templates reach the caller's variables as
// .Vars.<name>; each variable is declared with the pattern its values must
// match (Compile), as alert labels are in runbooks, and the shell guard
// applies to exec actions as it does to runbook steps.
type Action struct {
	step *Step
}

// UnmarshalYAML implements yaml.Unmarshaler: strict fields, defaults and
// the checks of a runbook step. Compile must follow before use.
func (a *Action) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errAt(n, "action: want a mapping with one of exec, http or kubernetes")
	}
	pairs, err := yamlerr.Pairs(n)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		switch k := p.Key.Value; k {
		case "name", "on_failure", "verify", "labels":
			return errAt(p.Key, "action: unknown field %q (want timeout and one of exec, http, kubernetes)", k)
		}
	}
	named := *n
	named.Content = append([]*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name", Line: n.Line, Column: n.Column},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "action", Line: n.Line, Column: n.Column},
	}, n.Content...)
	s := &Step{}
	if err := s.UnmarshalYAML(&named); err != nil {
		var le *yamlerr.NodeError
		if errors.As(err, &le) {
			return &yamlerr.NodeError{Line: le.Line, Column: le.Column, Err: errors.New(strings.Replace(le.Err.Error(), `step "action": `, "action: ", 1))}
		}
		return err
	}
	switch s.typ {
	case StepExec, StepHTTP, StepKubernetes:
	default:
		return errAt(n, "action: want exec, http or kubernetes (got %s)", s.typ)
	}
	if s.Exec != nil {
		for k, f := range s.Exec.EnvFiles {
			if !filepath.IsAbs(f) {
				return errAt(n, "action: env_files.%s: the path %q must be absolute", k, f)
			}
		}
	}
	a.step = s
	return nil
}

// NewAction builds an action from its parts, with the checks of
// UnmarshalYAML (for actions built in code).
func NewAction(timeout time.Duration, exec *ExecStep, h *HTTPStep, k *KubernetesStep) (*Action, error) {
	type doc struct {
		Timeout    model.Duration  `yaml:"timeout,omitempty"`
		Exec       *ExecStep       `yaml:"exec,omitempty"`
		HTTP       *HTTPStep       `yaml:"http,omitempty"`
		Kubernetes *KubernetesStep `yaml:"kubernetes,omitempty"`
	}
	b, err := yaml.Marshal(doc{model.Duration(timeout), exec, h, k})
	if err != nil {
		return nil, fmt.Errorf("action: %w", err)
	}
	var a Action
	if err := yaml.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Compile parses the action's templates. vars maps each variable the
// templates may use (.Vars.<name>) to the pattern its values must match
// (anchored at both ends); a template using an undeclared variable is an
// error.
func (a *Action) Compile(vars map[string]string) error {
	if a == nil || a.step == nil {
		return errors.New("action: empty")
	}
	allow, err := compileAllowList(vars)
	if err != nil {
		return fmt.Errorf("action variables: %w", err)
	}
	r := &Runbook{Name: "action", allow: allow, action: true}
	if err := r.compileStep(a.step); err != nil {
		msg := strings.ReplaceAll(err.Error(), "which has no allow-list pattern in `labels`", "which is not a declared variable")
		return fmt.Errorf("action: %s", strings.ReplaceAll(msg, " uses label ", " uses variable "))
	}
	return nil
}

// Type is exec, http or kubernetes.
func (a *Action) Type() StepType { return a.step.typ }

// Endpoint is the http endpoint an http action calls ("" for others).
func (a *Action) Endpoint() string {
	if a.step.HTTP == nil {
		return ""
	}
	return a.step.HTTP.Endpoint
}

// Timeout bounds the action.
func (a *Action) Timeout() time.Duration { return time.Duration(a.step.Timeout) }

// MarshalYAML implements yaml.Marshaler (the action as written).
func (a *Action) MarshalYAML() (any, error) {
	if a == nil || a.step == nil {
		return nil, nil
	}
	s := a.step
	return struct {
		Timeout    model.Duration  `yaml:"timeout,omitempty"`
		Exec       *ExecStep       `yaml:"exec,omitempty"`
		HTTP       *HTTPStep       `yaml:"http,omitempty"`
		Kubernetes *KubernetesStep `yaml:"kubernetes,omitempty"`
	}{s.Timeout, s.Exec, s.HTTP, s.Kubernetes}, nil
}

// ActionResult is what an action did.
type ActionResult struct {
	// Status is ok, failed or timeout.
	Status string
	// Input is the rendered action (argv, url, method, body, ...); an
	// exec action's env holds names only, each value SecretShown.
	Input map[string]any
	// Output is the program's output or the response body, capped at
	// runbooks.max_output_bytes.
	Output string
	// Code is the exit code of an exec action or the HTTP status of an
	// http action (nil when there was none).
	Code     *int
	Error    string
	Duration time.Duration
}

// OK reports whether the action succeeded.
func (r ActionResult) OK() bool { return r.Status == StepOK }

// Err is nil when the action succeeded, else an error saying what failed.
func (r ActionResult) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("%s: %s", r.Status, r.Error)
}

// Actuate renders act with vars (each value checked against its declared
// pattern first: a refused value runs nothing) and executes it, bounded by
// the action's timeout and ctx.
func (a *Actuator) Actuate(ctx context.Context, act *Action, vars map[string]string) ActionResult {
	if act == nil || act.step == nil || act.step.tmpls == nil {
		return ActionResult{Status: StepFailed, Error: "action is not compiled", Input: map[string]any{}}
	}
	s := act.step
	begin := time.Now()
	in, env, err := renderStep(s, TemplateData{Labels: vars, Vars: vars})
	var res stepResult
	if err != nil {
		res = failed("%v", err)
	} else {
		res = a.run(ctx, s, in, env, a.maxOutput())
	}
	if res.Input == nil {
		res.Input = map[string]any{}
	}
	for k, v := range in {
		res.Input[k] = v
	}
	res.keepOutput(a.maxOutput())
	return ActionResult{Status: res.Status, Input: res.Input, Output: res.Output, Code: res.ExitCode, Error: res.Error, Duration: time.Since(begin)}
}

// run executes a rendered action step within its timeout, telling a
// timeout from a cancellation of ctx.
func (a *Actuator) run(ctx context.Context, s *Step, in map[string]any, env map[string]string, maxOutput int) stepResult {
	sctx, cancel := context.WithTimeoutCause(ctx, time.Duration(s.Timeout), fmt.Errorf("step timed out after %s", time.Duration(s.Timeout)))
	defer cancel()
	res := a.exec(sctx, s, in, env, maxOutput)
	if res.Status == StepFailed && sctx.Err() != nil {
		if errors.Is(context.Cause(sctx), context.Canceled) || ctx.Err() != nil {
			res.Error = strings.TrimPrefix(res.Error+"; run "+context.Cause(ctx).Error(), "; ")
		} else {
			res.Status = StepTimeout
			res.Error = context.Cause(sctx).Error()
		}
	}
	return res
}

func (a *Actuator) maxOutput() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg.MaxOutputBytes
}

// exec executes one rendered exec, http or kubernetes step, reading at most
// about maxOutput bytes of its output; env is an exec step's rendered
// environment (renderStep), to which its env_files are added, or an http
// step's rendered headers.
func (a *Actuator) exec(ctx context.Context, s *Step, in map[string]any, env map[string]string, maxOutput int) stepResult {
	switch s.typ {
	case StepExec:
		full, err := execEnv(s.Exec, env)
		if err != nil {
			return failed("%v", err)
		}
		return runExec(ctx, in["argv"].([]string), full, s.Exec.Dir, maxOutput)
	case StepHTTP:
		return a.runHTTP(ctx, s, in, env, maxOutput)
	case StepKubernetes:
		return a.runKubernetes(ctx, s, in)
	}
	return failed("%s is not an action step", s.typ)
}
