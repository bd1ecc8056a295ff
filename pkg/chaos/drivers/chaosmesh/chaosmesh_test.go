package chaosmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/testutil/crdschema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var sel = &chaos.KubeSelector{Namespace: "checkout", Labels: map[string]string{"app": "checkout"}, ExternalTargets: []string{"postgres.checkout.svc"}}

var faults = []chaos.Fault{
	{Name: "latency", Type: chaos.FaultLatency, Latency: model.Duration(200 * time.Millisecond), Jitter: model.Duration(20 * time.Millisecond)},
	{Name: "reset", Type: chaos.FaultReset, Percent: 25},
	{Name: "bandwidth", Type: chaos.FaultBandwidth, RateKBps: 512},
	{Name: "partition", Type: chaos.FaultPartition},
	{Name: "http-delay", Type: chaos.FaultHTTPDelay, Paths: []string{"/api/slow"}, Percent: 100, Delay: model.Duration(time.Second)},
	{Name: "http-error", Type: chaos.FaultHTTPError, Paths: []string{"/api/pay"}, Percent: 100, Status: 503},
	{Name: "process-stop", Type: chaos.FaultProcessStop},
	{Name: "cpu-stress", Type: chaos.FaultCPUStress, CPUPercent: 80, Workers: 2},
	{Name: "memory-stress", Type: chaos.FaultMemoryStress, Size: "256MiB"},
}

// crdSchemas compiles the openAPIV3Schema of each Chaos Mesh CRD kept in
// testdata/crd (from github.com/chaos-mesh/chaos-mesh config/crd/bases),
// strictly (crdschema), by kind.
func crdSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	files, _ := filepath.Glob("testdata/crd/*.yaml")
	if len(files) != 4 {
		t.Fatalf("%d CRD files", len(files))
	}
	out := map[string]*jsonschema.Schema{}
	for key, sch := range crdschema.Load(t, files...) {
		if kind, ok := strings.CutPrefix(key, Group+"/"+Version+"/"); ok {
			out[kind] = sch
		}
	}
	return out
}

func validate(t *testing.T, schemas map[string]*jsonschema.Schema, obj map[string]any) error {
	t.Helper()
	sch, ok := schemas[obj["kind"].(string)]
	if !ok {
		t.Fatalf("no schema for %v", obj["kind"])
	}
	b, _ := json.Marshal(obj)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	return sch.Validate(inst)
}

func TestManifestsGoldenAndValid(t *testing.T) {
	schemas := crdSchemas(t)
	for _, f := range faults {
		t.Run(f.Name, func(t *testing.T) {
			f.Driver, f.Kubernetes = chaos.DriverChaosMesh, sel
			u, err := Manifest("chx-20261202-100000-abc-"+f.Name, f, time.Hour, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(t, schemas, u.Object); err != nil {
				t.Fatalf("manifest not valid against the Chaos Mesh CRD: %v", err)
			}
			got, err := yaml.Marshal(u.Object)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", f.Name+".yaml")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("manifest differs from %s (go test -update):\n%s", golden, got)
			}
		})
	}
}

