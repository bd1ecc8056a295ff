package status_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

// TestBidiControlsShown: a public update written with a right-to-left
// override and an isolate (text that reads otherwise than it is) is shown
// on the status page with the characters visible, <U+202E> in a span
// naming it, and in the Atom feed as the text <U+202E>; neither holds the
// raw characters. status.json, the API, keeps the text as it was written.
// On SQLite and PostgreSQL.
func TestBidiControlsShown(t *testing.T) {
	ctx := context.Background()
	const message = "Refunds \u202eelbaliava\u202c again, \u2067see\u2069 the FAQ."
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments failing", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Impact: "payments fail", Public: true, PublicMessage: message})
		require.NoError(t, err)

		cfg := status.Config{Title: "Shop \u200fstatus", Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}, UptimeDays: 1}
		require.NoError(t, cfg.Validate())
		clk.Advance(time.Hour)
		get := pageGetter(t, status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart}))

		html := get("/status")
		require.Contains(t, html, `Refunds <span class="bidi" title="U+202E RIGHT-TO-LEFT OVERRIDE: a bidirectional control character in the text, shown instead of applied">&lt;U+202E&gt;</span>elbaliava<span class="bidi" title="U+202C POP DIRECTIONAL FORMATTING: `)
		require.Contains(t, html, `<span class="bidi" title="U+2067 RIGHT-TO-LEFT ISOLATE: `)
		require.Contains(t, html, "<title>Shop &lt;U+200F&gt;status</title>", "no markup in the title")
		feed := get("/status/feed.atom")
		require.Contains(t, feed, "Refunds &lt;U+202E&gt;elbaliava&lt;U+202C&gt; again, &lt;U+2067&gt;see&lt;U+2069&gt; the FAQ.")
		for _, body := range []string{html, feed} {
			for _, c := range "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c" {
				require.NotContains(t, body, string(c))
			}
		}

		var js struct {
			Title     string `json:"title"`
			Incidents []struct {
				Updates []struct {
					Message string `json:"message"`
				} `json:"updates"`
			} `json:"incidents"`
		}
		require.NoError(t, json.Unmarshal([]byte(get("/status.json")), &js))
		require.Equal(t, "Shop \u200fstatus", js.Title, "the API is unchanged")
		require.Len(t, js.Incidents, 1)
		require.Equal(t, message, js.Incidents[0].Updates[0].Message, "the API is unchanged")
		require.True(t, strings.Contains(get("/status/status.css"), ".bidi{"))
	})
}
