package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestKubernetesExamplesArgs: every container of examples/kubernetes that
// runs the demo service is given arguments the demo service takes, and
// listens on all interfaces (a pod's probes and Services reach it on the
// pod's IP, not on 127.0.0.1, the default).
func TestKubernetesExamplesArgs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "kubernetes", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example manifests: %v", err)
	}
	found := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, c := range containers(obj) {
				image, _ := c["image"].(string)
				if !strings.Contains(image, "demo-service") {
					continue
				}
				found++
				var args []string
				if l, ok := c["args"].([]any); ok {
					for _, a := range l {
						args = append(args, a.(string))
					}
				}
				app, f := newApp()
				if _, err := app.Parse(args); err != nil {
					t.Errorf("%s: container %v: args %q: %v", file, c["name"], args, err)
					continue
				}
				host, _, err := net.SplitHostPort(*f.listen)
				if err != nil || host != "" && host != "0.0.0.0" && host != "::" {
					t.Errorf("%s: container %v listens on %q: a pod's probes cannot reach it", file, c["name"], *f.listen)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no container runs the demo service in examples/kubernetes")
	}
}

// containers returns the containers of a workload's pod template.
func containers(obj map[string]any) []map[string]any {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	l, _ := pod["containers"].([]any)
	var out []map[string]any
	for _, c := range l {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
