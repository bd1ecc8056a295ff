package scaling

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/limits"
)

// ParseTime reads a backtest bound: RFC 3339, or a duration before now
// ("6h" is six hours ago), or "now".
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" || s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return bounded(s, t)
	}
	d, err := parseDuration(s)
	if err == nil && d < 0 {
		// A duration before now: -6h would be 6h after now, and read
		// as such a backtest answers "to must be after from".
		return time.Time{}, fmt.Errorf("time %s: want a positive duration before now (6h, 2d), RFC 3339 (2026-12-03T09:00:00Z) or now", limits.Quote(s))
	}
	if err == nil {
		return bounded(s, now.Add(-d))
	}
	if errors.Is(err, errDays) {
		return time.Time{}, fmt.Errorf("time %s: want %w", limits.Quote(s), err)
	}
	return time.Time{}, fmt.Errorf("time %s: want RFC 3339 (2026-12-03T09:00:00Z), a duration before now (6h, 2d) or now", limits.Quote(s))
}

// bounded refuses a bound before 1970-01-02 or after 9999, as the API's
// other time parameters (limits.ParseTime): from=1960-01-01T00:00:00Z
// replayed the policy over 1960, where no series has a sample.
func bounded(s string, t time.Time) (time.Time, error) {
	if t.Before(limits.MinParamTime) || t.After(limits.MaxParamTime) {
		return time.Time{}, fmt.Errorf("time %s is %s: want a time from %s to %s", limits.Quote(s),
			t.UTC().Format(time.RFC3339), limits.MinParamTime.Format(time.RFC3339), limits.MaxParamTime.Format(time.RFC3339))
	}
	return t, nil
}

// maxDays is the most days a time.Duration holds.
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

var errDays = fmt.Errorf("a duration of at most %dd", maxDays)

// promDuration is the syntax of model.ParseDuration (1y2w3d4h5m6s7ms);
// a value of it that model.ParseDuration refuses is out of range.
var promDuration = regexp.MustCompile(`^-?(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

// parseDuration reads a Prometheus duration (6h, 2d, 1w, 1d12h), as the
// rest of sred and srectl do, or its negative ("-6h"). One past what a
// duration holds (about 292 years) is errDays.
func parseDuration(s string) (time.Duration, error) {
	d, err := model.ParseDurationAllowNegative(s)
	if err != nil {
		if promDuration.MatchString(s) && s != "-" && s != "" {
			return 0, errDays
		}
		return 0, err
	}
	return time.Duration(d), nil
}

func noDataHint(r BacktestResult) string {
	if r.NoData == len(r.Points) {
		return "check the policy's query and the range: nothing was replayed"
	}
	return "decided as no data"
}

// WriteBacktest prints a backtest: a summary, the decisions, and the
// instance count over time (one line per change).
func WriteBacktest(w io.Writer, r BacktestResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Backtest of scaling policy %s (service %s) from %s to %s, every %s\n", r.Policy, r.Service,
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.Interval)
	if r.NoData > 0 {
		// A quiet replay of a query that returned nothing is no tuning.
		fmt.Fprintf(&b, "  no data: %d of %d evaluations had no value of the query (%s)\n", r.NoData, len(r.Points), noDataHint(r))
	}
	fmt.Fprintf(&b, "  actions: %d (%d up, %d down), %d held back by a cooldown\n", r.Actions, r.Ups, r.Downs, r.Held)
	fmt.Fprintf(&b, "  instances: between %d and %d\n", r.MinSeen, r.MaxSeen)
	fmt.Fprintf(&b, "  time above %g: %s\n", r.UpThreshold, r.AboveUp)
	if r.DownThreshold != nil {
		fmt.Fprintf(&b, "  time below %g: %s\n", *r.DownThreshold, r.BelowDown)
	}
	fmt.Fprintf(&b, "  a cooldown of %s would take %d actions: %d fewer\n", r.LongerCooldown, r.LongerActions, r.SavedByLongerCooldown)
	if _, err := io.WriteString(w, b.String()+"\nDecisions:\n"); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDIRECTION\tFROM\tTO\tVALUE\tREASON")
	for _, d := range r.Decisions {
		dir := d.Direction
		if d.Held != "" {
			dir = d.Held + " (held)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", d.Time.UTC().Format(time.RFC3339), dir, d.From, d.To, fmtV(d.Value), d.Reason)
	}
	if len(r.Decisions) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	io.WriteString(w, "\nInstances over time:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tINSTANCES")
	prev := -1
	for _, p := range r.Points {
		if p.Instances != prev {
			fmt.Fprintf(tw, "%s\t%d\n", p.Time.UTC().Format(time.RFC3339), p.Instances)
			prev = p.Instances
		}
	}
	return tw.Flush()
}

var (
	errBadLimit = errors.New("limit: want 1 to 1000")
	errOrder    = errors.New("to must be after from")
)

func errNoPolicy(name string) error { return fmt.Errorf("no scaling policy %s", limits.Quote(name)) }

func errTooLong(n int) error {
	return fmt.Errorf("the range holds %d evaluations: at most 11000 (Prometheus's limit of points per series)", n)
}
