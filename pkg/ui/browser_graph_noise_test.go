package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/correlation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/noise"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil/browser"
	"github.com/rootuip/sre/pkg/ui"
)

// TestBrowserGraphAndNoise renders the dependency graph and the noise
// report with data in headless Chromium (SQLite store): the graph
// highlights postgres as the likely root of a database outage the API
// alerted first, the noise report lists the noisy alerts with their
// suggestions and its since filter works from the keyboard-reachable form;
// both pages are keyboard navigable (every interactive element reached by
// Tab in order, with a focus indicator) and do not scroll sideways at a
// phone's width (390 px). Screenshots go to $SRE_TEST_ARTIFACTS.
func TestBrowserGraphAndNoise(t *testing.T) {
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, incident.Migrations))
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	end := start.Add(7 * 24 * time.Hour)
	now := start
	svc := noiseService(t, db, &now)
	g, rules := testGraph(t)
	svc.SetCorrelation(rules)
	noisyWeek(t, svc, start, func(t time.Time) { now = t })
	now = end.Add(-10 * time.Minute)
	apiInc := fire(t, svc, "{}:api", "HighErrorRate", "api", "critical", now)
	now = now.Add(2 * time.Minute)
	require.Equal(t, apiInc, fire(t, svc, "{}:postgres", "PostgresDown", "postgres", "critical", now))

	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Graph: func() *correlation.Graph { return g },
		Noise: func(ctx context.Context, o noise.Options) (*noise.Report, error) { return noise.Build(ctx, db, o) }},
		ui.Options{AllowAnonymous: true, Clock: clock.Func(func() time.Time { return end })}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A safety net only: every step waits on a condition.
	tab, closeBrowser := browser.Tab(t, 3*time.Minute)
	defer closeBrowser()
	dir := browser.Artifacts(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err)
		return strings.Join(strings.Fields(s), " ")
	}
	shot := func(name string) { t.Helper(); browser.Screenshot(t, tab, dir, name) }

	// The graph: reached from the navigation, postgres is the likely root.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/"), chromedp.WaitReady(chromedp.CSS("main")),
		chromedp.Click(chromedp.CSS(`nav a[href="/graph"]`)), chromedp.WaitVisible(chromedp.CSS(`#svc-postgres.root`))))
	require.Contains(t, text("#svc-postgres h2"), "postgres likely root")
	require.Contains(t, text("#svc-postgres"), "Needed by: api (failing), checkout, search")
	require.Contains(t, text("#svc-api"), apiInc+" HighErrorRate on api (triggered, likely root postgres)")
	require.Contains(t, text("#graph-summary"), "likely root: postgres (the deepest failing dependency)")
	roots, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll('.graph .node.root').length`))
	require.NoError(t, err)
	require.Equal(t, 1, roots)
	shot("console-graph.jpg")
	tabThrough(t, tab, "/graph")

	// The noise report: reached from the navigation, last 30 days.
	require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(`nav a[href="/noise"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#noise tbody tr.noisy`))))
	require.Contains(t, text("#noise tbody"), "DiskIOSaturated storage 3 0.7 3 0 of 0 0 100% –")
	require.Contains(t, text("#suggestions"), "storage/DiskIOSaturated: raise `for:` of alert DiskIOSaturated")
	require.Contains(t, text("#suggestions"), "api/HighLatency: move it to the ticket tier")
	// The since filter: 7 days, chosen in the form.
	// The mark on the page tells the page of the answer from this one.
	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](`(document.body.dataset.before = '1') === '1'`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(`select[name="since"]`), "7d"),
		chromedp.Submit(chromedp.CSS(`select[name="since"]`)), chromedp.WaitVisible(chromedp.CSS(`body:not([data-before]) #noise tbody tr.noisy`))))
	loc, err := chromedp.Run(tab, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(loc, "/noise?since=7d"), loc)
	require.Contains(t, text("#noise tbody"), "DiskIOSaturated storage 3 3.0 3 0 of 0 0 100% –")
	require.Contains(t, text("#noise-summary"), "2026-11-23 00:00:00 UTC to 2026-11-30 00:00:00 UTC")
	shot("console-noise.jpg")
	tabThrough(t, tab, "/noise")

	// At a phone's width neither page scrolls sideways.
	for _, page := range []string{"/graph", "/noise?since=7d"} {
		require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+page), chromedp.WaitReady(chromedp.CSS("main"))))
		wide, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
		require.NoError(t, err)
		require.False(t, wide, "%s scrolls sideways at 390 px", page)
	}
	t.Logf("screenshots in %s", dir)
}
