package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/runbook"
	"github.com/rootuip/sre/pkg/specfiles"
	"github.com/rootuip/sre/pkg/targetlock"
	"github.com/rootuip/sre/pkg/web"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// APIVersion and Kind identify an experiment document.
const (
	APIVersion = "chaos.sre.rootuip.io/v1"
	Kind       = "Experiment"
)

// Experiment is one chaos experiment as written in git (examples/chaos/).
type Experiment struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion"`
	Kind        string `yaml:"kind" json:"kind"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Hypothesis is what should stay true while the faults are active.
	Hypothesis Hypothesis `yaml:"hypothesis" json:"hypothesis"`
	Target     Target     `yaml:"target" json:"target"`
	Faults     []Fault    `yaml:"faults" json:"faults"`
	// Duration is how long the faults stay injected.
	Duration model.Duration `yaml:"duration" json:"duration"`
	// Schedule is optional: a game-day calendar of allowed windows.
	Schedule *Schedule `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// Abort lists the conditions that stop the run early (and roll back).
	Abort Abort `yaml:"abort,omitempty" json:"abort"`
	// Rollback lists commands run after the faults are reverted (argv, never a shell).
	Rollback []RollbackAction `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	// MaxBudgetShare caps the share (0-1) of the remaining error budget of
	// the target's SLOs the experiment may spend; 0 means no cap.
	MaxBudgetShare float64 `yaml:"maxBudgetShare,omitempty" json:"maxBudgetShare,omitempty"`
	// Measure holds the queries of the resilience score.
	Measure Measure `yaml:"measure,omitempty" json:"measure"`
	// ExpectAlerts marks alerts of the target during the run as expected:
	// incidents are tagged with the experiment and not paged.
	ExpectAlerts bool `yaml:"expectAlerts,omitempty" json:"expectAlerts,omitempty"`
	// Approval, when set, makes every run wait for an approval (through
	// the API, srectl or the console) after the safety checks and before
	// anything is injected.
	Approval *Approval `yaml:"approval,omitempty" json:"approval,omitempty"`

	// File names the source of the experiment (set by the loader).
	File string `yaml:"-" json:"file,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// UnmarshalYAML sets defaults and validates. A check of the experiment's
// own fields is placed at the node of the field it names (the value), as
// the checks of a fault or a rollback action are; a field that is missing
// is placed at the experiment (Whole).
func (e *Experiment) UnmarshalYAML(unmarshal func(any) error) error {
	var at itemNode
	if err := unmarshal(&at); err != nil {
		return err
	}
	type plain Experiment
	if err := unmarshal((*plain)(e)); err != nil {
		return err
	}
	own := func(err error) error { return ownField(at.n, err) }
	if e.APIVersion != APIVersion {
		return own(fmt.Errorf("apiVersion must be %q, got %s", APIVersion, limits.Quote(e.APIVersion)))
	}
	if e.Kind != Kind {
		return own(fmt.Errorf("kind must be %q, got %s", Kind, limits.Quote(e.Kind)))
	}
	if !nameRE.MatchString(e.Name) {
		return own(fmt.Errorf("name %s must be lowercase letters, digits and dashes (at most 63)", limits.Quote(e.Name)))
	}
	// The hypothesis and the target are checked here, not by their own
	// decoders: a file without them is refused too, and the checks of a
	// probe or a rollback action name its index.
	if err := e.Hypothesis.check(); err != nil {
		return err
	}
	if err := e.Target.check(); err != nil {
		return err
	}
	if e.Duration <= 0 {
		if hasValue(at.n, "duration") {
			// duration: 0s, at its value.
			return own(fmt.Errorf("duration: %v must be positive (e.g. 5m)", e.Duration))
		}
		return own(errors.New("duration is required and must be positive (e.g. 5m)"))
	}
	if len(e.Faults) == 0 {
		// At faults when the file has it (faults: []), else at the
		// experiment.
		return own(errors.New("faults: at least one fault is required"))
	}
	seen := map[string]bool{}
	for i := range e.Faults {
		f := &e.Faults[i]
		err := f.checkAt(i)
		f.node = nil
		if err != nil {
			return err
		}
		if f.Name == "" {
			f.Name = fmt.Sprintf("%s-%d", f.Type, i)
		}
		if seen[f.Name] {
			return own(fmt.Errorf("faults[%d]: name %s used twice", i, limits.Quote(f.Name)))
		}
		seen[f.Name] = true
	}
	if e.MaxBudgetShare < 0 || e.MaxBudgetShare > 1 {
		return own(fmt.Errorf("maxBudgetShare: %v must be a share between 0 and 1", e.MaxBudgetShare))
	}
	for i := range e.Rollback {
		r := &e.Rollback[i]
		err := placed(r.node, fmt.Sprintf("rollback[%d]%s", i, named(r.Name)), r.check())
		r.node = nil
		if err != nil {
			return err
		}
	}
	return nil
}

