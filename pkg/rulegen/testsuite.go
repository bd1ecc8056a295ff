package rulegen

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/slo"
)

// Suite is a `promtool test rules` file.
type Suite struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []TestGroup    `yaml:"tests"`
}

// TestGroup is one test of a suite: input series and expectations.
type TestGroup struct {
	Name            string         `yaml:"name"`
	Interval        model.Duration `yaml:"interval"`
	InputSeries     []InputSeries  `yaml:"input_series"`
	AlertRuleTests  []AlertTest    `yaml:"alert_rule_test,omitempty"`
	PromqlExprTests []ExprTest     `yaml:"promql_expr_test,omitempty"`
}

// InputSeries is a series in promtool's expanding notation.
type InputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertTest expects exactly these alerts of one name at one time.
type AlertTest struct {
	EvalTime  model.Duration `yaml:"eval_time"`
	Alertname string         `yaml:"alertname"`
	ExpAlerts []ExpAlert     `yaml:"exp_alerts"`
}

// ExpAlert is an expected alert.
type ExpAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels,omitempty"`
	ExpAnnotations map[string]string `yaml:"exp_annotations,omitempty"`
}

// ExprTest expects exactly these samples from a query at one time.
type ExprTest struct {
	Expr       string         `yaml:"expr"`
	EvalTime   model.Duration `yaml:"eval_time"`
	ExpSamples []ExpSample    `yaml:"exp_samples"`
}

