package recovery_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/recovery"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var allMigrations = [][]store.Migration{incident.Migrations, jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations}

const specYAML = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{code=~"5.."}
        totalSelector: http_requests_total
`

const oncallYAML = `
users:
  - {name: alice, phone: "+15550000001"}
  - {name: bob, phone: "+15550000002"}
`

const escalationYAML = `
policies:
  - name: default
    levels:
      - {after: 0m, users: [alice], channels: [sms, slack, pagerduty]}
      - {after: 15m, users: [bob], channels: [sms]}
`

func decode[T any](t *testing.T, s string) *T {
	t.Helper()
	var v T
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&v))
	return &v
}

// sink records the bodies it receives.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// The outage: 2% errors (20x the 0.1% budget rate) from end-100m to
// end-35m, then none. Until about end-15m the page_slow tier's 30m short
// window is still over its 6x; at end both page tiers' short windows are
// back under, while page_fast's 1h long window still fires (the ticket
// tiers' 2h and 6h short windows burn on: they do not hold a paging
// incident).
var end = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func startPrometheus(t *testing.T, specs []*slo.Spec) string {
	t.Helper()
	start := end.Add(-8 * time.Hour)
	outage := func(t time.Time) bool {
		return t.After(end.Add(-100*time.Minute)) && !t.After(end.Add(-35*time.Minute))
	}
	series := []budgettest.Series{
		{Metric: "http_requests_total", Labels: map[string]string{"code": "200"}, Start: start, Initial: 1e6,
			Inc: func(t time.Time) float64 {
				if outage(t) {
					return 5880
				}
				return 6000
			}},
		{Metric: "http_requests_total", Labels: map[string]string{"code": "500"}, Start: start, Initial: 1e4,
			Inc: func(t time.Time) float64 {
				if outage(t) {
					return 120
				}
				return 0
			}},
	}
	srv := budgettest.Start(t, budgettest.Options{Specs: specs, Series: series, End: end, Recent: 3 * time.Hour})
	return srv.URL
}

func TestRecoveringStopsEscalationAndSendsAllClear(t *testing.T) {
	parsed, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	specs := parsed[0]
	url := startPrometheus(t, parsed)

	testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := clock.NewManual(end.Add(-30 * time.Minute))
		sms, slack, pd := newSink(t), newSink(t), newSink(t)
		ncfg := &notify.Config{
			SMS:       &notify.ProviderConfig{URL: sms.URL, From: "+15550000000"},
			Slack:     &notify.SlackConfig{WebhookURL: commoncfg.Secret(slack.URL + "/hook")},
			PagerDuty: &notify.PagerDutyConfig{URL: pd.URL, RoutingKey: "rk"},
		}
		require.NoError(t, ncfg.Validate())

		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock})
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, budgets.Update(budget.DefaultConfig, []*slo.Spec{specs}, prom, nil))

		var engine *escalation.Engine
		var checker *recovery.Checker
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{engine, checker} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		dir := oncall.NewDirectory(db, decode[oncall.Config](t, oncallYAML))
		engine = escalation.NewEngine(db, decode[escalation.Config](t, escalationYAML), dir, ncfg, "https://sred.example.com",
			escalation.Options{Clock: clock, Timeline: svc, Registerer: prometheus.NewRegistry()})
		worker := jobs.NewWorker(db, escalation.Queue, engine.Handle, jobs.Options{Clock: clock, Kinds: escalation.Kinds})
		sender := notify.NewSender(db, ncfg, clock, svc, nil, prometheus.NewRegistry())
		known := func(s, n string) bool { return s == "api" && n == "availability" }
		checker = recovery.New(db, budgets, svc, known, recovery.Options{Clock: clock, Interval: time.Minute, Registerer: prometheus.NewRegistry()})
		tick := func() {
			t.Helper()
			_, err := checker.RunDue(ctx)
			require.NoError(t, err)
			_, err = worker.RunDue(ctx)
			require.NoError(t, err)
			_, err = sender.DeliverDue(ctx)
			require.NoError(t, err)
		}

		labels := map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "critical", "burn_tier": "page_fast"}
		res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:{service=\"api\",slo=\"availability\"}",
			CommonLabels: labels, Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-page", StartsAt: clock.Now(), Labels: labels}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		tick()
		require.Len(t, sms.all(), 1, "alice paged by SMS")
		require.Len(t, slack.all(), 1)
		require.Len(t, pd.all(), 1)

		// Still burning 1 and 2 minutes later: no change.
		for range 2 {
			clock.Advance(time.Minute)
			tick()
		}
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "the short windows still burn at %s", clock.Now())

		// The fix went in at end-35m; by end every short window is back
		// under its threshold: recovering, all-clear, no level 1 page.
		clock.Set(end)
		tick()
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		if inc.RecoveringSince == nil {
			ws, err := budgets.CurrentBurn(ctx, "api", "availability", nil, end)
			tl, _ := svc.Timeline(ctx, id)
			t.Fatalf("not recovering at %s: burn %v (err %v); timeline %+v", end, ws, err, tl)
		}
		require.True(t, inc.Status.Open(), "it resolves when its alerts do, not before")
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		var msgs []string
		for _, e := range tl {
			msgs = append(msgs, e.Message)
		}
		joined := strings.Join(msgs, "\n")
		require.Contains(t, joined, "recovering: api/availability short burn-rate windows: page_fast 5m")
		require.Contains(t, joined, "Escalation stopped: the SLO is recovering")
		require.Contains(t, joined, "all-clear sent via sms to alice, slack, pagerduty")

		require.Len(t, sms.all(), 2, "alice got the all-clear by SMS")
		require.Contains(t, sms.all()[1], "RECOVERING")
		require.Len(t, slack.all(), 2)
		require.Contains(t, slack.all()[1], "All clear")
		require.Len(t, pd.all(), 2)
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(pd.all()[1]), &ev))
		require.Equal(t, "resolve", ev["event_action"])

		// Level 1 (bob, at +15m) is never paged: escalation stopped.
		clock.Advance(30 * time.Minute)
		tick()
		require.Len(t, sms.all(), 2, "bob is not paged while the incident recovers")
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		for _, r := range recs {
			require.NotEqual(t, "bob", r.User)
		}

		// The alert resolves: the incident resolves.
		ends := clock.Now()
		_, err = svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: "{}:{service=\"api\",slo=\"availability\"}",
			CommonLabels: labels, Alerts: []incident.NotifiedAlert{{Status: "resolved", Fingerprint: "fp-page", StartsAt: end.Add(-30 * time.Minute), EndsAt: ends, Labels: labels}}})
		require.NoError(t, err)
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusResolved, inc.Status)
		clock.Advance(time.Minute)
		tick()
		n, err := jobs.Count(ctx, db, jobs.Filter{Queue: recovery.Queue, Group: id, States: []string{jobs.StatePending}})
		require.NoError(t, err)
		require.Zero(t, n, "no more checks once resolved")
	})
}

func TestBurningAgainClearsRecovering(t *testing.T) {
	parsed, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	url := startPrometheus(t, parsed)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := clock.NewManual(end.Add(-32 * time.Minute))
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock})
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, budgets.Update(budget.DefaultConfig, parsed, prom, nil))
		var checker *recovery.Checker
		var changes []incident.ChangeKind
		record := incident.HookFunc(func(_ context.Context, _ *sql.Tx, ch incident.Change) error {
			changes = append(changes, ch.Kind)
			return nil
		})
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{record, checker} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		checker = recovery.New(db, budgets, svc, nil, recovery.Options{Clock: clock, Interval: time.Minute})
		labels := map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "critical", "burn_tier": "page_fast"}
		res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "g",
			CommonLabels: labels, Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp", StartsAt: clock.Now(), Labels: labels}}})
		require.NoError(t, err)
		id := res.Created[0]
		// Marked recovering (say in a lull), but at the first check
		// (end-31m) the 30m window still burns over 6x.
		_, err = svc.MarkRecovering(ctx, id, "test", "lull")
		require.NoError(t, err)
		clock.Advance(time.Minute)
		n, err := checker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "burning again clears recovering")
		require.Equal(t, []incident.ChangeKind{incident.ChangeCreated, incident.ChangeRecovering, incident.ChangeBurningAgain}, changes)
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Contains(t, tl[len(tl)-1].Message, "burning again: api/availability short burn-rate windows: page_fast 5m")
		require.Regexp(t, `page_slow 30m 1[0-9.]+x >= 6x`, tl[len(tl)-1].Message)
	})
}

// After the all-clear the page alert resolves and the ticket alert of the
// same SLO (inhibited until then) fires on: its 2h and 6h short windows
// still hold the outage at end, but the page tiers' are back under. The
// incident stays open and recovering: the responders are not paged again
// for a ticket-tier burn. A page tier burning again would restart it
// (TestBurningAgainClearsRecovering).
func TestTicketAlertsAfterAllClearDoNotPageAgain(t *testing.T) {
	parsed, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	url := startPrometheus(t, parsed)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := clock.NewManual(end)
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock})
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, budgets.Update(budget.DefaultConfig, parsed, prom, nil))
		var checker *recovery.Checker
		var changes []incident.ChangeKind
		record := incident.HookFunc(func(_ context.Context, _ *sql.Tx, ch incident.Change) error {
			changes = append(changes, ch.Kind)
			return nil
		})
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{record, checker} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		checker = recovery.New(db, budgets, svc, nil, recovery.Options{Clock: clock, Interval: time.Minute})
		page := map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "critical", "burn_tier": "page_fast"}
		ticket := map[string]string{"alertname": "SLOBurnRateTicket", "service": "api", "slo": "availability", "severity": "warning", "burn_tier": "ticket_fast"}
		group := "{}:{service=\"api\",slo=\"availability\"}"
		res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: group, CommonLabels: page,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-page", StartsAt: end.Add(-90 * time.Minute), Labels: page}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		clock.Advance(time.Minute)
		_, err = checker.RunDue(ctx)
		require.NoError(t, err)
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, inc.RecoveringSince, "the page tiers' short windows are under at end")

		// The page alert resolves, the ticket alert fires.
		_, err = svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: group, CommonLabels: map[string]string{"service": "api", "slo": "availability"},
			Alerts: []incident.NotifiedAlert{
				{Status: "resolved", Fingerprint: "fp-page", StartsAt: end.Add(-90 * time.Minute), EndsAt: clock.Now(), Labels: page},
				{Status: "firing", Fingerprint: "fp-ticket", StartsAt: clock.Now(), Labels: ticket},
			}})
		require.NoError(t, err)
		ws, err := budgets.CurrentBurn(ctx, "api", "availability", nil, clock.Now())
		require.NoError(t, err)
		require.True(t, func() bool {
			for _, w := range ws {
				if w.Severity == slo.SeverityTicket && w.Burn != nil && !w.Under() {
					return true
				}
			}
			return false
		}(), "the fixture's ticket windows still burn: %+v", ws)
		for range 3 {
			clock.Advance(time.Minute)
			_, err = checker.RunDue(ctx)
			require.NoError(t, err)
		}
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, inc.Status.Open(), "the ticket alert keeps it open")
		require.NotNil(t, inc.RecoveringSince, "still recovering: no page again for a ticket-tier burn")
		require.NotContains(t, changes, incident.ChangeBurningAgain)
	})
}

func TestTiers(t *testing.T) {
	ws := []budget.WindowBurn{{Tier: "page_fast", Severity: "page"}, {Tier: "page_slow", Severity: "page"},
		{Tier: "ticket_fast", Severity: "ticket"}, {Tier: "ticket_slow", Severity: "ticket"}}
	names := func(ws []budget.WindowBurn) (out []string) {
		for _, w := range ws {
			out = append(out, w.Tier)
		}
		return out
	}
	alert := func(tier, status string) incident.Alert {
		return incident.Alert{Status: status, Labels: map[string]string{"burn_tier": tier}}
	}
	for _, tc := range []struct {
		name   string
		alerts []incident.Alert
		want   []string
	}{
		{"page and ticket firing: page tiers", []incident.Alert{alert("page_fast", "firing"), alert("ticket_fast", "firing")}, []string{"page_fast", "page_slow"}},
		{"ticket only: ticket tiers", []incident.Alert{alert("ticket_slow", "firing"), alert("page_fast", "resolved")}, []string{"ticket_fast", "ticket_slow"}},
		{"budget alert only: page tiers", []incident.Alert{alert("budget", "firing")}, []string{"page_fast", "page_slow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, names(recovery.Tiers(&incident.Incident{Alerts: tc.alerts}, ws)))
		})
	}
}

// One outage burns two SLOs of a service; correlation puts both alert
// groups on one incident, which recovers only when the short windows of
// both SLOs are back under their thresholds. At end availability's are (as
// above), but "errors-hourly"'s page window, whose short window is 1h,
// still holds 25 minutes of the outage (8.3x >= 6x).
func TestRecoveringWaitsForEverySLOOfTheIncident(t *testing.T) {
	const twoSLOs = specYAML + `
  - name: errors-hourly
    objective: 99.9
    period: 30d
    sli:
      events:
        errorSelector: http_requests_total{code=~"5.."}
        totalSelector: http_requests_total
    alerting:
      page:
        windows: [{name: page_hourly, longWindow: 2h, shortWindow: 1h, burnRate: 6}]
      ticket: {disabled: true}
