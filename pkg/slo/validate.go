package slo

import (
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/template"

	"github.com/rootuip/sre/pkg/limits"
)

var (
	// nameRE is the rule of service names everywhere in sred (changes).
	nameRE      = limits.NameRE
	nameRule    = limits.NameRule
	labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	severityRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// ReservedLabels are set by the generator and cannot be set or grouped by in a spec.
var ReservedLabels = []string{"service", "slo", "severity", "burn_tier", "period", "objective", "sli_kind", "window", "alertname", "alertstate", "le"}

// MinPeriod and MaxPeriod bound an SLO's period.
const (
	MinPeriod = 24 * time.Hour
	MaxPeriod = 366 * 24 * time.Hour
)

// MaxObjective is the highest objective: its error budget, 1e-12, is the
// smallest that ErrorBudget's rounding to 12 decimals keeps above 0.
const MaxObjective = 99.9999999999

// Parser is the PromQL parser used for validation and generation.
var Parser = parser.NewParser(parser.Options{})

// Unparen returns e without the parentheses around it.
func Unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// errorAt returns an error positioned at the field path, or at the closest
// enclosing field whose position is known.
func (s *Spec) errorAt(path, format string, args ...any) *Error {
	e := &Error{File: s.File, Field: cutSegments(path), Msg: fmt.Sprintf(format, cutArgs(args)...)}
	for p := path; ; {
		if pos, ok := s.pos[p]; ok {
			e.Line, e.Column = pos.Line, pos.Column
			return e
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	// Imported specs: fall back to the SLO's or the document's line.
	var idx int
	if _, err := fmt.Sscanf(path, "slos[%d]", &idx); err == nil && idx < len(s.SLOs) && s.SLOs[idx].Line > 0 {
		e.Line, e.Column = s.SLOs[idx].Line, 1
		return e
	}
	e.Line, e.Column = s.Line, 1
	return e
}

// cutArgs cuts the strings an error echoes (names, label keys, matchers,
// selectors and templates as written) to limits.MaxEchoBytes each.
func cutArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			a = limits.Cut(v)
		case fmt.Stringer:
			a = limits.Cut(v.String())
		}
		out[i] = a
	}
	return out
}

// cutSegments cuts each part of a field path (a label key of any length is
// one) as cutArgs cuts the values.
func cutSegments(path string) string {
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		segs[i] = limits.Cut(seg)
	}
	return strings.Join(segs, ".")
}

// SetPosition records where a field path is in the source file, for error
// messages (used by importers).
func (s *Spec) SetPosition(path string, line, column int) {
	if s.pos == nil {
		s.pos = positions{}
	}
	s.pos[path] = Position{Line: line, Column: column}
}

// given reports whether a field path is written in the file with a value
// (not left out, and not field: ~).
func (s *Spec) given(path string) bool {
	p, ok := s.pos[path]
	return ok && !p.null
}

