package config

import (
	"os"
	"path/filepath"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// exampleSections are the top-level sections of examples/sred.yml that
// belong to subsystems (package app lists them; this package cannot import
// it).
func exampleSections(b []byte) []string {
	var top map[string]any
	_ = yaml.Unmarshal(b, &top)
	var out []string
	for k := range top {
		out = append(out, k)
	}
	return out
}

// FuzzLoad feeds arbitrary text to the sred.yml loader: it must answer an
// error or a configuration, never panic, and a configuration it accepts
// must load again the same way from the same text, with valid limits.
// Seeds: the example configuration and a few edge cases; `make fuzz` runs
// it longer.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "sred.yml"))
	if err != nil {
		f.Fatal(err)
	}
	sections := exampleSections(example)
	if _, err := Load(example, sections...); err != nil {
		f.Fatalf("the example does not load: %v", err)
	}
	f.Add(example)
	f.Add([]byte("webhook:\n  limits:\n    max_alerts_per_group: 0\n"))
	f.Add([]byte("webhook:\n  max_body_bytes: -1\n"))
	f.Add([]byte("incidents:\n  max_metric_services: 1\n  metric_services: [api]\n"))
	f.Add([]byte("global: {external_url: 'http://x\x00'}\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(data, sections...)
		if err != nil {
			return
		}
		again, err := Load(data, sections...)
		if err != nil {
			t.Fatalf("accepted once, refused the second time: %v", err)
		}
		if cfg.Webhook.MaxBodyBytes != again.Webhook.MaxBodyBytes || cfg.Webhook.Limits != again.Webhook.Limits {
			t.Fatal("the same text loaded differently")
		}
		if err := cfg.Webhook.Limits.Validate(); err != nil {
			t.Fatalf("accepted invalid limits: %v", err)
		}
		if cfg.Webhook.MaxBodyBytes <= 0 || cfg.Incidents.MaxMetricServices < 1 {
			t.Fatalf("accepted invalid sizes: %+v %+v", cfg.Webhook, cfg.Incidents.MaxMetricServices)
		}
	})
}
