package status_test

import (
	"context"
	"encoding/xml"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
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

// TestFeedUpdatesInTheSameInstant: two public updates posted in the same
// millisecond are two feed entries with distinct IDs, the same on every
// read of the feed. Before, an entry's ID was its incident and its time in
// milliseconds, and feed readers dropped one of the two. On SQLite and
// PostgreSQL.
func TestFeedUpdatesInTheSameInstant(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		for _, msg := range []string{"Payments fail for some cards.", "Refunds are delayed."} {
			_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: msg})
			require.NoError(t, err)
		}
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		read := func() map[string]string {
			svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
			var feed struct {
				Entries []struct {
					ID      string `xml:"id"`
					Content string `xml:"content"`
				} `xml:"entry"`
			}
			body := pageGetter(t, svc)("/status/feed.atom")
			require.NoError(t, xml.Unmarshal([]byte(body), &feed))
			ids := map[string]string{}
			for _, e := range feed.Entries {
				ids[e.ID] = e.Content
			}
			require.Len(t, ids, 2, body)
			return ids
		}
		first := read()
		require.ElementsMatch(t, []string{"Payments fail for some cards.", "Refunds are delayed."}, slices.Collect(maps.Values(first)))
		require.Equal(t, first, read(), "the IDs are stable")
	})
}