// ApplyDefaults fills unset optional fields with their defaults. A value
// written in the file, even 0, is kept (and validated: period: 0d is out of
// range, not 30d).
func (s *Spec) ApplyDefaults() {
	for i := range s.SLOs {
		o := &s.SLOs[i]
		given := func(field string) bool { return s.given(fmt.Sprintf("slos[%d].%s", i, field)) }
		if o.Period == 0 && o.periodText == "" && !given("period") {
			o.Period = DefaultPeriod
		}
		// A threshold left out takes the default (green 50, yellow
		// 20, exhausted 0).
		if o.BudgetPolicy.Green == 0 && !given("budgetPolicy.green") {
			o.BudgetPolicy.Green = DefaultBudgetPolicy.Green
		}
		if o.BudgetPolicy.Yellow == 0 && !given("budgetPolicy.yellow") {
			o.BudgetPolicy.Yellow = DefaultBudgetPolicy.Yellow
		}
		if o.BudgetPolicy.Exhausted == 0 && !given("budgetPolicy.exhausted") {
			o.BudgetPolicy.Exhausted = DefaultBudgetPolicy.Exhausted
		}
		if o.Alerting.Budget.Consumed == 0 && !given("alerting.budget.consumed") {
			o.Alerting.Budget.Consumed = DefaultBudgetConsumed
		}
		if o.Alerting.Budget.Severity == "" && !given("alerting.budget.severity") {
			o.Alerting.Budget.Severity = DefaultBudgetSeverity
		}
		if o.Alerting.Budget.For == 0 && !given("alerting.budget.for") {
			o.Alerting.Budget.For = DefaultBudgetFor
		}
		// maxDetectionTime: 0 written in the file disables the bound.
		if o.Alerting.Page.MaxDetectionTime == 0 && !given("alerting.page.maxDetectionTime") {
			o.Alerting.Page.MaxDetectionTime = DefaultMaxDetectionTime
		}
		// A window's for: 0s overrides the tier's for:.
		for _, t := range []struct {
			name string
			tier *Tier
		}{{"page", &o.Alerting.Page}, {"ticket", &o.Alerting.Ticket}} {
			for j := range t.tier.Windows {
				w := &t.tier.Windows[j]
				wp := fmt.Sprintf("alerting.%s.windows[%d].", t.name, j)
				w.forSet = w.For != 0 || given(wp+"for")
				w.burnRateSet = w.BurnRate != 0 || given(wp+"burnRate")
				w.budgetConsumedSet = w.BudgetConsumed != 0 || given(wp+"budgetConsumed")
			}
		}
		o.objectiveSet = o.Objective != 0 || given("objective")
	}
}

// Validate applies defaults and checks the spec. The error is an Errors
// listing every problem found.
func (s *Spec) Validate() error {
	s.ApplyDefaults()
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, s.errorAt(path, format, args...)) }

	if s.APIVersion != APIVersion {
		add("apiVersion", "unsupported apiVersion %q (want %s)", s.APIVersion, APIVersion)
	}
	if s.Kind != Kind {
		add("kind", "unsupported kind %q (want %s)", s.Kind, Kind)
	}
	switch {
	case s.Service == "":
		add("service", "missing service name")
	case !nameRE.MatchString(s.Service):
		add("service", "invalid service name %q ("+nameRule+")", s.Service)
	}
	checkLabels(add, "labels", s.Labels)
	if len(s.SLOs) == 0 {
		add("slos", "no SLOs defined")
	}
	names := map[string]int{}
	for i := range s.SLOs {
		p := fmt.Sprintf("slos[%d]", i)
		o := &s.SLOs[i]
		if j, ok := names[o.Name]; ok && o.Name != "" {
			add(p+".name", "duplicate SLO name %q (also slos[%d])", o.Name, j)
		}
		names[o.Name] = i
		s.validateSLO(add, p, o)
	}
	return errs.err()
}

// alertTemplateDefs are the variables Prometheus defines before every
// alert template (as rulefmt's template test does).
const alertTemplateDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

var templateErrRE = regexp.MustCompile(`^template: annotation:(\d+)(?::\d+)?: (.*)$`)

// checkTemplate parses an annotation as Prometheus parses alert templates,
// so that a bad one is reported once, at its field, instead of for every
// generated alert.
func checkTemplate(add func(string, string, ...any), path, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	err := template.NewTemplateExpander(context.Background(), alertTemplateDefs+text, "annotation", nil, 0, nil, nil, nil).ParseTest()
	if err == nil {
		return
	}
	// "template: annotation:1:12: unclosed action": the text is quoted in
	// the message; only a line other than the first is worth naming.
	msg := err.Error()
	if m := templateErrRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if m[1] != "1" {
			msg = "line " + m[1] + ": " + msg
		}
	}
	add(path, "invalid template %q: %s", text, msg)
}

func checkTemplates(add func(string, string, ...any), path string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		checkTemplate(add, path+"."+k, m[k])
	}
}

func checkLabels(add func(string, string, ...any), path string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			add(path+"."+k, "invalid label name %q", k)
		case slices.Contains(ReservedLabels, k):
			add(path+"."+k, "label %q is reserved (set by the generator)", k)
		}
	}
}

