package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/budget/budgettest"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/slo"
)

// sseMessage is one Server-Sent Events message (or a comment).
type sseMessage struct{ event, data, comment string }

// sseClient reads GET /api/v1/events with plain net/http.
type sseClient struct {
	msgs   chan sseMessage
	cancel context.CancelFunc
}

func connectSSE(t *testing.T, url string) *sseClient {
	t.Helper()
	return connectSSEHeader(t, url, nil)
}

// connectSSEHeader connects with the request headers hdr (credentials).
func connectSSEHeader(t *testing.T, url string, hdr http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	c := &sseClient{msgs: make(chan sseMessage, 256), cancel: cancel}
	go func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var m sseMessage
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				c.msgs <- m
				m = sseMessage{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				m.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	// The first comment says the subscription is in place.
	require.Equal(t, "subscribed", c.next(t).comment)
	return c
}

func (c *sseClient) next(t *testing.T) sseMessage {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		require.True(t, ok, "the event stream ended")
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("nothing on the event stream")
	}
	return sseMessage{}
}

// rest returns what the stream still sends until it ends.
func (c *sseClient) rest(t *testing.T) []sseMessage {
	t.Helper()
	var out []sseMessage
	timeout := time.After(time.Minute) // a safety net: heartbeats come every 15 s
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return out
			}
			out = append(out, m)
		case <-timeout:
			t.Fatalf("the event stream did not end; got %v", out)
		}
	}
}

// waitEvent returns the next event of type typ, skipping the others; it
// also returns the types skipped.
func (c *sseClient) waitEvent(t *testing.T, typ string) (events.Event, []string) {
	t.Helper()
	var skipped []string
	for {
		m := c.next(t)
		if m.comment != "" {
			continue
		}
		var ev events.Event
		require.NoError(t, json.Unmarshal([]byte(m.data), &ev), m.data)
		require.Equal(t, m.event, ev.Type, "the event line names the type")
		if ev.Type == typ {
			return ev, skipped
		}
		skipped = append(skipped, ev.Type)
	}
}

const streamSpec = `apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: checkout
slos:
  - name: availability
    objective: 99.9
    period: 1d
%s    sli:
      events:
        errorSelector: http_requests_total{job="checkout",code=~"5.."}
        totalSelector: http_requests_total{job="checkout"}
`

