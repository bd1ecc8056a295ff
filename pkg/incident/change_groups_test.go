package incident_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// groupsHook records, for each change, the alert groups it concerns
// (Change.Groups) as "kind incident: group{service} ...".
type groupsHook struct {
	mu  sync.Mutex
	log []string
}

func (h *groupsHook) IncidentChanged(_ context.Context, _ *sql.Tx, ch incident.Change) error {
	var gs []string
	for _, g := range ch.Groups {
		gs = append(gs, fmt.Sprintf("%s{%s}", g.GroupKey, g.Labels["service"]))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, strings.TrimSpace(fmt.Sprintf("%s %s: %s", ch.Kind, ch.Incident.ID, strings.Join(gs, " "))))
	return nil
}

// take returns what was recorded since the last call.
func (h *groupsHook) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.log
	h.log = nil
	return out
}

// TestChangeGroups: the alert groups each change hands the hooks
// (Change.Groups), which runbooks match instead of the incident's labels
// (those of the group that opened it): the group that opened the incident,
// the group a delivery brought (one correlation attached, or one already
// on the incident), none for a delivery that only resolved alerts or a
// merge, every group on the incident when its status or severity changes,
// the incident itself when it was opened by hand, none once resolved.
func TestChangeGroups(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := &groupsHook{}
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{h} },
			events.NewBus(64, nil), nil, prometheus.NewRegistry())
		require.NoError(t, err)
		clk := clock.NewManual(epoch)
		svc.Clock = clk
		t.Cleanup(func() { svc.Close() })
		svc.SetCorrelation(&incident.Correlation{Window: time.Hour,
			DependsOn: map[string]map[string][]string{"api": {"db": {"api", "db"}}, "db": {}}})
		started := epoch.Add(-5 * time.Minute)
		deliver := func(n incident.Notification) *incident.IngestResult {
			t.Helper()
			clk.Advance(time.Second)
			res, err := svc.Ingest(ctx, n)
			require.NoError(t, err)
			return res
		}

		res := deliver(notification("g-db", "db", "high", started, "db-a"))
		require.Len(t, res.Created, 1)
		id := res.Created[0]
		require.Equal(t, []string{"created " + id + ": g-db{db}"}, h.take(), "the group that opened it")

		res = deliver(notification("g-api", "api", "high", started, "api-a"))
		require.Equal(t, []string{id}, res.Incidents, "correlation attaches the API's group")
		require.Equal(t, []string{"updated " + id + ": g-api{api}"}, h.take(), "the group that joined, not the incident's")

		deliver(notification("g-api", "api", "high", started, "api-a"))
		require.Empty(t, h.take(), "a redelivery changes nothing")
		deliver(notification("g-api", "api", "high", started, "api-a", "api-b"))
		require.Equal(t, []string{"updated " + id + ": g-api{api}"}, h.take(), "a new alert of a group on the incident")

		resolved := notification("g-api", "api", "high", started, "api-b")
		resolved.Alerts[0].Status, resolved.Alerts[0].EndsAt = "resolved", epoch
		deliver(resolved)
		require.Equal(t, []string{"updated " + id + ":"}, h.take(), "a delivery that only resolved alerts brings no group")

		_, err = svc.Acknowledge(ctx, id, "alice")
		require.NoError(t, err)
		require.Equal(t, []string{"acknowledged " + id + ": g-db{db} g-api{api}"}, h.take(), "a status change: every group on it")

		deliver(notification("g-api", "api", "critical", started, "api-c"))
		require.Equal(t, []string{
			"updated " + id + ": g-api{api}",
			"severity_raised " + id + ": g-api{api} g-db{db}",
		}, h.take(), "a severity change: the group that raised it, then every other group on it")

		other := deliver(notification("g-web", "web", "high", started, "web-a"))
		require.Len(t, other.Created, 1)
		h.take()
		_, err = svc.Merge(ctx, id, other.Created[0], "alice")
		require.NoError(t, err)
		require.Equal(t, []string{
			"updated " + id + ":",
			"resolved " + other.Created[0] + ":",
		}, h.take(), "a merge starts nothing for the groups it moves; a resolved incident has no groups")

		manual, err := svc.Create(ctx, incident.ManualIncident{Title: "by hand", Service: "billing", Severity: incident.SeverityHigh, Actor: "bob"})
		require.NoError(t, err)
		require.Equal(t, []string{"created " + manual.ID + ": manual:" + manual.ID + "{billing}"}, h.take(), "opened by hand: the incident itself")

		_, err = svc.Resolve(ctx, id, "alice", "fixed")
		require.NoError(t, err)
		require.Equal(t, []string{"resolved " + id + ":"}, h.take())
	})
}
