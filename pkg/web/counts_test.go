package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestIncidentCountBounds: an incident took as many notes, status
// updates, action items, impact changes and snoozes as were posted (a script in a
// loop grew its timeline, post-mortem, console page and export without
// end). Each is now bounded: the incident is imported two short of the
// bound, and eight concurrent POSTs add exactly two; the other six are
// answered 409 naming the incident, the collection and the bound, and the
// store holds the bound, on both backends.
func TestIncidentCountBounds(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		for i, tc := range []struct {
			name       string
			seed       func(rec *incident.ExportRecord, n int)
			path, body string
			max        int
			count      string // counts the rows of the collection of $1
			want       string // the refusal, after "incident <id> has "
		}{
			{"notes", entries("note"), "notes", `{"text":"one more"}`, incident.MaxNotes,
				`SELECT COUNT(*) FROM incident_timeline WHERE incident_id = $1 AND kind = 'note'`,
				"1000 notes, the most it can have; write what follows in its post-mortem, or open a new incident for new work"},
			{"status updates", entries("status_update"), "status-updates", `{"impact":"slow","public":true}`, incident.MaxStatusUpdates,
				`SELECT COUNT(*) FROM incident_timeline WHERE incident_id = $1 AND kind = 'status_update'`,
				"200 status updates, the most it can have; resolve it and open a new incident for what follows"},
			{"action items", func(rec *incident.ExportRecord, n int) {
				for k := range n {
					rec.ActionItems = append(rec.ActionItems, incident.ExportActionItem{Title: fmt.Sprint("item ", k),
						State: incident.ActionOpen, CreatedAt: rec.Incident.CreatedAt, UpdatedAt: rec.Incident.CreatedAt})
				}
			}, "action-items", `{"title":"one more"}`, incident.MaxActionItems,
				`SELECT COUNT(*) FROM incident_action_items WHERE incident_id = $1`,
				"500 action items, the most it can have; update the ones it has (PATCH .../action-items/{item}), or track the rest outside sred"},
			{"impact changes", entries("impact"), "impact", `{"impact":"checkout is slow"}`, incident.MaxEdits,
				`SELECT COUNT(*) FROM incident_timeline WHERE incident_id = $1 AND kind IN ('impact', 'assignment', 'snooze', 'action_item')`,
				"2500 impact, assignment, snooze and action item changes, the most it can have; open a new incident for what follows"},
			{"snoozes", entries("snooze"), "snooze", `{"duration":"30m"}`, incident.MaxEdits,
				`SELECT COUNT(*) FROM incident_timeline WHERE incident_id = $1 AND kind IN ('impact', 'assignment', 'snooze', 'action_item')`,
				"2500 impact, assignment, snooze and action item changes, the most it can have; open a new incident for what follows"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("OLD-2026-%04d", i+1)
				rec := incident.ExportRecord{Incident: incident.Incident{
					ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusInvestigating,
					GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created}}
				tc.seed(&rec, tc.max-2)
				line, err := json.Marshal(rec)
				require.NoError(t, err)
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", string(line)+"\n")
				require.Equal(t, http.StatusOK, code, r.Error)

				const posts = 8
				answers := make([]string, posts)
				var wg sync.WaitGroup
				for k := range posts {
					wg.Add(1)
					go func() {
						defer wg.Done()
						code, r := call(t, "POST", srv.URL+"/api/v1/incidents/"+id+"/"+tc.path, tc.body)
						answers[k] = fmt.Sprint(code, " ", r.ErrorType, " ", r.Error)
					}()
				}
				wg.Wait()
				added, refused := 0, 0
				for _, a := range answers {
					switch {
					case strings.HasPrefix(a, "200 ") || strings.HasPrefix(a, "201 "):
						added++
					case a == "409 conflict incident "+id+" has "+tc.want:
						refused++
					default:
						t.Errorf("unexpected answer %q", a)
					}
				}
				require.Equal(t, 2, added, "%q", answers)
				require.Equal(t, posts-2, refused, "%q", answers)
				var n int
				require.NoError(t, db.QueryRowContext(t.Context(), tc.count, id).Scan(&n))
				require.Equal(t, tc.max, n)
			})
		}
	})
}

// entries adds n timeline entries of kind to an imported incident.
func entries(kind string) func(rec *incident.ExportRecord, n int) {
	return func(rec *incident.ExportRecord, n int) {
		for k := range n {
			rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: rec.Incident.CreatedAt.Add(time.Duration(k) * time.Second),
				Kind: kind, Actor: "alice", Message: fmt.Sprint(kind, " ", k)})
		}
	}
}

// TestMergeBound: merges by hand into one incident are bounded
// (incident.MaxMerged) as the other collections are: the incident is
// imported two merges short of the bound, and eight concurrent merges of
// eight open incidents into it apply exactly two; the other six are
// answered 409 naming the incident, the collection and the bound, and
// their incidents stay open, on both backends.
func TestMergeBound(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc := newIncidentService(t, db)
		srv := incidentsServer(t, svc)
		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		const into, posts = "OLD-2026-0001", 8
		rec := func(id string, status incident.Status, mergedInto string) string {
			r := incident.ExportRecord{Incident: incident.Incident{
				ID: id, Title: "imported " + id, Service: "api", Severity: incident.SeverityHigh, Status: status,
				GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created, MergedInto: mergedInto}}
			if !status.Open() {
				r.Incident.ResolvedAt = &created
			}
			line, err := json.Marshal(r)
			require.NoError(t, err)
			return string(line) + "\n"
		}
		body := rec(into, incident.StatusInvestigating, "")
		for k := range incident.MaxMerged - 2 {
			body += rec(fmt.Sprintf("OLD-2026-%04d", k+2), incident.StatusResolved, into)
		}
		var sources []string
		for k := range posts {
			id := fmt.Sprintf("NEW-2026-%04d", k+1)
			sources = append(sources, id)
			body += rec(id, incident.StatusTriggered, "")
		}
		code, r := call(t, "POST", srv.URL+"/api/v1/incidents/import", body)
		require.Equal(t, http.StatusOK, code, r.Error)

		answers := make([]string, posts)
		var wg sync.WaitGroup
		for k, from := range sources {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, r := call(t, "POST", srv.URL+"/api/v1/incidents/"+into+"/merge", `{"actor":"alice","from":"`+from+`"}`)
				answers[k] = fmt.Sprint(code, " ", r.ErrorType, " ", r.Error)
			}()
		}
		wg.Wait()
		added, refused := 0, 0
		want := "409 conflict incident " + into + " has 100 incidents merged into it, the most it can have; " +
			"merge the rest into another open incident, or resolve them and name them in its post-mortem"
		for _, a := range answers {
			switch {
			case strings.HasPrefix(a, "200 "):
				added++
			case a == want:
				refused++
			default:
				t.Errorf("unexpected answer %q", a)
			}
		}
		require.Equal(t, 2, added, "%q", answers)
		require.Equal(t, posts-2, refused, "%q", answers)
		var merged, open int
		require.NoError(t, db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM incidents WHERE merged_into = $1`, into).Scan(&merged))
		require.Equal(t, incident.MaxMerged, merged)
		require.NoError(t, db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM incidents WHERE id LIKE 'NEW-%' AND status = 'triggered' AND merged_into = ''`).Scan(&open))
		require.Equal(t, posts-2, open, "the refused merges left their incidents as they were")
	})
}
