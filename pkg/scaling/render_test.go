package scaling

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/rootuip/sre/pkg/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// strict forbids unknown fields in every object schema that lists its
// properties (the API server prunes or refuses them).
func strict(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["properties"]; ok {
			if _, has := x["additionalProperties"]; !has && x["x-kubernetes-preserve-unknown-fields"] != true {
				x["additionalProperties"] = false
			}
		}
		for _, c := range x {
			strict(c)
		}
	case []any:
		for _, c := range x {
			strict(c)
		}
	}
}

func compile(t *testing.T, url string, doc any) *jsonschema.Schema {
	t.Helper()
	strict(doc)
	b, _ := json.Marshal(doc)
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(url, d); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile %s: %v", url, err)
	}
	return s
}

// schemas are the published KEDA ScaledObject and HPA v2 schemas.
func schemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("testdata/schema/keda.sh_scaledobjects.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	out := map[string]*jsonschema.Schema{}
	for _, v := range crd.Spec.Versions {
		if v.Name == "v1alpha1" {
			out["ScaledObject"] = compile(t, "file:///ScaledObject.json", v.Schema.OpenAPIV3Schema)
		}
	}
	b, err = os.ReadFile("testdata/schema/autoscaling-v2.json")
	if err != nil {
		t.Fatal(err)
	}
	var api map[string]any
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatal(err)
	}
	out["HorizontalPodAutoscaler"] = compile(t, "file:///hpa.json", map[string]any{
		"definitions": api["definitions"],
		"$ref":        "#/definitions/io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
	})
	if len(out) != 2 {
		t.Fatalf("schemas: %v", out)
	}
	return out
}

func validate(t *testing.T, s map[string]*jsonschema.Schema, rendered []byte) error {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(rendered, &obj); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(obj)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	return s[obj["kind"].(string)].Validate(inst)
}

var renderOpts = RenderOptions{PrometheusAddress: "http://prometheus.monitoring.svc:9090"}

func TestRenderGoldenAndValid(t *testing.T) {
	s := schemas(t)
	ps, err := LoadPaths(filepath.Join(testutil.RepoRoot(t), "examples", "scaling"), "testdata/policy-queue.yml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range ps {
		if p.Target.Kubernetes == nil {
			continue
		}
		for _, kind := range []string{"keda", "hpa"} {
			t.Run(p.Name+"-"+kind, func(t *testing.T) {
				n++
				got, err := Render(p, kind, renderOpts)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate(t, s, got); err != nil {
					t.Fatalf("not valid against the published schema: %v\n%s", err, got)
				}
				golden := filepath.Join("testdata", "golden", p.Name+"."+kind+".yaml")
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					os.WriteFile(golden, got, 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("differs from %s (go test -update):\n%s", golden, got)
				}
			})
		}
	}
	if n != 4 {
		t.Fatalf("rendered %d objects, want 4 (api and queue-workers, keda and hpa)", n)
	}
}

// The schema check is not vacuous: broken objects are refused.
func TestSchemaRejects(t *testing.T) {
	s := schemas(t)
	p, err := LoadFile("testdata/policy-queue.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ kind, from, to string }{
		{"keda", "maxReplicaCount: 30", "maxReplicaCount: thirty"},
		{"keda", "scaleTargetRef:", "scaleTarget:"},
		{"keda", "type: prometheus", "kind: prometheus"},
		{"keda", "stabilizationWindowSeconds: 900", "stabilizationWindow: 900"},
		{"hpa", "maxReplicas: 30", "maxReplicas: \"30\""},
		{"hpa", "periodSeconds: 60", "period: 60"},
		{"hpa", "selectPolicy: Max", "selectPolicy: [Max]"},
		{"hpa", "scaleTargetRef:", "target:"},
	} {
		b, err := Render(p, tc.kind, renderOpts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(tc.from)) {
			t.Fatalf("%s: %q not in\n%s", tc.kind, tc.from, b)
		}
		broken := bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1)
		if err := validate(t, s, broken); err == nil {
			t.Errorf("%s with %q accepted by the schema", tc.kind, tc.to)
		}
	}
}

func TestRenderNeedsKubernetes(t *testing.T) {
	p, err := LoadFile(filepath.Join(testutil.RepoRoot(t), "examples", "scaling", "ml-pipeline.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(p, "hpa", renderOpts); err == nil || !strings.Contains(err.Error(), "no kubernetes target") {
		t.Fatalf("got %v", err)
	}
}
