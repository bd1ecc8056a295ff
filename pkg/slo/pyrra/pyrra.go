// Package pyrra imports Pyrra's ServiceLevelObjective objects (apiVersion
// pyrra.dev/v1alpha1, as Pyrra's Kubernetes operator and its filesystem
// mode read them), one or several per file, also inside a Kubernetes List
// (`kubectl get slo -o yaml`), into the slo model. Importing the package
// registers the format with slo.LoadFile and slo.LoadDir.
//
// metadata.name becomes the SLO's name, spec.target (a percentage written
// as a string) its objective, spec.window its period (as spelled), and the
// indicator (ratio, latency, latencyNative, bool_gauge) the events,
// latency, native latency or bool SLI, its grouping the groupBy labels.
// Pyrra has no service: it is the label pyrra.dev/service, else
// app.kubernetes.io/name, else the namespace. Labels and annotations
// prefixed pyrra.dev/ (the ones Pyrra copies to its rules and alerts) are
// added to every rule and alert without the prefix. As in Pyrra,
// alerting.name names the burn-rate alerts of both tiers. Whatever Pyrra
// feature the model cannot express (custom severities, absent alerts,
// ruleOutput, a target written as a fraction) is an error naming the
// field.
package pyrra

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// APIVersion and Kind name Pyrra's object; ListKind is its list.
const (
	APIVersion = "pyrra.dev/v1alpha1"
	Kind       = "ServiceLevelObjective"
	ListKind   = "ServiceLevelObjectiveList"
)

// Labels naming the service of an SLO, in order of preference (then the
// namespace).
const (
	ServiceLabel = "pyrra.dev/service"
	NameLabel    = "app.kubernetes.io/name"
	// Prefix marks the labels and annotations Pyrra copies to its rules.
	Prefix = "pyrra.dev/"
)

func init() { slo.RegisterImporter(importer{}) }

