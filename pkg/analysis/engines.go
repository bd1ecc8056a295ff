package analysis

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

// DefaultPrometheusAddress is the Prometheus the generated templates query.
const DefaultPrometheusAddress = "http://prometheus.monitoring.svc:9090"

// SLOCheck is the burn-rate check of one SLO, as the generated Argo
// Rollouts and Flagger templates run it without sred: the burn rate over
// the short window of the SLO's fastest alert tier (the page tier when it
// has one) must stay at or below that tier's factor; a canary burning the
// budget as fast as a page would fire fails.
type SLOCheck struct {
	Service string
	SLO     string
	// Name is the Kubernetes name: <service>-<slo>-burn-rate.
	Name   string
	Window time.Duration
	Max    float64
	// Query reads the generated burn-rate recording (the worst group).
	Query string
}

// SLOChecks returns the burn-rate check of each SLO of the specs that has
// an alert tier (SLOs whose alerting is all disabled have none).
func SLOChecks(specs []*slo.Spec) []SLOCheck {
	var out []SLOCheck
	for _, s := range specs {
		for i := range s.SLOs {
			o := &s.SLOs[i]
			ws := o.Windows()
			if len(ws) == 0 {
				continue
			}
			w := ws[0] // page tiers first, the fastest first
			sel := labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelService, s.Service).String() + "," +
				labels.MustNewMatcher(labels.MatchEqual, rulegen.LabelSLO, o.Name).String()
			out = append(out, SLOCheck{
				Service: s.Service, SLO: o.Name, Name: k8sName(s.Service + "-" + o.Name + "-burn-rate"),
				Window: w.Short, Max: w.BurnRate,
				Query: fmt.Sprintf("max(%s{%s})", rulegen.BurnRateRecord(w.Short), sel),
			})
		}
	}
	return out
}

func k8sName(s string) string {
	s = strings.ToLower(strings.NewReplacer("_", "-", ".", "-", "/", "-").Replace(s))
	if len(s) > 253 {
		s = s[:253]
	}
	return strings.Trim(s, "-")
}

// k8sNames detects two objects (or metrics) that would get the same
// Kubernetes name: k8sName folds case and turns _ and . into -, so
// services my_service and my-service are both my-service.
type k8sNames struct {
	kind string
	seen map[string]string // name -> what has it
}

func newK8sNames(kind string) *k8sNames { return &k8sNames{kind: kind, seen: map[string]string{}} }

