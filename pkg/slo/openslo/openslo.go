// Package openslo imports OpenSLO v1 documents (SLO, SLI, AlertPolicy and
// AlertCondition) into the slo model. Importing the package registers the
// format with slo.LoadFile and slo.LoadDir.
//
// References (indicatorRef, alertPolicies by name, conditionRef) are
// resolved within one file. Supported: Occurrences budgeting with a
// ratioMetric of Prometheus counter selectors or rate() queries over them
// (or, with counter: true, sums of counters, read as sums of their rates)
// (good or bad, and total; a query's ranges become {{.window}}), one
// rolling timeWindow, objectives with target, and AlertConditions of kind
// burnrate (threshold = burn rate over lookbackWindow; the short window is a
// twelfth of it, at least 5m; alertAfter becomes `for:`; severity page or
// critical is a page, anything else a ticket; the page tier's
// maxDetectionTime is the default plus the longest page alertAfter). Not
// supported: Timeslices
// budgeting, thresholdMetric, calendar windows, non-Prometheus sources,
// Service, DataSource and AlertNotificationTarget objects (ignored).
package openslo

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/yamlerr"
)

// APIVersion is the OpenSLO version this package reads.
const APIVersion = "openslo/v1"

func init() { slo.RegisterImporter(importer{}) }

type metadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   metadata  `yaml:"metadata"`
	Spec       yaml.Node `yaml:"spec"`

	doc *yaml.Node // the whole document
}

type metricSource struct {
	MetricSource struct {
		Type          string `yaml:"type"`
		DataSourceRef string `yaml:"dataSourceRef"`
		Spec          struct {
			Query string `yaml:"query"`
		} `yaml:"spec"`
	} `yaml:"metricSource"`
}

type sliSpec struct {
	Description string `yaml:"description"`
	RatioMetric *struct {
		Counter bool          `yaml:"counter"`
		Good    *metricSource `yaml:"good"`
		Bad     *metricSource `yaml:"bad"`
		Total   *metricSource `yaml:"total"`
		RawType string        `yaml:"rawType"`
	} `yaml:"ratioMetric"`
	ThresholdMetric map[string]string `yaml:"thresholdMetric"`
	Line            int
}

type inlineSLI struct {
	Metadata metadata `yaml:"metadata"`
	Spec     sliSpec  `yaml:"spec"`
}

type sloSpec struct {
	Description     string     `yaml:"description"`
	Service         string     `yaml:"service"`
	Indicator       *inlineSLI `yaml:"indicator"`
	IndicatorRef    string     `yaml:"indicatorRef"`
	BudgetingMethod string     `yaml:"budgetingMethod"`
	TimeWindow      []struct {
		Duration  string            `yaml:"duration"`
		IsRolling bool              `yaml:"isRolling"`
		Calendar  map[string]string `yaml:"calendar"`
	} `yaml:"timeWindow"`
	Objectives []struct {
		DisplayName     string     `yaml:"displayName"`
		Target          float64    `yaml:"target"`
		TargetPercent   float64    `yaml:"targetPercent"`
		Op              string     `yaml:"op"`
		Value           float64    `yaml:"value"`
		TimeSliceTarget float64    `yaml:"timeSliceTarget"`
		TimeSliceWindow string     `yaml:"timeSliceWindow"`
		Indicator       *inlineSLI `yaml:"indicator"`
		IndicatorRef    string     `yaml:"indicatorRef"`
	} `yaml:"objectives"`
	AlertPolicies []yaml.Node `yaml:"alertPolicies"`
}

type conditionSpec struct {
	Description string `yaml:"description"`
	Severity    string `yaml:"severity"`
	Condition   struct {
		Kind           string         `yaml:"kind"`
		Op             string         `yaml:"op"`
		Threshold      float64        `yaml:"threshold"`
		LookbackWindow model.Duration `yaml:"lookbackWindow"`
		AlertAfter     model.Duration `yaml:"alertAfter"`
	} `yaml:"condition"`
}