// ExpSample is an expected sample.
type ExpSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// Marshal renders the suite.
func (s *Suite) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(Header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SuiteFileName is the name of an SLO's test suite file.
func SuiteFileName(service, sloName string) string { return service + "-" + sloName + ".yml" }

const (
	minute = time.Minute
	// traffic is the number of events per minute in the scenarios.
	traffic = 1000.0
	// warmup is the healthy history before an outage.
	warmup = 60 * minute
)

// phase is a stretch of the scenario: n minutes of traffic events per
// minute, a share bad of them bad (or exactly badAbs bad events per minute
// when set); reset sets counters back to 0 at its start.
type phase struct {
	n       int
	traffic float64
	bad     float64
	badAbs  float64
	reset   bool
}

// role is what a synthesized input series counts.
type role int

const (
	roleGood   role = iota // good events only
	roleBad                // bad events only
	roleTotal              // all events
	roleGauge              // 1 - bad share, absent without traffic
	roleNative             // native histogram: good events below the threshold, bad above
)

type fixtureSeries struct {
	labels labels.Labels
	role   role
	// native is the bucket layout of a roleNative series.
	native *nativeLayout
	// leAlt marks a bucket series whose le is written in the alternative form.
	leAlt bool
	le    bool
}

// fixture knows how to write input series for an SLO's SLI.
type fixture struct {
	series []fixtureSeries
	groups []map[string]string
}

// ErrNoFixture is wrapped by BuildSuite's error when the inputs of an SLI
// cannot be synthesized: the SLO gets no test suite, which is not a failure
// of the generation.
var ErrNoFixture = errors.New("no test inputs can be synthesized")

// BuildSuite builds a promtool test suite for one SLO, for a rule file at
// ruleFile (relative to the suite). It returns an error wrapping
// ErrNoFixture, saying why, when the SLI's inputs cannot be synthesized (raw
// SLIs other than a ratio of two counter rates, selectors no series can
// satisfy).
func BuildSuite(ruleFile string, spec *slo.Spec, o *slo.SLO) (*Suite, error) {
	fx, err := newFixture(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFixture, err)
	}
	b := o.ErrorBudget()
	pages, tickets := splitWindows(o)
	sb := &suiteBuilder{spec: spec, slo: o, fx: fx}
	s := &Suite{RuleFiles: []string{ruleFile}, EvaluationInterval: model.Duration(minute)}

	// Total outage pages within the computed detection time
	// (SLO.DetectionTime, bounded by the page tier's maxDetectionTime). The
	// last healthy minute ends at warmup-1m.
	if len(pages) > 0 {
		d := o.DetectionTime()
		g := sb.group(fmt.Sprintf("total outage pages within %s", fmtMin(d)), []phase{
			{n: int(warmup / minute), traffic: traffic},
			{n: int((d + 10*minute) / minute), traffic: traffic, bad: 1},
		}, fx.hasBucket())
		g.PromqlExprTests = append(g.PromqlExprTests, sb.none(warmup-minute, slo.SeverityPage))
		g.PromqlExprTests = append(g.PromqlExprTests, sb.firing(warmup-minute+d, slo.SeverityPage, true))
		s.Tests = append(s.Tests, g)

		// The page resets after recovery.
		r := resetTime(pages)
		outage := d + 2*minute
		g = sb.group(fmt.Sprintf("page resets within %s after recovery", fmtMin(r)), []phase{
			{n: int(warmup / minute), traffic: traffic},
			{n: int(outage / minute), traffic: traffic, bad: 1},
			{n: int((r + 10*minute) / minute), traffic: traffic},
		}, false)
		g.PromqlExprTests = append(g.PromqlExprTests, sb.firing(warmup+outage-minute, slo.SeverityPage, true))
		g.PromqlExprTests = append(g.PromqlExprTests, sb.none(warmup+outage+r, slo.SeverityPage))
		s.Tests = append(s.Tests, g)
	}

	// A budget-neutral burn (1x) never pages.
	longest := 6 * time.Hour
	if len(pages) > 0 {
		longest = pages[len(pages)-1].Long
	}
	dur := longest + 30*minute
	g := sb.group("budget-neutral burn (1x) does not page", []phase{{n: int(dur / minute), traffic: traffic, bad: b}}, false)
	for _, at := range spread(dur) {
		g.PromqlExprTests = append(g.PromqlExprTests, sb.none(at, slo.SeverityPage))
	}
	s.Tests = append(s.Tests, g)

	// A slow burn opens a ticket, not a page.
	if len(tickets) > 0 {
		factor := slowBurn(pages, tickets)
		var maxFor time.Duration
		for _, w := range tickets {
			maxFor = max(maxFor, w.For)
		}
		at := 30*minute + maxFor
		dur := at + 30*minute
		g := sb.group(fmt.Sprintf("slow burn (%sx) opens a ticket, not a page", num(factor)), []phase{{n: int(dur / minute), traffic: traffic, bad: factor * b}}, false)
		g.PromqlExprTests = append(g.PromqlExprTests, sb.firing(at, slo.SeverityTicket, true))
		for _, at := range spread(dur) {
			g.PromqlExprTests = append(g.PromqlExprTests, sb.none(at, slo.SeverityPage))
		}
		s.Tests = append(s.Tests, g)
	}

	// Uneven traffic: long windows are a ratio of sums, not an average of
	// 5m ratios. 1h at 10x traffic without errors, then 1h at 1x with 10%
	// errors: 6/660 = 0.91% of the events failed, while the mean of the 5m
	// ratios is about 5%.
	if k := o.SLI.Kind(); (k == slo.KindEvents || k == slo.KindLatency) && fx.counters() {
		s.Tests = append(s.Tests, sb.uneven())
	}

	// No traffic raises nothing and records no ratio (never NaN).
	g = sb.group("no traffic raises nothing", []phase{{n: 120, traffic: 0}}, false)
	for _, a := range slices.Compact([]string{BurnAlertName(o, slo.SeverityPage), BurnAlertName(o, slo.SeverityTicket), AlertBudget}) {
		g.AlertRuleTests = append(g.AlertRuleTests, noneAtAll(120*minute, a))
	}
	for _, r := range []string{ErrorRatioRecord(slo.BaseWindow), ErrorRatioPeriod, ErrorBudgetRemaining} {
		g.PromqlExprTests = append(g.PromqlExprTests, ExprTest{Expr: sb.sel(r), EvalTime: model.Duration(120 * minute), ExpSamples: []ExpSample{}})
	}
	s.Tests = append(s.Tests, g)

	// Traffic that stops leaves a finite budget, not a NaN that sticks.
	g = sb.group("traffic stopping keeps the budget a finite number", []phase{
		{n: 60, traffic: traffic, bad: 2 * b},
		{n: 120, traffic: 0},
	}, false)
	g.PromqlExprTests = append(g.PromqlExprTests, ExprTest{
		Expr:       fmt.Sprintf("count(abs(%s) < +Inf)", sb.sel(ErrorBudgetRemaining)),
		EvalTime:   model.Duration(170 * minute),
		ExpSamples: []ExpSample{{Labels: "{}", Value: float64(len(fx.groups))}},
	})
	s.Tests = append(s.Tests, g)

	if fx.hasRole(roleBad) {
		// A service that never failed has no bad-events series at all:
		// its budget is full, not missing.
		g = sb.group("no error series yet: the budget is full", []phase{{n: 70, traffic: traffic}}, false)
		in := g.InputSeries[:0]
		for _, is := range g.InputSeries {
			if !sb.isBadSeries(is.Series) {
				in = append(in, is)
			}
		}
		g.InputSeries = in
		g.PromqlExprTests = append(g.PromqlExprTests, ExprTest{
			Expr:       fmt.Sprintf("count(%s == 1)", sb.sel(ErrorBudgetRemaining)),
			EvalTime:   model.Duration(70 * minute),
			ExpSamples: []ExpSample{{Labels: "{}", Value: float64(len(fx.groups))}},
		})
		s.Tests = append(s.Tests, g)
	}

	if fx.counters() {
		// A counter reset (process restart) does not alert.
		g = sb.group("counter reset does not alert", []phase{
			{n: 30, traffic: traffic, bad: b / 2},
			{n: 90, traffic: traffic, bad: b / 2, reset: true},
		}, false)
		for _, at := range []time.Duration{31 * minute, 33 * minute, 36 * minute, 60 * minute, 119 * minute} {
			g.PromqlExprTests = append(g.PromqlExprTests, sb.none(at, slo.SeverityPage), sb.none(at, slo.SeverityTicket))
		}
		s.Tests = append(s.Tests, g)
	}

	if o.Alerting.MinEvents > 0 && len(pages) > 0 {
		// Low traffic: a single bad event does not page.
		low := o.Alerting.MinEvents / (longest.Minutes() + 5) / 2
		g = sb.group("low traffic: a single error does not page (minEvents)", []phase{
			{n: 60, traffic: low},
			{n: 1, traffic: low, badAbs: 1},
			{n: int(longest/minute) + 10, traffic: low},
		}, false)
		for _, at := range []time.Duration{61 * minute, 63 * minute, 66 * minute, 90 * minute} {
			g.PromqlExprTests = append(g.PromqlExprTests, sb.none(at, slo.SeverityPage))
		}
		s.Tests = append(s.Tests, g)
	}
	return s, nil
}

