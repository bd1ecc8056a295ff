package ui_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestConsoleNotePastBound: the console's note form on an incident that
// has incident.MaxNotes notes answers 409 with the service's words (a
// 503, "the store failed", would send the responder to look at the
// database), and stores nothing.
func TestConsoleNotePastBound(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{}).Register(mux)
		srv := httptest.NewServer(principal(mux))
		defer srv.Close()
		responder := &client{t: t, base: srv.URL, role: "responder", c: srv.Client()}

		created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		const id = "OLD-2026-0001"
		rec := incident.ExportRecord{Incident: incident.Incident{
			ID: id, Title: "imported", Service: "api", Severity: incident.SeverityHigh, Status: incident.StatusInvestigating,
			GroupKey: "{}:" + id, DetectedAt: created, CreatedAt: created, UpdatedAt: created}}
		for range incident.MaxNotes {
			rec.Timeline = append(rec.Timeline, incident.ExportTimelineEntry{Time: created, Kind: "note", Actor: "alice", Message: "x"})
		}
		line, err := json.Marshal(rec)
		require.NoError(t, err)
		_, err = svc.Import(t.Context(), strings.NewReader(string(line)+"\n"))
		require.NoError(t, err)

		code, body := responder.do("POST", "/incidents/"+id+"/note", map[string][]string{"text": {"one more"}})
		require.Equal(t, http.StatusConflict, code, body)
		require.Contains(t, body, "incident "+id+" has 1000 notes, the most it can have")
		tl, err := svc.Timeline(t.Context(), id)
		require.NoError(t, err)
		require.Len(t, tl, incident.MaxNotes)
	})
}
