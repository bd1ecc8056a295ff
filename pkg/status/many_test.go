package status_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
)

// TestManyPublicUpdates: the page, status.json and the feed showed every
// public update of every incident, so one incident with hundreds of
// updates made the public page as long for every visitor. They now show
// the latest status.MaxPublicUpdates of each incident, newest first; the
// page and status.json say how many earlier ones are left out. An
// incident with fewer shows them all and says nothing of earlier ones.
func TestManyPublicUpdates(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, _ *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		const posted = status.MaxPublicUpdates + 5
		for _, tc := range []struct {
			service string
			public  int
		}{{"payments", posted}, {"search", 2}} {
			created, err := inc.Create(ctx, incident.ManualIncident{Title: tc.service + " down", Service: tc.service, Severity: incident.SeverityHigh, Actor: "rita"})
			require.NoError(t, err)
			for k := 1; k <= tc.public; k++ {
				clk.Advance(time.Minute)
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: fmt.Sprintf("%s update %d.", tc.service, k)})
				require.NoError(t, err)
				// Not public: neither shown nor counted.
				_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Actions: "internal"})
				require.NoError(t, err)
			}
		}
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}, {Name: "Search", Services: []string{"search"}}}}
		require.NoError(t, cfg.Validate())
		svc := status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart})
		get := pageGetter(t, svc)

		var js struct {
			Incidents []struct {
				Components     []string                   `json:"components"`
				Updates        []struct{ Message string } `json:"updates"`
				EarlierUpdates *int                       `json:"earlier_updates"`
			} `json:"incidents"`
		}
		body := get("/status.json")
		require.NoError(t, json.Unmarshal([]byte(body), &js))
		require.Len(t, js.Incidents, 2)
		for _, pi := range js.Incidents {
			switch pi.Components[0] {
			case "Shop":
				require.Len(t, pi.Updates, status.MaxPublicUpdates)
				require.Equal(t, fmt.Sprintf("payments update %d.", posted), pi.Updates[0].Message, "newest first")
				require.Equal(t, "payments update 6.", pi.Updates[status.MaxPublicUpdates-1].Message)
				require.NotNil(t, pi.EarlierUpdates)
				require.Equal(t, 5, *pi.EarlierUpdates)
			case "Search":
				require.Len(t, pi.Updates, 2)
				require.Nil(t, pi.EarlierUpdates, "no earlier updates: left out of the JSON")
			}
		}

		html := get("/status")
		require.Contains(t, html, fmt.Sprintf("payments update %d.", posted))
		require.Contains(t, html, "payments update 6.")
		require.NotContains(t, html, "payments update 5.")
		require.Contains(t, html, `<p class="earlier">5 earlier updates</p>`)
		require.Equal(t, 1, strings.Count(html, `class="earlier"`), "only the incident with more updates says so")
		require.Contains(t, html, "search update 1.")

		var feed struct {
			Entries []struct {
				Content string `xml:"content"`
			} `xml:"entry"`
		}
		require.NoError(t, xml.Unmarshal([]byte(get("/status/feed.atom")), &feed))
		payments := 0
		for _, e := range feed.Entries {
			if strings.HasPrefix(e.Content, "payments update ") {
				payments++
				require.NotEqual(t, "payments update 5.", e.Content)
			}
		}
		require.Equal(t, status.MaxPublicUpdates, payments)
		require.Len(t, feed.Entries, status.MaxPublicUpdates+2)
	})
}

// TestEarlierUpdatesCountsPublicOnly: "N earlier updates" counted every
// status update whose data a LIKE took for public, while the updates shown
// were decoded and checked: entries written to the store directly (an
// import, another sred) that are not public updates once decoded (a key
// given twice, the last one false; "public": true nested in another
// object; no message) made the count larger than the updates left out.
// The count is now held to the rule the updates shown are.
func TestEarlierUpdatesCountsPublicOnly(t *testing.T) {
	ctx := context.Background()
	atFirstStart(t, func(t *testing.T, db *store.DB, clk *clock.Manual, stored status.Stored, inc *incident.Service) {
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "payments down", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)
		for _, data := range []string{
			`{"public": true, "public": false, "public_message": "key twice, the last false"}`,
			`{"details": {"public": true}, "public_message": "nested"}`,
			`{"public": true}`,
		} {
			_, err := db.ExecContext(ctx, `INSERT INTO incident_timeline (incident_id, at, kind, actor, message, data)
				VALUES ($1, $2, 'status_update', 'rita', 'x', $3)`, created.ID, clk.Now().UnixMilli(), data)
			require.NoError(t, err)
		}
		const posted = status.MaxPublicUpdates + 2
		for k := 1; k <= posted; k++ {
			clk.Advance(time.Minute)
			_, err = inc.PostStatusUpdate(ctx, created.ID, incident.StatusUpdate{Actor: "rita", Public: true, PublicMessage: fmt.Sprintf("update %d.", k)})
			require.NoError(t, err)
		}
		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		get := pageGetter(t, status.New(cfg, status.Options{Incidents: inc, Clock: clk, Key: stored.Key, FirstStart: stored.FirstStart}))

		var js struct {
			Incidents []struct {
				Updates        []struct{ Message string } `json:"updates"`
				EarlierUpdates *int                       `json:"earlier_updates"`
			} `json:"incidents"`
		}
		require.NoError(t, json.Unmarshal([]byte(get("/status.json")), &js))
		require.Len(t, js.Incidents, 1)
		require.Len(t, js.Incidents[0].Updates, status.MaxPublicUpdates)
		require.NotNil(t, js.Incidents[0].EarlierUpdates)
		require.Equal(t, posted-status.MaxPublicUpdates, *js.Incidents[0].EarlierUpdates)
		html := get("/status")
		require.Contains(t, html, `<p class="earlier">2 earlier updates</p>`)
		require.NotContains(t, html, "nested")
	})
}
