package incident_test

import (
	"encoding/json"
	"errors"
	"fmt"
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

// TestMergedBound: an incident with MaxMerged incidents merged into it
// refuses one more merge with a *FullError, and the refused merge changes
// neither incident; merging into another incident still works. Alert
// groups correlation attaches to the full incident still join it: the
// bound is on merges by hand, not on Alertmanager's groups.
func TestMergedBound(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		f.svc.SetCorrelation(&incident.Correlation{Window: 30 * time.Minute, DependsOn: map[string]map[string][]string{"api": {}}})
		into, err := f.svc.Create(ctx, incident.ManualIncident{Title: "API down", Service: "api", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		// MaxMerged incidents merged into it already (imported: a merge
		// each would take as long as the bound is large).
		created := epoch.Add(-time.Hour)
		var lines strings.Builder
		for i := range incident.MaxMerged {
			id := fmt.Sprintf("OLD-2026-%04d", i+1)
			rec := incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "merged", Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusResolved,
				GroupKey: "manual:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created, ResolvedAt: &created,
				MergedInto: into.ID}}
			line, err := json.Marshal(rec)
			require.NoError(t, err)
			lines.Write(line)
			lines.WriteByte('\n')
		}
		_, err = f.svc.Import(ctx, strings.NewReader(lines.String()))
		require.NoError(t, err)

		from, err := f.svc.Create(ctx, incident.ManualIncident{Title: "API slow", Service: "web", Severity: incident.SeverityLow, Actor: "alice"})
		require.NoError(t, err)
		before, err := f.svc.Timeline(ctx, into.ID)
		require.NoError(t, err)
		_, err = f.svc.Merge(ctx, into.ID, from.ID, "alice")
		var full *incident.FullError
		require.True(t, errors.As(err, &full), "%v", err)
		require.ErrorIs(t, err, incident.ErrFull)
		require.EqualError(t, err, "incident "+into.ID+" has 100 incidents merged into it, the most it can have; "+
			"merge the rest into another open incident, or resolve them and name them in its post-mortem")
		after, err := f.svc.Timeline(ctx, into.ID)
		require.NoError(t, err)
		require.Len(t, after, len(before), "the refused merge added to the timeline")
		inc := f.get(t, into.ID)
		require.Equal(t, []string{"api"}, inc.Services, "the refused merge moved links")
		src := f.get(t, from.ID)
		require.True(t, src.Status.Open(), "the refused merge resolved %s: %s", from.ID, src.Status)
		require.Empty(t, src.MergedInto)

		// Another incident takes the merge.
		other, err := f.svc.Create(ctx, incident.ManualIncident{Title: "Web down", Service: "web", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)
		res, err := f.svc.Merge(ctx, other.ID, from.ID, "alice")
		require.NoError(t, err)
		require.Equal(t, other.ID, res.Merged.MergedInto)

		// Correlation still attaches an alert group of api to the full incident.
		ing, err := f.svc.Ingest(ctx, notification("g-api", "api", "critical", f.clock.Now(), "api-a"))
		require.NoError(t, err)
		require.Empty(t, ing.Created)
		require.Equal(t, []string{into.ID}, ing.Incidents)
		require.Len(t, f.get(t, into.ID).Links, 2, "the manual link and the correlated group")
	})
}
