// Package analysis judges a canary against its baseline: a rollout analysis
// spec (examples/rollouts/) lists checks written as PromQL templates, the
// built-in rollback triggers (error rate above 5%, latency up more than 100%,
// failing health checks) and the service's SLO burn rate among them, and an
// Evaluator runs them against Prometheus at a time and returns a verdict:
// pass (promote), fail (roll back) or inconclusive (pause for a human).
//
// Every check has an explicit no-data policy and a minimum traffic
// requirement: a canary that served no requests is never promoted. A check
// may also compare canary and baseline samples with a Mann-Whitney U test,
// as Kayenta does, with an inconclusive band between two p-values.
package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"text/template"
	tparse "text/template/parse"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/specfiles"
	"github.com/rootuip/sre/pkg/web"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// APIVersion and Kind identify an analysis spec document.
const (
	APIVersion = "sre.rootuip.io/v1"
	Kind       = "RolloutAnalysis"
)

// Defaults of a spec.
const (
	DefaultInterval    = 5 * time.Minute
	DefaultMinRequests = 100
	// DefaultErrorRate is the default rollback trigger: an error rate above 5%.
	DefaultErrorRate = 0.05
	// DefaultLatencyIncrease is the default rollback trigger: latency up
	// more than 100% over the baseline (in percent).
	DefaultLatencyIncrease = 100
	// DefaultBurnRateWindow and DefaultBurnRate: a canary may not burn the
	// service's error budget faster than the fast page tier (14.4x over 5m).
	DefaultBurnRateWindow = 5 * time.Minute
	DefaultBurnRate       = 14.4
)

