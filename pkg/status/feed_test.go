package status_test

import (
	"encoding/xml"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/status"
)

// TestFeedNewestFirst: the Atom feed lists the incidents' updates newest
// first across incidents, as feed readers show them (an older incident's
// update does not come before a newer incident's because of where it sits
// on the page), then the scheduled maintenance.
func TestFeedNewestFirst(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC) }
	p := &status.Page{Title: "Example", UpdatedAt: at(12),
		Incidents: []status.PublicIncident{
			{ID: "a", Title: "Older", Stage: "resolved", Updates: []status.PublicUpdate{
				{Time: at(3), Message: "older resolved"}, {Time: at(1), Message: "older investigating"}}},
			{ID: "b", Title: "Newer", Stage: "investigating", Updates: []status.PublicUpdate{
				{Time: at(10), Message: "newer monitoring"}, {Time: at(8), Message: "newer investigating"}}},
		},
		Maintenance: []status.MaintenanceInfo{{Title: "Database upgrade", Start: at(5), End: at(6)}},
	}
	b, err := status.Feed(p)
	require.NoError(t, err)
	var feed struct {
		Entries []struct {
			Updated string `xml:"updated"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	require.NoError(t, xml.Unmarshal(b, &feed))
	var got []string
	for _, e := range feed.Entries {
		got = append(got, e.Updated)
	}
	require.Equal(t, []string{
		at(10).Format(time.RFC3339), at(8).Format(time.RFC3339), at(3).Format(time.RFC3339),
		at(1).Format(time.RFC3339), at(5).Format(time.RFC3339),
	}, got, string(b))
}