func splitWindows(o *slo.SLO) (pages, tickets []slo.Window) {
	for _, w := range o.Windows() {
		if w.Severity == slo.SeverityPage {
			pages = append(pages, w)
		} else {
			tickets = append(tickets, w)
		}
	}
	sort.Slice(pages, func(i, j int) bool { return pages[i].Long < pages[j].Long })
	return pages, tickets
}

// counterBase is where the counters of the uneven-traffic scenario start:
// far enough from 0 that rate() extrapolates every 5m window alike (a
// counter near 0 is extrapolated less), so the sum of the 5m rates over all
// evaluations is exactly the events counted divided by 60.
const counterBase = 100000

// uneven writes the uneven-traffic scenario: idle, 1h at 10x traffic
// without errors, 1h at 1x with 10% errors, idle; at the end, every window
// that covers the whole scenario, and the period, hold the error ratio of
// all its events. The other groups of a grouped SLO see no errors.
func (sb *suiteBuilder) uneven() TestGroup {
	const idle, hour = 10, 60
	phases := []phase{
		{n: idle},
		{n: hour, traffic: 10 * traffic},
		{n: hour, traffic: traffic, bad: 0.1},
		{n: idle},
	}
	bad, total := 0.0, 0.0
	for _, p := range phases {
		bad += float64(p.n) * p.traffic * p.bad
		total += float64(p.n) * p.traffic
	}
	want := bad / total
	end := time.Duration(2*idle+2*hour-1) * minute // the last sample
	// The 5m rates are non-zero from the first busy minute to 3m after the
	// last one: a window of more than 2h10m sees all of them.
	span := time.Duration(idle+2*hour) * minute
	g := sb.groupFrom(fmt.Sprintf("uneven traffic: long windows are a ratio of sums (%.4g, not the mean of 5m ratios)", want), phases, false, counterBase)
	records := []string{}
	for _, w := range Windows(sb.slo) {
		if w > span {
			records = append(records, ErrorRatioRecord(w))
		}
	}
	records = append(records, ErrorRatioPeriod)
	by := append([]string{LabelService, LabelSLO}, sb.slo.GroupBy...)
	// Sums of rates differ from the exact ratio in the last bits: compare
	// both rounded to 1e-9 as PromQL's round() does.
	nearest := 1e-9
	inv := 1 / nearest // at run time, as PromQL computes it
	want = math.Floor(want*inv+0.5) / inv
	for _, r := range records {
		e := ExprTest{Expr: fmt.Sprintf("round(max by (%s) (%s), %s)", strings.Join(by, ", "), sb.sel(r), num(nearest)), EvalTime: model.Duration(end)}
		for gi, grp := range sb.fx.groups {
			m := map[string]string{LabelService: sb.spec.Service, LabelSLO: sb.slo.Name}
			for k, v := range grp {
				m[k] = v
			}
			v := want
			if gi > 0 {
				v = 0
			}
			e.ExpSamples = append(e.ExpSamples, ExpSample{Labels: labels.FromMap(m).String(), Value: v})
		}
		g.PromqlExprTests = append(g.PromqlExprTests, e)
	}
	return g
}