// TestStreamThroughSred runs the whole sred on SQLite and PostgreSQL against
// a real Prometheus where checkout has spent 62.5% of its budget (yellow).
// A plain HTTP client reads GET /api/v1/events: a reload that lowers the
// policy thresholds makes the real poller publish budget.state_changed
// (yellow to green), and an Alertmanager webhook delivery publishes
// incident.created. The service timeline, GET
// /api/v1/services/checkout/events, holds both state changes, newest first,
// page by page.
func TestStreamThroughSred(t *testing.T) {
	// 600 requests a minute, 0.375 of them failing: 0.0625% errors, 62.5%
	// of a 99.9% budget over any day.
	now := time.Now().UTC()
	end := now.Truncate(time.Hour).Add(2 * time.Hour)
	start := end.Add(-30 * time.Hour)
	const errPerMinute = 0.375
	lbl := func(code string) map[string]string { return map[string]string{"job": "checkout", "code": code} }
	specs, err := slo.Parse(fmt.Appendf(nil, streamSpec, ""), "checkout.yml")
	require.NoError(t, err)
	prom := budgettest.Start(t, budgettest.Options{Specs: specs, End: end, Recent: 4 * time.Hour, Series: []budgettest.Series{
		{Metric: "http_requests_total", Labels: lbl("200"), Start: start, Initial: 1e6, Inc: func(time.Time) float64 { return 600 - errPerMinute }},
		{Metric: "http_requests_total", Labels: lbl("500"), Start: start, Initial: 1e6, Inc: func(time.Time) float64 { return errPerMinute }},
	}})

	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			specDir := t.TempDir()
			specFile := filepath.Join(specDir, "checkout.yml")
			require.NoError(t, os.WriteFile(specFile, fmt.Appendf(nil, streamSpec, ""), 0o644))
			_, srv := runApp(t, backend, fmt.Sprintf("prometheus:\n  url: %s\nslos:\n  spec_files: [%s]\n  poll_interval: 1s\n", prom.URL, specDir), nil)
			timeline := srv.URL + "/api/v1/services/checkout/events"

			// The first poll records the first state.
			var tl budget.Timeline
			waitFor(t, func() bool {
				tl = budget.Timeline{}
				code, _ := getJSON(t, timeline, nil, &tl)
				return code == http.StatusOK && len(tl.Events) > 0
			}, "no budget state recorded for checkout")
			require.Len(t, tl.Events, 1)
			require.Equal(t, budget.StateUnknown, tl.Events[0].From)
			require.Equal(t, slo.BudgetYellow, tl.Events[0].To)

			all := connectSSE(t, srv.URL+"/api/v1/events")
			budgets := connectSSE(t, srv.URL+"/api/v1/events?type=budget.&service=checkout")

			// Lower the thresholds: 37.5% left is now green.
			require.NoError(t, os.WriteFile(specFile, fmt.Appendf(nil, streamSpec, "    budgetPolicy: {green: 30, yellow: 10}\n"), 0o644))
			resp, err := http.Post(srv.URL+"/-/reload", "text/plain", nil)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			ev, skipped := budgets.waitEvent(t, budget.EventStateChanged)
			// The poll that saw the change published the new values first.
			require.NotEmpty(t, skipped)
			for _, typ := range skipped {
				require.Equal(t, budget.EventUpdated, typ, "the filtered stream carries budget events of checkout only")
			}
			require.Equal(t, "checkout", ev.Service)
			require.Equal(t, "availability", ev.Data["slo"])
			require.Equal(t, "yellow", ev.Data["from"])
			require.Equal(t, "green", ev.Data["to"])
			require.InDelta(t, 0.375, ev.Data["remaining_ratio"], 1e-9)
			require.Equal(t, "error budget of checkout/availability went from yellow to green (37.50% remaining): normal operations", ev.Data["message"])
			require.WithinDuration(t, time.Now(), ev.Time, time.Minute)
			// The live values of the poll that saw it, before the change.
			for {
				ev, _ = all.waitEvent(t, budget.EventUpdated)
				if ev.Data["state"] == "green" {
					break
				}
			}
			require.Equal(t, "checkout", ev.Service)
			require.Equal(t, "availability", ev.Data["slo"])
			require.InDelta(t, 0.375, ev.Data["remaining_ratio"], 1e-9)
			require.NotEmpty(t, ev.Data["burn_rates"], "burn rate per alert window")
			ev, _ = all.waitEvent(t, budget.EventStateChanged)
			require.Equal(t, "green", ev.Data["to"])

			// An Alertmanager notification creates an incident.
			body := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"CheckoutDown\"}","status":"firing","receiver":"sred",
				"groupLabels":{"alertname":"CheckoutDown"},"commonLabels":{"alertname":"CheckoutDown","service":"checkout","severity":"critical"},
				"alerts":[{"status":"firing","labels":{"alertname":"CheckoutDown","service":"checkout","severity":"critical"},
				"annotations":{"summary":"Checkout is down"},"startsAt":%q,"fingerprint":"c0ffee"}]}`, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
			resp, err = http.Post(srv.URL+"/api/v1/webhook/alertmanager", "application/json", strings.NewReader(body))
			require.NoError(t, err)
			var created struct {
				Data struct {
					Created []string `json:"created"`
				} `json:"data"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Len(t, created.Data.Created, 1)
			ev, _ = all.waitEvent(t, "incident.created")
			require.Equal(t, created.Data.Created[0], ev.IncidentID)
			require.Equal(t, "checkout", ev.Service)
			require.Equal(t, "triggered", ev.Data["status"])

			// The gate's answer is an event too; the filtered stream got no
			// incident event in between.
			code, env := getJSON(t, srv.URL+"/api/v1/gate?service=checkout", nil, nil)
			require.Equal(t, http.StatusOK, code, env.Error)
			ev, skipped = budgets.waitEvent(t, "budget.gate_decision")
			for _, typ := range skipped {
				require.Equal(t, budget.EventUpdated, typ, "no incident event on the filtered stream")
			}
			require.Equal(t, "allow", ev.Data["decision"])

			// The service timeline: both changes, newest first, then by pages.
			tl = budget.Timeline{}
			code, env = getJSON(t, timeline, nil, &tl)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, "checkout", tl.Service)
			require.Len(t, tl.Events, 2)
			require.Empty(t, tl.Next)
			require.Equal(t, []slo.BudgetState{slo.BudgetGreen, slo.BudgetYellow}, []slo.BudgetState{tl.Events[0].To, tl.Events[1].To})
			require.Equal(t, slo.BudgetYellow, tl.Events[0].From)
			var page1, page2 budget.Timeline
			code, env = getJSON(t, timeline+"?limit=1", nil, &page1)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, tl.Events[:1], page1.Events)
			require.NotEmpty(t, page1.Next)
			code, env = getJSON(t, timeline+"?limit=1&before="+page1.Next, nil, &page2)
			require.Equal(t, http.StatusOK, code, env.Error)
			require.Equal(t, tl.Events[1:], page2.Events)
			require.Empty(t, page2.Next)
			var bySLO budget.Timeline
			code, _ = getJSON(t, timeline+"?slo=latency", nil, &bySLO)
			require.Equal(t, http.StatusOK, code)
			require.Empty(t, bySLO.Events)

			for _, tc := range []struct {
				url  string
				code int
				err  string
			}{
				{"/api/v1/services/search/events", 404, `service "search" has no SLO: not found`},
				{"/api/v1/services/checkout/events?limit=0", 400, `limit must be an integer between 1 and 1000, got "0"`},
				{"/api/v1/services/checkout/events?before=yesterday", 400, `invalid cursor "yesterday"`},
				{"/api/v1/services/checkout/events?page=2", 400, `unknown parameter "page" (want limit, before or slo)`},
				{"/api/v1/events?kind=budget", 400, `unknown parameter "kind" (want type or service)`},
			} {
				code, env := getJSON(t, srv.URL+tc.url, nil, nil)
				require.Equal(t, tc.code, code, tc.url)
				require.Equal(t, tc.err, env.Error, tc.url)
			}

			// Clients that leave end their streams.
			mfs, _ := scrape(t, srv.URL)
			v, ok := metricValue(mfs, "sre_event_stream_clients", nil)
			require.True(t, ok)
			require.Equal(t, 2.0, v)
			all.cancel()
			budgets.cancel()
			waitFor(t, func() bool {
				mfs, _ := scrape(t, srv.URL)
				v, _ := metricValue(mfs, "sre_event_stream_clients", nil)
				return v == 0
			}, "the streams did not end when their clients left")
		})
	}
}
