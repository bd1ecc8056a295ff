package incident_test

import (
	"context"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// sloNotification is one Alertmanager notification of a group by SLO: the
// alerts of the SLO's tiers (tier -> status), as the generated rules label
// them (severity page or ticket, burn_tier).
func sloNotification(started time.Time, tiers map[string]string) incident.Notification {
	n := incident.Notification{Receiver: "sred", Status: "resolved", GroupKey: `{}:{service="api",slo="availability"}`,
		GroupLabels:  map[string]string{"service": "api", "slo": "availability"},
		CommonLabels: map[string]string{"service": "api", "slo": "availability"}}
	for _, tier := range []string{"page_fast", "ticket_fast"} {
		status, ok := tiers[tier]
		if !ok {
			continue
		}
		sev, name := "page", "SLOBurnRatePage"
		if tier == "ticket_fast" {
			sev, name = "ticket", "SLOBurnRateTicket"
		}
		a := incident.NotifiedAlert{Status: status, Fingerprint: "fp-" + tier, StartsAt: started,
			Labels: map[string]string{"alertname": name, "service": "api", "slo": "availability", "severity": sev, "burn_tier": tier}}
		if status == "firing" {
			n.Status = "firing"
		} else {
			a.EndsAt = started.Add(20 * time.Minute)
		}
		n.Alerts = append(n.Alerts, a)
	}
	return n
}

func TestSeverityFollowsTiers(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		started := epoch.Add(-10 * time.Minute)
		peaks := map[string]incident.Severity{}
		severity := func(id string) incident.Severity {
			t.Helper()
			inc, err := f.svc.Get(ctx, id)
			require.NoError(t, err)
			require.True(t, inc.Status.Open())
			peaks[id] = inc.PeakSeverity
			return inc.Severity
		}

		// The ticket tier fires first: one MEDIUM incident.
		res, err := f.svc.Ingest(ctx, sloNotification(started, map[string]string{"ticket_fast": "firing"}))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		require.Equal(t, incident.SeverityMedium, severity(id))
		require.Equal(t, incident.SeverityMedium, peaks[id])

		// The page tier joins: the same incident, now CRITICAL.
		f.clock.Set(epoch.Add(time.Minute))
		res, err = f.svc.Ingest(ctx, sloNotification(started, map[string]string{"ticket_fast": "firing", "page_fast": "firing"}))
		require.NoError(t, err)
		require.Empty(t, res.Created, "one outage, one incident")
		require.Equal(t, incident.SeverityCritical, severity(id))
		require.Equal(t, incident.SeverityCritical, peaks[id])

		// The page tier resolves, the ticket tier still fires: MEDIUM again.
		f.clock.Set(epoch.Add(30 * time.Minute))
		res, err = f.svc.Ingest(ctx, sloNotification(started, map[string]string{"ticket_fast": "firing", "page_fast": "resolved"}))
		require.NoError(t, err)
		require.Empty(t, res.Created)
		require.Equal(t, incident.SeverityMedium, severity(id))
		// The peak stays at the severity the incident paged with, in Get
		// and in List.
		require.Equal(t, incident.SeverityCritical, peaks[id])
		page, err := f.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Len(t, page.Incidents, 1)
		require.Equal(t, incident.SeverityCritical, page.Incidents[0].PeakSeverity)

		require.Equal(t, []string{
			id + " created<-",
			id + " updated<-triggered",
			id + " severity_raised<-triggered",
			id + " updated<-triggered",
			id + " severity_lowered<-triggered",
		}, f.hookLog(t))
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		var sev []string
		for _, e := range tl {
			if e.Kind == "severity" {
				sev = append(sev, e.Message)
			}
		}
		require.Equal(t, []string{
			"severity raised: MEDIUM -> CRITICAL (the highest severity of its firing alerts)",
			"severity lowered: CRITICAL -> MEDIUM (the highest severity of its firing alerts)",
		}, sev)
	})
}

// TestSeverityText: an incident's severity as the console, srectl
// incidents and the post-mortem draft show it: the current one, followed
// by the peak when, and only when, the peak is higher.
func TestSeverityText(t *testing.T) {
	for _, tc := range []struct {
		sev, peak incident.Severity
		want      string
		peakText  string
	}{
		{sev: incident.SeverityMedium, peak: incident.SeverityCritical, want: "MEDIUM (CRITICAL at its highest)", peakText: "(CRITICAL at its highest)"},
		{sev: incident.SeverityLow, peak: incident.SeverityHigh, want: "LOW (HIGH at its highest)", peakText: "(HIGH at its highest)"},
		{sev: incident.SeverityCritical, peak: incident.SeverityCritical, want: "CRITICAL"},
		{sev: incident.SeverityMedium, peak: incident.SeverityMedium, want: "MEDIUM"},
		// A row written before the peak was stored, or a peak lower than
		// the severity: the severity alone.
		{sev: incident.SeverityHigh, peak: "", want: "HIGH"},
		{sev: incident.SeverityHigh, peak: incident.SeverityLow, want: "HIGH"},
		{sev: incident.SeverityHigh, peak: "SEVERE", want: "HIGH"},
	} {
		t.Run(string(tc.sev)+"/"+string(tc.peak), func(t *testing.T) {
			inc := incident.Incident{Severity: tc.sev, PeakSeverity: tc.peak}
			require.Equal(t, tc.want, inc.SeverityText())
			require.Equal(t, tc.peakText, inc.PeakText())
			// A template given the incident as a map's value (not
			// addressable) calls the methods too.
			var b strings.Builder
			require.NoError(t, template.Must(template.New("").Parse(`{{ .inc.SeverityText }}|{{ .inc.PeakText }}`)).Execute(&b, map[string]any{"inc": inc}))
			require.Equal(t, tc.want+"|"+tc.peakText, b.String())
		})
	}
}