// resetTime is how long after recovery every page condition is false:
// the longest short window, plus 5m for the rate window, plus a margin.
func resetTime(pages []slo.Window) time.Duration {
	var s time.Duration
	for _, w := range pages {
		s = max(s, w.Short)
	}
	return s + 7*minute
}

// slowBurn picks a burn factor above the lowest ticket factor and below
// the lowest page factor: 2.5x for the workbook's tiers.
func slowBurn(pages, tickets []slo.Window) float64 {
	lo := math.Inf(1)
	for _, w := range tickets {
		lo = math.Min(lo, w.BurnRate)
	}
	hi := math.Inf(1)
	for _, w := range pages {
		hi = math.Min(hi, w.BurnRate)
	}
	if 2.5 > lo && 2.5 < hi {
		return 2.5
	}
	if math.IsInf(hi, 1) {
		return lo * 1.5
	}
	return math.Round(math.Sqrt(lo*hi)*100) / 100
}

func spread(d time.Duration) []time.Duration {
	var out []time.Duration
	for _, f := range []float64{0.1, 0.25, 0.5, 0.75, 1} {
		at := time.Duration(float64(d) * f).Truncate(minute)
		if len(out) == 0 || out[len(out)-1] != at {
			out = append(out, at)
		}
	}
	return out
}

func fmtMin(d time.Duration) string { return model.Duration(d).String() }

type suiteBuilder struct {
	spec *slo.Spec
	slo  *slo.SLO
	fx   *fixture
}

func (sb *suiteBuilder) sel(name string) string {
	vs := &parser.VectorSelector{Name: name, LabelMatchers: []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, LabelService, sb.spec.Service),
		labels.MustNewMatcher(labels.MatchEqual, LabelSLO, sb.slo.Name),
	}}
	return vs.String()
}

// alert matches the burn-rate alerts of one tier (severity page or
// ticket) of this SLO: by name, and, when both tiers share a name (Sloth's
// alerting.name), by the burn_tier of the tier's windows too.
func (sb *suiteBuilder) alert(severity string) []*labels.Matcher {
	m := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "alertname", BurnAlertName(sb.slo, severity))}
	if BurnAlertName(sb.slo, slo.SeverityPage) != BurnAlertName(sb.slo, slo.SeverityTicket) {
		return m
	}
	var tiers []string
	for _, w := range sb.slo.Windows() {
		if w.Severity == severity {
			tiers = append(tiers, regexp.QuoteMeta(w.Name))
		}
	}
	return append(m, labels.MustNewMatcher(labels.MatchRegexp, LabelBurnTier, strings.Join(tiers, "|")))
}

// none expects no burn-rate alert of the tier of this severity for this
// SLO, neither pending nor firing. (An alert_rule_test would also see the
// other SLOs of the rule file, which read the same input series.)
func (sb *suiteBuilder) none(at time.Duration, severity string) ExprTest {
	vs := &parser.VectorSelector{Name: "ALERTS", LabelMatchers: append(sb.alert(severity),
		labels.MustNewMatcher(labels.MatchEqual, LabelService, sb.spec.Service),
		labels.MustNewMatcher(labels.MatchEqual, LabelSLO, sb.slo.Name),
	)}
	return ExprTest{Expr: vs.String(), EvalTime: model.Duration(at), ExpSamples: []ExpSample{}}
}

// noneAtAll expects no alert of this name from any rule of the file.
func noneAtAll(at time.Duration, alert string) AlertTest {
	return AlertTest{EvalTime: model.Duration(at), Alertname: alert, ExpAlerts: []ExpAlert{}}
}

// firing expects a burn-rate alert of the tier of this severity, of the
// first group (only), to be firing.
func (sb *suiteBuilder) firing(at time.Duration, severity string, firing bool) ExprTest {
	by := append([]string{LabelService, LabelSLO}, sb.slo.GroupBy...)
	vs := &parser.VectorSelector{Name: "ALERTS", LabelMatchers: append(sb.alert(severity),
		labels.MustNewMatcher(labels.MatchEqual, "alertstate", "firing"),
		labels.MustNewMatcher(labels.MatchEqual, LabelService, sb.spec.Service),
		labels.MustNewMatcher(labels.MatchEqual, LabelSLO, sb.slo.Name),
	)}
	e := ExprTest{
		Expr:       fmt.Sprintf("max by (%s) (%s)", strings.Join(by, ", "), vs),
		EvalTime:   model.Duration(at),
		ExpSamples: []ExpSample{},
	}
	if firing {
		m := map[string]string{LabelService: sb.spec.Service, LabelSLO: sb.slo.Name}
		for k, v := range sb.fx.groups[0] {
			m[k] = v
		}
		e.ExpSamples = append(e.ExpSamples, ExpSample{Labels: labels.FromMap(m).String(), Value: 1})
	}
	return e
}

