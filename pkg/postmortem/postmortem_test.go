package postmortem

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.DateTime, "2026-04-14 "+hhmmss)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ptr(t time.Time) *time.Time { return &t }

// knownIncident is an incident with a known timeline: two alerts from
// 14:28, created 14:30, acknowledged 14:34, recovered 14:55, resolved 15:00.
func knownIncident() (*incident.Incident, []incident.TimelineEntry, []ActionItem) {
	inc := &incident.Incident{
		ID: "INC-2026-0042", Title: "API Service Degradation", Service: "api", Severity: incident.SeverityCritical,
		Status: incident.StatusResolved, Assignee: "alice", Impact: "15% of API requests failing | checkout down",
		DetectedAt: at("14:28:00"), CreatedAt: at("14:30:00"), AcknowledgedAt: ptr(at("14:34:30")),
		RecoveredAt: ptr(at("14:55:00")), ResolvedAt: ptr(at("15:00:00")), Flapping: true,
		Alerts: []incident.Alert{
			{Fingerprint: "a1", StartsAt: at("14:28:00"), EndsAt: ptr(at("14:50:00")), Status: "resolved",
				Labels: map[string]string{"alertname": "HighErrorRate", "service": "api", "severity": "critical"}},
			{Fingerprint: "a2", StartsAt: at("14:29:00"), EndsAt: ptr(at("14:55:00")), Status: "resolved",
				Labels: map[string]string{"alertname": "HighLatency", "service": "api", "path": "/v1/<script>|x"}},
		},
	}
	tl := []incident.TimelineEntry{
		{Time: at("14:30:00"), Kind: "status", Actor: "alertmanager", Message: "incident created: [CRITICAL] API Service Degradation"},
		{Time: at("14:30:00"), Kind: "alert_fired", Actor: "alertmanager", Message: `alert fired: HighErrorRate{service="api"}`},
		{Time: at("14:31:00"), Kind: "notification", Actor: "sred", Message: "paged primary on-call"},
		{Time: at("14:34:30"), Kind: "status", Actor: "alice", Message: "acknowledged by alice"},
		{Time: at("14:40:00"), Kind: "note", Actor: "alice", Message: "rolled back deploy 1234\nerrors dropping"},
		{Time: at("14:55:00"), Kind: "alert_resolved", Actor: "reconciler", Message: "Alertmanager no longer has 1 alert(s)"},
		{Time: at("15:00:00"), Kind: "status", Actor: "alice", Message: "resolved by alice: rollback"},
	}
	items := []ActionItem{
		{ID: 1, IncidentID: inc.ID, Title: "Add canary analysis to deploys", Owner: "bob", Due: "2026-05-01", State: StateOpen},
		{ID: 2, IncidentID: inc.ID, Title: "Alert on p99 latency | per route", Owner: "carol", State: StateDone},
	}
	return inc, tl, items
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test -update to create %s", p)
	require.Equal(t, string(want), got)
}

func TestRenderGolden(t *testing.T) {
	inc, tl, items := knownIncident()
	minimal := &incident.Incident{ID: "INC-2026-0007", Title: "Disk full", Service: "db", Severity: incident.SeverityLow,
		Status: incident.StatusResolved, DetectedAt: at("09:00:00"), CreatedAt: at("09:00:00"), ResolvedAt: ptr(at("09:20:00"))}
	for _, tc := range []struct {
		name  string
		inc   *incident.Incident
		tl    []incident.TimelineEntry
		items []ActionItem
	}{
		{"full.md", inc, tl, items},
		{"minimal.md", minimal, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(nil, tc.inc, tc.tl, tc.items, "alice", at("16:00:00"))
			require.NoError(t, err)
			golden(t, tc.name, got)
		})
	}
}

func TestMeasure(t *testing.T) {
	inc, _, _ := knownIncident()
	d := Measure(inc)
	require.Equal(t, 2*time.Minute, *d.TimeToDetect)
	require.Equal(t, 4*time.Minute+30*time.Second, *d.TimeToAcknowledge)
	require.Equal(t, 27*time.Minute, *d.TimeToRecover, "time to recover: earliest alert start to last alert end")
	require.Equal(t, 30*time.Minute, *d.TimeToResolve, "time to resolve: created to resolved")

	open := &incident.Incident{DetectedAt: at("10:00:00"), CreatedAt: at("10:01:00")}
	d = Measure(open)
	require.Equal(t, time.Minute, *d.TimeToDetect)
	require.Nil(t, d.TimeToAcknowledge)
	require.Nil(t, d.TimeToRecover)
	require.Nil(t, d.TimeToResolve)
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":               `a\|b`,
		"line1\nline2\r\n3": "line1 line2 3",
		"<img src=x>":       "&lt;img src=x&gt;",
		`back\slash`:        `back\\slash`,
	} {
		require.Equal(t, want, escape(in))
	}
}

func TestParseTemplateError(t *testing.T) {
	_, err := ParseTemplate("{{ .Incident.ID ")
	require.EqualError(t, err, `template: postmortem:1: unclosed action`)
	tmpl, err := ParseTemplate("{{ .Nope }}")
	require.NoError(t, err)
	inc, tl, items := knownIncident()
	_, err = Render(tmpl, inc, tl, items, "x", at("16:00:00"))
	require.ErrorContains(t, err, `render post-mortem of INC-2026-0042: template: postmortem:1:3: executing "postmortem" at <.Nope>: can't evaluate field Nope`)
}
