package rulegen

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template/parse"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/util/features"

	"github.com/rootuip/sre/pkg/slo"
)

// checkGroups checks rule groups as Prometheus' rule loader
// (rulefmt.RuleGroups.Validate) does: group names set and distinct, one of
// record and alert, valid record, label and annotation names and label
// values, no annotations or `for` on recording rules, expressions that parse
// (unless exprsParsed: Generate parsed them already) and label and
// annotation templates of alerting rules that parse.
//
// It replaces a round trip of the encoded file through rulefmt.Parse, which
// cost 70% of `srectl generate` on 1,000 SLOs (docs/benchmarks.md): decoding
// the YAML again, parsing every expression a second time and building
// Prometheus' template function map anew for every label and annotation.
// Here templates are parsed with text/template/parse against the names of
// that function map, built once, and each distinct text is parsed once.
// TestCheckGroupsAgreesWithRulefmt holds the two to the same verdicts.
func checkGroups(groups []rulefmt.RuleGroup, exprsParsed bool) error {
	var errs []error
	seen := map[string]bool{}
	tc := templateChecker{seen: map[string]error{}}
	scheme := model.UTF8Validation
	for _, g := range groups {
		if g.Name == "" {
			errs = append(errs, errors.New("group name must not be empty"))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("group name %q is repeated in the same file", g.Name))
		}
		seen[g.Name] = true
		for i := range g.Rules {
			r := &g.Rules[i]
			name := r.Record
			if name == "" {
				name = r.Alert
			}
			fail := func(format string, a ...any) {
				errs = append(errs, fmt.Errorf("group %q, rule %d, %q: %s", g.Name, i+1, name, fmt.Sprintf(format, a...)))
			}
			switch {
			case r.Record != "" && r.Alert != "":
				fail("only one of 'record' and 'alert' must be set")
			case r.Record == "" && r.Alert == "":
				fail("one of 'record' or 'alert' must be set")
			}
			if r.Expr == "" {
				fail("field 'expr' must be set in rule")
			} else if !exprsParsed {
				if _, err := slo.Parser.ParseExpr(r.Expr); err != nil {
					fail("could not parse expression: %v", err)
				}
			}
			if r.Record != "" {
				if len(r.Annotations) > 0 {
					fail("invalid field 'annotations' in recording rule")
				}
				if r.For != 0 {
					fail("invalid field 'for' in recording rule")
				}
				if r.KeepFiringFor != 0 {
					fail("invalid field 'keep_firing_for' in recording rule")
				}
				if !scheme.IsValidMetricName(r.Record) || strings.ContainsAny(r.Record, "{}") {
					fail("invalid recording rule name: %s", r.Record)
				}
			}
			for k, v := range r.Labels {
				if !scheme.IsValidLabelName(k) || k == model.MetricNameLabel {
					fail("invalid label name: %s", k)
				}
				if !model.LabelValue(v).IsValid() {
					fail("invalid label value: %s", v)
				}
			}
			for k := range r.Annotations {
				if !scheme.IsValidLabelName(k) {
					fail("invalid annotation name: %s", k)
				}
			}
			if r.Alert == "" {
				continue
			}
			for k, v := range r.Labels {
				if err := tc.check(r.Alert, v); err != nil {
					fail("label %q: %v", k, err)
				}
			}
			for k, v := range r.Annotations {
				if err := tc.check(r.Alert, v); err != nil {
					fail("annotation %q: %v", k, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// templateDefs are the variables Prometheus defines before every alert
// template (rulefmt's template test and the rule manager's expansion).
const templateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// templateChecker parses alert templates, each distinct text once.
type templateChecker struct {
	seen map[string]error // keyed by alert name and text
}

// templatesOK holds the alert templates that parsed, across files, keyed
// by the alert name and the text from its first action on (see check).
var templatesOK sync.Map

func (c *templateChecker) check(alert, text string) error {
	i := strings.Index(text, "{{")
	if i < 0 {
		// Text without an action parses whatever it holds.
		return nil
	}
	// Before its first "{{" the lexer reads plain text, which nothing can
	// make invalid: whether a template parses depends on the text from
	// there on. So "svc-0001 SLO x is burning ... {{ $value | humanize }}x"
	// parses if the same summary of svc-0000 did. Only successes are shared:
	// an error reports a line and column of the whole text.
	okKey := alert + "\x00" + text[i:]
	if _, ok := templatesOK.Load(okKey); ok {
		return nil
	}
	key := alert + "\x00" + text
	if err, ok := c.seen[key]; ok {
		return err
	}
	_, err := parse.Parse("__alert_"+alert, templateDefs+text, "", "", templateFuncs(), textTemplateBuiltins)
	c.seen[key] = err
	if err == nil {
		templatesOK.Store(okKey, struct{}{})
	}
	return err
}

// templateFuncs are Prometheus' alert template functions by name: parsing
// only checks that a called function exists, so each stands for its name.
var templateFuncs = sync.OnceValue(func() map[string]any {
	reg := features.NewRegistry()
	template.RegisterFeatures(reg)
	names := reg.Get()[features.TemplatingFunctions]
	m := make(map[string]any, len(names))
	for n := range names {
		m[n] = placeholderFunc
	}
	return m
})

func placeholderFunc() string { return "" }

// textTemplateBuiltins are the functions text/template defines itself.
var textTemplateBuiltins = map[string]any{
	"and": placeholderFunc, "call": placeholderFunc, "html": placeholderFunc, "index": placeholderFunc,
	"slice": placeholderFunc, "js": placeholderFunc, "len": placeholderFunc, "not": placeholderFunc,
	"or": placeholderFunc, "print": placeholderFunc, "printf": placeholderFunc, "println": placeholderFunc,
	"urlquery": placeholderFunc, "eq": placeholderFunc, "ge": placeholderFunc, "gt": placeholderFunc,
	"le": placeholderFunc, "lt": placeholderFunc, "ne": placeholderFunc,
}