// HTTPChaos intercepts the port the service listens on (kubernetes.port),
// 80 without it: a service on 8080 was never touched.
func TestHTTPChaosPort(t *testing.T) {
	schemas := crdSchemas(t)
	for _, tc := range []struct{ port, want int64 }{{0, 80}, {8080, 8080}} {
		k := *sel
		k.Port = int(tc.port)
		f := chaos.Fault{Name: "d", Type: chaos.FaultHTTPDelay, Percent: 100, Delay: model.Duration(time.Second), Driver: chaos.DriverChaosMesh, Kubernetes: &k}
		u, err := Manifest("x", f, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(t, schemas, u.Object); err != nil {
			t.Fatalf("port %d: manifest not valid against the Chaos Mesh CRD: %v", tc.port, err)
		}
		if got, _, _ := unstructured.NestedInt64(u.Object, "spec", "port"); got != tc.want {
			t.Errorf("kubernetes.port %d: spec.port %d, want %d", tc.port, got, tc.want)
		}
	}
}

// The schema check is not vacuous: broken manifests are rejected.
func TestSchemaRejects(t *testing.T) {
	schemas := crdSchemas(t)
	f := faults[0]
	f.Kubernetes = sel
	for name, edit := range map[string]func(spec map[string]any){
		"bad action":     func(s map[string]any) { s["action"] = "explode" },
		"no selector":    func(s map[string]any) { delete(s, "selector") },
		"bad direction":  func(s map[string]any) { s["direction"] = "sideways" },
		"latency number": func(s map[string]any) { s["delay"] = map[string]any{"latency": 200} },
	} {
		u, _ := Manifest("x", f, time.Hour, 1)
		edit(u.Object["spec"].(map[string]any))
		if err := validate(t, schemas, u.Object); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("x", 100)
	if n := Name(long); len(n) > 63 || n != Name(long) {
		t.Fatalf("name %q", n)
	}
	if n := Name("chx-20261202-Run_1-cpu"); n != "sre-chx-20261202-run-1-cpu" {
		t.Fatalf("name %q", n)
	}
	if _, err := Manifest("x", chaos.Fault{Name: "t", Type: chaos.FaultTimeout, Kubernetes: sel}, time.Hour, 1); err == nil ||
		!strings.Contains(err.Error(), "no connection timeout fault") {
		t.Fatalf("timeout: %v", err)
	}
}

func TestDriverLifecycle(t *testing.T) {
	gvrs := map[schema.GroupVersionResource]string{}
	for _, k := range []string{"NetworkChaos", "StressChaos", "PodChaos", "HTTPChaos"} {
		gvrs[GVR(k)] = k + "List"
	}
	client := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), gvrs)
	d := &Driver{Client: client}
	ctx := context.Background()
	for _, f := range faults {
		f.Driver, f.Kubernetes = chaos.DriverChaosMesh, sel
		id := "run-1-" + f.Name
		st, err := d.Inject(ctx, id, f)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := Manifest(id, f, time.Hour, 1)
		res := client.Resource(GVR(u.GetKind())).Namespace("checkout")
		got, err := res.Get(ctx, Name(id), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: not created: %v", f.Name, err)
		}
		if got.GetAnnotations()["sre.rootuip.io/fault-id"] != id {
			t.Fatalf("annotations %v", got.GetAnnotations())
		}
		// Revert from the journal alone (no state: crash before Inject returned).
		var noState json.RawMessage
		if f.Name == "cpu-stress" {
			st = noState
		}
		if err := d.Revert(ctx, id, f, st); err != nil {
			t.Fatal(err)
		}
		if _, err := res.Get(ctx, Name(id), metav1.GetOptions{}); err == nil {
			t.Fatalf("%s: still present after revert", f.Name)
		}
		if err := d.Revert(ctx, id, f, st); err != nil {
			t.Fatalf("second revert: %v", err)
		}
	}
}

// TestMemoryStressSize: the StressChaos memory size is written as Chaos
// Mesh reads it, whatever spacing the experiment used, and a size out of
// the memory-stress bounds (below 4KiB, above 1024GiB per pod) is refused,
// not sent to the cluster.
func TestMemoryStressSize(t *testing.T) {
	schemas := crdSchemas(t)
	for _, tc := range []struct{ size, want, err string }{
		{"256MiB", "256MiB", ""},
		{" 256MiB", "256MiB", ""},
		{"256 MiB", "256MiB", ""},
		{"1GiB", "1GiB", ""},
		{"1024MiB", "1GiB", ""},
		{"100MB", "100000000B", ""},
		{"+8192", "8KiB", ""},
		{"1024GiB", "1024GiB", ""},
		{"1025GiB", "", "size: 1025GiB (1100585369600 bytes) is above the largest Chaos Mesh memory-stress size, 1024GiB per pod"},
		{"1048576GiB", "", "is above the largest Chaos Mesh memory-stress size"},
		{"100B", "", "size: 100B (100 bytes) is below the least memory-stress size, 4KiB"},
	} {
		t.Run(tc.size, func(t *testing.T) {
			f := chaos.Fault{Name: "mem", Type: chaos.FaultMemoryStress, Size: tc.size, Driver: chaos.DriverChaosMesh, Kubernetes: sel}
			u, err := Manifest("chx-20261202-100000-abc-mem", f, time.Hour, 1)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("manifest %v, error %v, want %q", u, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(t, schemas, u.Object); err != nil {
				t.Fatal(err)
			}
			got := u.Object["spec"].(map[string]any)["stressors"].(map[string]any)["memory"].(map[string]any)["size"]
			if got != tc.want {
				t.Fatalf("size %q, want %q", got, tc.want)
			}
		})
	}
}
