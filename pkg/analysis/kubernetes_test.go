package analysis

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/testutil/crdschema"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// crds are the published CRD schemas (testdata/crd/README.md).
func crds(t *testing.T) crdschema.Schemas {
	return crdschema.Load(t,
		"testdata/crd/argo-rollouts-rollout-crd.yaml",
		"testdata/crd/argo-rollouts-analysis-template-crd.yaml",
		"testdata/crd/flagger-crd.yaml")
}

func readObjects(t *testing.T, schemas crdschema.Schemas, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := schemas.ValidateYAML(b)
	if err != nil {
		t.Fatalf("%s is not valid against the published CRDs: %v", path, err)
	}
	return objs
}

func dig(obj any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := obj.(map[string]any)
			obj = m[k]
		case int:
			l, _ := obj.([]any)
			if k >= len(l) {
				return nil
			}
			obj = l[k]
		}
	}
	return obj
}

// TestKubernetesExamples validates examples/kubernetes/ against the
// published Argo Rollouts and Flagger CRDs, and checks that they call
// routes sred serves, analyses examples/rollouts defines and templates
// `srectl generate` writes.
func TestKubernetesExamples(t *testing.T) {
	schemas := crds(t)
	root := testutil.RepoRoot(t)
	specs, err := LoadDir(filepath.Join(root, "examples", "rollouts"))
	if err != nil {
		t.Fatal(err)
	}
	analyses := map[string]bool{}
	for _, s := range specs {
		analyses[s.Name] = true
	}
	sloSpecs, err := slo.LoadFiles(filepath.Join(root, "examples", "slos"))
	if err != nil {
		t.Fatal(err)
	}
	generated := map[string]bool{}
	for _, c := range SLOChecks(sloSpecs) {
		generated[c.Name] = true
		generated[c.Service+"-slo-burn-rate"] = true
	}

	kinds := map[string]int{}
	for _, obj := range readObjects(t, schemas, filepath.Join(root, "examples", "kubernetes", "argo-rollouts.yml")) {
		kinds[obj["kind"].(string)]++
		switch obj["kind"] {
		case "AnalysisTemplate":
			web := dig(obj, "spec", "metrics", 0, "provider", "web").(map[string]any)
			u, err := url.Parse(strings.ReplaceAll(web["url"].(string), "{{args.service}}", "api"))
			if err != nil || u.Path != "/api/v1/analysis/api/run" || !analyses["api"] {
				t.Errorf("web provider url %v: want /api/v1/analysis/{analysis}/run of an example analysis", web["url"])
			}
			if web["jsonPath"] != "{$.data}" || web["method"] != "POST" {
				t.Errorf("web provider: jsonPath %v method %v", web["jsonPath"], web["method"])
			}
			// A measurement taken before the canary served a spec's
			// interval of traffic is inconclusive, and one inconclusive
			// answer pauses the rollout.
			delay, _ := dig(obj, "spec", "metrics", 0, "initialDelay").(string)
			d, err := time.ParseDuration(delay)
			for _, s := range specs {
				if s.Name == "api" && (err != nil || d < time.Duration(s.Interval)) {
					t.Errorf("sred-verdict initialDelay %q: want at least the analysis' interval %v", delay, time.Duration(s.Interval))
				}
			}
		case "Rollout":
			for _, tpl := range dig(obj, "spec", "strategy", "canary", "analysis", "templates").([]any) {
				name := tpl.(map[string]any)["templateName"].(string)
				if name != "sred-analysis" && !generated[name] {
					t.Errorf("Rollout uses AnalysisTemplate %s, which neither the example nor srectl generate defines", name)
				}
			}
		}
	}
	for _, obj := range readObjects(t, schemas, filepath.Join(root, "examples", "kubernetes", "flagger.yml")) {
		kinds[obj["kind"].(string)]++
		routes := map[string]string{"pre-rollout": FlaggerPreRollout, "confirm-promotion": FlaggerConfirmPromotion, "rollback": FlaggerRollback}
		hooks := dig(obj, "spec", "analysis", "webhooks").([]any)
		manual := 0
		for _, h := range hooks {
			h := h.(map[string]any)
			u, err := url.Parse(h["url"].(string))
			if err == nil && strings.HasPrefix(u.Host, "flagger-loadtester.") {
				// A human's abort: flagger-loadtester's rollback gate.
				if h["type"] != "rollback" || u.Path != "/rollback/check" {
					t.Errorf("webhook %v (%v) calls %v, want flagger-loadtester's /rollback/check", h["name"], h["type"], h["url"])
				}
				manual++
				continue
			}
			if err != nil || u.Path != routes[h["type"].(string)] {
				t.Errorf("webhook %v (%v) calls %v, want %s", h["name"], h["type"], h["url"], routes[h["type"].(string)])
			}
			md, _ := h["metadata"].(map[string]any)
			if a, ok := md[MetaAnalysis]; ok && !analyses[a.(string)] {
				t.Errorf("webhook %v names analysis %v, which examples/rollouts does not define", h["name"], a)
			}
			for _, k := range []string{MetaCanary, MetaBaseline} {
				if v, ok := md[k]; ok {
					if _, err := ParseLabels(v.(string)); err != nil {
						t.Errorf("webhook %v metadata.%s: %v", h["name"], k, err)
					}
				}
			}
		}
		if len(hooks) != 4 || manual != 1 {
			t.Errorf("%d webhooks (%d manual), want sred's pre-rollout, confirm-promotion and rollback and a manual rollback gate", len(hooks), manual)
		}
		for _, m := range dig(obj, "spec", "analysis", "metrics").([]any) {
			name := dig(m, "templateRef", "name")
			if !generated[name.(string)] {
				t.Errorf("Canary uses MetricTemplate %v, which srectl generate does not write", name)
			}
		}
	}
	if kinds["AnalysisTemplate"] != 1 || kinds["Rollout"] != 1 || kinds["Canary"] != 1 {
		t.Errorf("kinds %v", kinds)
	}
}