// group writes the input series of a scenario. The first group of a
// grouped SLO follows the phases; the others stay healthy, with traffic
// when the phase has some. leAlt writes bucket bounds Prometheus 2 style.
// Counters start at 0.
func (sb *suiteBuilder) group(name string, phases []phase, leAlt bool) TestGroup {
	return sb.groupFrom(name, phases, leAlt, 0)
}

// groupFrom is group with counters starting at base.
func (sb *suiteBuilder) groupFrom(name string, phases []phase, leAlt bool, base float64) TestGroup {
	g := TestGroup{Name: name, Interval: model.Duration(minute)}
	for gi, grp := range sb.fx.groups {
		ph := phases
		if gi > 0 {
			ph = make([]phase, len(phases))
			for i, p := range phases {
				ph[i] = phase{n: p.n, traffic: p.traffic, reset: p.reset}
			}
		}
		for _, fs := range sb.fx.series {
			b := labels.NewBuilder(fs.labels)
			for k, v := range grp {
				b.Set(k, v)
			}
			if fs.le {
				b.Set("le", leValue(float64(sb.slo.SLI.Latency.Threshold), leAlt))
			}
			vals, ok := seriesValues(fs.role, ph, base)
			if fs.role == roleNative {
				vals, ok = fs.native.values(ph, base), true
			}
			if !ok {
				continue
			}
			g.InputSeries = append(g.InputSeries, InputSeries{Series: b.Labels().String(), Values: vals})
		}
	}
	if len(g.InputSeries) == 0 {
		// promtool needs a series to run a test.
		g.InputSeries = append(g.InputSeries, InputSeries{Series: `sre_test_idle{job="test"}`, Values: "0+0x120"})
	}
	return g
}

// leValue writes a bucket bound as Prometheus 3 normalises it ("0.2",
// "1.0"), or in the alternative form ("0.20", "1").
func leValue(v float64, alt bool) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if strings.Contains(s, ".") {
		if alt {
			return s + "0"
		}
		return s
	}
	if alt {
		return s
	}
	return s + ".0"
}

// seriesValues expands a series' samples over the phases. Counters start at
// base (and at 0 after a reset) and grow by the phase's events each minute;
// gauges are 1 - bad share and absent (stale) without traffic.
func seriesValues(r role, phases []phase, base float64) (string, bool) {
	var parts []string
	if r == roleGauge {
		any := false
		for _, p := range phases {
			if p.traffic == 0 {
				parts = append(parts, fmt.Sprintf("_x%d", p.n))
				continue
			}
			any = true
			bad := p.bad
			if p.badAbs > 0 {
				bad = math.Min(1, p.badAbs/p.traffic)
			}
			parts = append(parts, fmt.Sprintf("%s+0x%d", num(1-bad), p.n))
		}
		// The expanding notation writes n+1 samples for "a+bxn"; trim below.
		if !any {
			return "", false
		}
		return fixCounts(parts, phases), true
	}
	// cur is the counter's last value as promtool computes it: "a+bxn"
	// adds b to the previous value n times, so a phase starting at the
	// rounded a + b*n could start below it, which Prometheus reads as a
	// counter reset.
	cur := 0.0
	first := true
	for _, p := range phases {
		bad := p.traffic * p.bad
		if p.badAbs > 0 {
			bad = p.badAbs
		}
		// A minute with more bad events than traffic (the minEvents
		// scenario's single error) has no good events, not fewer than none.
		inc := max(p.traffic, bad)
		switch r {
		case roleGood:
			inc = max(p.traffic-bad, 0)
		case roleBad:
			inc = bad
		}
		inc = round(inc)
		var start float64
		switch {
		case first:
			start = base
			first = false
		case p.reset:
			start = 0
		default:
			start = phaseStart(cur, inc)
		}
		if p.n == 1 {
			parts = append(parts, num(start))
		} else {
			parts = append(parts, fmt.Sprintf("%s+%sx%d", num(start), num(inc), p.n-1))
		}
		cur = accumulate(start, inc, p.n-1)
	}
	return strings.Join(parts, " "), true
}

// phaseStart is where a counter's next phase starts when the last one
// ended at cur (as promtool accumulated it) and inc more events came: the
// rounded sum, or the exact one when rounding would put it below cur,
// which Prometheus would read as a counter reset.
func phaseStart(cur, inc float64) float64 {
	if start := round(cur + inc); start >= cur {
		return start
	}
	return cur + inc
}

// accumulate is the value promtool reaches expanding "start+incxn": it adds
// inc to the previous value n times, which can differ from start + inc*n
// in the last bits.
func accumulate(start, inc float64, n int) float64 {
	for range n {
		start += inc
	}
	return start
}

