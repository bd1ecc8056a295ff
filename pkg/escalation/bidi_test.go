package escalation_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
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
		title := a.do(t, "GET", "/ack/"+ghost, "")
		require.Equal(t, http.StatusOK, title.Code, title.Body)
		require.Contains(t, title.Body, "<title>Acknowledge INC-&lt;U+202E&gt;1000</title>")
		require.Contains(t, title.Body, "<h1>Acknowledge incident INC-"+rlo+"1000</h1>")

		for _, body := range []string{page.Body, done.Body, title.Body} {
			for _, c := range "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" {
				require.NotContains(t, body, string(c))
			}
		}
	})
}
