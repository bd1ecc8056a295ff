package incident_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var epoch = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// hookTable is written by the test hook inside the incident's transaction.
var hookTable = store.Migration{ID: "test/0001_hook", SQLite: `CREATE TABLE hook_log (incident_id TEXT, kind TEXT, prev TEXT)`}

var migrations = [][]store.Migration{incident.Migrations, {hookTable}}

type fixture struct {
	svc    *incident.Service
	db     *store.DB
	bus    *events.Bus
	clock  *clock.Manual
	failOn incident.ChangeKind
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{db: db, bus: events.NewBus(64, nil)}
	f.clock = clock.NewManual(epoch)
	hook := incident.HookFunc(func(ctx context.Context, tx *sql.Tx, ch incident.Change) error {
		if ch.Kind == f.failOn {
			return errors.New("hook refused")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO hook_log VALUES ($1, $2, $3)`, ch.Incident.ID, string(ch.Kind), string(ch.Prev))
		return err
	})
	svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{hook} },
		f.bus, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	svc.Clock = f.clock
	t.Cleanup(func() { svc.Close() })
	f.svc = svc
	return f
}

func notification(group, service, severity string, started time.Time, fps ...string) incident.Notification {
	n := incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: group,
		GroupLabels:  map[string]string{"alertname": "HighLatency", "service": service},
		CommonLabels: map[string]string{"alertname": "HighLatency", "service": service, "severity": severity},
	}
	for _, fp := range fps {
		n.Alerts = append(n.Alerts, incident.NotifiedAlert{
			Status: "firing", Fingerprint: fp, StartsAt: started,
			Labels: map[string]string{"alertname": "HighLatency", "service": service, "severity": severity, "instance": fp},
		})
	}
	return n
}

func (f *fixture) open(t *testing.T, group, service, severity string) string {
	t.Helper()
	res, err := f.svc.Ingest(context.Background(), notification(group, service, severity, epoch.Add(-5*time.Minute), group+"-a"))
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	return res.Created[0]
}

// get reads incident id.
func (f *fixture) get(t *testing.T, id string) *incident.Incident {
	t.Helper()
	inc, err := f.svc.Get(context.Background(), id)
	require.NoError(t, err)
	return inc
}

func (f *fixture) hookLog(t *testing.T) []string {
	rows, err := f.db.Query(`SELECT incident_id, kind, prev FROM hook_log`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, kind, prev string
		require.NoError(t, rows.Scan(&id, &kind, &prev))
		out = append(out, fmt.Sprintf("%s %s<-%s", id, kind, prev))
	}
	return out
}

func TestLifecycle(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		sub, cancel := f.bus.Subscribe()
		defer cancel()
		id := f.open(t, "g1", "checkout", "critical")
		require.Equal(t, "INC-2026-0001", id)

		type step struct {
			name   string
			do     func() (*incident.Incident, error)
			status incident.Status
			err    string
		}
		steps := []step{
			{"ack", func() (*incident.Incident, error) { return f.svc.Acknowledge(ctx, id, "alice") }, incident.StatusAcknowledged, ""},
			{"ack twice", func() (*incident.Incident, error) { return f.svc.Acknowledge(ctx, id, "alice") }, "",
				"cannot acknowledge incident INC-2026-0001: it is acknowledged, only a triggered incident can be acknowledged"},
			{"complete post-mortem while open", func() (*incident.Incident, error) { return f.svc.CompletePostmortem(ctx, id, "alice") }, "",
				"cannot complete the post-mortem of incident INC-2026-0001: it is acknowledged, only a resolved incident can complete its post-mortem"},
			{"investigate", func() (*incident.Incident, error) { return f.svc.Investigate(ctx, id, "alice", "") }, incident.StatusInvestigating, ""},
			{"assign", func() (*incident.Incident, error) { return f.svc.Assign(ctx, id, "alice", "bob") }, incident.StatusInvestigating, ""},
			{"assign again", func() (*incident.Incident, error) { return f.svc.Assign(ctx, id, "alice", "bob") }, "",
				"cannot assign incident INC-2026-0001: it is already assigned to bob"},
			{"resolve", func() (*incident.Incident, error) { return f.svc.Resolve(ctx, id, "bob", "rolled back release 42") }, incident.StatusResolved, ""},
			{"resolve twice", func() (*incident.Incident, error) { return f.svc.Resolve(ctx, id, "bob", "") }, "",
				"cannot resolve incident INC-2026-0001: it is already resolved"},
			{"ack resolved", func() (*incident.Incident, error) { return f.svc.Acknowledge(ctx, id, "bob") }, "",
				"cannot acknowledge incident INC-2026-0001: it is resolved, only a triggered incident can be acknowledged"},
			{"investigate resolved", func() (*incident.Incident, error) { return f.svc.Investigate(ctx, id, "bob", "") }, "",
				"cannot investigate incident INC-2026-0001: it is resolved"},
			{"post-mortem", func() (*incident.Incident, error) { return f.svc.CompletePostmortem(ctx, id, "bob") }, incident.StatusPostmortemDone, ""},
			{"post-mortem twice", func() (*incident.Incident, error) { return f.svc.CompletePostmortem(ctx, id, "bob") }, "",
				"cannot complete the post-mortem of incident INC-2026-0001: it is postmortem_done, only a resolved incident can complete its post-mortem"},
		}
		for _, s := range steps {
			f.clock.Advance(time.Minute)
			inc, err := s.do()
			if s.err != "" {
				require.EqualError(t, err, s.err, s.name)
				require.ErrorIs(t, err, incident.ErrInvalidTransition, s.name)
				continue
			}
			require.NoError(t, err, s.name)
			require.Equal(t, s.status, inc.Status, s.name)
		}
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "bob", inc.Assignee)
		require.Equal(t, epoch.Add(time.Minute), *inc.AcknowledgedAt)
		require.Equal(t, epoch.Add(7*time.Minute), *inc.ResolvedAt)

		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		var got []string
		for _, e := range tl {
			got = append(got, e.Kind+" "+e.Actor+": "+e.Message)
		}
		require.Equal(t, []string{
			"status alertmanager: incident created: [CRITICAL] HighLatency on checkout",
			"alert_fired alertmanager: alert fired: HighLatency{instance=\"g1-a\", service=\"checkout\", severity=\"critical\"}",
			"status alice: acknowledged by alice",
			"status alice: investigating, assigned to alice",
			"assignment alice: assigned to bob",
			"status bob: resolved by bob: rolled back release 42",
			"status bob: post-mortem done",
		}, got)
		require.Equal(t, []string{
			"INC-2026-0001 created<-", "INC-2026-0001 acknowledged<-triggered", "INC-2026-0001 investigating<-acknowledged",
			"INC-2026-0001 resolved<-investigating", "INC-2026-0001 postmortem_done<-resolved",
		}, f.hookLog(t))

		var types []string
		for len(sub) > 0 {
			types = append(types, (<-sub).Type)
		}
		require.Equal(t, []string{"incident.created", "incident.acknowledged", "incident.investigating", "incident.timeline",
			"incident.resolved", "incident.postmortem_done"}, types)

		_, err = f.svc.Acknowledge(ctx, "INC-2026-9999", "alice")
		require.ErrorIs(t, err, incident.ErrNotFound)
	})
}

func TestHookFailureRollsBack(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "warning")
		f.failOn = incident.ChangeAcknowledged
		_, err := f.svc.Acknowledge(ctx, id, "alice")
		require.EqualError(t, err, "incident INC-2026-0001: hook for acknowledged: hook refused")
		inc, err := f.svc.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		require.Nil(t, inc.AcknowledgedAt)
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Len(t, tl, 2, "the timeline entry rolled back with the change")

		// A failing hook on creation refuses the delivery: nothing is stored.
		f.failOn = incident.ChangeCreated
		_, err = f.svc.Ingest(ctx, notification("g2", "cart", "critical", epoch, "x"))
		require.Error(t, err)
		page, err := f.svc.List(ctx, incident.Filter{})
		require.NoError(t, err)
		require.Equal(t, 1, page.Total)
	})
}

func TestNotesTimelineAndMitigation(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "high")
		_, err := f.svc.AddNote(ctx, id, "alice", "  ")
		require.EqualError(t, err, "note must not be empty")
		e, err := f.svc.AddNote(ctx, id, "alice", "error rate climbing since deploy")
		require.NoError(t, err)
		require.Equal(t, "note", e.Kind)
		require.NoError(t, f.svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: id, Kind: "runbook_step",
			Actor: "runbook:restart", Message: "restarted checkout", Data: map[string]any{"step": "restart"}}))
		err = f.svc.AddTimeline(ctx, nil, incident.TimelineEntry{IncidentID: "INC-1999-0001", Kind: "note", Actor: "x", Message: "y"})
		require.ErrorIs(t, err, incident.ErrNotFound)
		inc, err := f.svc.MarkMitigated(ctx, id, "automation")
		require.NoError(t, err)
		require.Equal(t, "automation", inc.MitigatedBy)
		require.Equal(t, incident.StatusTriggered, inc.Status)
		inc, err = f.svc.SetImpact(ctx, id, "alice", "15% of checkouts failing")
		require.NoError(t, err)
		require.Equal(t, "15% of checkouts failing", inc.Impact)
		tl, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Len(t, tl, 6)
		require.Equal(t, map[string]any{"step": "restart"}, tl[3].Data)
		require.Equal(t, "mitigated by automation", tl[4].Message)
		// The note's answer carries its stored entry's ID.
		require.Equal(t, "error rate climbing since deploy", tl[2].Message)
		require.NotZero(t, e.ID)
		require.Equal(t, tl[2].ID, e.ID)
		_, err = f.svc.AddNote(ctx, "INC-1999-0001", "alice", "nowhere")
		require.ErrorIs(t, err, incident.ErrNotFound)
	})
}

// TestTimelineView: the timeline the API and the console read ends with
// the live entries of SetLiveTimeline's function (not stored, id 0), for
// the incident asked about; Timeline, read by the status page, the
// post-mortem and exports, has the stored entries only. An unknown
// incident is not found.
func TestTimelineView(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "high")
		stored, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		view, err := f.svc.TimelineView(ctx, id)
		require.NoError(t, err)
		require.Equal(t, stored, view, "no live entries without a function")

		live := incident.TimelineEntry{IncidentID: id, Time: epoch, Kind: "notification", Actor: "sred", Message: "queued",
			Data: map[string]any{"queued": true}}
		var asked []string
		f.svc.SetLiveTimeline(func(ctx context.Context, incID string) ([]incident.TimelineEntry, error) {
			asked = append(asked, incID)
			return []incident.TimelineEntry{live}, nil
		})
		view, err = f.svc.TimelineView(ctx, id)
		require.NoError(t, err)
		require.Equal(t, append(stored, live), view)
		require.Equal(t, []string{id}, asked)
		again, err := f.svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.Equal(t, stored, again, "nothing stored")

		_, err = f.svc.TimelineView(ctx, "INC-1999-0001")
		require.ErrorIs(t, err, incident.ErrNotFound)
		f.svc.SetLiveTimeline(nil)
		view, err = f.svc.TimelineView(ctx, id)
		require.NoError(t, err)
		require.Equal(t, stored, view)
	})
}

func TestListFiltersAndIDs(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		a := f.open(t, "g1", "checkout", "critical")
		f.clock.Advance(time.Hour)
		b := f.open(t, "g2", "search", "warning")
		f.clock.Advance(time.Hour)
		c := f.open(t, "g3", "checkout", "info")
		_, err := f.svc.Resolve(ctx, b, "alice", "")
		require.NoError(t, err)
		f.clock.Set(time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
		d := f.open(t, "g4", "search", "bogus")
		require.Equal(t, []string{"INC-2026-0001", "INC-2026-0002", "INC-2026-0003", "INC-2027-0001"}, []string{a, b, c, d})

		ids := func(flt incident.Filter) []string {
			page, err := f.svc.List(ctx, flt)
			require.NoError(t, err)
			var out []string
			for _, inc := range page.Incidents {
				out = append(out, inc.ID)
			}
			return out
		}
		require.Equal(t, []string{d, c, b, a}, ids(incident.Filter{}))
		require.Equal(t, []string{c, a}, ids(incident.Filter{Service: "checkout"}))
		require.Equal(t, []string{b}, ids(incident.Filter{Status: []incident.Status{incident.StatusResolved}}))
		require.Equal(t, []string{d, b}, ids(incident.Filter{Severity: []incident.Severity{incident.SeverityMedium}}), "warning and unknown map to MEDIUM")
		require.Equal(t, []string{c}, ids(incident.Filter{Severity: []incident.Severity{incident.SeverityLow}}))
		require.Equal(t, []string{c, b}, ids(incident.Filter{Since: epoch.Add(30 * time.Minute), Until: epoch.Add(3 * time.Hour)}))
		require.Equal(t, []string{c, b}, ids(incident.Filter{Limit: 2, Offset: 1}))
		page, err := f.svc.List(ctx, incident.Filter{Limit: 1})
		require.NoError(t, err)
		require.Equal(t, 4, page.Total)
	})
}

// A store error on reading an incident names the caller's id (a URL's
// path) quoted and cut, never whole.
func TestGetStoreErrorCutsID(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		id := strings.Repeat("n", 5000)
		_, err := f.svc.Get(ctx, id)
		require.ErrorIs(t, err, context.Canceled)
		require.Contains(t, err.Error(), `get incident "nnnn`)
		require.NotContains(t, err.Error(), strings.Repeat("n", limits.MaxEchoBytes))
		require.Less(t, len(err.Error()), 200)
	})
}