// ownField is err, a check of a field of the experiment whose node is n,
// placed at the node it names (the value of the field: "maxBudgetShare:
// 2 ..." at 2.0, "faults: ..." at faults: []); a check naming no node of
// n (a field that is missing) or a field without a value (faults:) is
// marked Whole, placed at the key or the experiment.
func ownField(n *yaml.Node, err error) error {
	if at := yamlerr.Named(n, err.Error()); at != nil && at != n && !(at.Kind == yaml.ScalarNode && at.ShortTag() == "!!null") {
		return &yamlerr.NodeError{Line: at.Line, Column: at.Column, Err: err}
	}
	return yamlerr.Whole(err)
}

// hasValue reports whether mapping n has key with a value that is not
// null, a merge key's (<<: *defaults) included.
func hasValue(n *yaml.Node, key string) bool {
	v := yamlerr.Lookup(n, key)
	return v != nil && v.ShortTag() != "!!null"
}

// named is the " (name)" that follows the index of a list item in a
// message's path ("hypothesis.steadyState[0] (p): ..."), "" without a
// name; a name that is not plain text on one line without parentheses is
// quoted. Inside the parentheses a path ends at the first ")" and its
// segments at ": ": the quoted name writes them escaped (\x29, :\x20), so
// that the error is still placed at the item ("faults[0] ("a\x29b"): ...").
func named(name string) string {
	if name == "" {
		return ""
	}
	if strings.ContainsAny(name, "()\"\\") || strings.Contains(name, ": ") || strconv.Quote(name) != `"`+name+`"` {
		q := strings.ReplaceAll(limits.Quote(name), ")", `\x29`)
		return " (" + strings.ReplaceAll(q, ": ", `:\x20`) + ")"
	}
	return " (" + limits.Cut(name) + ")"
}

// Approval is the approval gate of an experiment, the same gate as the
// runbooks' (require_approval): a run waits until a principal with Role
// approves it, at most Timeout.
type Approval struct {
	// Role is the least role allowed to approve: responder (default) or admin.
	Role string `yaml:"role,omitempty" json:"role"`
	// Timeout is how long a run waits; an unapproved run is refused then.
	Timeout model.Duration `yaml:"timeout,omitempty" json:"timeout"`
}

// UnmarshalYAML sets defaults and validates.
func (a *Approval) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Approval
	if err := unmarshal((*plain)(a)); err != nil {
		return err
	}
	if a.Role == "" {
		a.Role = auth.RoleResponder.String()
	}
	if r, ok := auth.ParseRole(a.Role); !ok || r < auth.RoleResponder {
		return fmt.Errorf("approval.role %s must be responder or admin", limits.Quote(a.Role))
	}
	if a.Timeout < 0 {
		return fmt.Errorf("approval.timeout: %v must be positive", a.Timeout)
	}
	if a.Timeout == 0 {
		a.Timeout = model.Duration(runbook.DefaultApprovalTimeout)
	}
	return nil
}

