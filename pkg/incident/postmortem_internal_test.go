package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPostmortemHostileText: alert labels, titles, actors and action items
// reach the drafted post-mortem, which is pasted into wikis and pull
// requests that render Markdown: a value can neither leave its table cell
// nor become HTML, a link or an image there.
func TestPostmortemHostileText(t *testing.T) {
	const hostile = "x<img src=x onerror=alert(1)>[click](https://evil.example)|\n# Heading"
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	inc := &Incident{ID: "INC-2026-0001", Title: hostile, Service: hostile, Severity: SeverityCritical, Status: StatusResolved,
		Assignee: hostile, MitigatedBy: hostile, DetectedAt: now, CreatedAt: now,
		Alerts: []Alert{{Labels: map[string]string{"alertname": hostile}, Status: "firing"}}}
	tl := []TimelineEntry{
		{Time: now, Kind: "alert_fired", Actor: hostile, Message: "1 alert fired: " + hostile},
		{Time: now, Kind: TimelineLikelyCause, Actor: "sred", Message: "likely cause: deploy " + hostile},
	}
	items := []ActionItem{{ID: 1, Title: hostile, Owner: hostile, State: "open"}}
	md := renderPostmortem(inc, tl, items, inc.Durations())
	require.NotContains(t, md, "<img", md)
	require.NotContains(t, md, "\n# Heading", md)
	require.NotRegexp(t, `[^\\]\]\(`, md, "an unescaped link") // [text](url) is a link; \[text\](url) is not

	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| ") && strings.Contains(line, "img src") {
			// The table's rows keep their columns: the value's pipe is escaped.
			require.NotContains(t, strings.ReplaceAll(line, `\|`, ""), ")|", line)
		}
	}
}
