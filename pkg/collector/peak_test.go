package collector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// sloOutage is a delivery of the group of api's availability SLO: its page
// (severity page: CRITICAL) and its ticket (severity ticket: MEDIUM), each
// firing or resolved.
func sloOutage(started, now time.Time, page, ticket string) incident.Notification {
	n := incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: `{}:{service="api",slo="availability"}`,
		GroupLabels:  map[string]string{"service": "api", "slo": "availability"},
		CommonLabels: map[string]string{"service": "api", "slo": "availability"}}
	for _, a := range []struct{ name, severity, status string }{
		{"SLOBurnRatePage", "page", page}, {"SLOBurnRateTicket", "ticket", ticket},
	} {
		na := incident.NotifiedAlert{Status: a.status, Fingerprint: "fp-" + a.severity, StartsAt: started,
			Labels: map[string]string{"alertname": a.name, "service": "api", "slo": "availability", "severity": a.severity}}
		if a.status == "firing" {
			n.Status = "firing"
		} else {
			na.EndsAt = now
		}
		n.Alerts = append(n.Alerts, na)
	}
	return n
}

// TestPeakSeverityCounted: an SLO outage pages as CRITICAL, then its page
// resolves and only its ticket fires (the incident's severity falls to
// MEDIUM), then it resolves. Every figure by severity counts it under
// CRITICAL, the severity it paged with, on both backends: open, stored,
// time to acknowledge and resolve, post-mortem completion; none under
// MEDIUM.
func TestPeakSeverityCounted(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewManual(t0)
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		svc.Clock = clk
		c := newCollector(t, db, Options{Clock: clk})
		started := t0.Add(-time.Minute)
		ingest := func(page, ticket string) {
			t.Helper()
			if _, err := svc.Ingest(ctx, sloOutage(started, clk.Now(), page, ticket)); err != nil {
				t.Fatal(err)
			}
		}
		open := func(when string, want string) {
			t.Helper()
			if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricIncidentsOpen); err != nil {
				t.Errorf("%s: %v", when, err)
			}
		}

		ingest("firing", "firing")
		page, err := svc.List(ctx, incident.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Incidents) != 1 || page.Incidents[0].Severity != incident.SeverityCritical {
			t.Fatalf("incidents after the page: %+v, want one CRITICAL", page.Incidents)
		}
		id := page.Incidents[0].ID
		const openCritical = `
# HELP sre_incidents_open Incidents open now (triggered, acknowledged or investigating), by their highest severity.
# TYPE sre_incidents_open gauge
sre_incidents_open{service="",severity="HIGH"} 0
sre_incidents_open{service="",severity="LOW"} 0
sre_incidents_open{service="",severity="MEDIUM"} 0
sre_incidents_open{service="api",severity="CRITICAL"} 1
`
		open("while it pages", openCritical)

		// The page resolves, the ticket still fires: MEDIUM now.
		clk.Advance(5 * time.Minute)
		ingest("resolved", "firing")
		inc, err := svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Severity != incident.SeverityMedium || inc.PeakSeverity != incident.SeverityCritical {
			t.Fatalf("after the page resolved: severity %s, peak %s; want MEDIUM and CRITICAL", inc.Severity, inc.PeakSeverity)
		}
		open("after the page resolved", openCritical)

		clk.Advance(5 * time.Minute)
		if _, err := svc.Acknowledge(ctx, id, "ann"); err != nil {
			t.Fatal(err)
		}
		// The ticket resolves: the incident resolves, 20 minutes after
		// its creation.
		clk.Advance(10 * time.Minute)
		ingest("resolved", "resolved")
		if inc, err := svc.Get(ctx, id); err != nil || inc.Status != incident.StatusResolved {
			t.Fatalf("after the last alert resolved: %+v, %v; want it resolved", inc, err)
		}
		for _, tc := range []struct {
			metric, severity string
			count            uint64
			sum              float64
		}{
			{MetricTimeToAcknowledge, "CRITICAL", 1, 600},
			{MetricTimeToResolve, "CRITICAL", 1, 1200},
			{MetricTimeToAcknowledge, "MEDIUM", 0, 0},
			{MetricTimeToResolve, "MEDIUM", 0, 0},
		} {
			if n, sum := histogram(t, c, tc.metric, "api", tc.severity); n != tc.count || sum != tc.sum {
				t.Errorf("%s{api,%s}: count %d sum %g, want %d and %g", tc.metric, tc.severity, n, sum, tc.count, tc.sum)
			}
		}
		want := `
# HELP sre_incidents_stored_total Incidents ever created, counted from the store.
# TYPE sre_incidents_stored_total counter
sre_incidents_stored_total{service="",severity="HIGH"} 0
sre_incidents_stored_total{service="",severity="LOW"} 0
sre_incidents_stored_total{service="",severity="MEDIUM"} 0
sre_incidents_stored_total{service="api",severity="CRITICAL"} 1
# HELP sre_incident_postmortem_completion_ratio For CRITICAL and HIGH (SEV1/2, by the incident's highest severity): completed post-mortems / resolved incidents.
# TYPE sre_incident_postmortem_completion_ratio gauge
sre_incident_postmortem_completion_ratio{severity="CRITICAL"} 0
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricIncidentsStored, MetricPostmortemRatio); err != nil {
			t.Error(err)
		}
	})
}