func (s *Spec) validateSLO(add func(string, string, ...any), p string, o *SLO) {
	switch {
	case o.Name == "":
		add(p+".name", "missing SLO name")
	case !nameRE.MatchString(o.Name):
		add(p+".name", "invalid SLO name %q ("+nameRule+")", o.Name)
	}
	switch obj := o.Objective; {
	case obj == 0 && !o.objectiveSet:
		add(p+".objective", "missing objective (a percentage such as 99.9)")
	case math.IsNaN(obj) || obj <= 0:
		add(p+".objective", "objective %v must be a percentage, at least 1 and below 100", obj)
	case obj < 1:
		add(p+".objective", "objective %v looks like a fraction; write it as a percentage (%v)", obj, roundRatio(obj*100))
	case obj >= 100:
		add(p+".objective", "objective %v leaves no error budget; it must be below 100", obj)
	case obj > MaxObjective || o.ErrorBudget() <= 0:
		add(p+".objective", "objective %v leaves an error budget below 1e-12 (budgets are kept to 12 decimals); it must be at most %v", obj, MaxObjective)
	}
	if d := o.PeriodDuration(); d < MinPeriod || d > MaxPeriod {
		add(p+".period", "period %s must be between 1d and 366d", o.PeriodName())
	}
	for i, l := range o.GroupBy {
		gp := fmt.Sprintf("%s.groupBy[%d]", p, i)
		switch {
		case !labelNameRE.MatchString(l) || strings.HasPrefix(l, "__"):
			add(gp, "invalid label name %q", l)
		case slices.Contains(ReservedLabels, l):
			add(gp, "cannot group by %q: the label is reserved (set by the generator)", l)
		case slices.Index(o.GroupBy, l) != i:
			add(gp, "duplicate label %q", l)
		}
	}
	checkLabels(add, p+".labels", o.Labels)
	s.checkGroupedLabels(add, p, o)
	s.validateSLI(add, p+".sli", o)
	s.validateAlerting(add, p, o)
	bp := o.BudgetPolicy
	if !(bp.Green > bp.Yellow && bp.Yellow > bp.Exhausted && bp.Exhausted >= 0 && bp.Green <= 100) {
		add(p+".budgetPolicy", "thresholds must satisfy 100 >= green > yellow > exhausted >= 0 (got green %v, yellow %v, exhausted %v)", bp.Green, bp.Yellow, bp.Exhausted)
	}
}

// checkGroupedLabels refuses a groupBy label that a labels field also
// sets: the fixed value would replace the grouped one, so the rules of
// every group would have the same labels and fail at evaluation (duplicate
// series).
func (s *Spec) checkGroupedLabels(add func(string, string, ...any), p string, o *SLO) {
	for _, l := range o.GroupBy {
		for _, f := range []struct {
			path   string
			labels map[string]string
		}{
			{"labels", s.Labels},
			{p + ".labels", o.Labels},
			{p + ".alerting.labels", o.Alerting.Labels},
			{p + ".alerting.page.labels", o.Alerting.Page.Labels},
			{p + ".alerting.ticket.labels", o.Alerting.Ticket.Labels},
		} {
			if _, ok := f.labels[l]; ok {
				add(f.path+"."+l, "label %q is in groupBy: a fixed value would give every group the same labels (duplicate series)", l)
			}
		}
	}
}

