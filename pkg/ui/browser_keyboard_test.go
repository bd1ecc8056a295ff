package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/stream"
	"github.com/rootuip/sre/pkg/testutil/browser"
	"github.com/rootuip/sre/pkg/ui"
)

// keyboardJS is loaded in the page before tabbing: it records how every
// element that should take the keyboard focus looks unfocused, and
// describes the focused element after each Tab.
const keyboardJS = `(() => {
  const sel = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
  // Rendered elements only: not display:none, not in a closed <details>
  // (whose summary is the element to reach).
  const all = [...document.querySelectorAll(sel)].filter(e => e.checkVisibility({visibilityProperty: true}) &&
    !(e.closest('details:not([open])') && !(e.tagName === 'SUMMARY' && e.parentElement.matches('details:not([open])'))));
  const look = e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join('|'); };
  const lum = c => { const m = c.match(/[\d.]+/g).map(Number); const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]); };
  // The background the indicator is drawn on: the first opaque one around the element.
  const bg = e => { for (let p = e.parentElement; p; p = p.parentElement) { const c = getComputedStyle(p).backgroundColor; if (!/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const base = all.map(look);
  window.__kbd = () => {
    const e = document.activeElement;
    if (!e || e === document.body) return {index: -2};
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    const ow = parseFloat(s.outlineWidth) || 0, hasOutline = s.outlineStyle !== 'none' && ow >= 2;
    const i = all.indexOf(e);
    let contrast = 0;
    if (hasOutline) { const a = lum(s.outlineColor), b = lum(bg(e)); contrast = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }
    return {index: i, total: all.length, desc: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || e.name || '').trim().slice(0, 40),
      changed: i >= 0 && look(e) !== base[i], indicator: hasOutline || s.boxShadow !== 'none', contrast: contrast, hasOutline: hasOutline,
      onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && r.left < innerWidth && r.top < innerHeight};
  };
  window.__kbdAll = () => all.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || e.name || '').trim().slice(0, 40));
  return all.length;
})()`

type focused struct {
	Index      int     `json:"index"`
	Total      int     `json:"total"`
	Desc       string  `json:"desc"`
	Changed    bool    `json:"changed"`
	Indicator  bool    `json:"indicator"`
	HasOutline bool    `json:"hasOutline"`
	Contrast   float64 `json:"contrast"`
	OnScreen   bool    `json:"onScreen"`
}

// tabThrough presses Tab from the top of the loaded page until the focus
// leaves the page, and checks every step: each interactive element is
// reached once, in document order (no tabindex reordering), is on screen
// when focused, and shows a focus indicator (an outline of at least 2px
// with a contrast of 3:1 against the background around it, or a shadow)
// that it does not show unfocused. It returns the elements in Tab order.
func tabThrough(t *testing.T, tab context.Context, page string) []focused {
	t.Helper()
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](keyboardJS))
	require.NoError(t, err)
	require.Positive(t, n)
	var order []focused
	for range n + 5 {
		require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(kb.Tab)))
		f, err := chromedp.Run(tab, chromedp.Evaluate[focused](`window.__kbd()`))
		require.NoError(t, err)
		if f.Index == -2 || (len(order) > 0 && f.Index == order[0].Index) {
			break // past the last element (or back to the first)
		}
		require.GreaterOrEqual(t, f.Index, 0, "%s: Tab focused an element that is not interactive: %s", page, f.Desc)
		if len(order) > 0 {
			require.Greater(t, f.Index, order[len(order)-1].Index, "%s: Tab order follows the document: %s after %s", page, f.Desc, order[len(order)-1].Desc)
		}
		require.True(t, f.OnScreen, "%s: %s is on screen when focused", page, f.Desc)
		require.True(t, f.Indicator, "%s: %s has a focus indicator", page, f.Desc)
		require.True(t, f.Changed, "%s: %s looks different when focused", page, f.Desc)
		if f.HasOutline {
			require.GreaterOrEqual(t, f.Contrast, 3.0, "%s: the focus outline of %s contrasts with its background", page, f.Desc)
		}
		order = append(order, f)
	}
	all, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`window.__kbdAll()`))
	require.NoError(t, err)
	var reached []string
	for _, f := range order {
		reached = append(reached, all[f.Index])
	}
	require.Equal(t, all, reached, "%s: every interactive element is reached by Tab, in order", page)
	return order
}

