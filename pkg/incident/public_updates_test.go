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

// TestPublicStatusUpdatesCountExact: the count of an incident's public
// updates came from the SQL sieve (a LIKE on the data) while only the
// latest ones were decoded and checked again, so entries the sieve keeps
// that are not public updates (a key given twice, the last one false;
// "public": true nested in another object; no message, an empty one, or
// one that is not a string; "PUBLIC", which SQLite's LIKE matches) were
// counted when older than the latest ones, and one among the latest left
// fewer shown than there were. Written to the store directly, as an
// import or another sred could: the count and the updates shown are now
// held to the same rule.
func TestPublicStatusUpdatesCountExact(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := t.Context()
		inc, err := f.svc.Create(ctx, incident.ManualIncident{Title: "down", Service: "web", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		at := epoch.UnixMilli()
		for _, data := range []string{
			// Oldest first.
			`{"public": true, "public": false, "public_message": "key twice, the last false"}`,
			`{"details": {"public": true}, "public_message": "nested"}`,
			`{"public": true}`,
			`{"public": true, "public_message": ""}`,
			`{"public": true, "public_message": 7}`,
			`{"PUBLIC": true, "public_message": "upper case key"}`,
			`{"public": true, "public_message": "public 1"}`,
			`{"public": true, "public_message": "public 2"}`,
			`{"public": true, "public_message": "public 3"}`,
			`{"public": true, "public_message": "public 4"}`,
			// The newest, not public.
			`{"public": true, "public": false, "public_message": "newest, the last key false"}`,
		} {
			at++
			_, err := db.ExecContext(ctx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data)
				VALUES ($1, $2, 'status_update', 'rita', 'x', $3)`, inc.ID, at, data)
			require.NoError(t, err)
		}
		for _, tc := range []struct {
			latest int
			want   []string
		}{
			{2, []string{"public 4", "public 3"}},
			{3, []string{"public 4", "public 3", "public 2"}},
			{25, []string{"public 4", "public 3", "public 2", "public 1"}},
		} {
			got, err := f.svc.PublicStatusUpdates(ctx, []string{inc.ID}, tc.latest)
			require.NoError(t, err)
			var shown []string
			for _, e := range got[inc.ID].Latest {
				shown = append(shown, e.Data["public_message"].(string))
			}
			require.Equal(t, 4, got[inc.ID].Total, "latest %d", tc.latest)
			require.Equal(t, tc.want, shown, "latest %d", tc.latest)
		}
	})
}
