package config

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// otherKinds are the files met beside sred.yml that are not sred
// configurations, each told by a top-level key sred.yml never has, with the
// command that checks it. The first kind matched wins.
var otherKinds = []struct {
	keys  []string
	kind  string
	check string
}{
	{[]string{"groups"}, "a Prometheus rule file", "promtool check rules"},
	{[]string{"scrape_configs", "rule_files", "remote_write"}, "a Prometheus configuration", "promtool check config"},
	{[]string{"route", "receivers", "inhibit_rules"}, "an Alertmanager configuration", "amtool check-config"},
	{[]string{"steps"}, "a runbook", "srectl runbook validate"},
	{[]string{"min_instances", "max_instances"}, "a scaling policy", "srectl scaling check"},
	{[]string{"canary", "blue_green"}, "a rollout definition", "srectl rollout validate"},
}

// notSredConfig returns err, or, when b's top-level keys show another kind
// of file (an SLO spec, a Prometheus or Alertmanager configuration, a rule
// file, a runbook, ...), an error saying which kind and the command that
// checks it: the unknown fields strict decoding lists for such a file do
// not say that the wrong file was given.
func notSredConfig(b []byte, err error) error {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return err
	}
	top := map[string]string{}
	pairs, perr := yamlerr.Pairs(doc.Content[0])
	if perr != nil {
		return err
	}
	for _, p := range pairs {
		top[p.Key.Value] = p.Value.Value
	}
	for _, k := range otherKinds {
		for _, key := range k.keys {
			if _, ok := top[key]; ok {
				return fmt.Errorf("this is %s (%s:), not a sred configuration; check it with %s", k.kind, key, k.check)
			}
		}
	}
	// SLO specs (sre.rootuip.io/v1, OpenSLO, Pyrra, Sloth's version:),
	// chaos experiments, rollout analyses and Kubernetes manifests name
	// their format; sred.yml does not.
	for _, key := range []string{"apiVersion", "version"} {
		v, ok := top[key]
		if !ok {
			continue
		}
		what := fmt.Sprintf("%s: %q", key, v)
		if kind := top["kind"]; kind != "" {
			what += fmt.Sprintf(", kind: %q", kind)
		}
		return fmt.Errorf("this file has %s, not a sred configuration: an SLO spec is checked with srectl validate, a chaos experiment with srectl chaos validate", what)
	}
	return err
}