`
	parsed, err := slo.Parse([]byte(twoSLOs), "api.yml")
	require.NoError(t, err)
	url := startPrometheus(t, parsed)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := clock.NewManual(end.Add(-time.Minute))
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock})
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, budgets.Update(budget.DefaultConfig, parsed, prom, nil))
		var checker *recovery.Checker
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{checker} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{"api": {}}})
		checker = recovery.New(db, budgets, svc, nil, recovery.Options{Clock: clock, Interval: time.Minute})

		group := func(sloName, tier string) map[string]string {
			return map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": sloName, "severity": "critical", "burn_tier": tier}
		}
		ingest := func(labels map[string]string, status string) *incident.IngestResult {
			t.Helper()
			a := incident.NotifiedAlert{Status: status, Fingerprint: labels["slo"], StartsAt: end.Add(-90 * time.Minute), Labels: labels}
			if status == "resolved" {
				a.EndsAt = clock.Now()
			}
			res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: status, GroupKey: "{}:{service=\"api\",slo=\"" + labels["slo"] + "\"}",
				CommonLabels: labels, Alerts: []incident.NotifiedAlert{a}})
			require.NoError(t, err)
			return res
		}
		res := ingest(group("availability", "page_fast"), "firing")
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		res = ingest(group("errors-hourly", "page_hourly"), "firing")
		require.Empty(t, res.Created, "the second SLO's group joins the incident")
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, []recovery.SLO{{Service: "api", SLO: "availability", Match: inc.Labels}, {Service: "api", SLO: "errors-hourly", Match: group("errors-hourly", "page_hourly")}},
			recovery.SLOsOf(inc))

		clock.Set(end)
		n, err := checker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "errors-hourly still burns")

		// errors-hourly's alert resolves: only availability's windows
		// count, and they are back under.
		ingest(group("errors-hourly", "page_hourly"), "resolved")
		clock.Advance(time.Minute)
		n, err = checker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, inc.RecoveringSince, "every SLO with a firing alert is back under its thresholds")
		require.True(t, inc.Status.Open())
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Contains(t, tl[len(tl)-1].Message, "recovering: api/availability short burn-rate windows: page_fast 5m")
	})
}

// An alert of no SLO on the incident (the database's PostgresDown, whose
// group correlation attached to the API's SLO incident) has no burn rate
// to fall back: while it fires, the API's windows being back under their
// thresholds do not make the incident recovering (no all-clear, the
// escalation goes on). Once it resolves, the incident turns recovering;
// when another such alert joins the recovering incident, it burns again
// (its escalation starts over).
func TestRecoveringWaitsForAlertsOfNoSLO(t *testing.T) {
	parsed, err := slo.Parse([]byte(specYAML), "api.yml")
	require.NoError(t, err)
	url := startPrometheus(t, parsed)
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := clock.NewManual(end.Add(-time.Minute))
		budgets := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry(), Clock: clock})
		prom, err := budget.NewProm(url, commoncfg.DefaultHTTPClientConfig, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, budgets.Update(budget.DefaultConfig, parsed, prom, nil))
		var checker *recovery.Checker
		var changes []incident.ChangeKind
		record := incident.HookFunc(func(_ context.Context, _ *sql.Tx, ch incident.Change) error {
			changes = append(changes, ch.Kind)
			return nil
		})
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{record, checker} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		svc.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{
			"api": {"db": {"api", "db"}}, "db": {}}})
		checker = recovery.New(db, budgets, svc, nil, recovery.Options{Clock: clock, Interval: time.Minute})

		ingest := func(group string, labels map[string]string, status string) *incident.IngestResult {
			t.Helper()
			a := incident.NotifiedAlert{Status: status, Fingerprint: labels["alertname"], StartsAt: end.Add(-90 * time.Minute), Labels: labels}
			if status == "resolved" {
				a.EndsAt = clock.Now()
			}
			res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: status, GroupKey: group,
				CommonLabels: labels, Alerts: []incident.NotifiedAlert{a}})
			require.NoError(t, err)
			return res
		}
		page := map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "critical", "burn_tier": "page_fast"}
		res := ingest(`{}:{service="api", slo="availability"}`, page, "firing")
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		down := map[string]string{"alertname": "PostgresDown", "service": "db", "severity": "critical"}
		res = ingest(`{}:{alertname="PostgresDown", service="db"}`, down, "firing")
		require.Empty(t, res.Created, "the database's group joins the API's incident")

		clock.Set(end)
		n, err := checker.RunDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		inc, err := svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "PostgresDown still fires")
		require.NotContains(t, changes, incident.ChangeRecovering, "no all-clear")

		ingest(`{}:{alertname="PostgresDown", service="db"}`, down, "resolved")
		clock.Advance(time.Minute)
		_, err = checker.RunDue(ctx)
		require.NoError(t, err)
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, inc.RecoveringSince, "only the SLO's alert fires, and its windows are back under")

		// The database fails again while the incident recovers.
		down2 := map[string]string{"alertname": "PostgresReplicationBroken", "service": "db", "severity": "critical"}
		ingest(`{}:{alertname="PostgresReplicationBroken", service="db"}`, down2, "firing")
		clock.Advance(time.Minute)
		_, err = checker.RunDue(ctx)
		require.NoError(t, err)
		inc, err = svc.Get(ctx, id)
		require.NoError(t, err)
		require.Nil(t, inc.RecoveringSince, "an alert of no SLO joined the recovering incident")
		require.Equal(t, incident.ChangeBurningAgain, changes[len(changes)-1])
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Contains(t, tl[len(tl)-1].Message, `PostgresReplicationBroken{service="db"} firing (not an SLO burn-rate alert)`)
	})
}