func (s *Spec) validateSLI(add func(string, string, ...any), p string, o *SLO) {
	sli := o.SLI
	o.parsed = nil
	n := 0
	for _, set := range []bool{sli.Events != nil, sli.Latency != nil, sli.Bool != nil, sli.Raw != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		add(p, "exactly one of events, latency, bool or raw must be set (got %d)", n)
		return
	}
	switch {
	case sli.Events != nil:
		e := sli.Events
		ep := p + ".events"
		switch {
		case e.ErrorSelector != "" || e.TotalSelector != "":
			if e.ErrorQuery != "" || e.TotalQuery != "" {
				add(ep, "set either errorSelector and totalSelector, or errorQuery and totalQuery, not both")
				return
			}
			errM := o.checkSelector(add, ep+".errorSelector", e.ErrorSelector)
			totM := o.checkSelector(add, ep+".totalSelector", e.TotalSelector)
			if errM == nil || totM == nil {
				return
			}
			// Same counter: the error selector must narrow the total one, or the
			// ratio compares different populations.
			if metricName(errM) == metricName(totM) {
				for _, m := range totM {
					if !containsMatcher(errM, m) {
						add(ep+".errorSelector", "must repeat every matcher of totalSelector (missing %s): errors and totals would count different series", m)
					}
				}
				if len(errM) == len(totM) && len(errs(errM, totM)) == 0 {
					add(ep+".errorSelector", "selects the same series as totalSelector: the error ratio would always be 1")
				}
			}
		case e.ErrorQuery != "" || e.TotalQuery != "":
			// The generator sums both queries by exactly the groupBy labels
			// (rulegen.EventQueries), so their own label sets may differ;
			// only a groupBy label they drop cannot come back.
			o.checkQuery(add, ep+".errorQuery", e.ErrorQuery)
			o.checkQuery(add, ep+".totalQuery", e.TotalQuery)
		default:
			add(ep, "missing errorSelector and totalSelector (or errorQuery and totalQuery)")
		}
	case sli.Latency != nil:
		l := sli.Latency
		lp := p + ".latency"
		ms := o.checkSelector(add, lp+".histogram", l.Histogram)
		if ms != nil {
			name := metricName(ms)
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if strings.HasSuffix(name, suf) {
					add(lp+".histogram", "use the histogram's base name %q, without %s", strings.TrimSuffix(name, suf), suf)
				}
			}
			for _, m := range ms {
				if m.Name == "le" {
					add(lp+".histogram", "do not match le: the threshold selects the bucket")
				}
			}
		}
		if t := float64(l.Threshold); !(t > 0) || math.IsInf(t, 0) {
			add(lp+".threshold", "threshold must be a positive number (got %v)", t)
		} else if ms != nil && l.thresholdText != "" {
			// A duration is converted to seconds: for a histogram whose
			// name says another unit (istio_request_duration_milliseconds)
			// 300ms would select le="0.3", a bucket that does not exist,
			// and the SLO would have no data and never alert.
			for _, u := range []struct {
				unit   string
				factor float64
			}{{"milliseconds", 1e3}, {"microseconds", 1e6}, {"nanoseconds", 1e9}, {"minutes", 1.0 / 60}, {"hours", 1.0 / 3600}} {
				if n := metricName(ms); strings.HasSuffix(n, "_"+u.unit) || strings.Contains(n, "_"+u.unit+"_") {
					add(lp+".threshold", "threshold %s is a duration, read as %v seconds, but histogram %s is in %s: write the number in %s (%s)", l.thresholdText, t, n, u.unit, u.unit, strconv.FormatFloat(t*u.factor, 'g', 12, 64))
					break
				}
			}
		}
	case sli.Bool != nil:
		o.checkSelector(add, p+".bool.selector", sli.Bool.Selector)
	case sli.Raw != nil:
		o.checkQuery(add, p+".raw.errorRatioQuery", sli.Raw.ErrorRatioQuery)
	}
}

// keepParsed remembers what validation parsed, for ParsedExpr.
func (o *SLO) keepParsed(text string, expr parser.Expr) {
	if o.parsed == nil {
		o.parsed = map[string]parser.Expr{}
	}
	o.parsed[text] = expr
}

// ParsedExpr returns the expression Validate parsed from exactly text (a
// selector of the SLI, or one of its queries with the window placeholder
// replaced by 5m), or nil: rule generation need not parse the SLI's own
// PromQL again. The expression is shared: do not modify it.
func (o *SLO) ParsedExpr(text string) parser.Expr {
	return o.parsed[text]
}