// Default query templates of the built-in checks (Prometheus client
// conventions: http_requests_total with a code label, the
// http_request_duration_seconds histogram, up).
const (
	DefaultRequestsQuery = `sum(increase(http_requests_total{ {{.Selector}} }[{{.Interval}}]))`
	DefaultErrorsQuery   = `sum(increase(http_requests_total{ {{.Selector}},code=~"5.." }[{{.Interval}}]))`
	DefaultLatencyQuery  = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{ {{.Selector}} }[{{.Interval}}])))`
	DefaultHealthQuery   = `min(up{ {{.Selector}} })`
)

// Names of the built-in checks.
const (
	CheckErrorRate = "error-rate"
	CheckLatency   = "latency"
	CheckHealth    = "health"
	CheckBurnRate  = "slo-burn-rate"
)

// NoData says what a check answers when its query returns nothing.
type NoData string

// No-data policies.
const (
	NoDataFail         NoData = "fail"
	NoDataPass         NoData = "pass"
	NoDataInconclusive NoData = "inconclusive"
)

// Verdict returns the verdict the policy gives.
func (n NoData) Verdict() Verdict { return Verdict(n) }

func (n NoData) valid() bool {
	return n == NoDataFail || n == NoDataPass || n == NoDataInconclusive
}

// CheckType is what a check computes.
type CheckType string

// Check types.
const (
	// Threshold runs the query for the canary and compares the value with min/max.
	Threshold CheckType = "threshold"
	// Compare runs the query for the canary and the baseline and compares
	// canary/baseline with maxRatio (and minRatio).
	Compare CheckType = "compare"
	// BurnRate reads the service's SLO burn-rate recording (the highest of
	// its SLOs) over a window and compares it with max.
	BurnRate CheckType = "burnRate"
	// MannWhitney runs the query as a range query for canary and baseline
	// over lookback and compares the two samples with a Mann-Whitney U test.
	MannWhitney CheckType = "mannWhitney"
)

// Direction is which change of a metric is bad for a Mann-Whitney check.
type Direction string

// Directions.
const (
	Increase Direction = "increase" // the canary is worse when higher (latency, errors)
	Decrease Direction = "decrease" // the canary is worse when lower (throughput, success)
	Either   Direction = "either"   // any difference is bad (two-sided)
)

// Spec is one rollout analysis, as written in git.
type Spec struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion"`
	Kind        string `yaml:"kind" json:"kind"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Service is the service whose SLOs the burn-rate check reads.
	Service string `yaml:"service" json:"service"`
	// Interval is the range of the queries ({{.Interval}}), 5m by default.
	Interval model.Duration `yaml:"interval,omitempty" json:"interval"`
	// MinRequests is the number of requests the canary must have served
	// over Interval (the requests query) before any check can pass; at
	// least 1, 100 by default.
	MinRequests float64 `yaml:"minRequests,omitempty" json:"minRequests"`
	// Queries are the templates of the built-in checks.
	Queries Queries `yaml:"queries,omitempty" json:"queries"`
	// RollbackTriggers configure (or disable) the built-in checks.
	RollbackTriggers Triggers `yaml:"rollbackTriggers,omitempty" json:"rollbackTriggers"`
	// Checks are custom checks, run after the built-in ones.
	Checks []Check `yaml:"checks,omitempty" json:"customChecks,omitempty"`

	// File names the source of the spec (set by the loader).
	File string `yaml:"-" json:"file,omitempty"`
	// all is every check run: the enabled built-in ones, then Checks.
	all []Check
}

// Queries are the PromQL templates of the built-in checks. Templates see
// {{.Selector}} (the label matchers of the side evaluated, without braces),
// {{.Canary}} and {{.Baseline}} (both sides' matchers), {{.Service}} and
// {{.Interval}} (e.g. 5m).
type Queries struct {
	// Requests counts the requests served over the interval (traffic).
	Requests string `yaml:"requests,omitempty" json:"requests"`
	// Errors counts the failed requests over the interval.
	Errors string `yaml:"errors,omitempty" json:"errors"`
	// Latency is the latency quantile compared with the baseline's.
	Latency string `yaml:"latency,omitempty" json:"latency"`
	// Health is 1 when every instance passes its health check (min of up).
	Health string `yaml:"health,omitempty" json:"health"`
}

// Triggers are the rollback triggers, each a built-in check.
type Triggers struct {
	// ErrorRate fails when errors/requests of the canary exceeds max (0.05).
	ErrorRate Trigger `yaml:"errorRate,omitempty" json:"errorRate"`
	// LatencyIncrease fails when the canary's latency exceeds the
	// baseline's by more than max percent (100).
	LatencyIncrease Trigger `yaml:"latencyIncrease,omitempty" json:"latencyIncrease"`
	// HealthChecks fails when the health query is below 1.
	HealthChecks Trigger `yaml:"healthChecks,omitempty" json:"healthChecks"`
	// BurnRate fails when the service's SLO burn rate over window exceeds max (14.4).
	BurnRate Trigger `yaml:"burnRate,omitempty" json:"burnRate"`
}

// Trigger configures one built-in check; unset fields take its defaults.
type Trigger struct {
	// Enabled is true unless set to false.
	Enabled     *bool          `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	Max         *float64       `yaml:"max,omitempty" json:"max,omitempty"`
	NoData      NoData         `yaml:"noData,omitempty" json:"noData,omitempty"`
	MinRequests *float64       `yaml:"minRequests,omitempty" json:"minRequests,omitempty"`
	Window      model.Duration `yaml:"window,omitempty" json:"window,omitempty"`
}

func (t Trigger) enabled() bool { return t.Enabled == nil || *t.Enabled }

