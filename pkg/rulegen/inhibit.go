package rulegen

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

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
	return []InhibitRule{{
		SourceMatchers: []string{fmt.Sprintf(`%s="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)},
		TargetMatchers: []string{fmt.Sprintf(`%s!="%s"`, LabelSeverity, slo.SeverityPage), fmt.Sprintf(`%s=~".+"`, LabelBurnTier)},
		Equal:          equal,
	}}
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
