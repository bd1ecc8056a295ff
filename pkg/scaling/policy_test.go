package scaling

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootuip/sre/pkg/testutil"
)

// The two example policies ship as written.
func TestExamplePoliciesAsWritten(t *testing.T) {
	ps, err := LoadPaths(filepath.Join(testutil.RepoRoot(t), "examples", "scaling"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Policy{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	api, ml := byName["api"], byName["ml-pipeline"]
	if api == nil || ml == nil {
		t.Fatalf("policies %v", byName)
	}
	if api.Service != "api" || api.MinInstances != 2 || api.MaxInstances != 20 || api.Metric.Type != MetricCPU ||
		*api.ScaleUp.Threshold != 80 || *api.ScaleDown.Threshold != 30 ||
		time.Duration(api.ScaleUp.Cooldown) != 5*time.Minute || time.Duration(api.ScaleDown.Cooldown) != 5*time.Minute {
		t.Fatalf("api policy is not as written: %+v", api)
	}
	if ml.Service != "mlPipeline" || ml.MinInstances != 1 || ml.MaxInstances != 10 || ml.Metric.Type != MetricMemory ||
		ml.TargetValue != 70 || *ml.ScaleUp.Threshold != 80 ||
		time.Duration(ml.ScaleUp.Cooldown) != 10*time.Minute || time.Duration(ml.ScaleDown.Cooldown) != 10*time.Minute {
		t.Fatalf("mlPipeline policy is not as written: %+v", ml)
	}
	if api.Target.Controller != ControllerKubernetes || ml.Target.Controller != ControllerSred || !ml.DryRun {
		t.Fatalf("controllers: api %s, ml %s (dry run %v)", api.Target.Controller, ml.Target.Controller, ml.DryRun)
	}
}

const good = `service: api
target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}
min_instances: 1
max_instances: 5
metric: {type: cpu}
scale_up: {threshold: 80}
scale_down: {threshold: 30}
`

// One broken policy per error, each with the message it gets.
func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", good + "maximum: 3\n", `p.yml:8:1: policy: unknown field "maximum" (want name, service,`},
		{"unknown rule field", strings.Replace(good, "{threshold: 80}", "{threshold: 80, cooldwn: 5m}", 1), `p.yml:6:27: scale_up/scale_down: unknown field "cooldwn"`},
		{"no service", strings.Replace(good, "service: api\n", "", 1), "policy: service is required"},
		{"min above max", strings.Replace(good, "min_instances: 1", "min_instances: 9", 1), "min_instances 9 is above max_instances 5"},
		{"no target", strings.Replace(good, `target: {action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, "target: {}", 1), "target needs kubernetes (a workload) or action"},
		{"undeclared variable", strings.Replace(good, ".Vars.replicas", ".Vars.count", 1), "count"},
		{"metric type", strings.Replace(good, "type: cpu", "type: disk", 1), `metric.type "disk": want cpu, memory or promql`},
		{"promql without query", strings.Replace(good, "type: cpu", "type: promql", 1), "metric.query is required for a promql metric"},
		{"bad promql", strings.Replace(good, "type: cpu", "type: promql, query: 'rate(x[5m]'", 1), "metric.query:"},
		{"fraction", strings.Replace(good, "threshold: 80", "threshold: 0.8", 1), "scale_up.threshold 0.8 looks like a fraction; cpu is in percent (write 80)"},
		{"percent range", strings.Replace(good, "threshold: 80", "threshold: 180", 1), "cpu is a percentage: 180 is outside 0-100"},
		{"thresholds crossed", strings.Replace(good, "threshold: 30", "threshold: 90", 1), "scale_down.threshold 90 must be below scale_up.threshold 80 (no flapping)"},
		{"threshold missing", strings.Replace(good, "scale_down: {threshold: 30}", "scale_down: {}", 1), "a threshold policy needs scale_up.threshold and scale_down.threshold (or set target_value)"},
		{"target above up", good + "target_value: 90\n", "scale_up.threshold 80 is below target_value 90"},
		{"schedule tz", good + "schedules: [{name: b, start: '09:00', end: '18:00', time_zone: Mars/Base, min_instances: 2}]\n", `schedule b: time_zone "Mars/Base"`},
		{"schedule order", good + "schedules: [{name: b, start: '18:00', end: '09:00', min_instances: 2}]\n", "end 09:00 must be after start 18:00"},
		{"schedule day", good + "schedules: [{name: b, days: [monday], start: '09:00', end: '18:00', min_instances: 2}]\n", `day "monday": want mon, tue`},
		{"schedule floor", good + "schedules: [{name: b, start: '09:00', end: '18:00', min_instances: 7}]\n", "schedule b: min_instances 7 is outside [1, 5]"},
		{"schedule twice", good + "schedules: [{name: b, start: '09:00', end: '12:00', min_instances: 2}, {name: b, start: '14:00', end: '18:00', min_instances: 3}]\n", `schedule "b" is given twice: schedule names must be unique`},
		{"schedule named as the trigger", strings.Replace(good, `{action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, "{kubernetes: {namespace: p, name: api}}", 1) + "schedules: [{name: cpu, start: '09:00', end: '18:00', min_instances: 2}]\n", `schedule "cpu" has the name of the metric's KEDA trigger (cpu): rename the schedule`},
		{"hpa cooldown", strings.Replace(good, `{action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, "{kubernetes: {namespace: p, name: api}}", 1) + "", ""},
		{"hpa period", strings.Replace(strings.Replace(good, `{action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, "{kubernetes: {namespace: p, name: api}}", 1), "{threshold: 80}", "{threshold: 80, cooldown: 1h}", 1), "scale_up.cooldown 1h: the HPA allows at most 30m"},
		{"kube kind", strings.Replace(good, `{action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, "{kubernetes: {namespace: p, name: api, kind: Pod}}", 1), `kind "Pod": want Deployment or StatefulSet`},
		{"controller", strings.Replace(good, `{action: {exec: {command: [scale, "{{ .Vars.replicas }}"]}}}`, `{controller: kubernetes, action: {exec: {command: [x]}}}`, 1), "controller kubernetes needs target.kubernetes"},
		{"bad name", "name: API_1\n" + good, `policy "API_1": name must be lower-case`},
		{"two documents", good + "---\n" + good, "want exactly one policy, found 2"},
		// Syntax errors name where a quote or bracket was left open,
		// positioned file:line:col as in sred.yml.
		{"quote left open", "name: \"api\n" + good, `p.yml:1:7: invalid YAML: quoted string opened here is not closed before line 3`},
		{"bracket left open", strings.Replace(good, "{threshold: 80}", "{threshold: 80", 1), `p.yml:6:11: invalid YAML: "{" opened here is not closed before line 7`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "p.yml")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "scaling.") || strings.Contains(err.Error(), "!!") {
				t.Fatalf("error names a Go type: %v", err)
			}
		})
	}
}

// The default cpu and memory queries of a Kubernetes target read the
// workload's pods only: not those of another workload whose name starts
// with the same prefix (api-worker next to api, a StatefulSet api-db).
func TestKubernetesQueryPods(t *testing.T) {
	for _, tc := range []struct {
		kind, metric string
		in, out      []string
	}{
		{"Deployment", "cpu", []string{"api-7d9f8b6c5-x2x4z", "api-5f4b8c9d7b-abcde", "api-7d9f8x2x4z"}, []string{"api-worker-7d9f8b6c5-x2x4z", "api-db-0", "apix-7d9f8b6c5-x2x4z", "api"}},
		{"Deployment", "memory", []string{"api-7d9f8b6c5-x2x4z"}, []string{"api-worker-7d9f8b6c5-x2x4z"}},
		{"StatefulSet", "cpu", []string{"api-0", "api-12"}, []string{"api-db-0", "api-7d9f8b6c5-x2x4z"}},
	} {
		p := mustParse(t, fmt.Sprintf("service: api\ntarget: {kubernetes: {namespace: prod, kind: %s, name: api}}\nmin_instances: 1\nmax_instances: 5\nmetric: {type: %s}\ntarget_value: 70\n", tc.kind, tc.metric))
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(p.Query())
		if err != nil {
			t.Fatal(err)
		}
		sels := 0
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			sels++
			for _, m := range vs.LabelMatchers {
				if m.Name != "pod" {
					continue
				}
				for _, pod := range tc.in {
					if !m.Matches(pod) {
						t.Errorf("%s %s: %s does not select pod %s", tc.kind, tc.metric, vs, pod)
					}
				}
				for _, pod := range tc.out {
					if m.Matches(pod) {
						t.Errorf("%s %s: %s selects pod %s", tc.kind, tc.metric, vs, pod)
					}
				}
			}
			return nil
		})
		if sels != 2 {
			t.Fatalf("%s: %d selectors", p.Query(), sels)
		}
	}
}
