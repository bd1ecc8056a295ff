package rulegen

import (
	"bytes"
	"fmt"
	"maps"
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
// as Sloth keeps it), or whose tickets or budget warning carry
// severity="page" too, gets a rule of its own after it: its pages are
// matched by service, slo and the burn_tier values of its page windows,
// and its other alerts by their other burn_tier values, so that its pages
// silence its tickets whatever the two tiers' severities are.
//
// Tickets and budget warnings of severity="page" must not be sources of
// the first rule: they would silence the other alerts of their SLO whose
// severity is not page (its budget warning, and its pages when these carry
// another severity, e.g. critical). The first rule leaves out their
// burn_tier values (burn_tier!~"ticket_fast|ticket_slow"); an SLO whose
// page windows carry one of those values is then served by a rule of its
// own as well.
func InhibitRules(specs []*slo.Spec) []InhibitRule {
	equal := []string{LabelService, LabelSLO}
	notPages := map[string]bool{}
	for _, s := range specs {
		for i := range s.SLOs {
			o := &s.SLOs[i]
			for _, l := range o.GroupBy {
				if !slices.Contains(equal, l) {
					equal = append(equal, l)
				}
			}
			for _, t := range pageSeverityNonPages(o) {
				notPages[t] = true
			}
		}
	}
	sort.Strings(equal[2:])
	source := []string{fmt.Sprintf(`%s="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)}
	if len(notPages) > 0 {
		source = append(source, fmt.Sprintf(`%s!~%s`, LabelBurnTier, strconv.Quote(tierAlternation(slices.Sorted(maps.Keys(notPages))))))
	}
	rules := []InhibitRule{{
		SourceMatchers: source,
		TargetMatchers: []string{fmt.Sprintf(`%s!="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)},
		Equal:          equal,
	}}
	for _, s := range specs {
		for i := range s.SLOs {
			if r, ok := pageTierRule(s.Service, &s.SLOs[i], notPages); ok {
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// pageSeverityNonPages returns the burn_tier values of the SLO's alerts
// that carry severity="page" but are no pages: its ticket windows when its
// ticket tier's severity is page, and budget when its budget warning's is.
func pageSeverityNonPages(o *slo.SLO) []string {
	var out []string
	if TierSeverity(o, slo.SeverityTicket) == slo.SeverityPage {
		for _, w := range o.Windows() {
			if w.Severity == slo.SeverityTicket {
				out = append(out, w.Name)
			}
		}
	}
	if !o.Alerting.Budget.Disabled && o.Alerting.Budget.Severity == slo.SeverityPage {
		out = append(out, BurnTierBudget)
	}
	return out
}

// tierAlternation is a regular expression matching exactly the burn_tier
// values given (Alertmanager anchors it).
func tierAlternation(tiers []string) string {
	quoted := make([]string, len(tiers))
	for i, t := range tiers {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return strings.Join(quoted, "|")
}

// pageTierRule is the inhibit rule of an SLO the first rule of
// InhibitRules does not serve: its page alerts carry a severity other than
// page, its ticket alerts or its budget warning carry severity page, or
// one of its page windows is named as such a ticket or budget warning of
// any SLO (notPages, which the first rule's source leaves out). ok is
// false for the others (the first rule serves them) and for an SLO
// without page windows (it silences nothing).
func pageTierRule(service string, o *slo.SLO, notPages map[string]bool) (InhibitRule, bool) {
	if o.Alerting.Page.Disabled {
		return InhibitRule{}, false
	}
	var pages []string
	shadowed := false
	for _, w := range o.Windows() {
		if w.Severity == slo.SeverityPage {
			pages = append(pages, w.Name)
			shadowed = shadowed || notPages[w.Name]
		}
	}
	if len(pages) == 0 {
		return InhibitRule{}, false
	}
	if TierSeverity(o, slo.SeverityPage) == slo.SeverityPage && len(pageSeverityNonPages(o)) == 0 && !shadowed {
		return InhibitRule{}, false
	}
	tiers := tierAlternation(pages)
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
