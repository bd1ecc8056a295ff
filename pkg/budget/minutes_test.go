package budget

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBudgetMinutesOverCoveredData: the minutes of the budget are those of
// the part of the period the data covers, as its ratios are. A 30-day SLO
// whose data is ten minutes old, with five minutes of full errors, has
// consumed five outage-equivalent minutes (17,000 and more before: the
// consumed ratio times the whole period's budget).
func TestBudgetMinutesOverCoveredData(t *testing.T) {
	o := apiAvailability(t)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	since := func(d time.Duration) *float64 { return f(float64(at.Add(-d).Unix())) }

	for _, tc := range []struct {
		name                         string
		s                            sample
		total                        float64
		consumed, remaining, covered *float64
	}{{
		// The first 5m sample 5 minutes ago covers the 5 minutes before
		// it: 10 minutes of data, half of them errors.
		name:      "ten minutes of data, five of full errors",
		s:         sample{ratioPeriod: f(0.5), remaining: f(1 - 0.5/0.001), avgTotal: f(10), avgErr: f(5), first: since(5 * time.Minute)},
		total:     0.01,
		consumed:  f(5),
		remaining: f(0.01 - 5),
		covered:   f(10.0 / (30 * 24 * 60)),
	}, {
		name:      "one hour of data, half the budget spent",
		s:         sample{ratioPeriod: f(0.0005), remaining: f(0.5), avgTotal: f(10), avgErr: f(0.005), first: since(55 * time.Minute)},
		total:     0.06,
		consumed:  f(0.03),
		remaining: f(0.03),
		covered:   f(60.0 / (30 * 24 * 60)),
	}, {
		name:      "data younger than a minute: the first sample's five minutes",
		s:         sample{ratioPeriod: f(1), avgTotal: f(10), avgErr: f(10)},
		total:     0.005,
		consumed:  f(5),
		remaining: f(0.005 - 5),
		covered:   f(5.0 / (30 * 24 * 60)),
	}, {
		name:      "data as old as the period",
		s:         sample{ratioPeriod: f(0.0005), remaining: f(0.5), avgTotal: f(10), avgErr: f(0.005), first: since(31 * 24 * time.Hour)},
		total:     43.2,
		consumed:  f(21.6),
		remaining: f(21.6),
		covered:   f(1),
	}, {
		name:  "no data: the period's budget, nothing consumed or remaining",
		s:     sample{},
		total: 43.2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			st := compute(o, at, &tc.s)
			near := func(want, got *float64, what string) {
				t.Helper()
				if want == nil {
					require.Nil(t, got, what)
					return
				}
				require.NotNil(t, got, what)
				require.InDelta(t, *want, *got, 1e-9, what)
			}
			near(tc.covered, st.Coverage, "coverage")
			require.InDelta(t, tc.total, st.Budget.TotalMinutes, 1e-9, "total minutes")
			near(tc.consumed, st.Budget.ConsumedMinutes, "consumed minutes")
			near(tc.remaining, st.Budget.RemainingMinutes, "remaining minutes")
			if st.Budget.ConsumedMinutes != nil {
				require.InDelta(t, st.Budget.TotalMinutes, *st.Budget.ConsumedMinutes+*st.Budget.RemainingMinutes, 1e-9, "consumed + remaining = total")
				require.InDelta(t, *st.Budget.ConsumedRatio*st.Budget.TotalMinutes, *st.Budget.ConsumedMinutes, 1e-9, "consumed ratio x total minutes")
			}
		})
	}
}

// TestForecastOfYoungSLO: a young SLO's remaining share is over the time
// its data covers, so at the same burn it runs out far sooner than the same
// share of a whole period's budget: a day of data with half its budget left,
// burning at 10x, is exhausted in 4800 s (1h20m), not in 36 hours.
func TestForecastOfYoungSLO(t *testing.T) {
	o := apiAvailability(t)
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	const day, period = 86400.0, 30 * 86400.0
	for _, tc := range []struct {
		name          string
		covered       time.Duration
		burn, seconds float64
	}{
		{"a day of data at 10x: R x C / (B - 1)", 24 * time.Hour, 10, 0.5 * day / 9},
		{"a day of data at 0.5x: exhausted after it covers the period", 24 * time.Hour, 0.5, (period - day) + 0.5*period/0.5},
		{"29 days of data at 2x: covers the period first", 29 * 24 * time.Hour, 2, day + (1-(0.5*29*day+2*day)/period)*period/2},
		{"data as old as the period: R x period / B", 31 * 24 * time.Hour, 10, 0.5 * period / 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first 5m sample covers the five minutes before it.
			first := float64(at.Add(-tc.covered + 5*time.Minute).Unix())
			burn := tc.burn
			st := compute(o, at, &sample{
				ratioPeriod: ptr(0.0005), remaining: ptr(0.5), avgTotal: ptr(10), avgErr: ptr(0.005), first: &first,
				burn: map[time.Duration]*float64{o.forecastWindow(): &burn},
			})
			require.NotNil(t, st.Forecast.SecondsLeft, st.Forecast.Message)
			require.InDelta(t, tc.seconds, *st.Forecast.SecondsLeft, 1e-6)
			require.NotNil(t, st.Forecast.ExhaustedAt)
			require.Equal(t, at.Add(time.Duration(tc.seconds*float64(time.Second))).Truncate(time.Second), *st.Forecast.ExhaustedAt)
		})
	}
}
