package slo

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
)

// Window is a resolved multi-window burn-rate condition of an SLO.
type Window struct {
	// Name is the burn_tier label value (e.g. page_fast).
	Name string
	// Severity is SeverityPage or SeverityTicket.
	Severity string
	Long     time.Duration
	Short    time.Duration
	// BurnRate is the factor both windows must exceed.
	BurnRate float64
	// For is the alert's `for:`.
	For time.Duration
}

// BaseWindow is the shortest window: every other window is derived from the
// 5m rate recordings.
const BaseWindow = 5 * time.Minute

// workbookTier is a default tier of the SRE workbook, expressed relative to
// the period so that it scales: for a 30d period it is exactly the workbook's
// 1h/5m 14.4x, 6h/30m 6x, 1d/2h 3x and 3d/6h 1x.
type workbookTier struct {
	name     string
	severity string
	// fraction of the period covered by the long window.
	fraction float64
	// share of the period's budget a burn at the factor consumes over the long window.
	share float64
}

var workbook = []workbookTier{
	{"page_fast", SeverityPage, 1.0 / 720, 0.02},
	{"page_slow", SeverityPage, 1.0 / 120, 0.05},
	{"ticket_fast", SeverityTicket, 1.0 / 30, 0.10},
	{"ticket_slow", SeverityTicket, 1.0 / 10, 0.10},
}

// DefaultWindows returns the workbook's window pairs for a period and a
// severity. The long window is the workbook's share of the period (1h of 30d
// and so on), the short window a twelfth of it, both rounded to the minute
// and at least BaseWindow; the burn rate is then derived from the budget
// share and the actual long window (share x period / long window), so a 30d
// SLO gets exactly 14.4, 6, 3 and 1, and shorter periods keep consuming the
// same share of their budget before alerting.
func DefaultWindows(period time.Duration, severity string) []Window {
	var out []Window
	for _, t := range workbook {
		if t.severity != severity {
			continue
		}
		long := roundWindow(time.Duration(float64(period) * t.fraction))
		short := roundWindow(long / 12)
		if long < short {
			long = short
		}
		out = append(out, Window{
			Name:     t.name,
			Severity: t.severity,
			Long:     long,
			Short:    short,
			BurnRate: burnRate(t.share, period, long),
		})
	}
	return out
}

func burnRate(share float64, period, long time.Duration) float64 {
	return math.Round(share*float64(period)/float64(long)*1e6) / 1e6
}

func roundWindow(d time.Duration) time.Duration {
	d = d.Round(time.Minute)
	if d < BaseWindow {
		d = BaseWindow
	}
	return d
}

// Windows returns the SLO's enabled burn-rate conditions, page tiers first.
// Overrides in the spec replace the defaults of their tier. When the page
// tier has a MaxDetectionTime and its fastest window would page on a total
// outage later than that, that window's long window is shortened (the short
// window becomes a twelfth of it, at least BaseWindow) as far as needed,
// keeping its burn rate: see boundDetection.
func (s *SLO) Windows() []Window {
	var out []Window
	for _, sev := range []string{SeverityPage, SeverityTicket} {
		tier := s.Alerting.Page
		if sev == SeverityTicket {
			tier = s.Alerting.Ticket
		}
		if tier.Disabled {
			continue
		}
		if len(tier.Windows) == 0 {
			for _, w := range DefaultWindows(s.PeriodDuration(), sev) {
				w.For = time.Duration(tier.For)
				out = append(out, w)
			}
			continue
		}
		for _, bw := range tier.Windows {
			w := Window{
				Name:     bw.Name,
				Severity: sev,
				Long:     time.Duration(bw.LongWindow),
				Short:    time.Duration(bw.ShortWindow),
				BurnRate: bw.BurnRate,
				For:      time.Duration(tier.For),
			}
			if w.Name == "" {
				// Named after the window as written, even when
				// boundDetection shortens it.
				w.Name = sev + "_" + model.Duration(w.Long).String()
			}
			if w.BurnRate == 0 && w.Long > 0 {
				w.BurnRate = burnRate(bw.BudgetConsumed/100, s.PeriodDuration(), w.Long)
			}
			if bw.For != 0 || bw.forSet {
				w.For = time.Duration(bw.For)
			}
			out = append(out, w)
		}
	}
	if !s.Alerting.Page.Disabled {
		s.boundDetection(out)
	}
	return out
}