// checkSelector parses a vector selector with a metric name.
func (o *SLO) checkSelector(add func(string, string, ...any), path, sel string) []*labels.Matcher {
	if strings.TrimSpace(sel) == "" {
		add(path, "missing selector")
		return nil
	}
	expr, err := Parser.ParseExpr(sel)
	if err != nil {
		add(path, "invalid selector %s: %v", limits.Quote(sel), limits.ParseError(err))
		return nil
	}
	o.keepParsed(sel, expr)
	vs, ok := expr.(*parser.VectorSelector)
	if !ok {
		add(path, "%q is not a series selector (use errorQuery/totalQuery for expressions)", sel)
		return nil
	}
	if SelectorMetricName(vs) == "" {
		add(path, "selector %q has no metric name (write name{...}, {\"name\", ...} or {__name__=\"name\", ...})", sel)
		return nil
	}
	if vs.OriginalOffset != 0 || vs.Timestamp != nil {
		add(path, "selector %q must not use offset or @", sel)
		return nil
	}
	return vs.LabelMatchers
}

// SelectorMetricName is the metric name a selector selects: its name as
// in x{...}, or the value of its __name__="..." matcher, which is how the
// parser reads Prometheus 3's quoted names ({"http.server.duration", ...})
// and {__name__="x"}. It is "" when the name is not one fixed value.
func SelectorMetricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	return metricName(vs.LabelMatchers)
}

// errs returns the matchers of a missing from b.
func errs(a, b []*labels.Matcher) []*labels.Matcher {
	var out []*labels.Matcher
	for _, m := range a {
		if !containsMatcher(b, m) {
			out = append(out, m)
		}
	}
	return out
}

