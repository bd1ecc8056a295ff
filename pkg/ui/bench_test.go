package ui_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/ui"
)

// BenchmarkHome renders the home page with 500 SLOs (100 services x 5)
// and 100,000 stored incidents (1,000 of them open) on SQLite: the server
// time of one page view. See docs/benchmarks.md.
func BenchmarkHome(b *testing.B) {
	ctx := b.Context()
	db, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	defer db.Close()
	require.NoError(b, db.Migrate(ctx, incident.Migrations, budget.Migrations))
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(b, err)
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
	require.NoError(b, bs.Update(budget.DefaultConfig, specs(b, 100, 5), nil, nil))
	require.Len(b, bs.Objectives(), 500)

	now := time.Now().UTC()
	sevs := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	require.NoError(b, db.InTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO incidents (id, title, service, severity, status, labels,
			detected_at, created_at, acknowledged_at, resolved_at, updated_at) VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9, $10)`)
		if err != nil {
			return err
		}
		for i := range 100_000 {
			created := now.Add(-time.Duration(100_000-i) * time.Minute).UnixMilli()
			status, ack, res := "resolved", any(created+60_000), any(created+600_000)
			if i%100 == 0 {
				status, ack, res = "triggered", nil, nil
			}
			if _, err := st.ExecContext(ctx, fmt.Sprintf("INC-B-%06d", i), "Down", fmt.Sprintf("svc%03d", i%100), sevs[i%4],
				status, created, created, ack, res, created); err != nil {
				return err
			}
		}
		return st.Close()
	}))
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{}).Register(mux)
	req := httptest.NewRequest("GET", "/", nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	require.Equal(b, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(b, body, "500 of 500 SLOs in 100 services.")
	require.Contains(b, body, `<a href="/incidents">1000</a>`)
	require.True(b, strings.Contains(body, "MTTA <strong id=\"mtta\">1m00s</strong>"), "MTTA over the resolved incidents")
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
