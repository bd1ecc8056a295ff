// Package recovery watches the open incidents of SLOs for the end of the
// burn: a page tier keeps firing as long as its long window is over the
// threshold (up to an hour after the fix for a 30-day SLO), but its short
// window falls back within minutes. When every short burn-rate window of
// the incident's SLO is back under its tier's threshold, the incident is
// marked recovering (incident.Service.MarkRecovering): escalation stops and
// everyone who was paged gets the all-clear; the incident resolves when its
// alerts do. If a short window goes over again while it is recovering, the
// escalation starts over (incident.Service.BurningAgain); for an incident
// that paged, only a page tier's short window counts then.
//
// The checks are jobs of the "recovery" queue (one pending check per open
// incident of an SLO): a check is claimed under a lease, Prometheus is
// queried outside any transaction, and the outcome, the job's completion
// and the next check are written in one transaction.
package recovery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
)

// Queue is the jobs queue of recovery checks.
const Queue = "recovery"

// KindCheck is the kind of a recovery check.
const KindCheck jobs.Kind = "check"

// DefaultInterval is the time between two checks of one incident.
const DefaultInterval = 30 * time.Second

// Actor names the checker in incident timelines.
const Actor = "sred:recovery"

// Burns reads the current short-window burn rates of an SLO
// (budget.Service.CurrentBurn).
type Burns interface {
	CurrentBurn(ctx context.Context, service, sloName string, match map[string]string, at time.Time) ([]budget.WindowBurn, error)
}

// Incidents is what the checker needs of the incident service.
type Incidents interface {
	Get(ctx context.Context, id string) (*incident.Incident, error)
	MarkRecovering(ctx context.Context, id, actor, detail string, extra ...func(ctx context.Context, tx *sql.Tx) error) (*incident.Incident, error)
	BurningAgain(ctx context.Context, id, actor, detail string, extra ...func(ctx context.Context, tx *sql.Tx) error) (*incident.Incident, error)
}

// Options configure a Checker.
type Options struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Interval time.Duration
	// Registerer gets sre_recovery_checks_total and the queue's metrics.
	Registerer prometheus.Registerer
	// Owner names the checker in job leases (default jobs.Owner()).
	Owner string
}

// Checker schedules and runs the recovery checks. It is an incident.Hook:
// an incident of an SLO that opens (or re-opens) gets its first check.
type Checker struct {
	db        *store.DB
	burns     Burns
	incidents Incidents
	// known reports whether service/slo is a configured SLO.
	known func(service, sloName string) bool
	opts  Options

	checks *prometheus.CounterVec
	poke   chan struct{}
}

// New returns a checker. known reports whether an SLO is configured (only
// incidents of known SLOs are checked).
func New(db *store.DB, burns Burns, incidents Incidents, known func(service, sloName string) bool, o Options) *Checker {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Owner == "" {
		o.Owner = jobs.Owner()
	}
	c := &Checker{db: db, burns: burns, incidents: incidents, known: known, opts: o, poke: make(chan struct{}, 1)}
	c.checks = promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
		Namespace: "sre",
		Name:      "recovery_checks_total",
		Help:      "Recovery checks of open SLO incidents: burning (a short window is still over its threshold), recovering (marked or still recovering), burning_again, no_data (a short window has no data yet), error (Prometheus unavailable), closed (the incident was resolved).",
	}, []string{"result"})
	for _, r := range []string{"burning", "recovering", "burning_again", "no_data", "error", "closed"} {
		c.checks.WithLabelValues(r)
	}
	if o.Registerer != nil {
		jobs.NewMetrics(db, Queue, []jobs.Kind{KindCheck}, o.Clock, o.Registerer)
	}
	return c
}

type payload struct {
	Incident string `json:"incident"`
}

// SLOOf returns the service and SLO an incident is about (its service and
// slo labels, as the generated alerts set them).
func SLOOf(inc *incident.Incident) (service, sloName string, ok bool) {
	service, sloName = inc.Labels[rulegen.LabelService], inc.Labels[rulegen.LabelSLO]
	return service, sloName, service != "" && sloName != ""
}

// IncidentChanged implements incident.Hook: the first check of an incident
// of a known SLO is scheduled one interval after it opens or re-opens.
func (c *Checker) IncidentChanged(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
	inc := ch.Incident
	if inc == nil || (ch.Kind != incident.ChangeCreated && ch.Kind != incident.ChangeReopened) {
		return nil
	}
	svc, name, ok := SLOOf(inc)
	if !ok || (c.known != nil && !c.known(svc, name)) {
		return nil
	}
	now := ch.Time
	if now.IsZero() {
		now = c.opts.Clock.Now()
	}
	return c.schedule(ctx, tx, inc.ID, now)
}

func (c *Checker) schedule(ctx context.Context, tx jobs.Execer, id string, now time.Time) error {
	at := now.Add(c.opts.Interval)
	_, err := jobs.Enqueue(ctx, tx, now, jobs.New{Queue: Queue, Kind: KindCheck, Key: fmt.Sprintf("%s/%d", id, jobs.Millis(at)),
		Group: id, RunAt: at, Payload: payload{Incident: id}})
	return err
}