// metadata is Kubernetes' ObjectMeta: the fields the import reads, and the
// others (written by the API server, shown by kubectl get -o yaml) ignored.
type metadata struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`

	GenerateName               *yaml.Node `yaml:"generateName"`
	SelfLink                   *yaml.Node `yaml:"selfLink"`
	UID                        *yaml.Node `yaml:"uid"`
	ResourceVersion            *yaml.Node `yaml:"resourceVersion"`
	Generation                 *yaml.Node `yaml:"generation"`
	CreationTimestamp          *yaml.Node `yaml:"creationTimestamp"`
	DeletionTimestamp          *yaml.Node `yaml:"deletionTimestamp"`
	DeletionGracePeriodSeconds *yaml.Node `yaml:"deletionGracePeriodSeconds"`
	OwnerReferences            *yaml.Node `yaml:"ownerReferences"`
	Finalizers                 *yaml.Node `yaml:"finalizers"`
	ManagedFields              *yaml.Node `yaml:"managedFields"`
}

type query struct {
	Metric string `yaml:"metric"`
}

type object struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       spec     `yaml:"spec"`
	// Written by the operator; not part of the SLO.
	Status *yaml.Node `yaml:"status"`
}

// spec is Pyrra's ServiceLevelObjectiveSpec.
type spec struct {
	Description string `yaml:"description"`
	// A string in Pyrra ("99.5"); a plain YAML number is read too.
	Target    string `yaml:"target"`
	Window    string `yaml:"window"`
	Indicator struct {
		Ratio *struct {
			Errors   query    `yaml:"errors"`
			Total    query    `yaml:"total"`
			Grouping []string `yaml:"grouping"`
		} `yaml:"ratio"`
		Latency *struct {
			Success  query    `yaml:"success"`
			Total    query    `yaml:"total"`
			Grouping []string `yaml:"grouping"`
		} `yaml:"latency"`
		LatencyNative *struct {
			Total    query    `yaml:"total"`
			Latency  string   `yaml:"latency"`
			Grouping []string `yaml:"grouping"`
		} `yaml:"latencyNative"`
		// Pyrra's JSON name is bool_gauge (not boolGauge).
		BoolGauge *struct {
			Metric   string   `yaml:"metric"`
			Grouping []string `yaml:"grouping"`
		} `yaml:"bool_gauge"`
	} `yaml:"indicator"`
	Alerting struct {
		Disabled   *bool  `yaml:"disabled"`
		Burnrates  *bool  `yaml:"burnrates"`
		Absent     *bool  `yaml:"absent"`
		Name       string `yaml:"name"`
		AbsentName string `yaml:"absentName"`
		Severities *struct {
			Absent       string `yaml:"absent"`
			FastBurn     string `yaml:"fastBurn"`
			MediumBurn   string `yaml:"mediumBurn"`
			SlowBurn     string `yaml:"slowBurn"`
			LongTermBurn string `yaml:"longTermBurn"`
		} `yaml:"severities"`
	} `yaml:"alerting"`
	PartialResponseStrategy string     `yaml:"partial_response_strategy"`
	PerformanceOverAccuracy bool       `yaml:"performanceOverAccuracy"`
	RuleOutput              *yaml.Node `yaml:"ruleOutput"`
}

type list struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Metadata   *yaml.Node  `yaml:"metadata"`
	Items      []yaml.Node `yaml:"items"`
}

type importer struct{}

func (importer) Name() string { return APIVersion }

// scalar is the value of field key of mapping doc as the decoder reads it
// (a merged field, an alias followed), "" when it is no scalar.
func scalar(doc *yaml.Node, key string) string {
	if n := yamlerr.Lookup(doc, key); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// Match takes Pyrra's objects and lists, and a Kubernetes List (apiVersion
// v1) whose first item is a Pyrra object.
func (importer) Match(doc *yaml.Node) bool {
	switch {
	case scalar(doc, "apiVersion") == APIVersion:
		return true
	case scalar(doc, "apiVersion") == "v1" && scalar(doc, "kind") == "List":
		items := yamlerr.Lookup(doc, "items")
		return items != nil && items.Kind == yaml.SequenceNode && len(items.Content) > 0 &&
			scalar(items.Content[0], "apiVersion") == APIVersion
	}
	return false
}

// converted is one imported SLO and where its fields come from.
type converted struct {
	service string
	slo     slo.SLO
	// pos maps native field paths under the SLO (objective, period,
	// sli.events.errorSelector) to positions in the file.
	pos map[string]slo.Position
}

func (importer) Import(file string, docs []*yaml.Node) ([]*slo.Spec, error) {
	var (
		all  []converted
		errs slo.Errors
	)
	for _, doc := range docs {
		kind := scalar(doc, "kind")
		if kind != "List" && kind != ListKind {
			c, err := convert(file, doc, "")
			errs = append(errs, err...)
			if c != nil {
				all = append(all, *c)
			}
			continue
		}
		var l list
		pos, err := slo.DecodeStrictPositions(file, doc, &l, "")
		if err != nil {
			errs = append(errs, err.(slo.Errors)...)
			continue
		}
		if len(l.Items) == 0 {
			// As an empty file: generating nothing would remove every rule.
			at := doc
			if p, ok := pos["items"]; ok {
				at = &yaml.Node{Line: p.Line, Column: p.Column}
			}
			errs = append(errs, &slo.Error{File: file, Line: at.Line, Column: at.Column, Field: "items", Msg: "no ServiceLevelObjective in the list"})
			continue
		}
		for i := range l.Items {
			c, err := convert(file, &l.Items[i], fmt.Sprintf("items[%d]", i))
			errs = append(errs, err...)
			if c != nil {
				all = append(all, *c)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// One spec per service, in the order the services first appear.
	specs := map[string]*slo.Spec{}
	var out []*slo.Spec
	for _, c := range all {
		s, ok := specs[c.service]
		if !ok {
			s = &slo.Spec{APIVersion: slo.APIVersion, Kind: slo.Kind, Service: c.service, File: file, Line: c.slo.Line, Source: APIVersion + " " + Kind}
			specs[c.service] = s
			out = append(out, s)
		}
		for rel, p := range c.pos {
			s.SetPosition(fmt.Sprintf("slos[%d].%s", len(s.SLOs), rel), p.Line, p.Column)
		}
		s.SLOs = append(s.SLOs, c.slo)
	}
	return out, nil
}

// refusal is an error at a field of the object (under prefix), or at the
// object itself when the field is not written.
type refusal struct {
	file   string
	prefix string
	doc    *yaml.Node
	pos    map[string]slo.Position
	errs   slo.Errors
}

func (r *refusal) add(field, format string, args ...any) {
	path := field
	if r.prefix != "" {
		path = r.prefix + "." + field
	}
	line, col := r.doc.Line, r.doc.Column
	for p := path; p != ""; {
		if at, ok := r.pos[p]; ok {
			line, col = at.Line, at.Column
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	r.errs = append(r.errs, &slo.Error{File: r.file, Line: line, Column: col, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// convert reads one ServiceLevelObjective; prefix is its path in the
// document (items[0] in a list).
func convert(file string, doc *yaml.Node, prefix string) (*converted, slo.Errors) {
	if v, k := scalar(doc, "apiVersion"), scalar(doc, "kind"); v != APIVersion || k != Kind {
		// Before decoding: another object's fields are not Pyrra's.
		at, path := doc, "kind"
		if n := yamlerr.Lookup(doc, "kind"); n != nil {
			at = n
		}
		if prefix != "" {
			path = prefix + ".kind"
		}
		return nil, slo.Errors{{File: file, Line: at.Line, Column: at.Column, Field: path, Msg: fmt.Sprintf("unsupported object %s %s (want %s %s)", v, k, APIVersion, Kind)}}
	}
	var in object
	pos, err := slo.DecodeStrictPositions(file, doc, &in, prefix)
	if err != nil {
		return nil, err.(slo.Errors)
	}
	r := &refusal{file: file, prefix: prefix, doc: doc, pos: pos}
	md, sp := in.Metadata, in.Spec
	if md.Name == "" {
		r.add("metadata.name", "missing metadata.name (the SLO's name)")
	}

	// The service: Pyrra has none (Sloth's object names it in spec.service).
	c := &converted{pos: map[string]slo.Position{}}
	switch {
	case md.Labels[ServiceLabel] != "":
		c.service = md.Labels[ServiceLabel]
	case md.Labels[NameLabel] != "":
		c.service = md.Labels[NameLabel]
	case md.Namespace != "":
		c.service = md.Namespace
	default:
		r.add("metadata", "no service: set the label %s (or %s), or metadata.namespace", ServiceLabel, NameLabel)
	}

	o := slo.SLO{Name: md.Name, Description: sp.Description, Line: doc.Line}
	at := func(native, pyrra string) {
		if prefix != "" {
			pyrra = prefix + "." + pyrra
		}
		if p, ok := pos[pyrra]; ok {
			c.pos[native] = p
		}
	}
	at("name", "metadata.name")
	at("description", "spec.description")

	// Labels and annotations Pyrra copies to its rules and alerts.
	for _, k := range slices.Sorted(maps.Keys(md.Labels)) {
		v := md.Labels[k]
		name, ok := strings.CutPrefix(k, Prefix)
		if !ok || k == ServiceLabel {
			continue
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[name] = v
		at("labels."+name, "metadata.labels."+k)
	}
	// In order, so that runbook_url wins over runbook whatever the file's order.
	for _, k := range slices.Sorted(maps.Keys(md.Annotations)) {
		v := md.Annotations[k]
		name, ok := strings.CutPrefix(k, Prefix)
		if !ok {
			continue
		}
		if name == "runbook" && md.Annotations[Prefix+"runbook_url"] != "" {
			continue
		}
		if name == "runbook_url" || name == "runbook" {
			o.Alerting.RunbookURL = v
			at("alerting.runbookURL", "metadata.annotations."+k)
			continue
		}
		if o.Alerting.Annotations == nil {
			o.Alerting.Annotations = map[string]string{}
		}
		o.Alerting.Annotations[name] = v
		at("alerting.annotations."+name, "metadata.annotations."+k)
	}

	// target: a percentage in a string.
	switch t, err := strconv.ParseFloat(strings.TrimSpace(sp.Target), 64); {
	case sp.Target == "":
		r.add("spec.target", `missing target (a percentage such as "99.5")`)
	case err != nil || math.IsNaN(t) || math.IsInf(t, 0):
		r.add("spec.target", `target %q is not a number (write a percentage such as "99.5")`, sp.Target)
	case t > 0 && t < 1:
		// Pyrra only warns, and its rules compare the error ratio with
		// 1 - target/100 (above 99%): they never fire.
		r.add("spec.target", "target %q is a fraction, but Pyrra's target is a percentage (Pyrra only warns, and its alerts never fire): write %q", sp.Target, strconv.FormatFloat(t*100, 'f', -1, 64))
	default:
		o.Objective = t
		at("objective", "spec.target")
	}

	// window: the period, spelled as written (4w stays 4w).
	switch {
	case sp.Window == "":
		r.add("spec.window", "missing window (a Prometheus duration such as 28d)")
	case o.SetPeriod(sp.Window) != nil:
		r.add("spec.window", "invalid window %q (use a Prometheus duration such as 7d, 4w or 28d)", sp.Window)
	default:
		at("period", "spec.window")
	}

	convertSLI(r, &o, &sp, at)
	convertAlerting(r, &o, &sp)

	switch sp.PartialResponseStrategy {
	case "", "abort":
		// Thanos Ruler's default for rules without a strategy.
	default:
		r.add("spec.partial_response_strategy", "partial_response_strategy %q is not supported: generated rule groups have none (Thanos Ruler aborts on partial responses)", sp.PartialResponseStrategy)
	}
	if sp.RuleOutput != nil {
		r.add("spec.ruleOutput", "ruleOutput is not supported: labels of the PrometheusRule objects are set with srectl generate --prometheus-rule.label, and a description never becomes a label")
	}
	// spec.performanceOverAccuracy chooses how Pyrra computes its long
	// windows; generated rules always read recorded 5m rates (no raw
	// increase over the window), so it changes nothing here.

	if len(r.errs) > 0 {
		return nil, r.errs
	}
	c.slo = o
	return c, nil
}

// convertSLI sets the SLI and groupBy of o from the indicator.
func convertSLI(r *refusal, o *slo.SLO, sp *spec, at func(native, pyrra string)) {
	ind := sp.Indicator
	n := 0
	for _, set := range []bool{ind.Ratio != nil, ind.Latency != nil, ind.LatencyNative != nil, ind.BoolGauge != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		r.add("spec.indicator", "exactly one of ratio, latency, latencyNative and bool_gauge is needed (got %d)", n)
		return
	}
	const ip = "spec.indicator."
	at("sli", "spec.indicator")
	grouping := func(kind string, g []string) {
		o.GroupBy = g
		at("groupBy", ip+kind+".grouping")
		for i := range g {
			at(fmt.Sprintf("groupBy[%d]", i), fmt.Sprintf("%s%s.grouping[%d]", ip, kind, i))
		}
	}
	switch {
	case ind.Ratio != nil:
		o.SLI.Events = &slo.EventsSLI{ErrorSelector: ind.Ratio.Errors.Metric, TotalSelector: ind.Ratio.Total.Metric}
		at("sli.events", ip+"ratio")
		at("sli.events.errorSelector", ip+"ratio.errors.metric")
		at("sli.events.totalSelector", ip+"ratio.total.metric")
		grouping("ratio", ind.Ratio.Grouping)
	case ind.Latency != nil:
		hist, threshold, ok := classicHistogram(r, ind.Latency.Success.Metric, ind.Latency.Total.Metric)
		if !ok {
			return
		}
		o.SLI.Latency = &slo.LatencySLI{Histogram: hist, Threshold: slo.Threshold(threshold)}
		at("sli.latency", ip+"latency")
		at("sli.latency.histogram", ip+"latency.total.metric")
		at("sli.latency.threshold", ip+"latency.success.metric")
		grouping("latency", ind.Latency.Grouping)
	case ind.LatencyNative != nil:
		ln := ind.LatencyNative
		d, err := model.ParseDuration(ln.Latency)
		if err != nil || d <= 0 {
			r.add(ip+"latencyNative.latency", "invalid latency %q (a Prometheus duration such as 200ms)", ln.Latency)
			return
		}
		secs := time.Duration(d).Seconds()
		if name := metricOf(ln.Total.Metric); name != "" {
			// Pyrra compares the latency in seconds whatever the
			// histogram's unit: histogram_fraction(0, 0.2) of a histogram
			// in milliseconds counts nearly every request as slow.
			for _, unit := range []string{"milliseconds", "microseconds", "nanoseconds", "minutes", "hours"} {
				if strings.HasSuffix(name, "_"+unit) || strings.Contains(name, "_"+unit+"_") {
					r.add(ip+"latencyNative.latency", "latency %s is read as %v seconds, but histogram %s is in %s: write this SLO in the %s format with the threshold in %s", ln.Latency, secs, name, unit, slo.APIVersion, unit)
					return
				}
			}
		}
		o.SLI.Latency = &slo.LatencySLI{Histogram: ln.Total.Metric, Threshold: slo.Threshold(secs), Native: true}
		at("sli.latency", ip+"latencyNative")
		at("sli.latency.histogram", ip+"latencyNative.total.metric")
		at("sli.latency.threshold", ip+"latencyNative.latency")
		grouping("latencyNative", ln.Grouping)
	case ind.BoolGauge != nil:
		o.SLI.Bool = &slo.BoolSLI{Selector: ind.BoolGauge.Metric}
		at("sli.bool", ip+"bool_gauge")
		at("sli.bool.selector", ip+"bool_gauge.metric")
		grouping("bool_gauge", ind.BoolGauge.Grouping)
	}
}

// metricOf is the metric name of a selector, or "".
func metricOf(sel string) string {
	e, err := slo.Parser.ParseExpr(sel)
	if err != nil {
		return ""
	}
	vs, ok := e.(*parser.VectorSelector)
	if !ok {
		return ""
	}
	return nameOf(vs)
}

func nameOf(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// classicHistogram turns Pyrra's latency indicator, success x_bucket{...,
// le="0.5"} and total x_count{...}, into the histogram x{...} and the
// threshold 0.5. Both must select the same series of one histogram, apart
// from le: otherwise good and total events would count different requests.
func classicHistogram(r *refusal, success, total string) (string, float64, bool) {
	const sp, tp = "spec.indicator.latency.success.metric", "spec.indicator.latency.total.metric"
	parse := func(field, sel string) *parser.VectorSelector {
		e, err := slo.Parser.ParseExpr(sel)
		if err != nil {
			r.add(field, "invalid selector %q: %v", sel, err)
			return nil
		}
		vs, ok := e.(*parser.VectorSelector)
		if !ok || nameOf(vs) == "" {
			r.add(field, "%q is not a selector with a metric name (e.g. x_bucket{job=\"api\",le=\"0.5\"})", sel)
			return nil
		}
		return vs
	}
	s, t := parse(sp, success), parse(tp, total)
	if s == nil || t == nil {
		return "", 0, false
	}
	base, ok := strings.CutSuffix(nameOf(t), "_count")
	if !ok {
		r.add(tp, "total metric %s is not a histogram's _count series", nameOf(t))
		return "", 0, false
	}
	if nameOf(s) != base+"_bucket" {
		r.add(sp, "success metric %s is not the _bucket series of %s (want %s_bucket)", nameOf(s), base, base)
		return "", 0, false
	}
	var (
		le    *labels.Matcher
		other []*labels.Matcher
	)
	for _, m := range s.LabelMatchers {
		switch m.Name {
		case model.MetricNameLabel:
		case model.BucketLabel:
			le = m
		default:
			other = append(other, m)
		}
	}
	if le == nil || le.Type != labels.MatchEqual {
		r.add(sp, `success metric needs a matcher le="<latency>" choosing the bucket (e.g. le="0.5")`)
		return "", 0, false
	}
	threshold, err := strconv.ParseFloat(le.Value, 64)
	if err != nil || !(threshold > 0) || math.IsInf(threshold, 0) {
		r.add(sp, "le=%q is not a positive finite bucket bound", le.Value)
		return "", 0, false
	}
	var totalMs []*labels.Matcher
	for _, m := range t.LabelMatchers {
		if m.Name != model.MetricNameLabel {
			totalMs = append(totalMs, m)
		}
	}
	if d := diff(other, totalMs); d != "" {
		r.add(sp, "success and total metrics must select the same series apart from le (%s): good and total events would count different requests", d)
		return "", 0, false
	}
	if d := diff(totalMs, other); d != "" {
		r.add(sp, "success and total metrics must select the same series apart from le (%s): good and total events would count different requests", strings.Replace(d, "success", "total", 1))
		return "", 0, false
	}
	hist := &parser.VectorSelector{Name: base, LabelMatchers: append(totalMs, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, base))}
	return hist.String(), threshold, true
}

// diff names a matcher of a that b lacks, as "success has m", or "".
func diff(a, b []*labels.Matcher) string {
	for _, m := range a {
		found := false
		for _, n := range b {
			if m.String() == n.String() {
				found = true
				break
			}
		}
		if !found {
			return "success has " + m.String()
		}
	}
	return ""
}

// convertAlerting sets the alert tiers of o from spec.alerting.
func convertAlerting(r *refusal, o *slo.SLO, sp *spec) {
	a := sp.Alerting
	const ap = "spec.alerting."
	// Pyrra names all its burn-rate alerts after name (ErrorBudgetBurn
	// without it): both tiers' alerts are named after it, as Sloth's
	// alerting.name names them; without it they keep this generator's
	// names. The budget alert, which Pyrra does not have, keeps its own.
	o.Alerting.Name = a.Name
	if a.Absent != nil && *a.Absent {
		r.add(ap+"absent", "absent alerts are not generated (they fire on idle services): remove absent, or set it to false")
	}
	if a.AbsentName != "" {
		r.add(ap+"absentName", "absent alerts are not generated: remove absentName")
	}
	if s := a.Severities; s != nil {
		for _, f := range []struct{ name, value string }{
			{"absent", s.Absent}, {"fastBurn", s.FastBurn}, {"mediumBurn", s.MediumBurn}, {"slowBurn", s.SlowBurn}, {"longTermBurn", s.LongTermBurn},
		} {
			if f.value != "" {
				r.add(ap+"severities."+f.name, "alert severities are fixed: page for the fast burn rates, ticket for the slow ones, warning for the consumed budget: remove severities.%s", f.name)
			}
		}
	}
	// disabled (deprecated in Pyrra) and burnrates: false both drop the
	// burn-rate alerts, leaving the recording rules; the error-budget
	// alert, which Pyrra does not have, goes with them.
	if (a.Disabled != nil && *a.Disabled) || (a.Burnrates != nil && !*a.Burnrates) {
		o.Alerting.Page.Disabled = true
		o.Alerting.Ticket.Disabled = true
		o.Alerting.Budget.Disabled = true
		return
	}
	dropUnfireable(o)
}

// dropUnfireable leaves out the workbook windows that could never fire at
// a low target: at 90%, 14.4x the 10% budget is an error ratio above 1
// (Pyrra's 14x would not fire either). The tier keeps its other windows,
// and a tier left without windows is disabled. A spec in the native format
// gets a validation error instead, and can set its own windows.
func dropUnfireable(o *slo.SLO) {
	budget := o.ErrorBudget()
	if o.Period <= 0 || !(budget > 0 && budget < 1) {
		return // validation reports the target or the window
	}
	for _, t := range []struct {
		tier *slo.Tier
		sev  string
	}{{&o.Alerting.Page, slo.SeverityPage}, {&o.Alerting.Ticket, slo.SeverityTicket}} {
		ws := slo.DefaultWindows(o.PeriodDuration(), t.sev)
		var keep []slo.BurnWindow
		for _, w := range ws {
			if w.BurnRate*budget < 1 {
				keep = append(keep, slo.BurnWindow{Name: w.Name, LongWindow: model.Duration(w.Long), ShortWindow: model.Duration(w.Short), BurnRate: w.BurnRate})
			}
		}
		switch {
		case len(keep) == len(ws):
		case len(keep) == 0:
			t.tier.Disabled = true
		default:
			t.tier.Windows = keep
		}
	}
}
