// Package crdschema validates Kubernetes objects against the
// openAPIV3Schema of CustomResourceDefinitions kept in a test's testdata
// (copied from the projects that publish them), as the API server would:
// strictly, an unknown field being an error (kubectl's
// --validate=strict), except where the schema preserves unknown fields.
package crdschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// Schemas maps "apiVersion/kind" (e.g. argoproj.io/v1alpha1/Rollout) to
// its compiled schema.
type Schemas map[string]*jsonschema.Schema

// Load compiles every version of every CRD in the YAML files (several
// documents per file allowed).
func Load(t testing.TB, files ...string) Schemas {
	t.Helper()
	out := Schemas{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc == nil || doc["kind"] != "CustomResourceDefinition" {
				continue
			}
			j, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var crd struct {
				Spec struct {
					Group    string
					Names    struct{ Kind string }
					Versions []struct {
						Name   string
						Schema struct {
							OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
						}
					}
				}
			}
			if err := json.Unmarshal(j, &crd); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, v := range crd.Spec.Versions {
				strict(v.Schema.OpenAPIV3Schema, true)
				key := crd.Spec.Group + "/" + v.Name + "/" + crd.Spec.Names.Kind
				out[key] = compile(t, key, v.Schema.OpenAPIV3Schema)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no CRD in %v", files)
	}
	return out
}

// AddOpenAPI compiles the definition ref (e.g.
// io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler) of a Kubernetes
// OpenAPI v2 document (its "definitions") kept in testdata, strictly, for
// objects of apiVersionKind (e.g. autoscaling/v2/HorizontalPodAutoscaler):
// the built-in APIs have no CRD.
func (s Schemas) AddOpenAPI(t testing.TB, file, apiVersionKind, ref string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if api.Definitions[ref] == nil {
		t.Fatalf("%s: no definition %s", file, ref)
	}
	for _, d := range api.Definitions {
		if m, ok := d.(map[string]any); ok {
			strict(m, false)
		}
	}
	s[apiVersionKind] = compile(t, apiVersionKind, map[string]any{"definitions": api.Definitions, "$ref": "#/definitions/" + ref})
}

// compile compiles one JSON schema document named by key.
func compile(t testing.TB, key string, schema map[string]any) *jsonschema.Schema {
	t.Helper()
	sb, err := json.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(sb))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	url := "file:///" + strings.ReplaceAll(key, "/", "_") + ".json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return sch
}

// strict forbids unknown fields in every object schema that lists its
// properties, as the API server's strict field validation does; objects
// under x-kubernetes-preserve-unknown-fields keep theirs. The root's
// metadata is an ObjectMeta the CRD does not describe.
func strict(s map[string]any, root bool) {
	if s == nil {
		return
	}
	props, _ := s["properties"].(map[string]any)
	if props != nil && s["x-kubernetes-preserve-unknown-fields"] != true {
		if _, ok := s["additionalProperties"]; !ok {
			s["additionalProperties"] = false
		}
	}
	for name, p := range props {
		if root && name == "metadata" {
			continue
		}
		if m, ok := p.(map[string]any); ok {
			strict(m, false)
		}
	}
	if m, ok := s["items"].(map[string]any); ok {
		strict(m, false)
	}
	if m, ok := s["additionalProperties"].(map[string]any); ok {
		strict(m, false)
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := s[k].([]any); ok {
			for _, e := range l {
				if m, ok := e.(map[string]any); ok {
					strict(m, false)
				}
			}
		}
	}
}

// Validate checks one object (apiVersion and kind select the schema).
func (s Schemas) Validate(obj map[string]any) error {
	key := fmt.Sprint(obj["apiVersion"]) + "/" + fmt.Sprint(obj["kind"])
	sch, ok := s[key]
	if !ok {
		return fmt.Errorf("no CRD schema for %s", key)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %v: %w", key, name(obj), err)
	}
	return nil
}

func name(obj map[string]any) any {
	if m, ok := obj["metadata"].(map[string]any); ok {
		return m["name"]
	}
	return nil
}

// ValidateYAML checks every document of a manifest file and returns the
// objects read.
func (s Schemas) ValidateYAML(data []byte) ([]map[string]any, error) {
	var out []map[string]any
	for i, d := range splitDocs(data) {
		var obj map[string]any
		if err := sigsyaml.Unmarshal(d, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue
		}
		if err := s.Validate(obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func splitDocs(data []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}