// Run runs the due checks every second until ctx is cancelled.
func (c *Checker) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if _, err := c.RunDue(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Warn("recovery checks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunDue runs every check due at the clock's time and returns how many.
func (c *Checker) RunDue(ctx context.Context) (int, error) {
	n := 0
	for {
		now := c.opts.Clock.Now()
		got, err := jobs.Claim(ctx, c.db, jobs.ClaimOptions{Queue: Queue, Owner: c.opts.Owner, Now: now, Lease: jobs.DefaultLease})
		if err != nil {
			return n, err
		}
		if len(got) == 0 {
			return n, nil
		}
		n++
		if err := c.check(ctx, got[0]); err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			c.checks.WithLabelValues("error").Inc()
			if errors.Is(err, budget.ErrNoPrometheus) {
				// Nothing to check against; checked again after a reload.
				c.opts.Logger.Debug("recovery check", "key", got[0].Key, "err", err)
			} else {
				c.opts.Logger.Warn("recovery check", "key", got[0].Key, "err", err)
			}
			// The next check comes one interval later, as always.
			if err := c.finish(ctx, got[0], c.opts.Clock.Now(), true); err != nil {
				return n, err
			}
		}
	}
}

// finish completes a check and, when next, schedules the following one.
func (c *Checker) finish(ctx context.Context, j jobs.Job, now time.Time, next bool) error {
	return c.db.InTx(ctx, func(tx *sql.Tx) error { return c.finishTx(ctx, tx, j, now, next) })
}

func (c *Checker) finishTx(ctx context.Context, tx *sql.Tx, j jobs.Job, now time.Time, next bool) error {
	if err := jobs.Complete(ctx, tx, j.ID, c.opts.Owner, now); err != nil {
		return err
	}
	if !next {
		return nil
	}
	var p payload
	if err := j.Decode(&p); err != nil {
		return err
	}
	return c.schedule(ctx, tx, p.Incident, now)
}

func (c *Checker) check(ctx context.Context, j jobs.Job) error {
	var p payload
	if err := j.Decode(&p); err != nil {
		return err
	}
	inc, err := c.incidents.Get(ctx, p.Incident)
	if err != nil {
		if errors.Is(err, incident.ErrNotFound) {
			c.checks.WithLabelValues("closed").Inc()
			return c.finish(ctx, j, c.opts.Clock.Now(), false)
		}
		return err
	}
	if !inc.Status.Open() {
		// Resolved: no more checks (a re-open schedules them again).
		c.checks.WithLabelValues("closed").Inc()
		return c.finish(ctx, j, c.opts.Clock.Now(), false)
	}
	now := c.opts.Clock.Now()
	// Every SLO with alerts on the incident: correlation attaches the
	// groups of the other SLOs of an outage (success rate and availability
	// of one service) to one incident, which recovers when all of them do.
	var ws []budget.WindowBurn
	var details []string
	recovered, burn, have := true, false, true
	// Once an incident that paged is recovering, only its page tiers
	// restart the escalation: the ticket alerts that arrive when the page
	// alerts resolve (inhibited until then) burn on for hours in their
	// slower windows, and must not page the responders again after the
	// all-clear. They keep the incident open until they resolve.
	paged, pageBurn := false, false
	for _, s := range SLOsOf(inc) {
		if c.known != nil && !c.known(s.Service, s.SLO) {
			continue
		}
		all, err := c.burns.CurrentBurn(ctx, s.Service, s.SLO, s.Match, now)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", s.Service, s.SLO, err)
		}
		sws := tiers(inc.Alerts, s, all)
		ws = append(ws, sws...)
		details = append(details, describe(s.Service, s.SLO, sws))
		recovered = recovered && budget.Recovered(sws)
		burn = burn || burning(sws)
		pageBurn = pageBurn || burning(ofSeverity(all, slo.SeverityPage))
		paged = paged || pagedOnce(inc.Alerts, all)
		have = have && known(sws)
	}
	again := burn
	if paged {
		again = pageBurn
	}
	recovered = recovered && len(details) > 0
	// An alert of no SLO (PostgresDown of the database whose group
	// correlation attached to the API's SLO incident) has no burn rate to
	// fall back: while one fires, the outage is not over. The incident
	// does not turn recovering (no all-clear), and a recovering one burns
	// again (its escalation starts over) when one joins it.
	if other := nonSLOFiring(inc); other != "" {
		recovered = false
		again = true
		details = append(details, other+" firing (not an SLO burn-rate alert)")
	}
	next := func(ctx context.Context, tx *sql.Tx) error { return c.finishTx(ctx, tx, j, c.opts.Clock.Now(), true) }
	detail := strings.Join(details, "; ")
	switch {
	case recovered && inc.RecoveringSince == nil:
		c.checks.WithLabelValues("recovering").Inc()
		_, err = c.incidents.MarkRecovering(ctx, inc.ID, Actor, detail, next)
	case inc.RecoveringSince != nil && again:
		c.checks.WithLabelValues("burning_again").Inc()
		_, err = c.incidents.BurningAgain(ctx, inc.ID, Actor, detail, next)
	default:
		result := "burning"
		switch {
		case inc.RecoveringSince != nil:
			result = "recovering"
		case !have || len(ws) == 0:
			result = "no_data"
		}
		c.checks.WithLabelValues(result).Inc()
		return c.finish(ctx, j, now, true)
	}
	var te *incident.TransitionError
	if errors.As(err, &te) {
		// Resolved between the read and the write.
		c.checks.WithLabelValues("closed").Inc()
		return c.finish(ctx, j, c.opts.Clock.Now(), false)
	}
	return err
}