// The schema check is not vacuous: broken manifests are rejected.
func TestCRDSchemasReject(t *testing.T) {
	schemas := crds(t)
	root := testutil.RepoRoot(t)
	argo, _ := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "argo-rollouts.yml"))
	flagger, _ := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "flagger.yml"))
	for _, tc := range []struct {
		name, old, new string
		doc            []byte
	}{
		{"unknown web field", "jsonPath:", "jsonpath:", argo},
		{"web timeout as string", "timeoutSeconds: 30", "timeoutSeconds: thirty", argo},
		{"unknown webhook type", "type: rollback", "type: roll-back", flagger},
		{"webhook timeout", "timeout: 30s", "timeout: soon", flagger},
		{"metadata not strings", "service: api", "service: {name: api}", flagger},
		{"step weights", "stepWeights: [10, 50]", "stepWeights: ten", flagger},
	} {
		if !bytes.Contains(tc.doc, []byte(tc.old)) {
			t.Fatalf("%s: %q not in the example", tc.name, tc.old)
		}
		broken := bytes.Replace(tc.doc, []byte(tc.old), []byte(tc.new), 1)
		if _, err := schemas.ValidateYAML(broken); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// TestGenerateEngineTemplates: the AnalysisTemplates and MetricTemplates
// generated from examples/slos are golden files, valid against the CRDs,
// with PromQL that parses and Argo conditions that compile and decide as
// documented.
func TestGenerateEngineTemplates(t *testing.T) {
	schemas := crds(t)
	specs, err := slo.LoadFiles(filepath.Join(testutil.RepoRoot(t), "examples", "slos"))
	if err != nil {
		t.Fatal(err)
	}
	argo, err := ArgoAnalysisTemplates(specs, "")
	if err != nil {
		t.Fatal(err)
	}
	flagger, err := FlaggerMetricTemplates(specs, "", "flagger-system")
	if err != nil {
		t.Fatal(err)
	}
	if len(argo) != len(specs) || len(flagger) != len(specs) {
		t.Fatalf("%d Argo and %d Flagger files for %d services", len(argo), len(flagger), len(specs))
	}
	for dir, files := range map[string][]Generated{"argo-rollouts": argo, "flagger": flagger} {
		for _, f := range files {
			golden := filepath.Join("testdata", "golden", dir, f.Name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Data, want) {
				t.Errorf("%s differs from %s (go test ./pkg/analysis -run TestGenerateEngineTemplates -update):\n%s", f.Name, golden, f.Data)
			}
			objs, err := schemas.ValidateYAML(f.Data)
			if err != nil {
				t.Fatalf("%s/%s: %v", dir, f.Name, err)
			}
			for _, o := range objs {
				var queries []string
				if o["kind"] == "MetricTemplate" {
					queries = append(queries, dig(o, "spec", "query").(string))
				}
				for _, m := range asList(dig(o, "spec", "metrics")) {
					queries = append(queries, dig(m, "provider", "prometheus", "query").(string))
					checkArgoConditions(t, m.(map[string]any))
				}
				for _, q := range queries {
					if _, err := parser.NewParser(parser.Options{}).ParseExpr(q); err != nil {
						t.Errorf("%s: %v", q, err)
					}
				}
			}
		}
	}
	// api's availability (99.99% over 30d): 5m burn rate at most 14.4.
	var found bool
	for _, c := range SLOChecks(specs) {
		if c.Service == "api" && c.SLO == "availability" {
			found = true
			if c.Max != 14.4 || c.Query != `max(slo:burn_rate:ratio_rate5m{service="api",slo="availability"})` {
				t.Errorf("api availability check %+v", c)
			}
		}
	}
	if !found {
		t.Error("no check for api/availability")
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// checkArgoConditions evaluates a generated metric's conditions as Argo
// Rollouts does (utils/evaluate: expr with result, isNaN), for the
// prometheus provider's results: a vector of values, or none.
func checkArgoConditions(t *testing.T, m map[string]any) {
	t.Helper()
	succ, fail := m["successCondition"].(string), m["failureCondition"].(string)
	max, err := strconv.ParseFloat(succ[strings.LastIndex(succ, " ")+1:], 64)
	if err != nil {
		t.Fatal(err)
	}
	eval := func(cond string, result []float64) bool {
		env := map[string]any{"result": result, "isNaN": math.IsNaN}
		prog, err := expr.Compile(cond, expr.Env(env))
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		out, err := expr.Run(prog, env)
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		return out.(bool)
	}
	for _, tc := range []struct {
		result     []float64
		succ, fail bool // both false: Inconclusive
	}{
		{[]float64{max / 2}, true, false},
		{[]float64{max}, true, false},
		{[]float64{max * 1.01}, false, true},
		{nil, false, false},
		{[]float64{math.NaN()}, false, false},
	} {
		if s, f := eval(succ, tc.result), eval(fail, tc.result); s != tc.succ || f != tc.fail {
			t.Errorf("%s / %s with %v: success %v failure %v, want %v %v", succ, fail, tc.result, s, f, tc.succ, tc.fail)
		}
	}
}

// Kubernetes names fold case and turn '_' and '.' into '-': two services,
// or two SLOs, that would share a template or metric name are an error
// naming both (one template or metric replaced the other).
func TestEngineNameCollisions(t *testing.T) {
	doc := "apiVersion: sre.rootuip.io/v1\nkind: ServiceLevelObjectives\nservice: %s\nslos:\n  - name: %s\n    objective: 99.9\n    sli: {bool: {selector: up}}\n"
	specsOf := func(pairs ...[2]string) []*slo.Spec {
		var parts []string
		for _, p := range pairs {
			parts = append(parts, fmt.Sprintf(doc, p[0], p[1]))
		}
		specs, err := slo.Parse([]byte(strings.Join(parts, "---\n")), "s.yml")
		if err != nil {
			t.Fatal(err)
		}
		return specs
	}
	for _, c := range []struct {
		name    string
		specs   []*slo.Spec
		argo    string
		flagger string
	}{
		{"services", specsOf([2]string{"my_service", "a"}, [2]string{"My-Service", "a"}),
			`service "my_service" and service "My-Service" would both be the AnalysisTemplate "my-service-slo-burn-rate" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`,
			`SLO my_service/a and SLO My-Service/a would both be the MetricTemplate "my-service-a-burn-rate" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`},
		{"SLOs of a service", specsOf([2]string{"api", "a_b"}, [2]string{"api", "a.b"}),
			`SLO api/a_b and SLO api/a.b would both be the metric of AnalysisTemplate api-slo-burn-rate "a-b-burn-rate" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`,
			`SLO api/a_b and SLO api/a.b would both be the MetricTemplate "api-a-b-burn-rate" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`},
		{"service and SLO", specsOf([2]string{"a-b", "c"}, [2]string{"a", "b-c"}), "",
			`SLO a-b/c and SLO a/b-c would both be the MetricTemplate "a-b-c-burn-rate" (Kubernetes names are lower case, with '-' for '_' and '.'): rename one`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ArgoAnalysisTemplates(c.specs, "")
			if c.argo == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || err.Error() != c.argo {
				t.Fatalf("argo: got %v, want %s", err, c.argo)
			}
			_, err = FlaggerMetricTemplates(c.specs, "", "")
			if err == nil || err.Error() != c.flagger {
				t.Fatalf("flagger: got %v, want %s", err, c.flagger)
			}
		})
	}
}
