package incident_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPublicStatusUpdates: the status page's query returns, per incident,
// the latest public status updates, newest first (the later entry first in
// the same millisecond), and how many it has: entries whose data says
// "public": true, however an import spaced the JSON; not internal
// updates, "public": false, a message that quotes "public":true, nor any
// other kind of entry; and for more incident IDs than one query takes.
func TestPublicStatusUpdates(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		created := epoch.Add(-time.Hour)
		const imported = "OLD-2026-0001"
		rec := incident.ExportRecord{Incident: incident.Incident{
			ID: imported, Title: "imported", Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusInvestigating,
			GroupKey: "{}:" + imported, DetectedAt: created, CreatedAt: created, UpdatedAt: created}}
		for _, e := range []struct {
			kind string
			at   time.Duration
			data string
		}{
			{"status_update", 1, `{"public": true, "public_message": "spaced 1"}`},
			{"note", 2, `{"public": true, "public_message": "a note"}`},
			{"status_update", 3, "{ \"public\" :\n\ttrue,\"public_message\":\"spaced 2\"}"},
			{"status_update", 3, `{"public":true,"public_message":"spaced 3, same instant"}`},
			{"status_update", 4, `{"public": false, "public_message": "not public"}`},
			{"status_update", 5, `{"impact": "quotes \"public\":true", "actions": "internal"}`},
			{"status_update", 6, `{"actions": "internal"}`},
		} {
			rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: created.Add(e.at * time.Minute), Kind: e.kind, Actor: "alice",
				Message: "x", Data: json.RawMessage(e.data)})
		}
		line, err := json.Marshal(rec)
		require.NoError(t, err)
		_, err = f.svc.Import(ctx, strings.NewReader(string(line)+"\n"))
		require.NoError(t, err)

		posted, err := f.svc.Create(ctx, incident.ManualIncident{Title: "down", Service: "web", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		for k := 1; k <= 4; k++ {
			f.clock.Advance(time.Second)
			_, err = f.svc.PostStatusUpdate(ctx, posted.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: fmt.Sprintf("posted %d", k)})
			require.NoError(t, err)
			_, err = f.svc.PostStatusUpdate(ctx, posted.ID, incident.StatusUpdate{Actor: "rita", Actions: "internal"})
			require.NoError(t, err)
		}
		silent, err := f.svc.Create(ctx, incident.ManualIncident{Title: "quiet", Service: "web", Severity: incident.SeverityLow, Actor: "rita"})
		require.NoError(t, err)

		// More IDs than one query takes, the real ones last.
		var ids []string
		for i := range 700 {
			ids = append(ids, fmt.Sprintf("NONE-%04d", i))
		}
		ids = append(ids, imported, posted.ID, silent.ID)

		messages := func(u incident.PublicUpdates) []string {
			var out []string
			for _, e := range u.Latest {
				require.Equal(t, "status_update", e.Kind)
				out = append(out, e.Data["public_message"].(string))
			}
			return out
		}
		for _, tc := range []struct {
			latest             int
			imported, posted   []string
			importedN, postedN int
		}{
			{2, []string{"spaced 3, same instant", "spaced 2"}, []string{"posted 4", "posted 3"}, 3, 4},
			{10, []string{"spaced 3, same instant", "spaced 2", "spaced 1"}, []string{"posted 4", "posted 3", "posted 2", "posted 1"}, 3, 4},
		} {
			got, err := f.svc.PublicStatusUpdates(ctx, ids, tc.latest)
			require.NoError(t, err)
			require.Len(t, got, 2, "incidents without a public update are left out")
			require.Equal(t, tc.imported, messages(got[imported]))
			require.Equal(t, tc.importedN, got[imported].Total)
			require.Equal(t, tc.posted, messages(got[posted.ID]))
			require.Equal(t, tc.postedN, got[posted.ID].Total)
			require.Equal(t, posted.ID, got[posted.ID].Latest[0].IncidentID)
			require.Equal(t, epoch.Add(4*time.Second), got[posted.ID].Latest[0].Time)
		}
		got, err := f.svc.PublicStatusUpdates(ctx, ids, 0)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
