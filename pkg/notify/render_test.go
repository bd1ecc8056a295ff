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
