package escalation_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil/browser"
)

// TestBrowserAckPageMarkers opens an acknowledge link in headless Chromium
// (Debian's chromium; the test fails when it is missing): the page's
// Content-Security-Policy lets the browser load its stylesheet, and the
// <U+202E> marker of the user's name is drawn as on the console (monospace,
// on the console's yellow), not as bare text.
func TestBrowserAckPageMarkers(t *testing.T) {
	browser.Chromium(t)
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	for _, m := range allMigrations {
		require.NoError(t, db.Migrate(ctx, m))
	}
	a := newAPIRig(t, db)
	id := a.open(t, "critical")
	a.tick(t)
	tok, err := notify.SignAck("ack-key", notify.AckClaims{IncidentID: id, User: "bob\u202eyrrac", Expires: t0.Add(time.Hour).Unix()})
	require.NoError(t, err)

	// A safety net only: every step waits on a condition.
	tab, done := browser.Tab(t, 2*time.Minute)
	defer done()
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(a.srv.URL+"/ack/"+tok), chromedp.WaitVisible(chromedp.CSS("button span.bidi"))))
	// Navigate returns after the load event, which waits for the page's
	// stylesheet.
	look, err := chromedp.Run(tab, chromedp.Evaluate[string](`(() => { const s = getComputedStyle(document.querySelector('button span.bidi')); return [s.fontFamily, s.backgroundColor].join('|'); })()`))
	require.NoError(t, err)
	require.Equal(t, "monospace|rgb(255, 243, 205)", look)
}