// fixCounts turns the gauge parts (written with n) into n samples each.
func fixCounts(parts []string, phases []phase) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		n := phases[i].n
		base := p[:strings.LastIndexByte(p, 'x')]
		if strings.HasPrefix(p, "_") {
			// Blanks: "_xn" is n missing samples.
			out[i] = fmt.Sprintf("_x%d", n)
			continue
		}
		if n == 1 {
			out[i] = strings.TrimSuffix(base, "+0")
			continue
		}
		out[i] = fmt.Sprintf("%sx%d", base, n-1)
	}
	return strings.Join(out, " ")
}

// round drops the floating-point noise of a computed input value
// (999.9999999999999 for 1000 x 0.999) by keeping 15 significant digits,
// never a fixed number of decimals: at an objective of 99.99999999% a
// slow burn is 2.5e-7 bad events per minute, which 6 decimals wrote as 0.
func round(f float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	if err != nil {
		return f
	}
	return r
}

func (fx *fixture) hasBucket() bool {
	for _, s := range fx.series {
		if s.le {
			return true
		}
	}
	return false
}

// hasRole reports whether the fixture writes a series of role r.
func (fx *fixture) hasRole(r role) bool {
	for _, s := range fx.series {
		if s.role == r {
			return true
		}
	}
	return false
}

// isBadSeries reports whether an input series (as written by group) is
// one of the fixture's bad-events series, in any group.
func (sb *suiteBuilder) isBadSeries(series string) bool {
	for _, fs := range sb.fx.series {
		if fs.role != roleBad {
			continue
		}
		for _, grp := range sb.fx.groups {
			b := labels.NewBuilder(fs.labels)
			for k, v := range grp {
				b.Set(k, v)
			}
			if b.Labels().String() == series {
				return true
			}
		}
	}
	return false
}

func (fx *fixture) counters() bool {
	for _, s := range fx.series {
		if s.role == roleGauge {
			return false
		}
	}
	return true
}

// newFixture synthesizes input series that the SLI's selectors match.
func newFixture(o *slo.SLO) (*fixture, error) {
	fx := &fixture{groups: []map[string]string{{}}}
	if len(o.GroupBy) > 0 {
		fx.groups = []map[string]string{{}, {}}
		for _, l := range o.GroupBy {
			fx.groups[0][l] = "acme"
			fx.groups[1][l] = "globex"
		}
	}
	sli := o.SLI
	switch {
	case sli.Events != nil:
		errM, totM, err := eventMatchers(sli.Events)
		if err != nil {
			return nil, err
		}
		if err := fx.setCounters(errM, totM); err != nil {
			return nil, err
		}
	case sli.Latency != nil:
		vs, err := parseSelector(sli.Latency.Histogram)
		if err != nil {
			return nil, err
		}
		base, ok := satisfy(vs.LabelMatchers, nil)
		if !ok {
			return nil, errors.New("no series satisfies the histogram selector")
		}
		if sli.Latency.Native {
			fx.series = []fixtureSeries{{labels: base, role: roleNative, native: newNativeLayout(float64(sli.Latency.Threshold))}}
			break
		}
		with := func(name string) labels.Labels {
			b := labels.NewBuilder(base)
			b.Set(labels.MetricName, name)
			return b.Labels()
		}
		inf := labels.NewBuilder(with(slo.SelectorMetricName(vs) + "_bucket"))
		inf.Set("le", "+Inf")
		fx.series = []fixtureSeries{
			{labels: with(slo.SelectorMetricName(vs) + "_bucket"), role: roleGood, le: true},
			{labels: inf.Labels(), role: roleTotal},
			{labels: with(slo.SelectorMetricName(vs) + "_count"), role: roleTotal},
		}
	case sli.Bool != nil:
		vs, err := parseSelector(sli.Bool.Selector)
		if err != nil {
			return nil, err
		}
		l, ok := satisfy(vs.LabelMatchers, nil)
		if !ok {
			return nil, errors.New("no series satisfies the selector")
		}
		fx.series = []fixtureSeries{{labels: l, role: roleGauge}}
	case sli.Raw != nil:
		errM, totM, err := rawRatioMatchers(sli.Raw.ErrorRatioQuery)
		if err != nil {
			return nil, err
		}
		if err := fx.setCounters(errM, totM); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the SLO has no SLI")
	}
	return fx, nil
}