// Hypothesis is the steady state that should hold during the experiment.
type Hypothesis struct {
	Description string  `yaml:"description" json:"description"`
	SteadyState []Probe `yaml:"steadyState" json:"steadyState"`
}

// check validates h, the experiment's hypothesis: each message starts with
// the path of what it names in the file.
func (h *Hypothesis) check() error {
	if strings.TrimSpace(h.Description) == "" {
		return yamlerr.Whole(errors.New("hypothesis: description is required"))
	}
	if len(h.SteadyState) == 0 {
		return yamlerr.Whole(errors.New("hypothesis: steadyState needs at least one probe"))
	}
	for i := range h.SteadyState {
		if err := h.SteadyState[i].check(); err != nil {
			return fmt.Errorf("hypothesis.steadyState[%d]%s: %w", i, named(h.SteadyState[i].Name), err)
		}
	}
	return nil
}

// Probe is one steady-state check: a PromQL condition (true when the query
// returns at least one sample) or an HTTP request expecting a status.
type Probe struct {
	Name   string     `yaml:"name" json:"name"`
	PromQL string     `yaml:"promql,omitempty" json:"promql,omitempty"`
	HTTP   *HTTPProbe `yaml:"http,omitempty" json:"http,omitempty"`
}

// check validates p; its messages start with the field they name, the
// caller prefixes the probe's path.
func (p *Probe) check() error {
	if p.Name == "" {
		return errors.New("name is required")
	}
	if (p.PromQL == "") == (p.HTTP == nil) {
		return errors.New("set exactly one of promql and http")
	}
	if p.PromQL != "" {
		if err := checkPromQL(p.PromQL); err != nil {
			return fmt.Errorf("promql: %w", err)
		}
	}
	if p.HTTP != nil {
		return p.HTTP.check()
	}
	return nil
}

func checkPromQL(q string) error {
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(q); err != nil {
		return fmt.Errorf("invalid PromQL %s: %w", limits.Quote(q), limits.ParseError(err))
	}
	return nil
}

// HTTPProbe is a GET expecting a status code within a timeout.
type HTTPProbe struct {
	URL          string         `yaml:"url" json:"url"`
	ExpectStatus int            `yaml:"expectStatus,omitempty" json:"expectStatus"`
	Timeout      model.Duration `yaml:"timeout,omitempty" json:"timeout"`
}

// UnmarshalYAML sets defaults (the probe's check validates).
func (h *HTTPProbe) UnmarshalYAML(unmarshal func(any) error) error {
	type plain HTTPProbe
	if err := unmarshal((*plain)(h)); err != nil {
		return err
	}
	if h.ExpectStatus == 0 {
		h.ExpectStatus = 200
	}
	if h.Timeout == 0 {
		h.Timeout = model.Duration(2 * time.Second)
	}
	return nil
}

// check validates h, the http of a probe.
func (h *HTTPProbe) check() error {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("http.url: %s must be an absolute http(s) URL", limits.Quote(h.URL))
	}
	if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
		return fmt.Errorf("http.expectStatus: %d is not an HTTP status", h.ExpectStatus)
	}
	return nil
}

// Target is what the experiment affects.
type Target struct {
	Service     string `yaml:"service" json:"service"`
	Environment string `yaml:"environment" json:"environment"`
	// Instances is how many instances the faults touch, out of Total.
	Instances int `yaml:"instances" json:"instances"`
	Total     int `yaml:"totalInstances" json:"totalInstances"`
}

