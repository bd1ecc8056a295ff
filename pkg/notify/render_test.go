package notify

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRenderParsesOnce: Render parses a subject and body once, not on every
// page (escalation renders one per paged incident): rendering allocates a
// small part of what parsing does, and a template changed by a reload is
// the one rendered.
func TestRenderParsesOnce(t *testing.T) {
	d := TemplateData{ID: "INC-2026-0042", Title: "Checkout down", Severity: "CRITICAL", Started: time.Unix(1_800_000_000, 0), URL: "http://sred/incidents/INC-2026-0042"}
	c := &Config{}
	_, _, err := c.Render(d)
	require.NoError(t, err)
	parse := testing.AllocsPerRun(20, func() {
		if _, err := parseTemplates(DefaultSubject, DefaultBody); err != nil {
			t.Fatal(err)
		}
	})
	render := testing.AllocsPerRun(50, func() {
		if _, _, err := c.Render(d); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("parse %.0f allocations, render %.0f", parse, render)
	require.Less(t, render*4, parse, "Render parses the templates again")

	subj, _, err := (&Config{Subject: "{{ .ID }} changed"}).Render(d)
	require.NoError(t, err)
	require.Equal(t, "INC-2026-0042 changed", subj)
	_, _, err = (&Config{Subject: "{{ .Nope }}"}).Render(d)
	require.ErrorContains(t, err, "subject_template")
}

// TestDefaultBodyGivesDates: the default body gives Started and Next
// Update as a time of day when they fall on the UTC day the message is
// sent, and with their date when not: an incident that started the day
// before, or a next level due after midnight or days away, read as
// today's.
func TestDefaultBodyGivesDates(t *testing.T) {
	sent := time.Date(2026, 3, 2, 23, 50, 0, 0, time.UTC)
	for _, tc := range []struct {
		name                string
		started, next       time.Time
		wantStart, wantNext string
	}{
		{name: "same day", started: sent.Add(-20 * time.Minute), next: sent.Add(5 * time.Minute),
			wantStart: "Started: 23:30 UTC\n", wantNext: "Next Update: 23:55 UTC\n"},
		{name: "next update after midnight", started: sent.Add(-20 * time.Minute), next: sent.Add(15 * time.Minute),
			wantStart: "Started: 23:30 UTC\n", wantNext: "Next Update: 2026-03-03 00:05 UTC\n"},
		{name: "started the day before, next round days away", started: sent.Add(-24 * time.Hour), next: sent.Add(49 * time.Hour),
			wantStart: "Started: 2026-03-01 23:50 UTC\n", wantNext: "Next Update: 2026-03-05 00:50 UTC\n"},
		{name: "same UTC day in another zone", started: sent.Add(-20 * time.Minute).In(time.FixedZone("UTC+2", 7200)), next: sent.Add(5 * time.Minute),
			wantStart: "Started: 23:30 UTC\n", wantNext: "Next Update: 23:55 UTC\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subj, body, err := (&Config{}).Render(TemplateData{ID: "INC-2026-0042", Title: "Checkout down", Severity: "CRITICAL",
				Started: tc.started, NextUpdate: tc.next, Actions: "Escalation level 1: paging bob", Sent: sent})
			require.NoError(t, err)
			require.Equal(t, "[CRITICAL] Incident INC-2026-0042: Checkout down", subj, "the subject (an SMS's text) stays short")
			require.Contains(t, body, tc.wantStart)
			require.Contains(t, body, tc.wantNext)
		})
	}
}
