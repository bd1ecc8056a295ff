package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// The configurations of the demo are the shipped examples, changed only
// where the demo must differ: the addresses (so that the demo can run on
// other ports), the paths that are relative to examples/, and the inhibit
// rules, generated afresh from the SLO specs.

// loadYAML reads a YAML file into a node tree, which keeps comments and
// key order when written back.
func loadYAML(path string) (*yaml.Node, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	return &doc, nil
}

func writeYAML(o options, path string, doc *yaml.Node) error {
	if o.edit != nil {
		if err := o.edit(filepath.Base(path), doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// lookup returns the value node at path (mapping keys) below n, or nil.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// set replaces (or adds) the value at path below n; the parent mappings
// must exist.
func set(n *yaml.Node, value *yaml.Node, path ...string) error {
	parent := lookup(n, path[:len(path)-1]...)
	if parent == nil || parent.Kind != yaml.MappingNode {
		return fmt.Errorf("no mapping at %s", strings.Join(path[:len(path)-1], "."))
	}
	key := path[len(path)-1]
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			value.HeadComment, value.LineComment = "", parent.Content[i+1].LineComment
			parent.Content[i+1] = value
			return nil
		}
	}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, value)
	return nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func seq(vs ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range vs {
		n.Content = append(n.Content, scalar(v))
	}
	return n
}

// writePrometheusConfig writes examples/prometheus.yml with the demo's
// addresses and absolute rule file paths.
func writePrometheusConfig(o options, dst string) error {
	doc, err := loadYAML(filepath.Join(o.examples, "prometheus.yml"))
	if err != nil {
		return err
	}
	// rule_files are relative to examples/prometheus.yml.
	examples, err := filepath.Abs(o.examples)
	if err != nil {
		return err
	}
	// The generated rules (../rules/*.yml) are read from o.rules.
	rulesDir, err := filepath.Abs(o.rules)
	if err != nil {
		return err
	}
	generated := filepath.Join(filepath.Dir(examples), "rules")
	var ruleFiles []string
	for _, f := range lookupSeq(doc, "rule_files") {
		p := f.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(examples, p)
		}
		if filepath.Dir(p) == generated {
			p = filepath.Join(rulesDir, filepath.Base(p))
		}
		ruleFiles = append(ruleFiles, p)
	}
	if len(ruleFiles) == 0 {
		return fmt.Errorf("prometheus.yml: no rule_files")
	}
	if err := set(doc, seq(ruleFiles...), "rule_files"); err != nil {
		return err
	}
	ams := lookup(doc, "alerting", "alertmanagers")
	if ams == nil || len(ams.Content) != 1 {
		return fmt.Errorf("prometheus.yml: want exactly one alerting.alertmanagers entry")
	}
	if err := set(ams.Content[0], &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("targets"), seq(o.alertmanagerAddr)}}}}, "static_configs"); err != nil {
		return err
	}
	targets := map[string]string{"sred": o.sredAddr, "prometheus": o.prometheusAddr, demoJob: o.demoAddr}
	scrapes := lookup(doc, "scrape_configs")
	if scrapes == nil {
		return fmt.Errorf("prometheus.yml: no scrape_configs")
	}
	seen := map[string]bool{}
	for _, sc := range scrapes.Content {
		job := lookup(sc, "job_name")
		if job == nil {
			continue
		}
		addr, ok := targets[job.Value]
		if !ok {
			continue
		}
		seen[job.Value] = true
		if err := set(sc, &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("targets"), seq(addr)}}}}, "static_configs"); err != nil {
			return err
		}
	}
	for job := range targets {
		if !seen[job] {
			return fmt.Errorf("prometheus.yml: no scrape job %q", job)
		}
	}
	return writeYAML(o, dst, doc)
}

// writeAlertmanagerConfig writes examples/alertmanager.yml with the demo's
// sred address and the inhibit rules generated from the SLO specs.
func writeAlertmanagerConfig(o options, specs []*slo.Spec, dst string) error {
	doc, err := loadYAML(filepath.Join(o.examples, "alertmanager.yml"))
	if err != nil {
		return err
	}
	receivers := lookup(doc, "receivers")
	if receivers == nil {
		return fmt.Errorf("alertmanager.yml: no receivers")
	}
	for _, r := range receivers.Content {
		for _, wh := range lookupSeq(r, "webhook_configs") {
			if err := set(wh, scalar("http://"+o.sredAddr+"/api/v1/webhook/alertmanager"), "url"); err != nil {
				return err
			}
		}
	}
	b, err := rulegen.MarshalInhibitRules(rulegen.InhibitRules(specs))
	if err != nil {
		return err
	}
	inhibit, err := loadInhibit(b)
	if err != nil {
		return err
	}
	if err := set(doc, inhibit, "inhibit_rules"); err != nil {
		return err
	}
	return writeYAML(o, dst, doc)
}

func loadInhibit(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("generated inhibit rules: %w", err)
	}
	n := lookup(&doc, "inhibit_rules")
	if n == nil {
		return nil, fmt.Errorf("generated inhibit rules: no inhibit_rules key")
	}
	return n, nil
}

func lookupSeq(n *yaml.Node, key string) []*yaml.Node {
	s := lookup(n, key)
	if s == nil || s.Kind != yaml.SequenceNode {
		return nil
	}
	return s.Content
}

// exampleDemoAddr is where examples/sred.yml's health checks expect the
// demo service.
const exampleDemoAddr = "localhost:8080"

// writeSredConfig writes examples/sred.yml with the demo's addresses next
// to copies of the files it names relative to itself (the directories of
// examples/: secrets, SLO specs, runbooks, chaos experiments, rollouts, ...),
// its health checks pointed at the demo service.
func writeSredConfig(o options, dir string) error {
	doc, err := loadYAML(filepath.Join(o.examples, "sred.yml"))
	if err != nil {
		return err
	}
	for _, e := range []struct {
		path  []string
		value string
	}{
		{[]string{"global", "external_url"}, "http://" + o.sredAddr},
		{[]string{"alertmanager", "url"}, "http://" + o.alertmanagerAddr},
		{[]string{"prometheus", "url"}, "http://" + o.prometheusAddr},
	} {
		if err := set(doc, scalar(e.value), e.path...); err != nil {
			return fmt.Errorf("sred.yml: %w", err)
		}
	}
	// The health checks of the demo service probe it where it listens.
	if checks := lookup(doc, "health_checks", "checks"); checks != nil {
		for _, c := range checks.Content {
			for _, path := range [][]string{{"http", "url"}, {"tcp", "address"}} {
				if v := lookup(c, path...); v != nil {
					v.Value = strings.ReplaceAll(v.Value, exampleDemoAddr, o.demoAddr)
				}
			}
		}
	}
	// Every directory of examples/ (sred.yml names several: secrets,
	// runbooks, chaos, rollouts, ...), but the SLO specs come from
	// o.sloDir() and the Go programs are left out.
	entries, err := os.ReadDir(o.examples)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case !e.IsDir() || name == "slos" || name == "demo" || name == "demo-service" || name == "weighted-proxy":
		default:
			if err := copyDir(filepath.Join(o.examples, name), filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	if err := copyDir(o.sloDir(), filepath.Join(dir, "slos")); err != nil {
		return err
	}
	return writeYAML(o, filepath.Join(dir, "sred.yml"), doc)
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
