package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

// BenchmarkStatusPage: the page of 50 open incidents, each with a timeline
// of 200 entries (170 notes, 30 public status updates), on SQLite. build
// computes the page after a change (Invalidate, as every incident change
// does); html computes and renders it; cached serves it while nothing
// changed (docs/benchmarks.md, Status page).
func BenchmarkStatusPage(b *testing.B) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	require.NoError(b, db.Migrate(ctx, incident.Migrations, status.Migrations))
	inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(b, err)
	b.Cleanup(func() { inc.Close() })
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var lines strings.Builder
	var services []string
	for i := range 50 {
		id := fmt.Sprintf("INC-2026-%04d", i+1)
		at := now.Add(-time.Duration(i+1) * time.Hour)
		svc := fmt.Sprintf("svc%d", i)
		services = append(services, svc)
		rec := incident.ExportRecord{Incident: incident.Incident{ID: id, Title: "down", Service: svc, Severity: incident.SeverityHigh,
			Status: incident.StatusInvestigating, GroupKey: "{}:" + id, DetectedAt: at, CreatedAt: at, UpdatedAt: at}}
		for k := range 200 {
			e := incident.ExportTimelineEntry{Time: at.Add(time.Duration(k) * time.Second), Kind: "note", Actor: "rita",
				Message: fmt.Sprintf("note %d: what was tried and what happened next, https://example.com/dash/%d", k, k)}
			if k%20 < 3 {
				data, _ := json.Marshal(map[string]any{"impact": "Some payments fail", "public": true,
					"public_message": fmt.Sprintf("Update %d: we are looking into elevated errors.", k)})
				e.Kind, e.Data = "status_update", data
			}
			rec.Timeline = append(rec.Timeline, e)
		}
		line, err := json.Marshal(rec)
		require.NoError(b, err)
		lines.Write(append(line, '\n'))
	}
	_, err = inc.Import(ctx, strings.NewReader(lines.String()))
	require.NoError(b, err)
	cfg := status.Config{Components: []status.Component{{Name: "Checkout", Services: services}}}
	require.NoError(b, cfg.Validate())
	svc := status.New(cfg, status.Options{Incidents: inc, Clock: clock.NewManual(now)})
	mux := http.NewServeMux()
	status.NewHandler(svc, nil).Register(mux)
	get := func(b *testing.B) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /status: %d", rec.Code)
		}
	}
	p, err := svc.Page(ctx)
	require.NoError(b, err)
	require.Len(b, p.Incidents, 50)
	b.Run("build", func(b *testing.B) {
		for range b.N {
			svc.Invalidate()
			if _, err := svc.Page(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("html", func(b *testing.B) {
		for range b.N {
			svc.Invalidate()
			get(b)
		}
	})
	b.Run("cached", func(b *testing.B) {
		for range b.N {
			get(b)
		}
	})
}