func metricName(ms []*labels.Matcher) string {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func containsMatcher(ms []*labels.Matcher, m *labels.Matcher) bool {
	for _, x := range ms {
		if x.Name == m.Name && x.Type == m.Type && x.Value == m.Value {
			return true
		}
	}
	return false
}

// grouping is the label set an expression's result carries, when known.
type grouping struct {
	known   bool
	without bool
	labels  []string
}

func (g *grouping) equal(o *grouping) bool {
	return g.without == o.without && slices.Equal(g.labels, o.labels)
}

func (g *grouping) String() string {
	if g.without {
		return "without (" + strings.Join(g.labels, ", ") + ")"
	}
	return "by (" + strings.Join(g.labels, ", ") + ")"
}

// outputGrouping returns the labels of an expression's result when its
// outermost operation is an aggregation (through parentheses and binary
// operations with scalars).
func outputGrouping(e parser.Expr) *grouping {
	switch x := e.(type) {
	case *parser.ParenExpr:
		return outputGrouping(x.Expr)
	case *parser.AggregateExpr:
		switch x.Op {
		case parser.TOPK, parser.BOTTOMK, parser.LIMITK, parser.LIMIT_RATIO:
			return &grouping{}
		}
		l := slices.Clone(x.Grouping)
		sort.Strings(l)
		return &grouping{known: true, without: x.Without, labels: l}
	case *parser.BinaryExpr:
		if x.LHS.Type() == parser.ValueTypeScalar {
			return outputGrouping(x.RHS)
		}
		if x.RHS.Type() == parser.ValueTypeScalar {
			return outputGrouping(x.LHS)
		}
		if x.VectorMatching != nil && x.VectorMatching.Card == parser.CardOneToOne && !x.VectorMatching.On && len(x.VectorMatching.MatchingLabels) == 0 {
			l, r := outputGrouping(x.LHS), outputGrouping(x.RHS)
			if l.known && r.known && l.equal(r) {
				return l
			}
		}
	}
	return &grouping{}
}

// checkQuery parses a query with the window placeholder and checks that its
// result keeps the SLO's grouping labels. It returns the result's grouping.
func (o *SLO) checkQuery(add func(string, string, ...any), path, q string) *grouping {
	groupBy := o.GroupBy
	if strings.TrimSpace(q) == "" {
		add(path, "missing query")
		return nil
	}
	if !strings.Contains(q, WindowPlaceholder) {
		add(path, "query must use the range placeholder %s (e.g. rate(x[%s]))", WindowPlaceholder, WindowPlaceholder)
		return nil
	}
	q5m := strings.ReplaceAll(q, WindowPlaceholder, "5m")
	expr, err := Parser.ParseExpr(q5m)
	if err != nil {
		add(path, "invalid PromQL: %v", limits.ParseError(err))
		return nil
	}
	o.keepParsed(q5m, expr)
	if t := expr.Type(); t != parser.ValueTypeVector {
		add(path, "query must return an instant vector, not a %s", t)
		return nil
	}
	g := outputGrouping(expr)
	if g.known {
		for _, l := range groupBy {
			if g.without == slices.Contains(g.labels, l) {
				add(path, "result drops the groupBy label %q (aggregate by it)", l)
			}
		}
	}
	return g
}

func (s *Spec) validateAlerting(add func(string, string, ...any), p string, o *SLO) {
	a := &o.Alerting
	ap := p + ".alerting"
	checkLabels(add, ap+".labels", a.Labels)
	if !(a.MinEvents >= 0) || math.IsInf(a.MinEvents, 0) {
		add(ap+".minEvents", "must be a finite number, not negative (got %v)", a.MinEvents)
	}
	if a.MinEvents > 0 && o.SLI.Kind() != KindEvents && o.SLI.Kind() != KindLatency {
		add(ap+".minEvents", "needs an events or latency SLI (the %s SLI has no event count)", o.SLI.Kind())
	}
	for _, t := range []struct {
		name string
		tier *Tier
	}{{"page", &a.Page}, {"ticket", &a.Ticket}} {
		tp := ap + "." + t.name
		checkLabels(add, tp+".labels", t.tier.Labels)
		for i, w := range t.tier.Windows {
			wp := fmt.Sprintf("%s.windows[%d]", tp, i)
			long, short := time.Duration(w.LongWindow), time.Duration(w.ShortWindow)
			switch {
			case long == 0 || short == 0:
				add(wp, "longWindow and shortWindow are required")
				continue
			case short < BaseWindow:
				add(wp+".shortWindow", "must be at least %s", "5m")
			case short >= long:
				add(wp+".shortWindow", "must be shorter than longWindow")
			case long > o.PeriodDuration():
				add(wp+".longWindow", "must not exceed the period %s", o.PeriodName())
			}
			if w.burnRateSet == w.budgetConsumedSet {
				add(wp, "set exactly one of burnRate and budgetConsumed")
			}
			if w.burnRateSet && (!(w.BurnRate > 0) || math.IsInf(w.BurnRate, 0)) {
				add(wp+".burnRate", "must be a positive number (got %v)", w.BurnRate)
			}
			if w.budgetConsumedSet && !(w.BudgetConsumed > 0 && w.BudgetConsumed <= 100) {
				add(wp+".budgetConsumed", "must be a percentage in (0, 100] (got %v)", w.BudgetConsumed)
			}
			if w.Name != "" && !severityRE.MatchString(w.Name) {
				add(wp+".name", "invalid tier name %q (lower case letters, digits, '_', '-')", w.Name)
			}
			if w.Name == BudgetTier {
				add(wp+".name", "tier name %q is the burn_tier of the error budget alert (SLOErrorBudgetConsumed): its alerts would be taken for it, and the inhibit rules would match one for the other", w.Name)
			}
		}
	}
	if a.Ticket.MaxDetectionTime != 0 {
		add(ap+".ticket.maxDetectionTime", "only the page tier has a maxDetectionTime")
	}
	if !(o.Objective >= 1 && o.Objective <= MaxObjective) || o.ErrorBudget() <= 0 || o.PeriodDuration() < MinPeriod || o.PeriodDuration() > MaxPeriod {
		return // the windows depend on both; their errors are already reported
	}
	if bound := time.Duration(a.Page.MaxDetectionTime); bound > 0 && !a.Page.Disabled {
		// A tier whose windows can never fire (burn rate x error budget
		// >= 1) is reported below; its detection time is infinite, not
		// the 106751d of time.Duration's maximum.
		if d := o.DetectionTime(); d > bound && o.fastestPossibleDetection() != math.MaxInt64 {
			add(ap+".page.maxDetectionTime", "a total outage pages after %s at the earliest (even with a %s long window), above maxDetectionTime %s: lower the page tier's for:, or raise maxDetectionTime (0 disables the bound)",
				model.Duration(o.fastestPossibleDetection()), model.Duration(BaseWindow), model.Duration(bound))
		}
	}
	paths, factors := windowPaths(o, ap), factorPaths(o, ap)
	seen := map[string]string{}
	for i, w := range o.Windows() {
		if first, ok := seen[w.Name]; ok {
			add(paths[i], "duplicate burn tier name %q (also %s): set a name: of its own on one of them", w.Name, first)
		} else {
			seen[w.Name] = strings.TrimPrefix(strings.TrimSuffix(strings.TrimSuffix(paths[i], ".name"), ".longWindow"), p+".")
		}
		if w.Long == 0 || w.BurnRate <= 0 {
			continue
		}
		budget := o.ErrorBudget()
		if w.BurnRate*budget >= 1 {
			add(factors[i], "burn tier %s can never fire: burn rate %g x error budget %g >= 1 (lower the factor, or disable the tier)", w.Name, w.BurnRate, budget)
		}
		if w.Severity == SeverityPage && w.BurnRate <= 1 {
			add(factors[i], "page tier %s has burn rate %g: a budget-neutral burn (1x) would page", w.Name, w.BurnRate)
		}
		// Below 1x (with a rounding margin: 10% of 30d over 3d is 1) a
		// ticket fires while the service spends its budget slower than
		// the period allows: on a healthy service.
		if w.Severity == SeverityTicket && w.BurnRate < 1-1e-9 {
			add(factors[i], "ticket tier %s has burn rate %g: below 1x it fires while the service spends its error budget slower than the period allows (raise burnRate or budgetConsumed)", w.Name, w.BurnRate)
		}
	}
	checkTemplates(add, ap+".annotations", a.Annotations)
	checkTemplates(add, ap+".page.annotations", a.Page.Annotations)
	checkTemplates(add, ap+".ticket.annotations", a.Ticket.Annotations)
	if a.RunbookURL != "" {
		checkTemplate(add, ap+".runbookURL", a.RunbookURL)
	}
	b := a.Budget
	if !b.Disabled {
		if !(b.Consumed > 0 && b.Consumed <= 100) {
			add(ap+".budget.consumed", "must be a percentage in (0, 100]")
		}
		if !severityRE.MatchString(b.Severity) {
			add(ap+".budget.severity", "invalid severity %q", b.Severity)
		}
	}
}

// factorPaths gives the field that sets the factor of each window
// SLO.Windows returns, in its order: the burnRate or budgetConsumed of a
// window written in a tier's windows (the one that is set), alerting itself
// for a default window (its factor is the workbook's).
func factorPaths(o *SLO, ap string) []string {
	return tierPaths(o, ap, func(string) string { return ap }, func(w *BurnWindow) string {
		if !w.burnRateSet && w.budgetConsumedSet {
			return "budgetConsumed"
		}
		return "burnRate"
	})
}

// windowPaths gives the field of each window SLO.Windows returns, in its
// order: a window written in a tier's windows is named by its name: field,
// or by its longWindow when it has none (the default name derives from it);
// a default window by its tier.
func windowPaths(o *SLO, ap string) []string {
	return tierPaths(o, ap, func(tp string) string { return tp }, func(w *BurnWindow) string {
		if w.Name != "" {
			return "name"
		}
		return "longWindow"
	})
}

// tierPaths gives a path for each window SLO.Windows returns, in its
// order: deflt(the tier's path) for each default window of a tier without
// windows of its own, the tier's windows[i].field(window) for each written
// one; a disabled tier has none.
func tierPaths(o *SLO, ap string, deflt func(tierPath string) string, field func(w *BurnWindow) string) []string {
	var out []string
	for _, t := range []struct {
		name string
		tier *Tier
	}{{SeverityPage, &o.Alerting.Page}, {SeverityTicket, &o.Alerting.Ticket}} {
		tp := ap + "." + t.name
		switch {
		case t.tier.Disabled:
		case len(t.tier.Windows) == 0:
			for range DefaultWindows(o.PeriodDuration(), t.name) {
				out = append(out, deflt(tp))
			}
		default:
			for i := range t.tier.Windows {
				out = append(out, fmt.Sprintf("%s.windows[%d].%s", tp, i, field(&t.tier.Windows[i])))
			}
		}
	}
	return out
}