type policySpec struct {
	Description         string      `yaml:"description"`
	AlertWhenNoData     bool        `yaml:"alertWhenNoData"`
	AlertWhenResolved   bool        `yaml:"alertWhenResolved"`
	AlertWhenBreaching  bool        `yaml:"alertWhenBreaching"`
	Conditions          []yaml.Node `yaml:"conditions"`
	NotificationTargets []yaml.Node `yaml:"notificationTargets"`
}

type importer struct{}

func (importer) Name() string { return APIVersion }

func (importer) Match(doc *yaml.Node) bool {
	v := yamlerr.Lookup(doc, "apiVersion")
	return v != nil && v.Kind == yaml.ScalarNode && v.Value == APIVersion
}

// objectNode decodes the envelope of an object; spec stays a node.
func decodeObject(file string, doc *yaml.Node) (*object, error) {
	// The fields as the decoder reads them: those a merge key brings in
	// are checked (and placed) at the anchor.
	pairs, err := yamlerr.Pairs(doc)
	if err != nil {
		var ne *yamlerr.NodeError
		if errors.As(err, &ne) {
			return nil, slo.Errors{{File: file, Line: ne.Line, Column: ne.Column, Field: "<<", Msg: ne.Err.Error()}}
		}
		return nil, err
	}
	o := &object{}
	if err := doc.Decode(o); err != nil {
		return nil, slo.Errors{{File: file, Line: doc.Line, Column: doc.Column, Msg: err.Error()}}
	}
	for _, p := range pairs {
		switch k := p.Key; k.Value {
		case "apiVersion", "kind", "metadata", "spec":
		default:
			return nil, slo.Errors{{File: file, Line: k.Line, Column: k.Column, Field: k.Value, Msg: fmt.Sprintf("unknown field %q", k.Value)}}
		}
	}
	var md metadata
	for _, p := range pairs {
		if p.Key.Value == "metadata" {
			if err := slo.DecodeStrict(file, p.Value, &md, "metadata"); err != nil {
				return nil, err
			}
		}
	}
	o.Metadata = md
	return o, nil
}

// nameNode is the node of an object's metadata.name, or the object's.
func nameNode(doc *yaml.Node) *yaml.Node {
	if n := yamlerr.Lookup(yamlerr.Lookup(doc, "metadata"), "name"); n != nil {
		return n
	}
	return doc
}

type docs struct {
	file       string
	slos       []*object
	slis       map[string]*object
	policies   map[string]*object
	conditions map[string]*object
}