func (n *k8sNames) add(name, what string) error {
	if other, ok := n.seen[name]; ok && other != what {
		return fmt.Errorf("%s and %s would both be the %s %q (Kubernetes names are lower case, with '-' for '_' and '.'): rename one", other, what, n.kind, name)
	}
	n.seen[name] = what
	return nil
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Generated is one generated manifest file.
type Generated struct {
	// Name is the file name, <service>.yml.
	Name string
	Data []byte
}

type object struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   objectMeta     `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
}

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

var managedBy = map[string]string{"app.kubernetes.io/managed-by": "srectl"}

func encode(comment string, objs []object) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(rulegen.Header)
	buf.WriteString(comment)
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(o); err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", o.Kind, o.Metadata.Name, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func byService(checks []SLOCheck) ([]string, map[string][]SLOCheck) {
	var order []string
	m := map[string][]SLOCheck{}
	for _, c := range checks {
		if _, ok := m[c.Service]; !ok {
			order = append(order, c.Service)
		}
		m[c.Service] = append(m[c.Service], c)
	}
	return order, m
}

// ArgoAnalysisTemplates returns an Argo Rollouts AnalysisTemplate per
// service (<service>-slo-burn-rate), one prometheus metric per SLO: a
// measurement is Successful while the burn rate stays at or below the
// check's maximum, Failed above it, and Inconclusive without data (the
// rollout pauses: no recording means the rules are not loaded, or the
// service has no traffic). The Prometheus address is the template's
// prometheus-address argument, promAddress by default.
func ArgoAnalysisTemplates(specs []*slo.Spec, promAddress string) ([]Generated, error) {
	if promAddress == "" {
		promAddress = DefaultPrometheusAddress
	}
	order, m := byService(SLOChecks(specs))
	var out []Generated
	templates := newK8sNames("AnalysisTemplate")
	for _, svc := range order {
		if err := templates.add(k8sName(svc+"-slo-burn-rate"), fmt.Sprintf("service %q", svc)); err != nil {
			return nil, err
		}
		var metrics []map[string]any
		metricNames := newK8sNames("metric of AnalysisTemplate " + k8sName(svc+"-slo-burn-rate"))
		for _, c := range m[svc] {
			if err := metricNames.add(k8sName(c.SLO+"-burn-rate"), fmt.Sprintf("SLO %s/%s", c.Service, c.SLO)); err != nil {
				return nil, err
			}
			max := fmtFloat(c.Max)
			metrics = append(metrics, map[string]any{
				"name":              k8sName(c.SLO + "-burn-rate"),
				"interval":          "1m",
				"failureLimit":      0,
				"inconclusiveLimit": 0,
				"successCondition":  "len(result) > 0 && !isNaN(result[0]) && result[0] <= " + max,
				"failureCondition":  "len(result) > 0 && !isNaN(result[0]) && result[0] > " + max,
				"provider": map[string]any{"prometheus": map[string]any{
					"address": "{{args.prometheus-address}}",
					"query":   c.Query,
				}},
			})
		}
		obj := object{
			APIVersion: "argoproj.io/v1alpha1", Kind: "AnalysisTemplate",
			Metadata: objectMeta{Name: k8sName(svc + "-slo-burn-rate"), Labels: managedBy},
			Spec: map[string]any{
				"args":    []map[string]any{{"name": "prometheus-address", "value": promAddress}},
				"metrics": metrics,
			},
		}
		data, err := encode(fmt.Sprintf("# SLO burn-rate checks of service %s for Argo Rollouts (docs/rollouts.md).\n", svc), []object{obj})
		if err != nil {
			return nil, err
		}
		out = append(out, Generated{Name: svc + ".yml", Data: data})
	}
	return out, nil
}

// FlaggerMetricTemplates returns the Flagger MetricTemplates of each
// service (<service>-<slo>-burn-rate), to reference from a Canary's
// analysis.metrics with thresholdRange.max set to the check's maximum
// (written in each template's annotations and in the file's comment).
func FlaggerMetricTemplates(specs []*slo.Spec, promAddress, namespace string) ([]Generated, error) {
	if promAddress == "" {
		promAddress = DefaultPrometheusAddress
	}
	order, m := byService(SLOChecks(specs))
	var out []Generated
	templates := newK8sNames("MetricTemplate")
	for _, svc := range order {
		var objs []object
		var comment strings.Builder
		fmt.Fprintf(&comment, "# SLO burn-rate MetricTemplates of service %s for Flagger (docs/rollouts.md).\n# Reference them from a Canary's analysis.metrics:\n", svc)
		for _, c := range m[svc] {
			if err := templates.add(c.Name, fmt.Sprintf("SLO %s/%s", c.Service, c.SLO)); err != nil {
				return nil, err
			}
			max := fmtFloat(c.Max)
			fmt.Fprintf(&comment, "#   - name: %s\n#     templateRef: {name: %s%s}\n#     thresholdRange: {max: %s}\n#     interval: 1m\n", c.Name, c.Name, nsRef(namespace), max)
			objs = append(objs, object{
				APIVersion: "flagger.app/v1beta1", Kind: "MetricTemplate",
				Metadata: objectMeta{Name: c.Name, Namespace: namespace, Labels: managedBy,
					Annotations: map[string]string{"sre.rootuip.io/threshold-max": max, "sre.rootuip.io/window": rulegen.WindowName(c.Window)}},
				Spec: map[string]any{
					"provider": map[string]any{"type": "prometheus", "address": promAddress},
					"query":    c.Query,
				},
			})
		}
		data, err := encode(comment.String(), objs)
		if err != nil {
			return nil, err
		}
		out = append(out, Generated{Name: svc + ".yml", Data: data})
	}
	return out, nil
}

func nsRef(ns string) string {
	if ns == "" {
		return ""
	}
	return ", namespace: " + ns
}