// check validates t, the experiment's target: each message starts with
// the path of what it names in the file.
func (t *Target) check() error {
	if t.Service == "" {
		return yamlerr.Whole(errors.New("target: service is required"))
	}
	if t.Environment == "" {
		return yamlerr.Whole(errors.New("target: environment is required (e.g. staging)"))
	}
	for _, f := range []struct{ field, v string }{{"target.service", t.Service}, {"target.environment", t.Environment}} {
		if !targetName.MatchString(f.v) {
			return fmt.Errorf("%s %s is not a plain name (%s: letters, digits and _ . : - inside, no spaces, at most 128 bytes)",
				f.field, limits.Quote(f.v), targetName)
		}
	}
	if t.Instances <= 0 {
		return yamlerr.Whole(fmt.Errorf("target.instances: %d must be positive (how many instances the faults touch)", t.Instances))
	}
	if t.Total <= 0 {
		return yamlerr.Whole(fmt.Errorf("target.totalInstances: %d must be positive (how many instances the service runs)", t.Total))
	}
	if t.Instances > t.Total {
		return fmt.Errorf("target.instances %d exceeds target.totalInstances %d", t.Instances, t.Total)
	}
	return nil
}

// targetName is what a service or environment name may be: the value of a
// Prometheus label as services name themselves, without surrounding
// whitespace (" payment" would not match an exclusion of payment).
var targetName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,126}[A-Za-z0-9])?$`)

// Key is "environment/service", as written.
func (t Target) Key() string { return t.Environment + "/" + t.Service }

// LockKey is the name of the target lock shared with rollouts and scaling
// (targetlock.ServiceKey: without regard to case).
func (t Target) LockKey() string { return targetlock.ServiceKey(t.Environment, t.Service) }

// Schedule is a game-day calendar: the experiment may run only inside one of
// the windows.
type Schedule struct {
	GameDays []GameDay `yaml:"gameDays" json:"gameDays"`
}

// GameDay is one allowed window.
type GameDay struct {
	Start  time.Time      `yaml:"start" json:"start"`
	Length model.Duration `yaml:"length" json:"length"`
}

// UnmarshalYAML validates.
func (s *Schedule) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Schedule
	if err := unmarshal((*plain)(s)); err != nil {
		return err
	}
	if len(s.GameDays) == 0 {
		return yamlerr.Whole(errors.New("schedule: gameDays needs at least one window"))
	}
	for i, g := range s.GameDays {
		if g.Start.IsZero() {
			return fmt.Errorf("schedule.gameDays[%d]: start is required (RFC 3339, e.g. 2026-12-10T14:00:00Z)", i)
		}
		if g.Length <= 0 {
			return fmt.Errorf("schedule.gameDays[%d]: length is required and must be positive (e.g. 2h)", i)
		}
	}
	return nil
}

// Allows reports whether t falls in a game-day window (always true without a schedule).
func (s *Schedule) Allows(t time.Time) bool {
	if s == nil {
		return true
	}
	for _, g := range s.GameDays {
		if !t.Before(g.Start) && t.Before(g.Start.Add(time.Duration(g.Length))) {
			return true
		}
	}
	return false
}

// MaxAbortInterval bounds abort.interval.
const MaxAbortInterval = 5 * time.Minute

// MaxRollbackTimeout bounds the timeout of a rollback action.
const MaxRollbackTimeout = time.Hour

// Abort holds the conditions checked every Interval during the run.
type Abort struct {
	// Interval between evaluations (default 5s).
	Interval model.Duration `yaml:"interval,omitempty" json:"interval"`
	// BurnRate aborts when any SLO of the target burns faster than its
	// fastest page tier (both windows above the factor). Default true.
	BurnRate *bool `yaml:"burnRate,omitempty" json:"burnRate"`
	// ErrorRateQuery returns the target's error ratio (0-1); the run aborts
	// above MaxErrorRate. Default: the SLO 5m error-ratio recording rule.
	ErrorRateQuery string `yaml:"errorRateQuery,omitempty" json:"errorRateQuery,omitempty"`
	// MaxErrorRate is a ratio (default 0.10, i.e. 10%).
	MaxErrorRate float64 `yaml:"maxErrorRate,omitempty" json:"maxErrorRate"`
	// PromQL conditions abort the run when they return any sample.
	PromQL []Condition `yaml:"promql,omitempty" json:"promql,omitempty"`
	// CriticalIncident aborts when a critical incident is open on the target. Default true.
	CriticalIncident *bool `yaml:"criticalIncident,omitempty" json:"criticalIncident"`
	// SteadyState aborts (and so rolls back) at the first check during the
	// run at which a steady-state probe fails: the hypothesis is disproved
	// and the run stops hurting. Default false: the run goes on to its end
	// and reports the hypothesis as not held.
	SteadyState bool `yaml:"steadyState,omitempty" json:"steadyState"`
}

// Condition is a named PromQL expression.
type Condition struct {
	Name string `yaml:"name" json:"name"`
	Expr string `yaml:"expr" json:"expr"`
}

// check validates c; the caller prefixes the condition's path.
func (c *Condition) check() error {
	if c.Name == "" {
		return errors.New("name is required")
	}
	if strings.TrimSpace(c.Expr) == "" {
		return errors.New("expr is required (a PromQL condition)")
	}
	if err := checkPromQL(c.Expr); err != nil {
		return fmt.Errorf("expr: %w", err)
	}
	return nil
}

// UnmarshalYAML sets defaults and validates.
func (a *Abort) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Abort
	if err := unmarshal((*plain)(a)); err != nil {
		return err
	}
	a.defaults()
	if a.MaxErrorRate <= 0 || a.MaxErrorRate > 1 {
		return fmt.Errorf("abort.maxErrorRate: %v must be a ratio in (0, 1], e.g. 0.1 for 10%%", a.MaxErrorRate)
	}
	if a.Interval < model.Duration(time.Second) {
		return fmt.Errorf("abort.interval: %v is below 1s", a.Interval)
	}
	// The abort conditions and probes are evaluated, and the expected-alerts
	// window and the report's "after" measurement extended, by one interval:
	// a long one would leave a run unwatched and its service unpaged.
	if a.Interval > model.Duration(MaxAbortInterval) {
		return fmt.Errorf("abort.interval: %v is above %v: the abort conditions would be checked, and the report's \"after\" measurement taken, only that often", a.Interval, model.Duration(MaxAbortInterval))
	}
	if a.ErrorRateQuery != "" {
		if err := checkPromQL(a.ErrorRateQuery); err != nil {
			return fmt.Errorf("abort.errorRateQuery: %w", err)
		}
	}
	for i := range a.PromQL {
		if err := a.PromQL[i].check(); err != nil {
			return fmt.Errorf("abort.promql[%d]%s: %w", i, named(a.PromQL[i].Name), err)
		}
	}
	return nil
}

func (a *Abort) defaults() {
	t := true
	if a.Interval == 0 {
		a.Interval = model.Duration(5 * time.Second)
	}
	if a.BurnRate == nil {
		a.BurnRate = &t
	}
	if a.CriticalIncident == nil {
		a.CriticalIncident = &t
	}
	if a.MaxErrorRate == 0 {
		a.MaxErrorRate = 0.10
	}
}

// RollbackAction is a command run at rollback, as argv.
type RollbackAction struct {
	Name    string         `yaml:"name" json:"name"`
	Command []string       `yaml:"command" json:"command"`
	Timeout model.Duration `yaml:"timeout,omitempty" json:"timeout"`

	// node is the action's node while the experiment is decoded (its
	// check is placed there, see placed).
	node *yaml.Node
}

// UnmarshalYAML sets defaults and keeps the action's node (the
// experiment's check validates).
func (r *RollbackAction) UnmarshalYAML(unmarshal func(any) error) error {
	var at itemNode
	if err := unmarshal(&at); err != nil {
		return err
	}
	type plain RollbackAction
	if err := unmarshal((*plain)(r)); err != nil {
		return err
	}
	r.node = at.n
	if r.Timeout == 0 {
		r.Timeout = model.Duration(time.Minute)
	}
	return nil
}

// check validates r; the caller prefixes the action's path.
func (r *RollbackAction) check() error {
	if r.Name == "" {
		return errors.New("name is required")
	}
	if r.Command == nil {
		return errors.New("command is required (an argv list, e.g. [kubectl, rollout, undo, deploy/api])")
	}
	if len(r.Command) == 0 {
		return errors.New("command: [] is empty (an argv list, e.g. [kubectl, rollout, undo, deploy/api])")
	}
	if r.Command[0] == "" {
		return errors.New("command[0]: the program to run is empty")
	}
	// The rollback step, and so the target lock and srectl chaos halt,
	// wait for every action up to its timeout.
	if r.Timeout > model.Duration(MaxRollbackTimeout) {
		return fmt.Errorf("timeout: %v is above %v: the rollback, the target lock and a halt wait for it", r.Timeout, model.Duration(MaxRollbackTimeout))
	}
	return nil
}

// Measure holds the PromQL queries the resilience score is computed from,
// each returning one number, evaluated before, during and after the faults.
type Measure struct {
	// AvailabilityQuery returns the share (0-1) of the target's instances
	// up. Default: avg(up{job="<service>"}).
	AvailabilityQuery string `yaml:"availabilityQuery,omitempty" json:"availabilityQuery,omitempty"`
	// LatencyQuery returns a latency in seconds (e.g. a p99). No default:
	// without it the latency term is 0.
	LatencyQuery string `yaml:"latencyQuery,omitempty" json:"latencyQuery,omitempty"`
}

// UnmarshalYAML validates.
func (m *Measure) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Measure
	if err := unmarshal((*plain)(m)); err != nil {
		return err
	}
	for _, q := range []struct{ field, q string }{{"availabilityQuery", m.AvailabilityQuery}, {"latencyQuery", m.LatencyQuery}} {
		if q.q != "" {
			if err := checkPromQL(q.q); err != nil {
				return fmt.Errorf("measure.%s: %w", q.field, err)
			}
		}
	}
	return nil
}

// Parse reads one experiment strictly (unknown fields are errors).
func Parse(data []byte, file string) (*Experiment, error) {
	if len(data) > web.MaxBody {
		return nil, fmt.Errorf("%s: experiment larger than %d bytes", file, web.MaxBody)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var e Experiment
	if err := dec.Decode(&e); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty experiment file", file)
		}
		// Without the Go types the decoder names ("field x not found in
		// type chaos.plain"), as the rollout and analysis specs.
		return nil, yamlerr.FileDecoded(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: one experiment per file (found a second YAML document)", file)
	}
	if e.Abort.Interval == 0 { // abort section omitted
		e.Abort.defaults()
	}
	e.File = file
	return &e, nil
}

// LoadFile reads one experiment file. A relative pidFile (process-stop)
// or disk-fill path is resolved against the directory of the file, as
// Prometheus resolves the paths of its configuration: the experiment means
// the same wherever sred was started.
func LoadFile(path string) (*Experiment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read experiment: %w", err)
	}
	e, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.resolvePaths(filepath.Dir(abs))
	return e, nil
}

// resolvePaths makes the relative host paths of e's faults (pidFile, and
// path of disk-fill) relative to dir.
func (e *Experiment) resolvePaths(dir string) {
	for i := range e.Faults {
		f := &e.Faults[i]
		if f.PIDFile != "" && !filepath.IsAbs(f.PIDFile) {
			f.PIDFile = filepath.Join(dir, f.PIDFile)
		}
		if f.Type == FaultDiskFill && f.Path != "" && !filepath.IsAbs(f.Path) {
			f.Path = filepath.Join(dir, f.Path)
		}
	}
}

// LoadDir reads every *.yml and *.yaml file of dir; names must be unique.
func LoadDir(dir string) ([]*Experiment, error) {
	return specfiles.Load("experiment", LoadFile, func(e *Experiment) string { return e.Name }, dir)
}
