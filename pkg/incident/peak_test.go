package incident_test

import (
	"bytes"
	"context"
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

// TestPeakSeverityMigration: incident/0013_peak_severity gives the
// incidents of a store made before it their highest severity, on both
// backends: the severity of those that never changed, and the highest of
// their severity and of those their timeline's severity changes went from
// or to for the others; a timeline entry whose data is not JSON is
// ignored, not a failed migration.
func TestPeakSeverityMigration(t *testing.T) {
	before := migrationsBefore("incident/0013_peak_severity")
	testutil.Backends(t, [][]store.Migration{before}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO incidents (id, title, service, severity, status, labels, detected_at, created_at, updated_at) VALUES
				('INC-1', 't', 'api', 'MEDIUM', 'resolved', '{}', 1, 1, 1),
				('INC-2', 't', 'api', 'HIGH', 'triggered', '{}', 1, 1, 1),
				('INC-3', 't', 'db', 'LOW', 'resolved', '{}', 1, 1, 1),
				('INC-4', 't', 'db', 'MEDIUM', 'triggered', '{}', 1, 1, 1)`,
			// INC-1 paged as CRITICAL, then its page resolved; INC-2 was
			// raised from MEDIUM; INC-3 went from LOW to HIGH and back;
			// INC-4 has a severity entry whose data is no JSON, and a note.
			`INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data) VALUES
				('INC-1', 1, 'severity', 'alertmanager', 'raised', '{"from":"MEDIUM","to":"CRITICAL"}'),
				('INC-1', 2, 'severity', 'alertmanager', 'lowered', '{"from":"CRITICAL","to":"MEDIUM"}'),
				('INC-2', 1, 'severity', 'sred', 'raised', '{"from":"MEDIUM","reason":"x","to":"HIGH"}'),
				('INC-3', 1, 'severity', 'alertmanager', 'raised', '{"from":"LOW","to":"HIGH"}'),
				('INC-3', 2, 'severity', 'alertmanager', 'lowered', '{"from":"HIGH","to":"LOW"}'),
				('INC-4', 1, 'severity', 'sred', 'odd', 'not json'),
				('INC-4', 2, 'note', 'ann', 'CRITICAL, she says', '{"to":"CRITICAL"}')`,
		} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		require.NoError(t, db.Migrate(ctx, incident.Migrations))
		rows, err := db.QueryContext(ctx, `SELECT id, severity, peak_severity FROM incidents ORDER BY id`)
		require.NoError(t, err)
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id, sev, peak string
			require.NoError(t, rows.Scan(&id, &sev, &peak))
			got = append(got, fmt.Sprintf("%s %s %s", id, sev, peak))
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"INC-1 MEDIUM CRITICAL", "INC-2 HIGH HIGH", "INC-3 LOW HIGH", "INC-4 MEDIUM MEDIUM"}, got)
	})
}

// TestPeakSeverityMergeAndImport: on both backends, a merge keeps the
// higher peak of both incidents, an export carries the peak, and an import
// of an export without one (an older sred) takes it from the record's
// timeline; an unknown peak is refused, naming the field.
func TestPeakSeverityMergeAndImport(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)

		// An SLO outage pages, then only its ticket fires: MEDIUM, peak
		// CRITICAL. It is merged into a LOW incident of another service.
		started := epoch.Add(-10 * time.Minute)
		res, err := f.svc.Ingest(ctx, sloNotification(started, map[string]string{"ticket_fast": "firing", "page_fast": "firing"}))
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		outage := res.Created[0]
		f.clock.Set(epoch.Add(time.Minute))
		_, err = f.svc.Ingest(ctx, sloNotification(started, map[string]string{"ticket_fast": "firing", "page_fast": "resolved"}))
		require.NoError(t, err)
		require.Equal(t, incident.SeverityMedium, f.get(t, outage).Severity)
		low := f.open(t, "g-web", "web", "low")
		require.Equal(t, incident.SeverityLow, f.get(t, low).PeakSeverity)
		_, err = f.svc.Merge(ctx, low, outage, "alice")
		require.NoError(t, err)
		merged := f.get(t, low)
		require.Equal(t, incident.SeverityMedium, merged.Severity)
		require.Equal(t, incident.SeverityCritical, merged.PeakSeverity)

		// The export carries the peak.
		var out bytes.Buffer
		_, err = f.svc.Export(ctx, time.Time{}, &out)
		require.NoError(t, err)
		found := false
		for line := range strings.Lines(out.String()) {
			var rec incident.ExportRecord
			require.NoError(t, json.Unmarshal([]byte(line), &rec))
			if rec.Incident.ID == low {
				found = true
				require.Equal(t, incident.SeverityCritical, rec.Incident.PeakSeverity)
			}
		}
		require.True(t, found, "%s in the export", low)

		// Lines of an older sred: no peak; the timeline says the first
		// paged as CRITICAL. The second names a HIGH peak.
		line := func(id string, sev, peak incident.Severity, tl ...incident.ExportTimelineEntry) string {
			created := epoch.Add(-48 * time.Hour)
			b, err := json.Marshal(incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "imported " + id, Service: "api", Severity: sev, PeakSeverity: peak, Status: incident.StatusResolved,
				DetectedAt: created, CreatedAt: created, UpdatedAt: created}, Timeline: tl})
			require.NoError(t, err)
			return string(b) + "\n"
		}
		at := epoch.Add(-47 * time.Hour)
		imported, err := f.svc.Import(ctx, strings.NewReader(
			line("OLD-2025-0001", incident.SeverityMedium, "",
				incident.ExportTimelineEntry{Time: at, Kind: "severity", Actor: "alertmanager", Message: "raised",
					Data: json.RawMessage(`{"from":"MEDIUM","to":"CRITICAL"}`)},
				incident.ExportTimelineEntry{Time: at.Add(time.Minute), Kind: "severity", Actor: "alertmanager", Message: "lowered",
					Data: json.RawMessage(`{"from":"CRITICAL","to":"MEDIUM"}`)})+
				line("OLD-2025-0002", incident.SeverityLow, incident.SeverityHigh)))
		require.NoError(t, err)
		require.Equal(t, 2, imported.Imported)
		require.Equal(t, incident.SeverityCritical, f.get(t, "OLD-2025-0001").PeakSeverity)
		require.Equal(t, incident.SeverityHigh, f.get(t, "OLD-2025-0002").PeakSeverity)

		_, err = f.svc.Import(ctx, strings.NewReader(line("OLD-2025-0003", incident.SeverityLow, "SEVERE")))
		require.ErrorContains(t, err, `field incident.peak_severity: "SEVERE" is not one of CRITICAL, HIGH, MEDIUM, LOW`)
		_, err = f.svc.Get(ctx, "OLD-2025-0003")
		require.ErrorIs(t, err, incident.ErrNotFound)
	})
}
