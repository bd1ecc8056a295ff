package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/change"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
	"github.com/rootuip/sre/pkg/ui"
)

// TestChangesPage shows the DORA measures and the last changes from the
// real change records: a change followed by an incident is marked failed
// and links to the incident, whose page names it as the likely cause.
func TestChangesPage(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, change.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		clk := clock.NewManual(now)
		changes := change.New(change.Options{DB: db, Clock: clk})
		var hook incident.Hook
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{hook} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		hook = changes.Hook(svc)
		svc.Clock = clk
		mux := http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc, Changes: changes}, ui.Options{AllowAnonymous: true, Clock: clk}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		commit := now.Add(-26 * time.Hour)
		_, err = changes.Record(ctx, change.Change{Service: "checkout", Version: "<v2>", Commit: "3f2c1ab", CommitTime: &commit,
			StartedAt: now.Add(-20 * time.Minute), FinishedAt: tp(now.Add(-10 * time.Minute)), Actor: "ci"})
		require.NoError(t, err)
		_, err = changes.Record(ctx, change.Change{Service: "search", Kind: change.KindConfig, Outcome: change.RolledBack, StartedAt: now.Add(-2 * time.Hour)})
		require.NoError(t, err)
		inc, err := svc.Create(ctx, incident.ManualIncident{Title: "checkout errors", Service: "checkout", Severity: incident.SeverityHigh, Actor: "alice"})
		require.NoError(t, err)

		code, body := get(t, srv.URL+"/changes")
		require.Equal(t, http.StatusOK, code, body)
		for _, want := range []string{
			`<a href="/changes" aria-current="page">Changes</a>`,
			`<tr><td><a href="/changes?service=checkout">checkout</a></td><td>0.14</td><td>25h50m</td><td>100%</td><td>–</td>`,
			`<tr class="failed"><td>1</td><td>2026-12-02 11:40:00 UTC</td><td>checkout</td><td>deploy</td>`,
			`<td>&lt;v2&gt;</td><td><code>3f2c1ab</code></td>`,
			`<a href="/incidents/` + inc.ID + `">` + inc.ID + `</a>`,
			`<td><strong>rolled_back</strong> (failed)</td>`,
		} {
			require.Contains(t, body, want)
		}
		code, body = get(t, srv.URL+"/changes?service=search")
		require.Equal(t, http.StatusOK, code, body)
		require.NotContains(t, body, "3f2c1ab")
		require.Contains(t, body, "<h1>Changes of search</h1>")

		code, body = get(t, srv.URL+"/incidents/"+inc.ID)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `<tr class="likely-cause"><th>Likely cause</th><td>deploy change 1 of checkout (version &lt;v2&gt;, commit 3f2c1ab) by ci via api, succeeded 10m0s before the first alert (<a href="/api/v1/changes/1">change 1</a>)</td></tr>`)

		// Without change records the page says so.
		mux = http.NewServeMux()
		ui.New(ui.Sources{Incidents: svc}, ui.Options{AllowAnonymous: true}).Register(mux)
		bare := httptest.NewServer(mux)
		defer bare.Close()
		code, body = get(t, bare.URL+"/changes")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, "Change records are not configured.")
	})
}

// TestChangesPageFailedThenRolledBack counts a change that failed and was
// rolled back later under both failed and rolled back, as
// sre_rollbacks_total and the API's rollbacks do.
func TestChangesPageFailedThenRolledBack(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{change.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		clk := clock.NewManual(now)
		changes := change.New(change.Options{DB: db, Clock: clk})
		mux := http.NewServeMux()
		ui.New(ui.Sources{Changes: changes}, ui.Options{AllowAnonymous: true, Clock: clk}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		c, err := changes.Record(ctx, change.Change{Service: "api", Version: "v2", Outcome: change.InProgress, StartedAt: now.Add(-30 * time.Minute)})
		require.NoError(t, err)
		_, err = changes.Finish(ctx, c.ID, change.Failed)
		require.NoError(t, err)
		clk.Advance(5 * time.Minute)
		_, err = changes.Finish(ctx, c.ID, change.RolledBack)
		require.NoError(t, err)
		_, err = changes.Record(ctx, change.Change{Service: "api", Version: "v3", Outcome: change.RolledBack, StartedAt: now.Add(-10 * time.Minute)})
		require.NoError(t, err)
		ms, err := changes.Metrics(ctx)
		require.NoError(t, err)
		require.Len(t, ms, 1)
		require.Equal(t, 2, ms[0].Rollbacks)
		require.Equal(t, 1, ms[0].Results[change.Failed])

		code, body := get(t, srv.URL+"/changes")
		require.Equal(t, http.StatusOK, code, body)
		// Shipped 2, failed 2, rolled back 2 (one failed first), refused 0.
		require.Contains(t, body, `<td>2</td><td>2</td><td>2</td><td>0</td><td>0</td></tr>`)
	})
}

func tp(t time.Time) *time.Time { return &t }
