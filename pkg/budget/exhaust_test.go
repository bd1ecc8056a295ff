package budget

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// The exhaustion of a budget opens a CRITICAL incident, or raises the
// SLO's open incident to CRITICAL (one incident per outage); leaving
// exhausted resolves the incident it opened, and only that one. On both
// store backends, with the real incident service.
func TestExhaustionIncident(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		incs, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		s := New(Options{DB: db, Incidents: incs})
		rem := -0.5
		at := time.Now().UTC().Truncate(time.Millisecond)
		status := func(service, sloName string, state slo.BudgetState) Status {
			return Status{Service: service, SLO: sloName, State: state, Budget: Budget{RemainingRatio: &rem}}
		}
		record := func(st Status, when time.Time) {
			t.Helper()
			ev, err := recordState(ctx, db, st, when)
			require.NoError(t, err)
			require.NotNil(t, ev)
			s.transition(ctx, st, ev, ev.prevSince)
		}
		list := func(service string) []incident.Incident {
			t.Helper()
			p, err := incs.List(ctx, incident.Filter{Service: service, WithAlerts: true})
			require.NoError(t, err)
			return p.Incidents
		}

		// payments: no incident open. Red, then exhausted: a CRITICAL incident.
		record(status("payments", "availability", slo.BudgetRed), at)
		require.Empty(t, list("payments"), "red opens nothing")
		record(status("payments", "availability", slo.BudgetExhausted), at.Add(time.Minute))
		got := list("payments")
		require.Len(t, got, 1)
		opened := got[0]
		require.Equal(t, incident.SeverityCritical, opened.Severity)
		require.Equal(t, incident.StatusTriggered, opened.Status)
		require.Equal(t, AlertExhausted, opened.Labels["alertname"])
		require.Equal(t, "availability", opened.Labels["slo"])
		require.Equal(t, "Error budget of payments/availability exhausted (-50.00% remaining)", opened.Title)
		require.Equal(t, at.Add(time.Minute), opened.DetectedAt.UTC())

		// Still exhausted, still burning over the shortest window: nothing
		// changes. Burning no more: the alert resolves, and the incident
		// with it (its only alert); the budget stays exhausted.
		hot, cold := 3.0, 0.5
		burn := func(rate *float64) Status {
			st := status("payments", "availability", slo.BudgetExhausted)
			st.BurnRates = []BurnRate{{Window: "1h", Rate: &hot}, {Window: "5m", Rate: rate}}
			return st
		}
		s.settleExhausted(ctx, burn(&hot))
		require.Equal(t, incident.StatusTriggered, list("payments")[0].Status)
		s.settleExhausted(ctx, burn(&cold))
		require.Equal(t, incident.StatusResolved, list("payments")[0].Status)
		s.settleExhausted(ctx, burn(&cold)) // idempotent
		require.Len(t, list("payments"), 1)
		record(status("payments", "availability", slo.BudgetGreen), at.Add(30*time.Minute))

		// checkout: its SLO's budget alert opened a MEDIUM incident; the
		// exhaustion joins it and raises it to CRITICAL.
		res, err := incs.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}/{slo=~".+"}:{service="checkout", slo="availability"}`,
			CommonLabels: map[string]string{"alertname": "SLOErrorBudgetConsumed", "service": "checkout", "slo": "availability", "severity": "warning"},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f1", StartsAt: at.Add(-time.Hour),
				Labels: map[string]string{"alertname": "SLOErrorBudgetConsumed", "service": "checkout", "slo": "availability", "severity": "warning", "burn_tier": "budget"}}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		outage := res.Created[0]
		record(status("checkout", "latency", slo.BudgetExhausted), at) // another SLO of the service: its own incident
		record(status("checkout", "availability", slo.BudgetExhausted), at)
		got = list("checkout")
		require.Len(t, got, 2)
		byID := map[string]incident.Incident{got[0].ID: got[0], got[1].ID: got[1]}
		require.Equal(t, incident.SeverityCritical, byID[outage].Severity, "the outage's incident is raised")
		tl, err := incs.Timeline(ctx, outage)
		require.NoError(t, err)
		var raised []string
		for _, e := range tl {
			if e.Kind == "severity" && e.Actor == Actor {
				raised = append(raised, e.Message)
			}
		}
		require.Equal(t, []string{"severity raised: MEDIUM -> CRITICAL (error budget of checkout/availability exhausted (-50.00% remaining): " +
			"emergency changes only; this incident already holds the alerts of checkout/availability, so its exhaustion is recorded here, not as an SLOErrorBudgetExhausted alert)"}, raised)

		// The budget recovers (a new period): the outage's incident is left
		// to its alerts.
		record(status("checkout", "availability", slo.BudgetGreen), at.Add(time.Hour))
		o, err := incs.Get(ctx, outage)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, o.Status)

		// Exhausted again later (beyond incidents.flap_window of the
		// resolution): a new incident.
		record(status("payments", "availability", slo.BudgetExhausted), at.Add(3*time.Hour))
		got = list("payments")
		require.Len(t, got, 2)
		require.NotEqual(t, opened.ID, got[0].ID)
		require.Equal(t, incident.StatusTriggered, got[0].Status)
	})
}

// The demo's outage: the exhausted budget of api/availability opens the
// incident with its SLOErrorBudgetExhausted alert, the page of
// api/success-rate joins it (correlation), then the budget of
// api/success-rate runs out too. That exhaustion joins the incident that
// holds its SLO's alerts as a timeline entry, which names its SLO first and
// says why it is no alert of the incident: the only exhausted alert there
// is api/availability's, and an entry that read "error budget exhausted:
// error budget of api/success-rate ..." beside it looked like one more
// word about api/availability. On both store backends.
func TestExhaustionEntryNamesItsSLO(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		incs, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		incs.SetCorrelation(&incident.Correlation{Window: time.Hour, DependsOn: map[string]map[string][]string{"api": {}}})
		s := New(Options{DB: db, Incidents: incs})
		rem := -0.5
		at := time.Now().UTC().Truncate(time.Millisecond)
		exhaust := func(sloName string) {
			t.Helper()
			st := Status{Service: "api", SLO: sloName, State: slo.BudgetExhausted, Budget: Budget{RemainingRatio: &rem}}
			ev, err := recordState(ctx, db, st, at)
			require.NoError(t, err)
			require.NotNil(t, ev)
			s.transition(ctx, st, ev, ev.prevSince)
		}

		exhaust("availability")
		page := map[string]string{"alertname": "SLOBurnRateHigh", "service": "api", "slo": "success-rate", "severity": "page", "burn_tier": "page_fast"}
		_, err = incs.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}/{slo=~".+"}:{service="api", slo="success-rate"}`,
			GroupLabels: map[string]string{"service": "api", "slo": "success-rate"}, CommonLabels: page,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "p1", StartsAt: at, Labels: page}}})
		require.NoError(t, err)
		exhaust("success-rate")

		p, err := incs.List(ctx, incident.Filter{Service: "api", WithAlerts: true})
		require.NoError(t, err)
		require.Len(t, p.Incidents, 1, "one incident for the outage")
		inc := p.Incidents[0]
		var exhausted []string
		for _, a := range inc.Alerts {
			if a.Labels["alertname"] == AlertExhausted {
				exhausted = append(exhausted, a.Labels["slo"])
			}
		}
		require.Equal(t, []string{"availability"}, exhausted)
		tl, err := incs.Timeline(ctx, inc.ID)
		require.NoError(t, err)
		var entries []string
		for _, e := range tl {
			if e.Kind == "budget" {
				entries = append(entries, e.Message)
			}
		}
		require.Equal(t, []string{"error budget of api/success-rate exhausted (-50.00% remaining): emergency changes only; " +
			"this incident already holds the alerts of api/success-rate, so its exhaustion is recorded here, not as an SLOErrorBudgetExhausted alert"}, entries)
	})
}