// tabTo presses Tab until the focused element matches the CSS selector.
func tabTo(t *testing.T, tab context.Context, css string) {
	t.Helper()
	for range 200 {
		require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(kb.Tab)))
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.activeElement.matches(`+"`"+css+"`"+`)`))
		require.NoError(t, err)
		if ok {
			return
		}
	}
	t.Fatalf("Tab never reached %s", css)
}

// TestBrowserKeyboard drives the console with the keyboard only, in
// headless Chromium: on the home page (services with SLOs, open incidents,
// the filter form) and on an incident's page (the action forms), every
// interactive element is reached by Tab in document order and shows a
// visible focus indicator; the first Tab reaches the skip link, which
// moves the focus to the content; a service's SLOs open with Enter; and the
// incident is acknowledged with Enter and a note added with Space, without
// a pointer.
func TestBrowserKeyboard(t *testing.T) {
	ctx := t.Context()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Migrate(ctx, incident.Migrations, budget.Migrations))
	bus := events.NewBus(256, nil)
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, bus, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	bs := budget.New(budget.Options{DB: db, Registerer: prometheus.NewRegistry()})
	require.NoError(t, bs.Update(budget.DefaultConfig, specs(t, 3, 2), nil, nil))
	mux := http.NewServeMux()
	ui.New(ui.Sources{Incidents: svc, Budgets: bs}, ui.Options{AllowAnonymous: true}).Register(mux)
	stream.New(bus, stream.Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	lbls := map[string]string{"alertname": "Down", "service": "svc001", "severity": "critical"}
	res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:svc001", CommonLabels: lbls,
		Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "k1", StartsAt: time.Now(), Labels: lbls}}})
	require.NoError(t, err)
	id := res.Created[0]

	// A safety net only: every step waits on a condition.
	tab, closeBrowser := browser.Tab(t, 3*time.Minute)
	defer closeBrowser()

	for _, page := range []string{"/", "/incidents/" + id} {
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+page), chromedp.WaitReady(chromedp.CSS("main"))))
		order := tabThrough(t, tab, page)
		require.True(t, strings.HasPrefix(order[0].Desc, "a Skip to content"), "%s: the first Tab reaches the skip link, not %s", page, order[0].Desc)
		t.Logf("%s: %d elements by Tab", page, len(order))

		// The skip link moves the focus to the content: the next Tab
		// reaches the first element of main, not the navigation.
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+page), chromedp.WaitReady(chromedp.CSS("main")),
			chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter)))
		active, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.activeElement.id`))
		require.NoError(t, err)
		require.Equal(t, "main", active, "%s: the skip link focuses the content", page)
		require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(kb.Tab)))
		inMain, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById('main').contains(document.activeElement) && document.activeElement.id !== 'main'`))
		require.NoError(t, err)
		require.True(t, inMain, "%s: after the skip link, Tab goes on in the content", page)
	}

	// A closed service opens with Enter on its summary, and Tab then
	// reaches its SLOs.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/"), chromedp.WaitReady(chromedp.CSS("main"))))
	tabTo(t, tab, "details.service:not([open]) > summary")
	require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Tab)))
	inSLOs, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.activeElement.matches('details.service[open] tr.slo a')`))
	require.NoError(t, err)
	require.True(t, inSLOs, "Enter opens a service's SLOs and Tab reaches them")

	// Acknowledge with Enter, then add a note with Space: no pointer.
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(srv.URL+"/incidents/"+id), chromedp.WaitReady(chromedp.ID("ack"))))
	tabTo(t, tab, "#ack")
	require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(".done"))))
	status, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("status")))
	require.NoError(t, err)
	require.Equal(t, "acknowledged", strings.TrimSpace(status))

	tabTo(t, tab, `textarea[name="text"]`)
	require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent("checking the database by keyboard")))
	tabTo(t, tab, "#note")
	// The acknowledgement's notice goes; the note's comes with the next page.
	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelector('.done').remove() || true`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, chromedp.KeyEvent(" "), chromedp.WaitVisible(chromedp.CSS(".done"))))
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS("#timeline"))))
	timeline, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("timeline")))
	require.NoError(t, err)
	require.Contains(t, timeline, "checking the database by keyboard")

	inc, err := svc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, incident.StatusAcknowledged, inc.Status)
}
