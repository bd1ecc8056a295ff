package scaling

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/testutil/crdschema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// schemas are the published KEDA ScaledObject CRD and the HPA v2 API
// definitions, both strict (crdschema).
func schemas(t *testing.T) crdschema.Schemas {
	t.Helper()
	s := crdschema.Load(t, "testdata/schema/keda.sh_scaledobjects.yaml")
	s.AddOpenAPI(t, "testdata/schema/autoscaling-v2.json", "autoscaling/v2/HorizontalPodAutoscaler",
		"io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler")
	return s
}

func validate(t *testing.T, s crdschema.Schemas, rendered []byte) error {
	t.Helper()
	objs, err := s.ValidateYAML(rendered)
	if err == nil && len(objs) != 1 {
		t.Fatalf("rendered %d objects, want 1", len(objs))
	}
	return err
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