// Check is one check of a spec.
type Check struct {
	Name        string    `yaml:"name" json:"name"`
	Description string    `yaml:"description,omitempty" json:"description,omitempty"`
	Type        CheckType `yaml:"type" json:"type"`
	// Query is the PromQL template (see Queries); burnRate checks have none.
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
	// NoData is required: what the check answers when a query returns nothing.
	NoData NoData `yaml:"noData" json:"noData"`
	// MinRequests is the canary traffic below which the check is
	// inconclusive; the spec's minRequests by default, 0 to judge whatever
	// the traffic.
	MinRequests *float64 `yaml:"minRequests,omitempty" json:"minRequests"`

	// Min and Max bound the value of threshold and burnRate checks.
	Min *float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max *float64 `yaml:"max,omitempty" json:"max,omitempty"`
	// MaxRatio and MinRatio bound canary/baseline of compare checks.
	MaxRatio *float64 `yaml:"maxRatio,omitempty" json:"maxRatio,omitempty"`
	MinRatio *float64 `yaml:"minRatio,omitempty" json:"minRatio,omitempty"`
	// Tolerance is an absolute difference between canary and baseline a
	// compare check always accepts (e.g. 0.001 for an error ratio whose
	// baseline is 0, where any ratio is infinite).
	Tolerance float64 `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
	// Window is the burn-rate window of a burnRate check (5m by default);
	// the SLO rules must record it (the default tiers record 5m, 30m, 1h,
	// 2h, 6h, 1d and 3d).
	Window model.Duration `yaml:"window,omitempty" json:"window,omitempty"`

	// Mann-Whitney checks: the samples are the query's values every Step
	// over Lookback (every series' values pooled).
	Lookback model.Duration `yaml:"lookback,omitempty" json:"lookback,omitempty"`
	Step     model.Duration `yaml:"step,omitempty" json:"step,omitempty"`
	// Direction is the bad change (increase by default).
	Direction Direction `yaml:"direction,omitempty" json:"direction,omitempty"`
	// FailPValue: a p-value below it fails (0.01 by default).
	FailPValue float64 `yaml:"failPValue,omitempty" json:"failPValue,omitempty"`
	// InconclusivePValue: a p-value between FailPValue and it is
	// inconclusive (0.05 by default); above it passes.
	InconclusivePValue float64 `yaml:"inconclusivePValue,omitempty" json:"inconclusivePValue,omitempty"`
	// MinSamples each side needs (10 by default); fewer is no data.
	MinSamples int `yaml:"minSamples,omitempty" json:"minSamples,omitempty"`

	tmpl *template.Template
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// UnmarshalYAML validates a custom check and sets its defaults.
func (c *Check) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Check
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("check name %q must be lowercase letters, digits and dashes (at most 63)", c.Name)
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("check %q: %w", c.Name, err)
	}
	return nil
}

func (c *Check) validate() error {
	if c.NoData == "" {
		return errors.New("noData is required: fail, pass or inconclusive (inconclusive pauses the rollout for a human)")
	}
	if !c.NoData.valid() {
		return fmt.Errorf("noData %q must be fail, pass or inconclusive", c.NoData)
	}
	if c.MinRequests != nil && *c.MinRequests < 0 {
		return fmt.Errorf("minRequests %v must not be negative", *c.MinRequests)
	}
	switch c.Type {
	case Threshold, BurnRate:
		if c.Min == nil && c.Max == nil {
			return fmt.Errorf("a %s check needs min or max", c.Type)
		}
		if c.MaxRatio != nil || c.MinRatio != nil || c.Tolerance != 0 {
			return fmt.Errorf("maxRatio, minRatio and tolerance belong to compare checks, not %s", c.Type)
		}
	case Compare:
		if c.MaxRatio == nil && c.MinRatio == nil {
			return errors.New("a compare check needs maxRatio or minRatio (canary/baseline)")
		}
		if c.Min != nil || c.Max != nil {
			return errors.New("min and max belong to threshold checks; a compare check bounds canary/baseline with maxRatio and minRatio")
		}
		if c.Tolerance < 0 {
			return fmt.Errorf("tolerance %v must not be negative", c.Tolerance)
		}
	case MannWhitney:
		if c.Direction == "" {
			c.Direction = Increase
		}
		if c.Direction != Increase && c.Direction != Decrease && c.Direction != Either {
			return fmt.Errorf("direction %q must be increase, decrease or either", c.Direction)
		}
		if c.Lookback == 0 {
			c.Lookback = model.Duration(30 * time.Minute)
		}
		if c.Step == 0 {
			c.Step = model.Duration(time.Minute)
		}
		if c.Step < 0 || c.Lookback < 0 || c.Step > c.Lookback {
			return fmt.Errorf("step %v must be positive and at most lookback %v", c.Step, c.Lookback)
		}
		if c.FailPValue == 0 {
			c.FailPValue = 0.01
		}
		if c.InconclusivePValue == 0 {
			c.InconclusivePValue = math.Max(0.05, c.FailPValue)
		}
		if c.FailPValue <= 0 || c.FailPValue >= 1 || c.InconclusivePValue < c.FailPValue || c.InconclusivePValue >= 1 {
			return fmt.Errorf("failPValue %v and inconclusivePValue %v must satisfy 0 < failPValue <= inconclusivePValue < 1", c.FailPValue, c.InconclusivePValue)
		}
		if c.MinSamples == 0 {
			c.MinSamples = 10
		}
		if c.MinSamples < 3 {
			return fmt.Errorf("minSamples %d must be at least 3", c.MinSamples)
		}
		if c.Min != nil || c.Max != nil || c.MaxRatio != nil || c.MinRatio != nil {
			return errors.New("a mannWhitney check judges by p-values (failPValue, inconclusivePValue), not min, max or ratios")
		}
	case "":
		return errors.New("type is required: threshold, compare, burnRate or mannWhitney")
	default:
		return fmt.Errorf("type %q must be threshold, compare, burnRate or mannWhitney", c.Type)
	}
	if c.Type != MannWhitney && (c.Lookback != 0 || c.Step != 0 || c.Direction != "" || c.FailPValue != 0 || c.InconclusivePValue != 0 || c.MinSamples != 0) {
		return fmt.Errorf("lookback, step, direction, failPValue, inconclusivePValue and minSamples belong to mannWhitney checks, not %s", c.Type)
	}
	if c.Type == BurnRate {
		if c.Query != "" {
			return errors.New("a burnRate check reads the SLO recording rules and takes no query")
		}
		if c.Window == 0 {
			c.Window = model.Duration(DefaultBurnRateWindow)
		}
		return nil
	}
	if c.Window != 0 {
		return fmt.Errorf("window belongs to burnRate checks, not %s", c.Type)
	}
	if strings.TrimSpace(c.Query) == "" {
		return fmt.Errorf("query is required for a %s check", c.Type)
	}
	t, err := parseTemplate(c.Name, c.Query)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	c.tmpl = t
	return nil
}

// parseTemplate parses a query template and checks that it renders to
// valid PromQL; its errors do not name the field, which the caller does
// ("query: template: ...", placed at that field's value).
func parseTemplate(name, q string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(q)
	if err != nil {
		return nil, err
	}
	if hasRange(t.Tree.Root) {
		return nil, errors.New("range is not allowed in a query template (a query renders once per side)")
	}
	var b limitedBuffer
	sample := QueryData{Service: "svc", Selector: `job="svc",track="canary"`, Canary: `job="svc",track="canary"`, Baseline: `job="svc",track="baseline"`, Interval: "5m"}
	if err := t.Execute(&b, sample); err != nil {
		return nil, yamlerr.Rewrite(err)
	}
	if _, err := parser.NewParser(parser.Options{}).ParseExpr(b.String()); err != nil {
		return nil, fmt.Errorf("%s is not valid PromQL once rendered (%s): %w (write label matchers as { {{.Selector}} } with spaces)", limits.Quote(q), limits.Cut(b.String()), limits.ParseError(err))
	}
	return t, nil
}

// hasRange reports whether a template tree loops.
func hasRange(n tparse.Node) bool {
	switch n := n.(type) {
	case *tparse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if hasRange(c) {
				return true
			}
		}
	case *tparse.RangeNode:
		return true
	case *tparse.IfNode:
		return hasRange(n.List) || hasRange(n.ElseList)
	case *tparse.WithNode:
		return hasRange(n.List) || hasRange(n.ElseList)
	}
	return false
}

// maxQueryBytes bounds a rendered query: a template cannot make the
// loader or a run produce megabytes ({{range 1000000000}}).
const maxQueryBytes = 64 << 10

// errQueryTooLong is the error of a query rendered past maxQueryBytes.
var errQueryTooLong = fmt.Errorf("rendered query longer than %d bytes", maxQueryBytes)

// limitedBuffer is a bytes.Buffer that refuses to grow past maxQueryBytes.
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > maxQueryBytes {
		return 0, errQueryTooLong
	}
	return l.Buffer.Write(p)
}

// QueryData is what query templates see.
type QueryData struct {
	Service string
	// Selector are the label matchers of the side being evaluated, e.g.
	// job="checkout",track="canary" (no braces).
	Selector string
	Canary   string
	Baseline string
	// Interval is the spec's interval, e.g. 5m.
	Interval string
}

// UnmarshalYAML sets defaults and validates.
func (s *Spec) UnmarshalYAML(unmarshal func(any) error) error {
	type plain Spec
	if err := unmarshal((*plain)(s)); err != nil {
		return err
	}
	if s.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion must be %q, got %q", APIVersion, s.APIVersion)
	}
	if s.Kind != Kind {
		return fmt.Errorf("kind must be %q, got %q", Kind, s.Kind)
	}
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("name %q must be lowercase letters, digits and dashes (at most 63)", s.Name)
	}
	if strings.TrimSpace(s.Service) == "" {
		return errors.New("service is required (the service whose SLOs the burn-rate check reads)")
	}
	if !serviceRE.MatchString(s.Service) || len(s.Service) > MaxServiceBytes {
		return fmt.Errorf("service %q must be a service name: letters, digits, '_', '.', '-' (at most %d, as an SLO's service)", s.Service, MaxServiceBytes)
	}
	if s.Interval < 0 {
		return fmt.Errorf("interval %v must be positive", s.Interval)
	}
	if s.Interval == 0 {
		s.Interval = model.Duration(DefaultInterval)
	}
	if s.MinRequests == 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.MinRequests < 1 {
		return fmt.Errorf("minRequests %v must be at least 1: a canary that served no requests is never promoted", s.MinRequests)
	}
	q := &s.Queries
	for _, f := range []struct {
		v   *string
		def string
	}{{&q.Requests, DefaultRequestsQuery}, {&q.Errors, DefaultErrorsQuery}, {&q.Latency, DefaultLatencyQuery}, {&q.Health, DefaultHealthQuery}} {
		if strings.TrimSpace(*f.v) == "" {
			*f.v = f.def
		}
	}
	// Each query a check uses on its own, so that a bad one is reported
	// at its field rather than at the built-in check that combines it.
	tr := s.RollbackTriggers
	for _, f := range []struct {
		name, q string
		used    bool
	}{{"requests", q.Requests, true}, {"errors", q.Errors, tr.ErrorRate.enabled()}, {"latency", q.Latency, tr.LatencyIncrease.enabled()}, {"health", q.Health, tr.HealthChecks.enabled()}} {
		if !f.used {
			continue
		}
		if _, err := parseTemplate(f.name, f.q); err != nil {
			return fmt.Errorf("queries.%s: %w", f.name, err)
		}
	}
	builtins, err := s.builtins()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range builtins {
		seen[c.Name] = true
	}
	for i, c := range s.Checks {
		if c.Name == "" {
			// A null item decodes without UnmarshalYAML.
			return fmt.Errorf("checks[%d]: a check must be a mapping with name, type, query and noData", i)
		}
		if seen[c.Name] {
			return fmt.Errorf("checks[%d]: name %q is used twice (the built-in checks are %s, %s, %s and %s)", i, c.Name, CheckErrorRate, CheckLatency, CheckHealth, CheckBurnRate)
		}
		seen[c.Name] = true
	}
	s.all = append(builtins, s.Checks...)
	if len(s.all) == 0 {
		return errors.New("every check is disabled: enable a rollback trigger or add a check")
	}
	return nil
}

func ptr(f float64) *float64 { return &f }

// builtins turns the rollback triggers into checks.
func (s *Spec) builtins() ([]Check, error) {
	type builtin struct {
		field string
		t     Trigger
		c     Check
	}
	tr := s.RollbackTriggers
	bs := []builtin{
		{"errorRate", tr.ErrorRate, Check{
			Name: CheckErrorRate, Type: Threshold, Description: "Canary error ratio (errors/requests over the interval).",
			Query: "(" + s.Queries.Errors + ") / (" + s.Queries.Requests + ")", NoData: NoDataInconclusive, Max: ptr(DefaultErrorRate),
		}},
		{"latencyIncrease", tr.LatencyIncrease, Check{
			Name: CheckLatency, Type: Compare, Description: "Canary latency over the baseline's.",
			Query: s.Queries.Latency, NoData: NoDataInconclusive, MaxRatio: ptr(1 + DefaultLatencyIncrease/100.0),
		}},
		{"healthChecks", tr.HealthChecks, Check{
			Name: CheckHealth, Type: Threshold, Description: "Every canary instance passes its health check.",
			Query: s.Queries.Health, NoData: NoDataFail, Min: ptr(1), MinRequests: ptr(0),
		}},
		{"burnRate", tr.BurnRate, Check{
			Name: CheckBurnRate, Type: BurnRate, Description: "Highest SLO burn rate of the service.",
			NoData: NoDataInconclusive, Max: ptr(DefaultBurnRate), Window: model.Duration(DefaultBurnRateWindow),
		}},
	}
	var out []Check
	for _, b := range bs {
		if !b.t.enabled() {
			continue
		}
		c := b.c
		if b.t.NoData != "" {
			c.NoData = b.t.NoData
		}
		if b.t.MinRequests != nil {
			c.MinRequests = b.t.MinRequests
		}
		if b.t.Max != nil {
			if *b.t.Max < 0 {
				return nil, fmt.Errorf("rollbackTriggers.%s.max %v must not be negative", b.field, *b.t.Max)
			}
			switch b.field {
			case "latencyIncrease": // percent over the baseline
				c.MaxRatio = ptr(1 + *b.t.Max/100)
			case "healthChecks":
				return nil, errors.New("rollbackTriggers.healthChecks takes no max: it fails below 1 (an instance down)")
			default:
				c.Max = b.t.Max
			}
		}
		if b.t.Window != 0 {
			if b.field != "burnRate" {
				return nil, fmt.Errorf("rollbackTriggers.%s takes no window (only burnRate does)", b.field)
			}
			c.Window = b.t.Window
		}
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("rollbackTriggers.%s: %w", b.field, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// AllChecks returns every check the spec runs: the enabled built-in
// checks, then the custom ones.
func (s *Spec) AllChecks() []Check { return s.all }

// Parse reads one spec strictly (unknown fields are errors).
func Parse(data []byte, file string) (*Spec, error) {
	if len(data) > web.MaxBody {
		return nil, fmt.Errorf("%s: analysis spec larger than %d bytes", file, web.MaxBody)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty analysis spec", file)
		}
		return nil, yamlerr.FileDecoded(file, data, err)
	}
	if s.all == nil {
		// A null document (~, a bare tag) decodes without UnmarshalYAML.
		return nil, fmt.Errorf("%s: not an analysis spec: want a mapping with apiVersion %q and kind %q", file, APIVersion, Kind)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: one analysis spec per file (found a second YAML document)", file)
	}
	s.File = file
	return &s, nil
}

// Load reads one spec file.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read analysis spec: %w", err)
	}
	return Parse(data, path)
}

// LoadDir reads every *.yml and *.yaml file of dir (a path naming a file is
// read with Load); names must be unique.
func LoadDir(dir string) ([]*Spec, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("read analysis specs: %w", err)
	}
	if !st.IsDir() {
		s, err := Load(dir)
		if err != nil {
			return nil, err
		}
		return []*Spec{s}, nil
	}
	return specfiles.Load("analysis", Load, func(s *Spec) string { return s.Name }, dir)
}
