package ui_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestBidiControlsShown: an alert whose summary, label and annotation hold
// bidirectional control characters (a right-to-left override that makes
// "Disk full on db-1" read as something else, an isolate) is shown on the
// console with each character visible, <U+202E> in a span naming it (in
// the page's title, a text, as the text <U+202E>), on the incident page
// and in the incident list; no page holds the raw characters. The stored
// incident keeps them. Both backends.
func TestBidiControlsShown(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		svc, srv := newConsole(t, db)

		const summary = "Disk full on \u202e1-bd\u202c"
		lbls := map[string]string{"alertname": "DiskFull", "service": "api", "instance": "\u2067db-1\u2069:9100", "team": "\u200fops\u061c"}
		res, err := svc.Ingest(t.Context(), incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:bidi",
			CommonLabels: lbls, CommonAnnotations: map[string]string{"summary": summary},
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "a", StartsAt: time.Now(), Labels: lbls,
				Annotations: map[string]string{"summary": summary}}}})
		require.NoError(t, err)
		id := res.Created[0]
		stored, err := svc.Get(t.Context(), id)
		require.NoError(t, err)
		require.Contains(t, stored.Title, "\u202e1-bd\u202c", "the stored title is unchanged")

		const rlo = `<span class="bidi" title="U+202E RIGHT-TO-LEFT OVERRIDE: a bidirectional control character in the text, shown instead of applied">&lt;U+202E&gt;</span>`
		code, page := get(t, srv.URL+"/incidents/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, page, "Disk full on "+rlo+"1-bd<span class=\"bidi\" title=\"U+202C POP DIRECTIONAL FORMATTING: ")
		require.Contains(t, page, `<span class="bidi" title="U+2067 RIGHT-TO-LEFT ISOLATE: `)
		require.Contains(t, page, `<span class="bidi" title="U+200F RIGHT-TO-LEFT MARK: `)
		require.Contains(t, page, `<span class="bidi" title="U+061C ARABIC LETTER MARK: `)
		code, list := get(t, srv.URL+"/incidents")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, list, "Disk full on "+rlo+"1-bd")
		for _, body := range []string{page, list} {
			for _, c := range "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" {
				require.NotContains(t, body, string(c))
			}
		}
	})
}