// setCounters sets the fixture's series to two counters: bad events and all
// events (or good and bad events when both selectors read one counter).
func (fx *fixture) setCounters(errM, totM []*labels.Matcher) error {
	if metricName(errM) == metricName(totM) {
		bad, ok := satisfy(append(append([]*labels.Matcher{}, totM...), errM...), nil)
		if !ok {
			return errors.New("no series satisfies both selectors")
		}
		good, ok := satisfy(totM, errM)
		if !ok {
			return errors.New("no series matches the total selector but not the error selector")
		}
		fx.series = []fixtureSeries{{labels: good, role: roleGood}, {labels: bad, role: roleBad}}
		return nil
	}
	bad, ok1 := satisfy(errM, nil)
	tot, ok2 := satisfy(totM, nil)
	if !ok1 || !ok2 {
		return errors.New("no series satisfies the selectors")
	}
	fx.series = []fixtureSeries{{labels: tot, role: roleTotal}, {labels: bad, role: roleBad}}
	return nil
}

// rawRatioMatchers recognises the usual shape of a raw error-ratio query,
// a ratio of two counter rates (bad / total), each reading one selector:
// sum(rate(errors[{{.window}}])) / sum(rate(requests[{{.window}}])).
// Inputs of other shapes cannot be synthesized: what makes them bad is
// unknown.
func rawRatioMatchers(q string) (errM, totM []*labels.Matcher, err error) {
	unknown := errors.New("raw SLI inputs are synthesized only for a ratio of two counter rates (bad / total), each reading one series selector")
	expr, perr := slo.Parser.ParseExpr(strings.ReplaceAll(q, slo.WindowPlaceholder, "5m"))
	if perr != nil {
		return nil, nil, perr
	}
	b, ok := slo.Unparen(expr).(*parser.BinaryExpr)
	if !ok || b.Op != parser.DIV || b.ReturnBool {
		return nil, nil, unknown
	}
	side := func(e parser.Expr) []*labels.Matcher {
		sels := parser.ExtractSelectors(e)
		if len(sels) != 1 || !readsCounterRate(e) {
			return nil
		}
		return sels[0]
	}
	errM, totM = side(b.LHS), side(b.RHS)
	if errM == nil || totM == nil {
		return nil, nil, unknown
	}
	return errM, totM, nil
}

// readsCounterRate reports whether e applies rate or increase to a range.
func readsCounterRate(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if c, ok := n.(*parser.Call); ok && (c.Func.Name == "rate" || c.Func.Name == "increase") {
			found = true
		}
		return nil
	})
	return found
}

// nativeLayout places the good events of a native histogram (schema 0) in
// a bucket entirely at or below the threshold and the bad ones in a bucket
// entirely above it, so histogram_fraction(0, threshold) is exactly the
// good share.
type nativeLayout struct {
	good, bad int // bucket indexes: bucket i holds (2^(i-1), 2^i]
}

func newNativeLayout(threshold float64) *nativeLayout {
	l := math.Log2(threshold)
	return &nativeLayout{good: int(math.Floor(l)), bad: int(math.Ceil(l)) + 1}
}

// histCounts are the counters of a native histogram sample: its good and
// bad buckets and its observation count.
type histCounts struct {
	good, bad, count float64
}

// newHistCounts counts good and bad observations.
func newHistCounts(good, bad float64) histCounts {
	return histCounts{good: good, bad: bad, count: round(good + bad)}
}

// phaseStart is where each counter starts after a phase that ended at h
// (see phaseStart).
func (h histCounts) phaseStart(inc histCounts) histCounts {
	return histCounts{good: phaseStart(h.good, inc.good), bad: phaseStart(h.bad, inc.bad), count: phaseStart(h.count, inc.count)}
}

// accumulate is where promtool's expansion of "h+incxn" ends (see accumulate).
func (h histCounts) accumulate(inc histCounts, n int) histCounts {
	return histCounts{good: accumulate(h.good, inc.good, n), bad: accumulate(h.bad, inc.bad, n), count: accumulate(h.count, inc.count, n)}
}

// hist writes a histogram of good and bad observations in promtool's notation.
func (n *nativeLayout) hist(h histCounts) string {
	buckets := make([]string, n.bad-n.good+1)
	for i := range buckets {
		buckets[i] = "0"
	}
	buckets[0], buckets[len(buckets)-1] = num(h.good), num(h.bad)
	sum := round(h.good*math.Exp2(float64(n.good)) + h.bad*math.Exp2(float64(n.bad)))
	return fmt.Sprintf("{{schema:0 sum:%s count:%s offset:%d buckets:[%s]}}", num(sum), num(h.count), n.good, strings.Join(buckets, " "))
}

