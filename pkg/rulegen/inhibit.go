package rulegen

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
)

// InhibitRule is an Alertmanager inhibit rule (the inhibit_rules entries of
// alertmanager.yml).
type InhibitRule struct {
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
}

// InhibitRules returns the rules that make a firing page silence the
// tickets and budget warnings of the same SLO (and the same group of a
// grouped SLO). Alerts without a burn_tier label are never targets.
//
// The first rule matches pages by severity="page". An SLO whose page
// alerts carry another severity (a Sloth spec's page_alert severity, kept
// as Sloth keeps it), or whose tickets carry severity="page" too, gets a
// rule of its own after it: its pages are matched by service, slo and the
// burn_tier values of its page windows, and its other alerts by their
// other burn_tier values, so that its pages silence its tickets whatever
// the two tiers' severities are.
func InhibitRules(specs []*slo.Spec) []InhibitRule {
	equal := []string{LabelService, LabelSLO}
	for _, s := range specs {
		for _, o := range s.SLOs {
			for _, l := range o.GroupBy {
				if !slices.Contains(equal, l) {
					equal = append(equal, l)
				}
			}
		}
	}
	sort.Strings(equal[2:])
	rules := []InhibitRule{{
		SourceMatchers: []string{fmt.Sprintf(`%s="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)},
		TargetMatchers: []string{fmt.Sprintf(`%s!="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)},
		Equal:          equal,
	}}
	for _, s := range specs {
		for i := range s.SLOs {
			if r, ok := pageTierRule(s.Service, &s.SLOs[i]); ok {
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// pageTierRule is the inhibit rule of an SLO whose page alerts carry a
// severity other than page, or whose ticket alerts carry severity page
// (which the first rule of InhibitRules never silences); ok is false for
// the others (the first rule serves them) and for an SLO without page
// windows.
func pageTierRule(service string, o *slo.SLO) (InhibitRule, bool) {
	if o.Alerting.Page.Disabled || (TierSeverity(o, slo.SeverityPage) == slo.SeverityPage && TierSeverity(o, slo.SeverityTicket) != slo.SeverityPage) {
		return InhibitRule{}, false
	}
	var pages []string
	for _, w := range o.Windows() {
		if w.Severity == slo.SeverityPage {
			pages = append(pages, regexp.QuoteMeta(w.Name))
		}
	}
	if len(pages) == 0 {
		return InhibitRule{}, false
	}
	tiers := strings.Join(pages, "|")
	equal := []string{LabelService, LabelSLO}
	groups := slices.Clone(o.GroupBy)
	sort.Strings(groups)
	equal = append(equal, groups...)
	return InhibitRule{
		SourceMatchers: []string{
			fmt.Sprintf(`%s=%s`, LabelService, strconv.Quote(service)),
			fmt.Sprintf(`%s=%s`, LabelSLO, strconv.Quote(o.Name)),
			fmt.Sprintf(`%s=~%s`, LabelBurnTier, strconv.Quote(tiers)),
		},
		TargetMatchers: []string{
			fmt.Sprintf(`%s=~".+"`, LabelBurnTier),
			fmt.Sprintf(`%s!~%s`, LabelBurnTier, strconv.Quote(tiers)),
		},
		Equal: equal,
	}, true
}

// MarshalInhibitRules renders rules as an `inhibit_rules:` block to merge
// into alertmanager.yml.
func MarshalInhibitRules(rules []InhibitRule) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(Header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		InhibitRules []InhibitRule `yaml:"inhibit_rules"`
	}{rules}); err != nil {
		return nil, fmt.Errorf("encode inhibit rules: %w", err)
	}
	return buf.Bytes(), nil
}
