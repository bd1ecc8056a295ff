package rulegen

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/rootuip/sre/pkg/slo"
)

// RangeExprs renders the SLI of o over exactly the range (start, end] from
// the raw series the SLI reads (not from the 5m rate recordings), aggregated
// by the SLO's groupBy labels like the recordings. Both expressions are to be
// evaluated at end; their ratio, errExpr / totalExpr, is the error ratio of
// the range:
//
//   - event and classic latency SLIs given by selectors: errExpr and
//     totalExpr count the bad and all events. Each counter counts
//     `c @ end - c @ start`, the difference of its last samples at or before
//     the two bounds: no extrapolation, so the count is exact to the scrape
//     interval (the events between a bound and the scrape before it move
//     to the neighbouring range). A counter that reset in the range, or that
//     lacks a sample at one bound (it appeared or vanished), counts
//     increase(c[range]) instead;
//   - native latency histograms: the same on the histograms;
//   - event SLIs given by queries and raw SLIs: the spec's query with its
//     window set to the range, so exactness is the query's own;
//   - bool SLIs: the error ratio is 1 - avg_over_time of the gauge over the
//     range (time-based, exact to the scrape interval) and totalExpr is 1.
func RangeExprs(o *slo.SLO, start, end time.Time) (errExpr, totalExpr string, err error) {
	if !end.After(start) {
		return "", "", fmt.Errorf("range %s - %s is empty", start, end)
	}
	by := "sum"
	if len(o.GroupBy) > 0 {
		by = "sum by (" + strings.Join(o.GroupBy, ", ") + ")"
	}
	r := rangeBounds{
		rng:   model.Duration(end.Sub(start)).String(),
		reset: model.Duration(end.Sub(start) + 5*time.Minute).String(),
		start: promTime(start),
		end:   promTime(end),
	}
	sli := o.SLI
	switch {
	case sli.Events != nil && sli.Events.ErrorSelector != "":
		e := sli.Events
		errExpr = fmt.Sprintf("%s (%s)", by, r.count(e.ErrorSelector))
		totalExpr = fmt.Sprintf("%s (%s)", by, r.count(e.TotalSelector))
		// No error series at all (no 5xx ever) means zero errors, not no data.
		errExpr = fmt.Sprintf("(%s)\nor\n0 * (%s)", errExpr, totalExpr)
	case sli.Events != nil:
		// The same sums by the grouping labels as the recording rules, so
		// error and total divide group by group.
		ee, te := EventQueries(o, r.rng)
		totalExpr = te
		errExpr = fmt.Sprintf("(%s)\nor\n0 * (%s)", ee, totalExpr)
	case sli.Latency != nil:
		l := sli.Latency
		vs, err := parseSelector(l.Histogram)
		if err != nil {
			return "", "", err
		}
		thr := num(float64(l.Threshold))
		if l.Native {
			h := fmt.Sprintf("%s (%s)", by, r.count(vs.String()))
			errExpr = fmt.Sprintf("(\n  histogram_count(%s)\n  * (1 - histogram_fraction(0, %s, %s))\n  >= 0\n)\nor\n0 * histogram_count(%s)", h, thr, h, h)
			totalExpr = fmt.Sprintf("histogram_count(%s)", h)
			break
		}
		count := withName(vs, slo.SelectorMetricName(vs)+"_count")
		bucket := withName(vs, slo.SelectorMetricName(vs)+"_bucket")
		bucket.LabelMatchers = append(bucket.LabelMatchers, labels.MustNewMatcher(labels.MatchRegexp, "le", LeRegexp(float64(l.Threshold))))
		totalExpr = fmt.Sprintf("%s (%s)", by, r.count(count.String()))
		errExpr = fmt.Sprintf("clamp_min(\n  %s\n  -\n  %s (%s),\n  0\n)", totalExpr, by, r.count(bucket.String()))
	case sli.Bool != nil:
		good := fmt.Sprintf("avg%s (avg_over_time(%s[%s] @ %s))", strings.TrimPrefix(by, "sum"), sli.Bool.Selector, r.rng, r.end)
		errExpr, totalExpr = fmt.Sprintf("1 - clamp(%s, 0, 1)", good), fmt.Sprintf("0 * %s + 1", good)
	case sli.Raw != nil:
		q := strings.ReplaceAll(sli.Raw.ErrorRatioQuery, slo.WindowPlaceholder, r.rng)
		errExpr, totalExpr = fmt.Sprintf("clamp_max((%s) >= 0, 1)", q), fmt.Sprintf("0 * clamp_max((%s) >= 0, 1) + 1", q)
		if e, err := slo.Parser.ParseExpr(q); err == nil {
			if den := RatioDenominator(e); den != "" {
				// No bad series (no error in the range): a ratio of 0.
				errExpr += fmt.Sprintf(" or 0 * ((%s) > 0)", den)
				totalExpr += fmt.Sprintf(" or 0 * ((%s) > 0) + 1", den)
			}
		}
	default:
		return "", "", fmt.Errorf("no SLI")
	}
	for _, e := range []string{errExpr, totalExpr} {
		if _, err := slo.Parser.ParseExpr(e); err != nil {
			return "", "", fmt.Errorf("generated invalid PromQL %q: %w", e, err)
		}
	}
	return errExpr, totalExpr, nil
}

// rangeBounds holds a range as PromQL text.
type rangeBounds struct {
	rng   string // end - start, e.g. 30d
	reset string // rng plus the 5m lookback of the sample at start
	start string // Unix seconds
	end   string
}

// count is the increase of the counters of sel over the range, without
// extrapolation where no counter reset (see RangeExprs).
func (r rangeBounds) count(sel string) string {
	return fmt.Sprintf("(\n  (%[1]s @ %[2]s - %[1]s @ %[3]s)\n  unless\n  resets(%[1]s[%[4]s] @ %[2]s) > 0\n)\nor\nincrease(%[1]s[%[5]s] @ %[2]s)",
		sel, r.end, r.start, r.reset, r.rng)
}

// promTime formats t as Unix seconds with millisecond precision, for @.
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}
