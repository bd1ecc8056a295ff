package scaling

import (
	"strings"
	"testing"
	"time"
)

// A backtest of a query that returned nothing over the range (a label
// typo, metrics not scraped then) says so: its quiet summary (no action,
// never above the threshold) is no tuning.
func TestBacktestSaysNoData(t *testing.T) {
	p := mustParse(t, thresholdPolicy)
	end := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC) // a Friday night: no schedule
	from := end.Add(-30 * time.Minute)
	for _, tc := range []struct {
		name    string
		samples []Sample
		noData  int
		line    string
	}{
		{"no sample", nil, 31, "  no data: 31 of 31 evaluations had no value of the query (check the policy's query and the range: nothing was replayed)\n"},
		{"the last 10 minutes only", series(end, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50), 20, "  no data: 20 of 31 evaluations had no value of the query (decided as no data)\n"},
		{"every evaluation", series(end, make([]float64, 40)...), 0, ""},
	} {
		r := Backtest(p, tc.samples, from, end, 2)
		if r.NoData != tc.noData {
			t.Errorf("%s: %d evaluations without data, want %d", tc.name, r.NoData, tc.noData)
		}
		var b strings.Builder
		if err := WriteBacktest(&b, r); err != nil {
			t.Fatal(err)
		}
		if tc.line != "" && !strings.Contains(b.String(), tc.line) {
			t.Errorf("%s: report\n%s\nwant the line %q", tc.name, b.String(), tc.line)
		}
		if tc.line == "" && strings.Contains(b.String(), "no data") {
			t.Errorf("%s: report\n%s\nsays no data", tc.name, b.String())
		}
	}
}
