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
// Overrides in the spec replace the defaults of their tier.
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
				w.Name = sev + "_" + model.Duration(w.Long).String()
			}
			if w.BurnRate == 0 && w.Long > 0 {
				w.BurnRate = burnRate(bw.BudgetConsumed/100, s.PeriodDuration(), w.Long)
			}
			if bw.For != 0 {
				w.For = time.Duration(bw.For)
			}
			out = append(out, w)
		}
	}
	return out
}

// DetectionTime is the time a total outage (every event bad) takes to make
// the fastest page condition true, before `for:`: burn rate x error budget x
// long window (52s for 99.9% over 30d). It is 0 when no page tier is enabled.
func (s *SLO) DetectionTime() time.Duration {
	var best time.Duration
	for _, w := range s.Windows() {
		if w.Severity != SeverityPage {
			continue
		}
		d := time.Duration(w.BurnRate * s.ErrorBudget() * float64(w.Long))
		if ds := time.Duration(w.BurnRate * s.ErrorBudget() * float64(w.Short)); ds > d {
			d = ds
		}
		d += w.For
		if best == 0 || d < best {
			best = d
		}
	}
	return best
}

// String describes the window, e.g. "page_fast 14.4x over 1h and 5m".
func (w Window) String() string {
	return fmt.Sprintf("%s %gx over %s and %s", w.Name, w.BurnRate, model.Duration(w.Long), model.Duration(w.Short))
}
