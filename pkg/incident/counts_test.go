package incident_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestEditsBound: an incident at MaxEdits refuses each action that would
// add one more impact, assignment, snooze or action item entry to its
// timeline (a reassignment, an action item's change) with a *FullError,
// and stores nothing of it; the actions that add no such entry (an action
// item update that changes nothing, a note) still pass.
func TestEditsBound(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		created := epoch.Add(-time.Hour)
		const id = "OLD-2026-0001"
		rec := incident.ExportRecord{Incident: incident.Incident{
			ID: id, Title: "imported", Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusInvestigating,
			Assignee: "alice", GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created},
			ActionItems: []incident.ExportActionItem{{ID: 7, Title: "fix it", State: incident.ActionOpen, CreatedAt: created, UpdatedAt: created}}}
		for range incident.MaxEdits {
			rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: created, Kind: "assignment", Actor: "alice", Message: "x"})
		}
		line, err := json.Marshal(rec)
		require.NoError(t, err)
		_, err = f.svc.Import(ctx, strings.NewReader(string(line)+"\n"))
		require.NoError(t, err)

		done := incident.ActionDone
		for _, tc := range []struct {
			name string
			act  func() error
		}{
			{"reassign", func() error { _, err := f.svc.Assign(ctx, id, "alice", "bob"); return err }},
			{"action item change", func() error {
				_, err := f.svc.UpdateActionItem(ctx, id, 7, "alice", incident.ActionItemUpdate{State: &done})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.act()
				var full *incident.FullError
				require.True(t, errors.As(err, &full), "%v", err)
				require.ErrorIs(t, err, incident.ErrFull)
				require.EqualError(t, err, "incident "+id+" has 2500 impact, assignment, snooze and action item changes, the most it can have; open a new incident for what follows")
			})
		}
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "alice", inc.Assignee, "the refused reassignment stored nothing")
		items, err := f.svc.ActionItems(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.ActionOpen, items[0].State, "the refused change stored nothing")

		// An update that changes nothing adds no entry: answered as it is.
		open := incident.ActionOpen
		it, err := f.svc.UpdateActionItem(ctx, id, 7, "alice", incident.ActionItemUpdate{State: &open})
		require.NoError(t, err)
		require.Equal(t, incident.ActionOpen, it.State)
		_, err = f.svc.AddNote(ctx, id, "alice", "still here")
		require.NoError(t, err)
	})
}
