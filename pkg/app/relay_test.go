package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/relay"
)

// TestStreamAcrossReplicas: two replicas on one PostgreSQL database stream
// the same events. A WebSocket client of replica B sees the
// incident.created of a delivery posted to replica A, once, then the
// resolve B made itself; A's client sees its own event, then B's, and
// nothing twice (each replica's NOTIFY payloads arrive in order, so an
// echo would come before the next event).
func TestStreamAcrossReplicas(t *testing.T) {
	o := appOptions(t, "postgres", "")
	listening := make(chan struct{}, 4)
	o.onRelayListen = func() { listening <- struct{}{} }
	a, srvA := runAppOptions(t, o, nil)
	_, srvB := runAppOptions(t, o, nil)
	for range 2 {
		select {
		case <-listening:
		case <-time.After(30 * time.Second):
			t.Fatal("the replicas' event relays did not listen")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subscribe := func(base string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+StreamRoute, nil)
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() }) //nolint:errcheck // test end
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"types":["incident.created","incident.resolved"]}`)))
		require.Equal(t, "stream.subscribed", readWS(ctx, t, c).Type)
		return c
	}
	wsA, wsB := subscribe(srvA.URL), subscribe(srvB.URL)

	res := deliver(t, srvA.URL, amGroup{alertname: "CheckoutDown", service: "checkout", starts: time.Now().Add(-time.Minute)}.payload("firing", time.Time{}))
	require.Len(t, res.Created, 1)
	id := res.Created[0]
	for name, c := range map[string]*websocket.Conn{"A": wsA, "B": wsB} {
		m := readWS(ctx, t, c)
		require.Equal(t, "incident.created", m.Type, name)
		require.Equal(t, id, m.IncidentID, name)
		require.Equal(t, "checkout", m.Service, name)
	}

	resp, err := http.Post(srvB.URL+"/api/v1/incidents/"+id+"/resolve", "application/json", strings.NewReader(`{"actor":"alice"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for name, c := range map[string]*websocket.Conn{"A": wsA, "B": wsB} {
		m := readWS(ctx, t, c)
		require.Equal(t, "incident.resolved", m.Type, "%s: an event came twice", name)
		require.Equal(t, id, m.IncidentID, name)
	}

	// The relay's families are exposed, as docs/metrics.md lists them.
	mfs, _ := scrape(t, srvB.URL)
	for name := range relayMetrics {
		require.Contains(t, mfs, name)
	}
	require.Positive(t, mfs["sre_events_received_total"].GetMetric()[0].GetCounter().GetValue())
	require.Equal(t, 1.0, mfs["sre_events_listen_connected"].GetMetric()[0].GetGauge().GetValue())
	require.True(t, registered(a.Registry, "sre_events_forwarded_total"))
}

// relayMetrics are the families of the event relay, registered on
// PostgreSQL only.
var relayMetrics = map[string]bool{
	"sre_events_forwarded_total":         true,
	"sre_events_received_total":          true,
	"sre_events_forward_truncated_total": true,
	"sre_events_forward_dropped_total":   true,
	"sre_events_listen_connected":        true,
}

// relayFamilies are the families a relay registers, gathered from a relay
// of their own that has not run: each with its series from the start.
func relayFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	relay.New(events.NewBus(16, nil), relay.Options{URL: "postgres://unused", Registerer: reg})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// TestNoEventRelay: with the relay turned off (--no-events.relay), a
// replica on PostgreSQL runs no relay: none of its families is registered.
func TestNoEventRelay(t *testing.T) {
	o := appOptions(t, "postgres", "")
	o.NoEventRelay = true
	a, _ := runAppOptions(t, o, nil)
	for name := range relayMetrics {
		require.False(t, registered(a.Registry, name), name)
	}
}