func (importer) Import(file string, nodes []*yaml.Node) ([]*slo.Spec, error) {
	d := &docs{file: file, slis: map[string]*object{}, policies: map[string]*object{}, conditions: map[string]*object{}}
	var errs slo.Errors
	for _, n := range nodes {
		o, err := decodeObject(file, n)
		if err != nil {
			errs = append(errs, err.(slo.Errors)...)
			continue
		}
		// References resolve by name: a second object of a kind with the
		// same name would silently replace the first.
		byName := map[string]map[string]*object{"SLI": d.slis, "AlertPolicy": d.policies, "AlertCondition": d.conditions}
		if m, ok := byName[o.Kind]; ok {
			if prev, dup := m[o.Metadata.Name]; dup {
				at := nameNode(n)
				errs = append(errs, &slo.Error{File: file, Line: at.Line, Column: at.Column, Field: "metadata.name",
					Msg: fmt.Sprintf("%s %q is already defined at line %d", o.Kind, o.Metadata.Name, nameNode(prev.doc).Line)})
				continue
			}
		}
		o.doc = n
		switch o.Kind {
		case "SLO":
			d.slos = append(d.slos, o)
		case "SLI":
			d.slis[o.Metadata.Name] = o
		case "AlertPolicy":
			d.policies[o.Metadata.Name] = o
		case "AlertCondition":
			d.conditions[o.Metadata.Name] = o
		case "Service", "DataSource", "AlertNotificationTarget":
			// Not needed to generate rules.
		default:
			errs = append(errs, &slo.Error{File: file, Line: n.Line, Column: n.Column, Field: "kind", Msg: fmt.Sprintf("unknown OpenSLO kind %q", o.Kind)})
		}
	}
	specs := map[string]*slo.Spec{}
	var order []string
	for _, o := range d.slos {
		s, err := d.convert(o)
		if err != nil {
			errs = append(errs, err.(slo.Errors)...)
			continue
		}
		for _, x := range s {
			sp, ok := specs[x.service]
			if !ok {
				sp = &slo.Spec{APIVersion: slo.APIVersion, Kind: slo.Kind, Service: x.service, File: file, Line: o.Spec.Line, Source: APIVersion}
				specs[x.service] = sp
				order = append(order, x.service)
			}
			// Validation errors point at the OpenSLO field they are about.
			for rel, p := range x.pos {
				sp.SetPosition(fmt.Sprintf("slos[%d].%s", len(sp.SLOs), rel), p.Line, p.Column)
			}
			sp.SLOs = append(sp.SLOs, x.slo)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out := make([]*slo.Spec, 0, len(order))
	for _, s := range order {
		out = append(out, specs[s])
	}
	return out, nil
}

type converted struct {
	service string
	slo     slo.SLO
	// pos maps native field paths under the SLO (objective, period, sli)
	// to where their source is.
	pos map[string]slo.Position
}

func (d *docs) errf(n *yaml.Node, field, format string, args ...any) slo.Errors {
	return slo.Errors{{File: d.file, Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}}
}

// errAt is an error at the position of field, or of the node when the
// field is absent.
func (d *docs) errAt(pos map[string]slo.Position, field string, n *yaml.Node, format string, args ...any) slo.Errors {
	if p, ok := pos[field]; ok {
		return slo.Errors{{File: d.file, Line: p.Line, Column: p.Column, Field: field, Msg: fmt.Sprintf(format, args...)}}
	}
	return d.errf(n, field, format, args...)
}

func (d *docs) convert(o *object) ([]converted, error) {
	var sp sloSpec
	pos, err := slo.DecodeStrictPositions(d.file, &o.Spec, &sp, "spec")
	if err != nil {
		return nil, err
	}
	if sp.BudgetingMethod != "Occurrences" {
		return nil, d.errAt(pos, "spec.budgetingMethod", &o.Spec, "budgeting method %q is not supported (only Occurrences)", sp.BudgetingMethod)
	}
	switch {
	case len(sp.TimeWindow) != 1:
		return nil, d.errAt(pos, "spec.timeWindow", &o.Spec, "exactly one time window is supported (got %d)", len(sp.TimeWindow))
	case len(sp.TimeWindow[0].Calendar) > 0 || !sp.TimeWindow[0].IsRolling:
		return nil, d.errAt(pos, "spec.timeWindow[0]", &o.Spec, "calendar time windows are not supported (only isRolling: true)")
	}
	ind := sp.Indicator
	sliPos, sliPrefix, sliNode := pos, "spec.indicator.spec", &o.Spec
	if ind == nil && sp.IndicatorRef != "" {
		ref, ok := d.slis[sp.IndicatorRef]
		if !ok {
			return nil, d.errAt(pos, "spec.indicatorRef", &o.Spec, "SLI %q is not defined in this file", sp.IndicatorRef)
		}
		ind = &inlineSLI{Metadata: ref.Metadata}
		if sliPos, err = slo.DecodeStrictPositions(d.file, &ref.Spec, &ind.Spec, "spec"); err != nil {
			return nil, err
		}
		sliPrefix, sliNode = "spec", &ref.Spec
	}
	if ind == nil {
		return nil, d.errf(&o.Spec, "spec.indicator", "missing indicator or indicatorRef")
	}
	sli, err := d.sli(sliPos, sliPrefix, sliNode, ind)
	if err != nil {
		return nil, err
	}
	alerting, alertPos, err := d.alerting(sp.AlertPolicies)
	if err != nil {
		return nil, err
	}
	var out []converted
	for i, obj := range sp.Objectives {
		op := fmt.Sprintf("spec.objectives[%d]", i)
		if obj.TimeSliceTarget != 0 || obj.Indicator != nil || obj.IndicatorRef != "" || obj.Op != "" {
			return nil, d.errAt(pos, op, &o.Spec, "only objectives with a target are supported")
		}
		name := o.Metadata.Name
		if len(sp.Objectives) > 1 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		target, targetPath := obj.Target*100, op+".target"
		if obj.TargetPercent != 0 {
			target, targetPath = obj.TargetPercent, op+".targetPercent"
		}
		desc := sp.Description
		if desc == "" {
			desc = o.Metadata.DisplayName
		}
		n := slo.SLO{
			Name:        name,
			Objective:   round(target),
			Description: desc,
			Labels:      o.Metadata.Labels,
			SLI:         sli,
			Alerting:    alerting,
			Line:        o.Spec.Line,
		}
		// The period keeps OpenSLO's spelling (28d, not 4w).
		if err := n.SetPeriod(sp.TimeWindow[0].Duration); err != nil {
			return nil, d.errAt(pos, "spec.timeWindow[0].duration", &o.Spec, "invalid duration %q (use a Prometheus duration such as 7d or 28d)", sp.TimeWindow[0].Duration)
		}
		c := converted{service: sp.Service, slo: n, pos: map[string]slo.Position{}}
		maps.Copy(c.pos, alertPos)
		for rel, src := range map[string]string{
			"objective": targetPath,
			"period":    "spec.timeWindow[0].duration",
		} {
			if p, ok := pos[src]; ok {
				c.pos[rel] = p
			}
		}
		q := sliPrefix + ".ratioMetric.%s.metricSource.spec.query"
		errSrc := "good"
		if ind.Spec.RatioMetric.Bad != nil {
			errSrc = "bad"
		}
		for rel, src := range map[string]string{
			"sli":                      sliPrefix,
			"sli.events.errorSelector": fmt.Sprintf(q, "bad"),
			"sli.events.totalSelector": fmt.Sprintf(q, "total"),
			"sli.events.errorQuery":    fmt.Sprintf(q, errSrc),
			"sli.events.totalQuery":    fmt.Sprintf(q, "total"),
		} {
			if p, ok := sliPos[src]; ok {
				c.pos[rel] = p
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, d.errAt(pos, "spec.objectives", &o.Spec, "no objectives")
	}
	return out, nil
}

func round(f float64) float64 {
	s := fmt.Sprintf("%.10g", f)
	var r float64
	fmt.Sscan(s, &r)
	return r
}

// sli converts an indicator; pos holds the positions of its fields under
// prefix (the indicator's spec), at is where to point when one is missing.
func (d *docs) sli(pos map[string]slo.Position, prefix string, at *yaml.Node, ind *inlineSLI) (slo.SLI, error) {
	rm := ind.Spec.RatioMetric
	if rm == nil || len(ind.Spec.ThresholdMetric) > 0 {
		field := prefix + ".ratioMetric"
		if len(ind.Spec.ThresholdMetric) > 0 {
			field = prefix + ".thresholdMetric"
		}
		return slo.SLI{}, d.errAt(pos, field, at, "SLI %q: only ratioMetric is supported", ind.Metadata.Name)
	}
	// Each source is a counter selector, or a query of per-second rates
	// (rate() over counter selectors, aggregated or not) kept as a template
	// with {{.window}} in place of its ranges.
	type source struct{ selector, query string }
	query := func(m *metricSource, what string) (source, error) {
		if m == nil {
			return source{}, nil
		}
		src := prefix + ".ratioMetric." + what + ".metricSource"
		if t := m.MetricSource.Type; t != "" && !strings.EqualFold(t, "prometheus") {
			return source{}, d.errAt(pos, src+".type", at, "SLI %q: %s: metric source %q is not supported (only Prometheus)", ind.Metadata.Name, what, t)
		}
		q := strings.TrimSpace(m.MetricSource.Spec.Query)
		e, err := slo.Parser.ParseExpr(q)
		if err != nil {
			return source{}, d.errAt(pos, src+".spec.query", at, "SLI %q: %s: invalid PromQL: %v", ind.Metadata.Name, what, err)
		}
		if _, ok := e.(*parser.VectorSelector); ok {
			return source{selector: q}, nil
		}
		if rm.Counter {
			// OpenSLO's own examples: counter: true and
			// sum(http_requests_total{...}), the counters summed.
			if tmpl, ok := sumOfCounterTemplate(q, e); ok {
				return source{query: tmpl}, nil
			}
		}
		tmpl, err := rateTemplate(q, e)
		if err != nil {
			return source{}, d.errAt(pos, src+".spec.query", at, "SLI %q: %s: %v", ind.Metadata.Name, what, err)
		}
		return source{query: tmpl}, nil
	}
	good, err := query(rm.Good, "good")
	if err != nil {
		return slo.SLI{}, err
	}
	bad, err := query(rm.Bad, "bad")
	if err != nil {
		return slo.SLI{}, err
	}
	total, err := query(rm.Total, "total")
	if err != nil {
		return slo.SLI{}, err
	}
	set := func(s source) bool { return s != source{} }
	switch {
	case !set(total) || set(good) == set(bad):
		return slo.SLI{}, d.errAt(pos, prefix+".ratioMetric", at, "SLI %q: ratioMetric needs total and exactly one of good and bad", ind.Metadata.Name)
	case set(bad) && bad.selector != "" && total.selector != "":
		return slo.SLI{Events: &slo.EventsSLI{ErrorSelector: bad.selector, TotalSelector: total.selector}}, nil
	}
	w := slo.WindowPlaceholder
	asQuery := func(s source) string {
		if s.query != "" {
			return s.query
		}
		return fmt.Sprintf("sum(rate(%s[%s]))", s.selector, w)
	}
	if set(bad) {
		return slo.SLI{Events: &slo.EventsSLI{ErrorQuery: asQuery(bad), TotalQuery: asQuery(total)}}, nil
	}
	// Bad events are all events minus the good ones; both sides are summed
	// so that whatever labels the queries keep, they subtract.
	errQuery := fmt.Sprintf("sum(rate(%s[%s])) - sum(rate(%s[%s]))", total.selector, w, good.selector, w)
	if total.query != "" || good.query != "" {
		errQuery = fmt.Sprintf("sum(%s) - sum(%s)", asQuery(total), asQuery(good))
	}
	return slo.SLI{Events: &slo.EventsSLI{ErrorQuery: errQuery, TotalQuery: asQuery(total)}}, nil
}

// sumOfCounterTemplate turns a sum of counters, sum(x{...}) or
// sum by (l) (x{...}), into the sum of their per-second rates over
// {{.window}}: sum(rate(x{...}[{{.window}}])). Anything else (another
// aggregation, an expression, offset or @) is not.
func sumOfCounterTemplate(q string, e parser.Expr) (string, bool) {
	agg, ok := slo.Unparen(e).(*parser.AggregateExpr)
	if !ok || agg.Op != parser.SUM {
		return "", false
	}
	vs, ok := slo.Unparen(agg.Expr).(*parser.VectorSelector)
	if !ok || vs.OriginalOffset != 0 || vs.OriginalOffsetExpr != nil || vs.Timestamp != nil || vs.StartOrEnd != 0 {
		return "", false
	}
	pr := vs.PositionRange()
	if pr.Start < 0 || int(pr.End) > len(q) {
		return "", false
	}
	return q[:pr.Start] + "rate(" + q[pr.Start:pr.End] + "[" + slo.WindowPlaceholder + "])" + q[pr.End:], true
}

// rateTemplate turns a query of per-second counter rates, such as
// sum(rate(http_requests_total{job="web"}[5m])), into a query template:
// every range becomes {{.window}}, so the generator evaluates it over each
// window. Only rate() over plain selectors is accepted: increase() or
// irate() would not be per-second rates over the window, and offsets, @
// and subqueries would shift or resample it.
func rateTemplate(q string, e parser.Expr) (string, error) {
	if e.Type() != parser.ValueTypeVector {
		return "", fmt.Errorf("the query must return an instant vector, not a %s", e.Type())
	}
	var ranges []*parser.MatrixSelector
	var problem error
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		if problem != nil {
			return problem
		}
		switch x := n.(type) {
		case *parser.SubqueryExpr:
			problem = fmt.Errorf("subqueries are not supported in %q", q)
		case *parser.VectorSelector:
			if x.OriginalOffset != 0 || x.Timestamp != nil || x.StartOrEnd != 0 {
				problem = fmt.Errorf("offset and @ are not supported in %q", q)
			}
		case *parser.MatrixSelector:
			var call *parser.Call
			if len(path) > 0 {
				call, _ = path[len(path)-1].(*parser.Call)
			}
			if call == nil && len(path) > 1 {
				// Inspect lists the call's argument list (Expressions) in between.
				call, _ = path[len(path)-2].(*parser.Call)
			}
			if call == nil || call.Func.Name != "rate" {
				problem = fmt.Errorf("only rate() over counters is supported, e.g. sum(rate(x[5m])) (got %q)", q)
			}
			ranges = append(ranges, x)
		}
		return problem
	})
	if problem != nil {
		return "", problem
	}
	if len(ranges) == 0 {
		return "", fmt.Errorf("only counter selectors or rate() queries over counters are supported, e.g. sum(rate(x[5m])) (got %q)", q)
	}
	// Replace the range of each selector, x[5m], in the text as written,
	// from the last one back so that earlier positions stay valid.
	out := q
	for i := len(ranges) - 1; i >= 0; i-- {
		pr := ranges[i].PositionRange()
		text := out[pr.Start:pr.End]
		open := strings.LastIndexByte(text, '[')
		if open < 0 || !strings.HasSuffix(text, "]") {
			return "", fmt.Errorf("cannot find the range of %q", text)
		}
		out = out[:int(pr.Start)+open+1] + slo.WindowPlaceholder + out[pr.End-1:]
	}
	return out, nil
}

// alerting turns alert policies into tiers. Without policies the
// workbook's defaults apply.
//
// It also returns where each window's values come from, by native path
// under the SLO (alerting.page.windows[0].shortWindow is the condition's
// lookbackWindow), for validation errors.
func (d *docs) alerting(policies []yaml.Node) (slo.Alerting, map[string]slo.Position, error) {
	var a slo.Alerting
	if len(policies) == 0 {
		return a, nil, nil
	}
	winPos := map[string]slo.Position{}
	var page, ticket []slo.BurnWindow
	var pageAfter model.Duration
	for i := range policies {
		pn := &policies[i]
		var spec *yaml.Node
		switch {
		case pn.Kind == yaml.ScalarNode:
			p, ok := d.policies[pn.Value]
			if !ok {
				return a, nil, d.errf(pn, "spec.alertPolicies", "AlertPolicy %q is not defined in this file", pn.Value)
			}
			spec = &p.Spec
		case pn.Kind == yaml.MappingNode:
			var ref struct {
				Kind           string    `yaml:"kind"`
				Metadata       metadata  `yaml:"metadata"`
				Spec           yaml.Node `yaml:"spec"`
				AlertPolicyRef string    `yaml:"alertPolicyRef"`
			}
			if err := pn.Decode(&ref); err != nil {
				return a, nil, d.errf(pn, "spec.alertPolicies", "%v", err)
			}
			if ref.AlertPolicyRef != "" {
				p, ok := d.policies[ref.AlertPolicyRef]
				if !ok {
					return a, nil, d.errf(pn, "spec.alertPolicies", "AlertPolicy %q is not defined in this file", ref.AlertPolicyRef)
				}
				spec = &p.Spec
			} else {
				spec = &ref.Spec
			}
		}
		var ps policySpec
		if err := slo.DecodeStrict(d.file, spec, &ps, "AlertPolicy.spec"); err != nil {
			return a, nil, err
		}
		for j := range ps.Conditions {
			cn := &ps.Conditions[j]
			var cs conditionSpec
			var ref struct {
				ConditionRef string    `yaml:"conditionRef"`
				Kind         string    `yaml:"kind"`
				Metadata     metadata  `yaml:"metadata"`
				Spec         yaml.Node `yaml:"spec"`
			}
			if err := cn.Decode(&ref); err != nil {
				return a, nil, d.errf(cn, "conditions", "%v", err)
			}
			node := &ref.Spec
			name := ref.Metadata.Name
			if ref.ConditionRef != "" {
				c, ok := d.conditions[ref.ConditionRef]
				if !ok {
					return a, nil, d.errf(cn, "conditions", "AlertCondition %q is not defined in this file", ref.ConditionRef)
				}
				node, name = &c.Spec, c.Metadata.Name
			}
			cpos, err := slo.DecodeStrictPositions(d.file, node, &cs, "AlertCondition.spec")
			if err != nil {
				return a, nil, err
			}
			if cs.Condition.Kind != "burnrate" {
				return a, nil, d.errf(node, "AlertCondition.spec.condition.kind", "condition kind %q is not supported (only burnrate)", cs.Condition.Kind)
			}
			if cs.Condition.Op != "" && cs.Condition.Op != "gt" && cs.Condition.Op != "gte" {
				return a, nil, d.errf(node, "AlertCondition.spec.condition.op", "op %q is not supported (gt or gte)", cs.Condition.Op)
			}
			long := time.Duration(cs.Condition.LookbackWindow)
			short := (long / 12).Round(time.Minute)
			if short < slo.BaseWindow {
				short = slo.BaseWindow
			}
			w := slo.BurnWindow{
				Name:        sanitize(name),
				LongWindow:  cs.Condition.LookbackWindow,
				ShortWindow: model.Duration(short),
				BurnRate:    cs.Condition.Threshold,
				For:         cs.Condition.AlertAfter,
			}
			var wp string
			switch strings.ToLower(cs.Severity) {
			case "page", "critical":
				wp = fmt.Sprintf("alerting.page.windows[%d]", len(page))
				page = append(page, w)
				pageAfter = max(pageAfter, w.For)
			default:
				wp = fmt.Sprintf("alerting.ticket.windows[%d]", len(ticket))
				ticket = append(ticket, w)
			}
			for rel, src := range map[string]string{
				"":             "condition",
				".longWindow":  "condition.lookbackWindow",
				".shortWindow": "condition.lookbackWindow",
				".burnRate":    "condition.threshold",
				".for":         "condition.alertAfter",
			} {
				if p, ok := cpos["AlertCondition.spec."+src]; ok {
					winPos[wp+rel] = p
				}
			}
		}
	}
	a.Page = slo.Tier{Disabled: len(page) == 0, Windows: page}
	if pageAfter > 0 {
		// OpenSLO has no bound on detection: alertAfter delays the page
		// on top of the default one.
		a.Page.MaxDetectionTime = slo.DefaultMaxDetectionTime + pageAfter
	}
	a.Ticket = slo.Tier{Disabled: len(ticket) == 0, Windows: ticket}
	return a, winPos, nil
}

func sanitize(s string) string {
	s = strings.ToLower(s)
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
