package escalation_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestEscalationEntryTimesHaveDates: an escalation entry gives the time
// the next level is paged with its date, so a level due after midnight
// reads unambiguously (the format of the other timeline times,
// TestQueuedEntryTimesHaveDates).
func TestEscalationEntryTimesHaveDates(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clk := clock.NewManual(time.Date(2026, 3, 2, 23, 50, 0, 0, time.UTC)) // bob on primary until 10:00 Tuesday
		r := newRig(t, db, clk, escalationYAML, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		require.Equal(t, []string{
			`Escalation level 0 (policy "default"): paging bob via sms, phone, push; level 1 at 2026-03-03 00:05:00 UTC if not acknowledged`,
		}, r.timeline(t, id, "Escalation level"))
	})
}

// TestPageGivesDateOfNextLevel: a page sent at 23:00 whose next level is
// due 2h later, after midnight, gives that level's date ("Next Update:
// 2026-03-03 01:00 UTC"), and the start, the same day, as a time of day.
// It used to read "01:00 UTC", as if due earlier that day.
func TestPageGivesDateOfNextLevel(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clk := clock.NewManual(time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC))
		r := newRig(t, db, clk, soloPolicy, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		body := smsBodies(t, db, id)["bob"]
		require.Contains(t, body, "Started: 23:00 UTC\n")
		require.Contains(t, body, "Next Update: 2026-03-03 01:00 UTC\n")
	})
}
