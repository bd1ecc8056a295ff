package budget

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Below -100% (the budget spent twice over) the remaining budget is
// shown as "< -100%" with the budgets spent: a young SLO's ratio is over
// the few minutes its data covers, where seconds of errors spend thousands
// of budgets, and "-716172.42%" reads as a bug where "< -100% (7,163x the
// budget spent)" does not. The API and the metrics keep the raw ratio.

// RemainingPercent is the remaining budget for people to read: its
// percentage down to -100%, "< -100% (7,163x the budget spent)" below,
// "unknown" without data.
func RemainingPercent(remaining *float64, prec int) string {
	switch {
	case remaining == nil:
		return "unknown"
	case *remaining >= -1:
		return fmt.Sprintf("%.*f%%", prec, *remaining*100)
	}
	return "< -100% (" + spentText(*remaining) + ")"
}

// spentText says how many budgets a remaining share below -1 spent.
func spentText(remaining float64) string {
	return budgets(1-remaining) + "x the budget spent"
}

// BurnFactor is a burn rate for people to read, as the generated alerts'
// summaries print it (docs/rules.md): three significant digits below 100
// (14.4, 0.4, 0.00123), whole numbers from there on (2110, 10000), never
// an exponent ("2.11e+03", which %.3g writes from 1000 on) nor an SI
// prefix ("2.11k").
func BurnFactor(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'g', -1, 64)
	case math.Abs(f) >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 3, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// budgets formats a number of budgets spent (> 2): one decimal below ten,
// whole budgets with thousands separators above.
func budgets(n float64) string {
	if n < 10 {
		return strconv.FormatFloat(math.Floor(n*10)/10, 'f', 1, 64)
	}
	s := strconv.FormatFloat(math.Round(n), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// CoveredText says how much of the period the data covers ("12m of 30d"),
// or "" once it covers the whole period or when that is not known.
func (st Status) CoveredText() string {
	if st.Coverage == nil || *st.Coverage >= 1 {
		return ""
	}
	period, err := model.ParseDuration(st.Period)
	if err != nil {
		return ""
	}
	covered := time.Duration(*st.Coverage * float64(period))
	unit := time.Minute
	if covered < time.Minute {
		unit = time.Second
	}
	return model.Duration(covered.Round(unit)).String() + " of " + st.Period
}

// RemainingText is the remaining budget of messages (the deploy gate's
// reason, the budget events): "50.00% remaining", "< -100% remaining,
// 7,163x the budget spent", with ", over 12m of 30d" while the data does
// not cover the period.
func (st Status) RemainingText(prec int) string {
	r := st.Budget.RemainingRatio
	var parts []string
	switch {
	case r == nil:
		return "unknown remaining"
	case *r >= -1:
		parts = append(parts, RemainingPercent(r, prec)+" remaining")
	default:
		parts = append(parts, "< -100% remaining", spentText(*r))
	}
	if c := st.CoveredText(); c != "" {
		parts = append(parts, "over "+c)
	}
	return strings.Join(parts, ", ")
}
