package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTeamsManyMentions: a page to many users with a long message stays
// within Teams' size limit: the mentions that do not fit in
// teamsMentionsMax are left out, the paging text says how many more were
// paged, every mention left has its entity, and the message is still
// there, cut with its note.
func TestTeamsManyMentions(t *testing.T) {
	for _, n := range []int{1, 10, 2000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var upns []string
			for i := range n {
				upns = append(upns, fmt.Sprintf("user-%04d@example.com", i))
			}
			m := &Message{IncidentID: "INC-2026-0001", Channel: ChannelTeams, Event: EventTrigger, Subject: "[CRITICAL] Incident INC-2026-0001: api down",
				Body: strings.Repeat("error rate above 5% ", 1000), Severity: "CRITICAL", Mentions: upns,
				URL: "https://sred.example.com/incidents/INC-2026-0001", Time: time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)}
			b := teamsPayload(m)
			require.LessOrEqual(t, len(b), teamsMaxBytes)
			var p teamsJSON
			require.NoError(t, json.Unmarshal(b, &p))
			card := p.Attachments[0].Content
			paging := card.Body[3].Text
			entities := card.MSTeams.Entities
			require.NotEmpty(t, entities)
			require.Equal(t, len(entities), strings.Count(paging, "<at>"), "each mention in the text has its entity")
			for i, e := range entities {
				require.Equal(t, "<at>"+upns[i]+"</at>", e.Text)
				require.Contains(t, paging, e.Text)
			}
			if len(entities) < n {
				require.True(t, strings.HasSuffix(paging, fmt.Sprintf(" and %d more", n-len(entities))), paging)
			} else {
				require.NotContains(t, paging, "more")
			}
			require.Contains(t, card.Body[1].Text, "error rate above 5")
			require.Contains(t, card.Body[1].Text, "(cut to Teams's size limit")
		})
	}
}
