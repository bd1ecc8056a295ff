package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// summarized is sloNotification with each alert's summary annotation, as
// the generated rules write one.
func summarized(started time.Time, tiers map[string]string) incident.Notification {
	n := sloNotification(started, tiers)
	for i := range n.Alerts {
		a := &n.Alerts[i]
		a.Annotations = map[string]string{"summary": "api/availability burning: " + a.Labels["severity"]}
	}
	if len(n.Alerts) == 1 {
		n.CommonAnnotations = n.Alerts[0].Annotations
	}
	return n
}

// titleEntries returns the data of an incident's title timeline entries,
// "from -> to".
func titleEntries(t *testing.T, f *fixture, id string) []string {
	t.Helper()
	tl, err := f.svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		if e.Kind == "title" {
			out = append(out, e.Data["from"].(string)+" -> "+e.Data["to"].(string))
		}
	}
	return out
}

// TestTitleFollowsRaise: on both backends, an incident a ticket opened
// takes the title of the page that raises it to a new peak, with a
// timeline entry naming both titles; the page resolving (severity lowered)
// and firing again (raised to the peak it had) keep the page's title.
func TestTitleFollowsRaise(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		started := epoch.Add(-10 * time.Minute)
		res, err := f.svc.Ingest(ctx, summarized(started, map[string]string{"ticket_fast": "firing"}))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		require.Equal(t, "api/availability burning: ticket", f.get(t, id).Title)

		f.clock.Set(epoch.Add(time.Minute))
		res, err = f.svc.Ingest(ctx, summarized(started, map[string]string{"ticket_fast": "firing", "page_fast": "firing"}))
		require.NoError(t, err)
		require.Empty(t, res.Created)
		inc := f.get(t, id)
		require.Equal(t, incident.SeverityCritical, inc.Severity)
		require.Equal(t, "api/availability burning: page", inc.Title)
		require.Equal(t, []string{"api/availability burning: ticket -> api/availability burning: page"}, titleEntries(t, f, id))
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		var msgs []string
		for _, e := range tl {
			if e.Kind == "severity" || e.Kind == "title" {
				msgs = append(msgs, e.Message)
			}
		}
		require.Equal(t, []string{
			"severity raised: MEDIUM -> CRITICAL (the highest severity of its firing alerts)",
			`title changed: "api/availability burning: ticket" -> "api/availability burning: page" (the alert that raised it to CRITICAL: SLOBurnRatePage{burn_tier="page_fast", service="api", severity="page", slo="availability"})`,
		}, msgs)

		// The page resolves: MEDIUM, the title stays.
		f.clock.Set(epoch.Add(30 * time.Minute))
		_, err = f.svc.Ingest(ctx, summarized(started, map[string]string{"ticket_fast": "firing", "page_fast": "resolved"}))
		require.NoError(t, err)
		inc = f.get(t, id)
		require.Equal(t, incident.SeverityMedium, inc.Severity)
		require.Equal(t, incident.SeverityCritical, inc.PeakSeverity)
		require.Equal(t, "api/availability burning: page", inc.Title)

		// A HIGH alert of another summary joins: raised, below the peak,
		// the title stays.
		f.clock.Set(epoch.Add(31 * time.Minute))
		n := summarized(started, map[string]string{"ticket_fast": "firing"})
		n.Alerts = append(n.Alerts, incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-high", StartsAt: epoch.Add(31 * time.Minute),
			Labels:      map[string]string{"alertname": "SLOLatency", "service": "api", "slo": "availability", "severity": "high"},
			Annotations: map[string]string{"summary": "api is slow"}})
		_, err = f.svc.Ingest(ctx, n)
		require.NoError(t, err)
		inc = f.get(t, id)
		require.Equal(t, incident.SeverityHigh, inc.Severity)
		require.Equal(t, "api/availability burning: page", inc.Title)
		require.Len(t, titleEntries(t, f, id), 1)
	})
}

// TestTitleOfPersonKept: on both backends, an incident a person opened
// keeps the title they gave when an alert group merged into it raises its
// severity.
func TestTitleOfPersonKept(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		started := epoch.Add(-10 * time.Minute)
		res, err := f.svc.Ingest(ctx, summarized(started, map[string]string{"ticket_fast": "firing"}))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		manual, err := f.svc.Create(ctx, incident.ManualIncident{Title: "Checkout fails for EU customers", Service: "api",
			Severity: incident.SeverityMedium, Actor: "alice"})
		require.NoError(t, err)
		_, err = f.svc.Merge(ctx, manual.ID, res.Created[0], "alice")
		require.NoError(t, err)

		f.clock.Set(epoch.Add(time.Minute))
		_, err = f.svc.Ingest(ctx, summarized(started, map[string]string{"ticket_fast": "firing", "page_fast": "firing"}))
		require.NoError(t, err)
		inc, err := f.svc.Get(ctx, manual.ID)
		require.NoError(t, err)
		require.Equal(t, incident.SeverityCritical, inc.Severity, "the page raised the incident it was merged into")
		require.Equal(t, "Checkout fails for EU customers", inc.Title)
		require.Empty(t, titleEntries(t, f, manual.ID))
	})
}
