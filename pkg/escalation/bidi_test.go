package escalation_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/auth"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestAckPageBidiControlsShown: an acknowledge link whose user name holds
// bidirectional control characters (a right-to-left override that makes
// the name read as another, an isolate) shows each character on the
// acknowledge page and its confirmation, <U+202E> in a span naming it, and
// as the text <U+202E> in the page's title; neither page holds the raw
// characters. On SQLite and PostgreSQL.
func TestAckPageBidiControlsShown(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		const user = "bob\u202eyrrac\u202c \u2067ops\u2069"
		tok, err := notify.SignAck("ack-key", notify.AckClaims{IncidentID: id, User: user, Expires: t0.Add(time.Hour).Unix()})
		require.NoError(t, err)
		const rlo = `<span class="bidi" title="U+202E RIGHT-TO-LEFT OVERRIDE: a bidirectional control character in the text, shown instead of applied">&lt;U+202E&gt;</span>`

		page := a.do(t, "GET", "/ack/"+tok, "")
		require.Equal(t, http.StatusOK, page.Code, page.Body)
		requireAckHeaders(t, page)
		require.Contains(t, page.Body, `<button type="submit">Acknowledge as bob`+rlo+`yrrac<span class="bidi" title="U+202C POP DIRECTIONAL FORMATTING: `)
		require.Contains(t, page.Body, `<span class="bidi" title="U+2067 RIGHT-TO-LEFT ISOLATE: `)

		done := a.do(t, "POST", "/ack/"+tok, "")
		require.Equal(t, http.StatusOK, done.Code, done.Body)
		requireAckHeaders(t, done)
		require.Contains(t, done.Body, "<p>Acknowledged by bob"+rlo+"yrrac")

		// The incident ID is in the page's title too, where a span is no
		// markup: there it is the text <U+202E>.
		ghost, err := notify.SignAck("ack-key", notify.AckClaims{IncidentID: "INC-\u202e1000", User: "bob", Expires: t0.Add(time.Hour).Unix()})
		require.NoError(t, err)
		// (No such incident: the page, asked by a browser, says so.)
		title := a.doAccept(t, "GET", "/ack/"+ghost, "text/html")
		require.Equal(t, http.StatusNotFound, title.Code, title.Body)
		require.Contains(t, title.Body, "<title>Acknowledge INC-&lt;U+202E&gt;1000</title>")
		require.Contains(t, title.Body, "<h1>Acknowledge incident INC-"+rlo+"1000</h1>")

		for _, body := range []string{page.Body, done.Body, title.Body} {
			for _, c := range "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" {
				require.NotContains(t, body, string(c))
			}
		}
	})
}

// TestAckPageStylesheet: the acknowledge page links its stylesheet from
// sred itself, which the page's Content-Security-Policy (style-src 'self')
// lets the browser load, so a <U+202E> marker reads as on the console. The
// stylesheet needs no login (the holder of a link may have no console
// account), is CSS with nosniff, and every rule of it is the console's, the
// marker's among them. Before, the page had no stylesheet: the markers were
// bare text.
func TestAckPageStylesheet(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		a := newAPIRig(t, db)
		id := a.open(t, "critical")
		a.tick(t)
		tok, err := notify.SignAck("ack-key", notify.AckClaims{IncidentID: id, User: "bob\u202e", Expires: t0.Add(time.Hour).Unix()})
		require.NoError(t, err)

		const link = `<link rel="stylesheet" href="/ack/ack.css">`
		page := a.do(t, "GET", "/ack/"+tok, "")
		require.Equal(t, http.StatusOK, page.Code, page.Body)
		require.Contains(t, page.Body, link)
		done := a.do(t, "POST", "/ack/"+tok, "")
		require.Equal(t, http.StatusOK, done.Code, done.Body)
		require.Contains(t, done.Body, link)
		require.Contains(t, strings.Split(page.Header.Get("Content-Security-Policy"), "; "), "style-src 'self'",
			"the page's CSP lets it load a stylesheet from sred")

		css := a.do(t, "GET", "/ack/ack.css", "")
		require.Equal(t, http.StatusOK, css.Code, css.Body)
		require.Equal(t, "text/css; charset=utf-8", css.ContentType)
		require.Equal(t, "nosniff", css.Header.Get("X-Content-Type-Options"))
		require.True(t, auth.Routes["GET /ack/ack.css"].Public, "no login needed, as for the page")

		console, err := os.ReadFile(filepath.Join("..", "ui", "static", "console.css"))
		require.NoError(t, err)
		consoleRules := strings.Split(strings.TrimSpace(string(console)), "\n")
		for _, rule := range strings.Split(strings.TrimSpace(css.Body), "\n") {
			require.Contains(t, consoleRules, rule, "a rule of the console's stylesheet")
		}
		var bidiRule string
		for _, rule := range consoleRules {
			if strings.HasPrefix(rule, ".bidi{") {
				bidiRule = rule
			}
		}
		require.NotEmpty(t, bidiRule)
		require.Contains(t, css.Body, bidiRule+"\n", "the marker is styled as on the console")
	})
}
