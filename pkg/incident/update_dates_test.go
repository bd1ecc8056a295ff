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

// TestStatusUpdateGivesDates: the default status update gives the date of
// a start or a next update on another UTC day than the update's own
// (an incident open since the day before, a next update past midnight);
// it gave the time of day only, which read as today's.
func TestStatusUpdateGivesDates(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, err := f.svc.Ingest(ctx, notification("g1", "checkout", "critical", epoch, "a"))
		require.NoError(t, err)
		id := "INC-2026-0001"
		update := func(next time.Duration) string {
			text, err := f.svc.PostStatusUpdate(ctx, id, incident.StatusUpdate{Actor: "alice", Impact: "slow",
				Actions: "failing over", NextUpdate: f.clock.Now().Add(next)})
			require.NoError(t, err)
			return text
		}
		// The same day: times of day.
		text := update(30 * time.Minute)
		require.Contains(t, text, "Started: 09:30 UTC\n")
		require.Contains(t, text, "Next Update: 10:00 UTC\n")
		// 23:50 the same day, next update after midnight.
		f.clock.Set(time.Date(2026, 3, 14, 23, 50, 0, 0, time.UTC))
		text = update(30 * time.Minute)
		require.Contains(t, text, "Started: 09:30 UTC\n")
		require.Contains(t, text, "Next Update: 2026-03-15 00:20 UTC\n")
		// The next morning: the start was yesterday.
		f.clock.Set(time.Date(2026, 3, 15, 8, 0, 0, 0, time.UTC))
		text = update(time.Hour)
		require.Contains(t, text, "Started: 2026-03-14 09:30 UTC\n")
		require.Contains(t, text, "Next Update: 09:00 UTC\n")
	})
}