// boundDetection shortens the long window of the fastest page window when
// a total outage would page later than the page tier's MaxDetectionTime.
//
// With a burn rate F and an error budget b, a total outage fires a window
// pair once the error ratio over both windows exceeds F x b, which takes
// about F x b x long window: a 14.4x page over 1h needs 52s at 99.9% but
// 43m at 95%. Shortening the long window (to the longest that meets the
// bound) while keeping F keeps the meaning of the alert, "the budget burns
// more than F times too fast", but it pages once F x long / period of the
// budget is gone instead of the workbook's 2%: more sensitive to short
// spikes. Windows that cannot meet the bound even at BaseWindow (because of
// their `for:`) are left as they are; validation reports them.
func (s *SLO) boundDetection(ws []Window) {
	bound := time.Duration(s.Alerting.Page.MaxDetectionTime)
	if bound <= 0 {
		return
	}
	budget := s.ErrorBudget()
	fastest, best := -1, time.Duration(math.MaxInt64)
	for i, w := range ws {
		if w.Severity != SeverityPage {
			continue
		}
		if d := w.OutageDetection(budget); d < best {
			fastest, best = i, d
		}
	}
	if fastest < 0 || best <= bound {
		return
	}
	w := ws[fastest]
	shortened := func(minutes int) Window {
		c := w
		c.Long = time.Duration(minutes) * time.Minute
		c.Short = min(c.Long, roundWindow(c.Long/12))
		return c
	}
	// Detection time grows with the long window (and with the short one,
	// a twelfth of it): search the longest window that meets the bound.
	lo, hi := int(BaseWindow/time.Minute), int(w.Long/time.Minute)
	if hi < lo || shortened(lo).OutageDetection(budget) > bound {
		return
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if shortened(mid).OutageDetection(budget) <= bound {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	ws[fastest] = shortened(lo)
}

// fastestPossibleDetection is the detection time of the fastest page window
// shortened to BaseWindow (the best boundDetection can do).
func (s *SLO) fastestPossibleDetection() time.Duration {
	best := time.Duration(math.MaxInt64)
	for _, w := range s.Windows() {
		if w.Severity == SeverityPage {
			w.Long, w.Short = BaseWindow, BaseWindow
			best = min(best, w.OutageDetection(s.ErrorBudget()))
		}
	}
	return best
}

// DetectionTime is how long a total outage (every event bad from one
// minute on, steady traffic) takes to fire the fastest page window, `for:`
// included, with series scraped and rules evaluated every minute (see
// Window.OutageDetection): 2m for a 99.99%/30d SLO with `for: 1m`. It is 0
// when no page tier is enabled.
func (s *SLO) DetectionTime() time.Duration {
	var best time.Duration
	for _, w := range s.Windows() {
		if w.Severity != SeverityPage {
			continue
		}
		if d := w.OutageDetection(s.ErrorBudget()); best == 0 || d < best {
			best = d
		}
	}
	return best
}

// OutageDetection is how long after the start of a total outage the window
// pair fires, `for:` included, for an SLO with this error budget. The model
// is the generated rules at a 1m scrape and evaluation interval: k minutes
// into the outage the 5m rate recordings show a bad share of min(k/5, 1)
// (k/5 exactly for a time-based SLI, at least that for counters), the
// 5m window's ratio is that share and a longer window's ratio is the mean
// of its one-minute samples; the pair is true from the first minute both
// ratios exceed burn rate x budget, and fires `for:` (rounded up to the
// minute) later. It is math.MaxInt64 when the pair can never fire (burn
// rate x budget >= 1).
func (w Window) OutageDetection(budget float64) time.Duration {
	theta := w.BurnRate * budget
	if !(theta < 1) {
		return time.Duration(math.MaxInt64)
	}
	k := max(outageMinutes(theta, w.Long), outageMinutes(theta, w.Short))
	return time.Duration(k)*time.Minute + ceilMinute(w.For)
}

func ceilMinute(d time.Duration) time.Duration {
	return (d + time.Minute - 1).Truncate(time.Minute)
}

// outageMinutes is the first minute k of a total outage at which the error
// ratio over window exceeds theta (< 1), in the model of OutageDetection.
func outageMinutes(theta float64, window time.Duration) int {
	// A ratio that equals theta in exact arithmetic may land on either side
	// of it in floating point: count it as not exceeding (later, so safe).
	above := func(k int) bool { return outageRatio(window, k) > theta*(1+1e-9) }
	lo, hi := 1, windowSamples(window)+5 // the ratio is 1 from there on
	for lo < hi {
		mid := (lo + hi) / 2
		if above(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// windowSamples is the number of one-minute samples in a window (t-w, t].
func windowSamples(w time.Duration) int {
	return int(ceilMinute(w) / time.Minute)
}

// outageRatio is the modelled error ratio over window k minutes into a
// total outage: the 5m rate ratio is min(k/5, 1); longer windows average
// their one-minute samples of it.
func outageRatio(window time.Duration, k int) float64 {
	if window <= BaseWindow {
		return math.Min(float64(k)/5, 1)
	}
	n := windowSamples(window)
	return (rampSum(k) - rampSum(k-n)) / float64(n)
}

// rampSum is the sum of min(j/5, 1) for j = 1..k.
func rampSum(k int) float64 {
	switch {
	case k <= 0:
		return 0
	case k <= 5:
		return float64(k*(k+1)) / 10
	}
	return float64(k - 2)
}

// String describes the window, e.g. "page_fast 14.4x over 1h and 5m".
func (w Window) String() string {
	return fmt.Sprintf("%s %gx over %s and %s", w.Name, w.BurnRate, model.Duration(w.Long), model.Duration(w.Short))
}