// SLO is one SLO an incident's alerts are about, with the labels that
// select its series (the groupBy labels, such as customer).
type SLO struct {
	Service, SLO string
	Match        map[string]string
}

// nonSLOFiring names the firing alerts of inc that belong to no SLO (no
// service and slo labels), "" when there is none.
func nonSLOFiring(inc *incident.Incident) string {
	var names []string
	for _, a := range inc.Alerts {
		if a.Status != "firing" || (a.Labels[rulegen.LabelService] != "" && a.Labels[rulegen.LabelSLO] != "") {
			continue
		}
		n := a.Labels["alertname"]
		if svc := a.Labels[rulegen.LabelService]; svc != "" {
			n += fmt.Sprintf("{service=%q}", svc)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// SLOsOf returns the SLOs of an incident: its own (SLOOf) first, then those
// of its alerts, in the order they fired (groups that correlation attached).
func SLOsOf(inc *incident.Incident) []SLO {
	var out []SLO
	seen := map[string]bool{}
	add := func(labels map[string]string) {
		svc, name := labels[rulegen.LabelService], labels[rulegen.LabelSLO]
		if svc == "" || name == "" || seen[svc+"/"+name] {
			return
		}
		seen[svc+"/"+name] = true
		out = append(out, SLO{Service: svc, SLO: name, Match: labels})
	}
	add(inc.Labels)
	for _, a := range inc.Alerts {
		if a.Status == "firing" {
			add(a.Labels)
		}
	}
	return out
}

// Tiers returns the windows that decide whether inc is recovering: those
// of the page tiers, or of the ticket tiers when the incident's firing
// alerts are all ticket-tier burn-rate alerts. A slow ticket tier (a 6h
// short window at 1x for a 30-day SLO) would otherwise hold a paging
// incident for hours after the fix.
func Tiers(inc *incident.Incident, ws []budget.WindowBurn) []budget.WindowBurn {
	svc, name, _ := SLOOf(inc)
	return tiers(inc.Alerts, SLO{Service: svc, SLO: name}, ws)
}

// tiers is Tiers for the windows ws of the SLO s, looking at the alerts of
// s only (those without slo labels count for the incident's own SLO).
func tiers(alerts []incident.Alert, s SLO, ws []budget.WindowBurn) []budget.WindowBurn {
	sevOf := map[string]string{}
	for _, w := range ws {
		sevOf[w.Tier] = w.Severity
	}
	page, ticket := false, false
	for _, a := range alerts {
		if a.Status != "firing" {
			continue
		}
		if svc, name := a.Labels[rulegen.LabelService], a.Labels[rulegen.LabelSLO]; (svc != "" || name != "") && (svc != s.Service || name != s.SLO) {
			continue
		}
		switch sevOf[a.Labels[rulegen.LabelBurnTier]] {
		case slo.SeverityPage:
			page = true
		case slo.SeverityTicket:
			ticket = true
		}
	}
	sev := slo.SeverityPage
	if ticket && !page {
		sev = slo.SeverityTicket
	}
	var out []budget.WindowBurn
	for _, w := range ws {
		if w.Severity == sev {
			out = append(out, w)
		}
	}
	return out
}

// pagedOnce reports whether an alert of a page tier of ws was ever among
// alerts (firing or resolved).
func pagedOnce(alerts []incident.Alert, ws []budget.WindowBurn) bool {
	page := map[string]bool{}
	for _, w := range ws {
		page[w.Tier] = w.Severity == slo.SeverityPage
	}
	for _, a := range alerts {
		if page[a.Labels[rulegen.LabelBurnTier]] {
			return true
		}
	}
	return false
}

// ofSeverity returns the windows of ws whose tier has severity sev.
func ofSeverity(ws []budget.WindowBurn, sev string) []budget.WindowBurn {
	var out []budget.WindowBurn
	for _, w := range ws {
		if w.Severity == sev {
			out = append(out, w)
		}
	}
	return out
}

// burning reports whether a short window is known and at or over its
// threshold (missing data does not count).
func burning(ws []budget.WindowBurn) bool {
	for _, w := range ws {
		if w.Burn != nil && !w.Under() {
			return true
		}
	}
	return false
}

func known(ws []budget.WindowBurn) bool {
	for _, w := range ws {
		if w.Burn == nil {
			return false
		}
	}
	return len(ws) > 0
}

// describe is "api/availability short windows: page 5m 0.2x < 14.4x, ...".
func describe(svc, name string, ws []budget.WindowBurn) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return fmt.Sprintf("%s/%s short burn-rate windows: %s", svc, name, strings.Join(parts, ", "))
}