// values expands the histogram's samples over the phases, as cumulative
// counts starting at base in both buckets (and at 0 after a reset). Like
// seriesValues, a phase never starts below the counts promtool reached by
// the end of the one before.
func (n *nativeLayout) values(phases []phase, base float64) string {
	var parts []string
	var cur histCounts
	for i, p := range phases {
		bad := round(p.traffic * p.bad)
		if p.badAbs > 0 {
			bad = p.badAbs
		}
		inc := newHistCounts(round(max(p.traffic-bad, 0)), bad)
		var start histCounts
		switch {
		case i == 0:
			start = newHistCounts(base, base)
		case p.reset:
		default:
			start = cur.phaseStart(inc)
		}
		if p.n == 1 {
			parts = append(parts, n.hist(start))
		} else {
			parts = append(parts, fmt.Sprintf("%s+%sx%d", n.hist(start), n.hist(inc), p.n-1))
		}
		cur = start.accumulate(inc, p.n-1)
	}
	return strings.Join(parts, " ")
}

func metricName(ms []*labels.Matcher) string {
	for _, m := range ms {
		if m.Name == labels.MetricName {
			return m.Value
		}
	}
	return ""
}

func eventMatchers(e *slo.EventsSLI) (errM, totM []*labels.Matcher, err error) {
	if e.ErrorSelector != "" {
		a, err1 := parseSelector(e.ErrorSelector)
		b, err2 := parseSelector(e.TotalSelector)
		if err1 != nil || err2 != nil {
			return nil, nil, errors.New("invalid selectors")
		}
		return a.LabelMatchers, b.LabelMatchers, nil
	}
	one := func(q string) []*labels.Matcher {
		expr, err := slo.Parser.ParseExpr(strings.ReplaceAll(q, slo.WindowPlaceholder, "5m"))
		if err != nil {
			return nil
		}
		sels := parser.ExtractSelectors(expr)
		if len(sels) != 1 {
			return nil
		}
		return sels[0]
	}
	errM, totM = one(e.ErrorQuery), one(e.TotalQuery)
	if errM == nil || totM == nil {
		return nil, nil, errors.New("queries must read exactly one series selector each to synthesize inputs")
	}
	return errM, totM, nil
}

// satisfy builds a label set matched by every matcher in must and by not
// all of the matchers in mustNot (when mustNot is set).
func satisfy(must, mustNot []*labels.Matcher) (labels.Labels, bool) {
	vals := map[string]string{}
	for _, m := range must {
		if _, ok := vals[m.Name]; ok {
			continue
		}
		vals[m.Name] = pick(m, must)
	}
	if len(mustNot) > 0 {
		for _, m := range mustNot {
			if matchesAll(vals, mustNot) == false {
				break
			}
			if constrained(m.Name, must) {
				continue
			}
			for _, c := range candidates {
				if !m.Matches(c) {
					vals[m.Name] = c
					break
				}
			}
		}
		if matchesAll(vals, mustNot) {
			return labels.EmptyLabels(), false
		}
	}
	if !matchesAll(vals, must) {
		return labels.EmptyLabels(), false
	}
	for k, v := range vals {
		if v == "" {
			delete(vals, k)
		}
	}
	return labels.FromMap(vals), true
}

var candidates = []string{"", "200", "ok", "x", "0", "success"}

func constrained(name string, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

func matchesAll(vals map[string]string, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(vals[m.Name]) {
			return false
		}
	}
	return true
}

// pick finds a value for m.Name that every matcher on that name accepts.
func pick(m *labels.Matcher, all []*labels.Matcher) string {
	var tries []string
	for _, x := range all {
		if x.Name != m.Name {
			continue
		}
		switch x.Type {
		case labels.MatchEqual:
			tries = append(tries, x.Value)
		case labels.MatchRegexp:
			if re, err := syntax.Parse(x.Value, syntax.Perl); err == nil {
				tries = append(tries, sample(re.Simplify()))
			}
		}
	}
	tries = append(tries, candidates...)
	for _, v := range tries {
		ok := true
		for _, x := range all {
			if x.Name == m.Name && !x.Matches(v) {
				ok = false
				break
			}
		}
		if ok {
			return v
		}
	}
	return ""
}

// sample returns a short string the regular expression matches.
func sample(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		return string(re.Rune)
	case syntax.OpCharClass:
		if len(re.Rune) > 0 {
			r := re.Rune[0]
			// Prefer a printable character inside the class.
			if r < '0' && re.Rune[1] >= '0' {
				r = '0'
			}
			return string(r)
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return "x"
	case syntax.OpCapture, syntax.OpPlus:
		return sample(re.Sub[0])
	case syntax.OpRepeat:
		return strings.Repeat(sample(re.Sub[0]), re.Min)
	case syntax.OpConcat:
		var b strings.Builder
		for _, s := range re.Sub {
			b.WriteString(sample(s))
		}
		return b.String()
	case syntax.OpAlternate:
		return sample(re.Sub[0])
	}
	return ""
}
