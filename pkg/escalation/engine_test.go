package escalation_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

var allMigrations = [][]store.Migration{incident.Migrations, jobs.Migrations, oncall.Migrations, notify.Migrations, escalation.Migrations}

const oncallYAML = `
users:
  - {name: alice, email: alice@example.com, phone: "+15550000001", push: dev-alice, slack: UALICE}
  - {name: bob, email: bob@example.com, phone: "+15550000002", push: dev-bob, slack: UBOB, teams: bob@example.com, mattermost: "@bob"}
  - {name: carol, email: carol@example.com, phone: "+15550000003"}
  - {name: dave, email: dave@example.com, phone: "+15550000004"}
  - {name: erin, email: erin@example.com, phone: "+15550000005"}
schedules:
  - name: primary
    time_zone: UTC
    layers: [{rotation: daily, start: "2026-03-01T10:00", users: [alice, bob]}]
  - name: secondary
    time_zone: UTC
    layers: [{rotation: weekly, start: "2026-03-01T10:00", users: [carol]}]
`

const escalationYAML = `
ack_timeout: 30m
policies:
  - name: default
    levels:
      - {after: 0m, schedules: [primary]}
      - {after: 15m, schedules: [secondary]}
      - {after: 30m, users: [dave]}
      - {after: 60m, users: [erin]}
`

func decode[T any](t *testing.T, s string) *T {
	t.Helper()
	var v T
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&v))
	return &v
}

type sink struct {
	*httptest.Server
	mu sync.Mutex
	n  int
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

// rig is one sred process: incident service, escalation engine with its
// worker, and the notification sender, all on one database.
type rig struct {
	dir    *oncall.Directory
	db     *store.DB
	clock  *clock.Manual
	svc    *incident.Service
	engine *escalation.Engine
	worker *jobs.Worker
	sender *notify.Sender
	// writes counts the engine's Options.Write (the incident service's
	// writer, as sred wires it).
	writes atomic.Int64
	// beforeWrite, when set, is called with the count of writes before
	// each of the engine's Options.Write.
	beforeWrite func(n int64)
}

func newRig(t *testing.T, db *store.DB, clock *clock.Manual, escYAML string, ncfg *notify.Config) *rig {
	t.Helper()
	r := &rig{db: db, clock: clock}
	dir := oncall.NewDirectory(db, decode[oncall.Config](t, oncallYAML))
	var err error
	r.svc, err = incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{r.engine} }, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	r.svc.Clock = clock
	r.engine = escalation.NewEngine(db, decode[escalation.Config](t, escYAML), dir, ncfg, "https://sred.example.com",
		escalation.Options{Clock: clock, Timeline: r.svc, Registerer: prometheus.NewRegistry(),
			Write: func(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
				n := r.writes.Add(1)
				if r.beforeWrite != nil {
					r.beforeWrite(n)
				}
				return r.svc.Write(ctx, fn)
			}})
	r.dir = dir
	dir.OnChange(r.engine.SchedulesChanged)
	r.worker = jobs.NewWorker(db, escalation.Queue, r.engine.Handle, jobs.Options{Clock: clock, Kinds: escalation.Kinds, Registerer: prometheus.NewRegistry()})
	r.sender = notify.NewSender(db, ncfg, clock, r.svc, nil, prometheus.NewRegistry())
	r.sender.OnLateDelivery = r.engine.LateDelivery
	return r
}

func (r *rig) tick(t *testing.T) {
	t.Helper()
	_, err := r.worker.RunDue(context.Background())
	require.NoError(t, err)
	_, err = r.sender.DeliverDue(context.Background())
	require.NoError(t, err)
}

func (r *rig) open(t *testing.T, severity string, lbls ...string) string {
	t.Helper()
	labels := map[string]string{"alertname": "APIDown", "service": "api", "severity": severity}
	for i := 0; i+1 < len(lbls); i += 2 {
		labels[lbls[i]] = lbls[i+1]
	}
	res, err := r.svc.Ingest(context.Background(), incident.Notification{
		Receiver: "sred", Status: "firing", GroupKey: "{}:" + severity + fmt.Sprint(lbls),
		CommonLabels: labels,
		Alerts:       []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-" + severity, StartsAt: r.clock.Now(), Labels: labels}},
	})
	require.NoError(t, err)
	require.Len(t, res.Created, 1)
	return res.Created[0]
}

// paged lists "user/channel" of every delivered or pending trigger, in order.
func (r *rig) paged(t *testing.T, id string) []string {
	t.Helper()
	recs, err := notify.List(context.Background(), r.db, id)
	require.NoError(t, err)
	var out []string
	for _, rec := range recs {
		if rec.Event == notify.EventTrigger {
			out = append(out, rec.User+"/"+rec.Channel)
		}
	}
	return out
}

func (r *rig) timeline(t *testing.T, id, prefix string) []string {
	t.Helper()
	tl, err := r.svc.Timeline(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range tl {
		if strings.HasPrefix(e.Message, prefix) {
			out = append(out, e.Message)
		}
	}
	return out
}

func notifyConfig(t *testing.T, sms, push, email, slack *sink) *notify.Config {
	t.Helper()
	c := &notify.Config{
		SMS:   &notify.ProviderConfig{URL: sms.URL, From: "+15550000000"},
		Phone: &notify.ProviderConfig{URL: sms.URL, From: "+15550000000"},
		Push:  &notify.ProviderConfig{URL: push.URL},
		Slack: &notify.SlackConfig{WebhookURL: commoncfg.Secret(slack.URL + "/hook")},
		// Email goes through the webhook-free path: no SMTP here, so email is
		// left unconfigured and must show up as skipped.
		AckSecret: "ack-key",
	}
	require.NoError(t, c.Validate())
	return c
}

var t0 = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC) // Monday; bob's shift on primary until 10:00 Tuesday

func TestCriticalEscalatesUntilAcknowledged(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		// Every CRITICAL channel is configured: SMS, phone and push through
		// HTTP providers, email through a real SMTP server.
		box := startMailbox(t)
		ncfg := notifyConfig(t, sms, push, email, slack)
		noTLS := false
		ncfg.Email = &notify.EmailConfig{Smarthost: box.Addr, From: "sred@example.com", RequireTLS: &noTLS}
		require.NoError(t, ncfg.Validate())
		r := newRig(t, db, clock, escalationYAML, ncfg)
		id := r.open(t, "critical")
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "bob/email"}, r.paged(t, id), "level 0 (primary on call) at once over the CRITICAL channels")
		require.Equal(t, 2, sms.n)
		require.Equal(t, 1, push.n)
		mails := box.Mails()
		require.Len(t, mails, 1)
		require.Equal(t, "bob@example.com", mails[0].To)
		require.Contains(t, mails[0].Data, "Subject: [CRITICAL] Incident "+id+": ")
		require.Contains(t, mails[0].Data, "Incident: https://sred.example.com/incidents/"+id+"\r\n")
		require.Contains(t, mails[0].Data, "Acknowledge: https://sred.example.com/ack/")

		clock.Advance(15*time.Minute - time.Second)
		r.tick(t)
		require.Len(t, r.paged(t, id), 4, "level 1 waits 15 minutes")
		clock.Advance(time.Second)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "bob/email", "carol/sms", "carol/phone", "carol/email"}, r.paged(t, id))
		require.Equal(t, []string{
			`Escalation level 0 (policy "default"): paging bob via sms, phone, push, email; level 1 at 2026-03-02 10:45:00 UTC if not acknowledged`,
			`Escalation level 1 (policy "default"): paging carol via sms, phone, email (no push contact for carol); level 2 at 2026-03-02 11:00:00 UTC if not acknowledged`,
		}, r.timeline(t, id, "Escalation level"))
		require.Len(t, box.Mails(), 2)
		require.Equal(t, "carol@example.com", box.Mails()[1].To)
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		for _, rec := range recs {
			require.Equal(t, notify.StateDelivered, rec.State, "%s to %s", rec.Channel, rec.User)
		}

		clock.Advance(5 * time.Minute)
		_, err = r.svc.Acknowledge(ctx, id, "carol")
		require.NoError(t, err)
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateAcknowledged, st.State)
		require.Equal(t, []escalation.PendingStep{{Kind: "ack_timeout", At: t0.Add(50 * time.Minute)}}, st.Pending)

		// Level 2 (at 30m) does not fire: the acknowledgement stopped it.
		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Len(t, r.paged(t, id), 7)

		// The acknowledgement times out after 30m: re-escalation from level 0.
		clock.Advance(20 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"Acknowledgement timed out after 30m0s without resolution: re-escalating from level 0"},
			r.timeline(t, id, "Acknowledgement timed out"))
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "bob/email", "carol/sms", "carol/phone", "carol/email",
			"bob/sms", "bob/phone", "bob/push", "bob/email"}, r.paged(t, id))

		// The acknowledge link of the message works for the re-escalation,
		// through Options.Write (the incident service's writer).
		writes := r.writes.Load()
		require.NoError(t, r.engine.Acknowledge(ctx, id, "bob"))
		require.Equal(t, writes+1, r.writes.Load(), "Acknowledge goes through Options.Write")
		clock.Advance(15 * time.Minute)
		r.tick(t)
		require.Len(t, r.paged(t, id), 11)

		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		st, err = r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escalation.StateResolved, st.State)
		require.Empty(t, st.Pending, "resolving stops everything")
		clock.Advance(2 * time.Hour)
		r.tick(t)
		require.Len(t, r.paged(t, id), 11)
		require.Len(t, box.Mails(), 3, "bob, carol, bob again after the ack timeout")
	})
}

func TestLowWaitsAnHour(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "low")
		r.tick(t)
		// LOW: email + chat; email is not configured here, so only Slack.
		require.Equal(t, []string{"/slack"}, r.paged(t, id))
		require.Equal(t, 1, slack.n)
		require.Equal(t, []string{`Escalation level 0 (policy "default"): paging bob via slack; level 1 at 2026-03-02 11:30:00 UTC if not acknowledged`},
			r.timeline(t, id, "Escalation level"))
		clock.Advance(59 * time.Minute)
		r.tick(t)
		require.Len(t, r.paged(t, id), 1)
		clock.Advance(time.Minute)
		r.tick(t)
		require.Len(t, r.paged(t, id), 2, "level 1 after 60 minutes")
	})
}

// TestRestart: the process that fired level 0 goes away; a new one (new
// engine, worker and sender on the same database) fires level 1 on time,
// once.
func TestRestart(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		ncfg := notifyConfig(t, sms, push, email, slack)
		first := newRig(t, db, clock, escalationYAML, ncfg)
		id := first.open(t, "critical")
		first.tick(t)
		require.Len(t, first.paged(t, id), 3)

		second := newRig(t, db, clock, escalationYAML, ncfg)
		clock.Advance(15 * time.Minute)
		second.tick(t)
		second.tick(t)
		require.Len(t, second.timeline(t, id, "Escalation level 1"), 1)
		require.Equal(t, 4, sms.n, "sms and phone calls for bob, then carol, each once")
	})
}

// TestReplicas: two processes on two connection pools fire due steps at the
// same time; each step fires exactly once.
func TestReplicas(t *testing.T) {
	url := testutil.PostgresSchemaURL(t)
	ctx := context.Background()
	open := func() *store.DB {
		db, err := store.OpenPostgres(ctx, url, store.PostgresOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Migrate(ctx, allMigrations...))
		return db
	}
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	ncfg := notifyConfig(t, sms, push, email, slack)
	clock := clock.NewManual(t0)
	a := newRig(t, open(), clock, escalationYAML, ncfg)
	b := newRig(t, open(), clock, escalationYAML, ncfg)
	var ids []string
	for i := range 10 {
		ids = append(ids, a.open(t, "critical", "instance", fmt.Sprint(i)))
	}
	for _, step := range []time.Duration{0, 15 * time.Minute, 15 * time.Minute, 30 * time.Minute} {
		clock.Advance(step)
		var wg sync.WaitGroup
		for _, r := range []*rig{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if _, err := r.worker.RunDue(ctx); err != nil {
						t.Error(err)
					}
					if _, err := r.sender.DeliverDue(ctx); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	for _, id := range ids {
		for lvl := range 4 {
			require.Len(t, a.timeline(t, id, fmt.Sprintf("Escalation level %d ", lvl)), 1, "%s level %d", id, lvl)
		}
	}
	// bob sms+phone, carol sms+phone, dave sms+phone, erin sms+phone per incident.
	require.Equal(t, 10*8, sms.n, "every message delivered exactly once")
}

func TestHandoffPagesNewOnCall(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		start := time.Date(2026, 3, 3, 9, 50, 0, 0, time.UTC) // bob on call until 10:00, then alice
		clock := clock.NewManual(start)
		r := newRig(t, db, clock, `
policies:
  - name: solo
    levels: [{after: 0m, schedules: [primary]}, {after: 1h, users: [erin]}]
`, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))
		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "alice/sms", "alice/phone", "alice/push"}, r.paged(t, id))
		require.Equal(t, []string{"Shift handoff on schedule primary during an unacknowledged escalation: paging the new on-call alice via sms, phone, push"},
			r.timeline(t, id, "Shift handoff"))
	})
}

func TestMaintenanceWindow(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		// A window stored at runtime, starting now, for the api service,
		// beside one of another service active too (the step reads both
		// with its state) and one of the web service that starts later.
		_, err := r.engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: "cache-flush", Matchers: []string{`service="cache"`},
			Start: t0.Add(-time.Minute), End: t0.Add(time.Hour)}, "alice")
		require.NoError(t, err)
		_, err = r.engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: "db-upgrade", Matchers: []string{`service="api"`},
			Start: t0, End: t0.Add(20 * time.Minute)}, "alice")
		require.NoError(t, err)
		_, err = r.engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: "web-later", Matchers: []string{`service="web"`},
			Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour)}, "alice")
		require.NoError(t, err)
		id := r.open(t, "critical")
		other := r.open(t, "critical", "service", "web")
		r.tick(t)
		require.Empty(t, r.paged(t, id), "incident opens, nobody is paged")
		require.Len(t, r.paged(t, other), 3, "other services are paged")
		require.Equal(t, []string{`Maintenance window "db-upgrade" until 2026-03-02T10:50:00Z: not paging level 0`}, r.timeline(t, id, "Maintenance"))
		clock.Advance(20 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id), "paging starts when the window ends")
	})
}

// TestEscalateNow: an acknowledged incident's escalation pages the next
// level at once, in the caller's transaction (EscalateNowTx: rolled back,
// nothing happens) or through the engine's Options.Write (EscalateNow: on
// SQLite, the incident service's writer), on both backends; a resolved
// incident has no escalation to advance.
func TestEscalateNow(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		clock.Advance(time.Minute)

		// With the caller's transaction: rolled back, it leaves nothing.
		errRollback := errors.New("caller rolls back")
		require.ErrorIs(t, db.InTx(ctx, func(tx *sql.Tx) error {
			require.NoError(t, r.engine.EscalateNowTx(ctx, tx, id, "rolled back"))
			return errRollback
		}), errRollback)
		r.tick(t)
		require.Empty(t, r.timeline(t, id, "Escalated now"))
		require.Zero(t, r.writes.Load())

		// Without one: through Options.Write (the incident service's writer).
		require.NoError(t, r.engine.EscalateNow(ctx, id, "runbook restart-api: verification failed"))
		require.Equal(t, int64(1), r.writes.Load())
		r.tick(t)
		require.Equal(t, []string{`Escalated now (runbook restart-api: verification failed): level 1 (policy "default"): paging carol via sms, phone (no push contact for carol); level 2 at 2026-03-02 10:46:00 UTC if not acknowledged`},
			r.timeline(t, id, "Escalated now"))
		// The page says why carol is paged: not a level's timer.
		carol := smsBodies(t, db, id)["carol"]
		require.Contains(t, carol, "Actions: Escalated now (runbook restart-api: verification failed): level 1: paging carol\n")
		_, err = r.svc.Resolve(ctx, id, "bob", "")
		require.NoError(t, err)
		require.ErrorIs(t, r.engine.EscalateNow(ctx, id, "x"), escalation.ErrNoEscalation)
		require.Equal(t, int64(2), r.writes.Load())
	})
}

// TestEscalateNowPagesALevelAgain: escalate now pages its level even when
// that level was paged before: the last level again (at the last level),
// or a level of the first run of the chain while it repeats. Its messages
// used to share the dedup key of the level's first page, so none was
// written while the timeline said "paging carol".
func TestEscalateNowPagesALevelAgain(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, twicePolicy, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		for _, step := range []time.Duration{0, 5 * time.Minute, 10 * time.Minute} {
			clock.Advance(step)
			r.tick(t)
		}
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms"}, r.paged(t, id), "the chain runs again")

		clock.Advance(time.Minute)
		require.NoError(t, r.engine.EscalateNow(ctx, id, "customer report"))
		r.tick(t)
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms", "carol/sms"}, r.paged(t, id), "level 1 paged again")

		clock.Advance(time.Minute)
		require.NoError(t, r.engine.EscalateNow(ctx, id, "still down"))
		r.tick(t)
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms", "carol/sms", "carol/sms"}, r.paged(t, id), "the last level paged again")
		require.Equal(t, []string{
			`Escalated now (customer report): level 1 (policy "twice"): paging carol via sms`,
			`Escalated now (still down): level 1 (policy "twice"): paging carol via sms`,
		}, r.timeline(t, id, "Escalated now"), "the second and last round: no round after it")
		require.Equal(t, 5, sms.n, "every page was sent")
	})
}

// TestEscalateNowKeepsRepeatCount: escalate now continues the round of a
// repeating policy it is in, so escalating by hand never runs the chain
// more than repeat+1 times. It restarted the count (its step was of the
// first round), and a policy with repeat 1 paged a third round, and one
// more after every escalate-now at its last level.
func TestEscalateNowKeepsRepeatCount(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, twicePolicy, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		clock.Advance(time.Minute)
		require.NoError(t, r.engine.EscalateNow(ctx, id, "customer report"))
		r.tick(t)
		require.Equal(t, []string{"alice/sms", "carol/sms"}, r.paged(t, id), "round 1: level 1 at once")

		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms"}, r.paged(t, id), "round 2 (repeat 1) after repeat_after")
		clock.Advance(time.Minute)
		require.NoError(t, r.engine.EscalateNow(ctx, id, "still down"))
		r.tick(t)
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms", "carol/sms"}, r.paged(t, id), "round 2: level 1 at once")

		for range 6 {
			clock.Advance(10 * time.Minute)
			r.tick(t)
		}
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms", "carol/sms"}, r.paged(t, id), "no third round")
		require.Equal(t, []string{
			`Escalated now (customer report): level 1 (policy "twice"): paging carol via sms; level 0 at 2026-03-02 10:41:00 UTC if not acknowledged`,
			`Escalated now (still down): level 1 (policy "twice"): paging carol via sms`,
		}, r.timeline(t, id, "Escalated now"))
	})
}

// reminders lists "user/channel" of every reminder in the outbox.
func (r *rig) reminders(t *testing.T, id string) []string {
	t.Helper()
	recs, err := notify.List(context.Background(), r.db, id)
	require.NoError(t, err)
	var out []string
	for _, rec := range recs {
		if rec.Event == notify.EventReminder {
			out = append(out, rec.User+"/"+rec.Channel)
		}
	}
	return out
}

// TestAckReminder: the acknowledger is reminded every ack_reminder through
// the reminder channels (push here; no chat tool needed) until the
// incident is resolved or the ack timeout re-escalates it.
func TestAckReminder(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, `
ack_timeout: 30m
ack_reminder: 10m
ack_reminder_channels: [push, email, teams]
policies:
  - name: default
    levels: [{after: 0m, schedules: [primary]}, {after: 15m, users: [carol]}]
`, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		require.Equal(t, []string{"Escalation stopped: acknowledged by bob; re-escalates if not resolved within 30m0s; reminders every 10m0s until resolved"},
			r.timeline(t, id, "Escalation stopped"))
		pushes := push.n

		clock.Advance(10*time.Minute - time.Second)
		r.tick(t)
		require.Empty(t, r.reminders(t, id))
		clock.Advance(time.Second)
		r.tick(t)
		require.Equal(t, []string{"bob/push"}, r.reminders(t, id), "email and teams are not configured here")
		require.Equal(t, pushes+1, push.n)
		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		last := recs[len(recs)-1].Message
		require.Equal(t, "reminder", last.Event)
		require.Contains(t, last.Body, "Actions: Reminder 1: acknowledged by bob 10m0s ago and still not resolved\n")
		require.Contains(t, last.Body, "Next Update: 10:50 UTC\n")
		require.True(t, strings.HasPrefix(last.AckURL, "https://sred.example.com/ack/"), "the link renews the acknowledgement")

		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{
			"Acknowledgement reminder 1: " + id + " still open, reminding bob via push",
			"Acknowledgement reminder 2: " + id + " still open, reminding bob via push",
		}, r.timeline(t, id, "Acknowledgement reminder"))
		// No third reminder at 30m: the ack timeout re-escalates instead.
		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Len(t, r.reminders(t, id), 2)
		require.Len(t, r.timeline(t, id, "Acknowledgement timed out"), 1)

		// Acknowledged again from outside the directory (the API's default
		// actor): the users paged in this round are reminded.
		_, err = r.svc.Investigate(ctx, id, "api", "")
		require.NoError(t, err)
		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"Acknowledgement reminder 1: " + id + " still open, reminding bob via push"},
			r.timeline(t, id, "Acknowledgement reminder 1")[1:])

		// Resolving stops the reminders.
		_, err = r.svc.Resolve(ctx, id, "bob", "fixed")
		require.NoError(t, err)
		clock.Advance(time.Hour)
		r.tick(t)
		require.Len(t, r.reminders(t, id), 3)
	})
}

// TestChatMentions: one message per step to Slack, Teams and Mattermost,
// each mentioning the paged user in its own way.
func TestChatMentions(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		chat := newSink(t)
		ncfg := notifyConfig(t, sms, push, email, slack)
		ncfg.Teams = &notify.TeamsConfig{WebhookURL: commoncfg.Secret(chat.URL + "/teams")}
		ncfg.Mattermost = &notify.MattermostConfig{WebhookURL: commoncfg.Secret(chat.URL + "/mattermost")}
		require.NoError(t, ncfg.Validate())
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, `
policies:
  - name: chat
    levels: [{after: 0m, schedules: [primary], channels: [slack, teams, mattermost]}]
`, ncfg)
		id := r.open(t, "low")
		r.tick(t)
		recs, err := notify.List(context.Background(), db, id)
		require.NoError(t, err)
		got := map[string][]string{}
		for _, rec := range recs {
			require.Equal(t, notify.StateDelivered, rec.State, rec.Channel)
			got[rec.Channel] = rec.Message.Mentions
		}
		require.Equal(t, map[string][]string{"slack": {"UBOB"}, "teams": {"bob@example.com"}, "mattermost": {"bob"}}, got)
		require.Equal(t, 2, chat.n)
	})
}

// TestPageAckLinksPerUser: a page renders each user's message once and
// reuses it on the user's other channels, so every message must still carry
// an acknowledge link signed for its own user; the secret file is read at
// every page, so a rotated secret signs the next page's links.
func TestPageAckLinksPerUser(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		ncfg := notifyConfig(t, sms, push, email, slack)
		secret := filepath.Join(t.TempDir(), "ack.key")
		require.NoError(t, os.WriteFile(secret, []byte("key-1\n"), 0o600))
		ncfg.AckSecret, ncfg.AckSecretFile = "", secret
		require.NoError(t, ncfg.Validate())
		r := newRig(t, db, clock, `
ack_timeout: 30m
policies:
  - name: default
    levels: [{after: 0m, users: [bob, carol]}, {after: 15m, users: [dave]}]
`, ncfg)
		id := r.open(t, "critical")
		r.tick(t)
		// links returns "user/channel" of the level's messages whose link
		// verifies with key for that same user.
		links := func(key string, users ...string) []string {
			t.Helper()
			recs, err := notify.List(ctx, db, id)
			require.NoError(t, err)
			var out []string
			for _, rec := range recs {
				if rec.Event != notify.EventTrigger || !slices.Contains(users, rec.User) {
					continue
				}
				tok, ok := strings.CutPrefix(rec.Message.AckURL, "https://sred.example.com/ack/")
				require.True(t, ok, "%s/%s has no acknowledge link: %q", rec.User, rec.Channel, rec.Message.AckURL)
				claims, err := notify.VerifyAck(key, tok, clock.Now())
				if err != nil {
					continue
				}
				require.Equal(t, id, claims.IncidentID)
				require.Equal(t, rec.User, claims.User, "the link of %s/%s", rec.User, rec.Channel)
				out = append(out, rec.User+"/"+rec.Channel)
			}
			return out
		}
		require.Equal(t, []string{"bob/sms", "carol/sms", "bob/phone", "carol/phone", "bob/push"}, links("key-1", "bob", "carol"))

		require.NoError(t, os.WriteFile(secret, []byte("key-2\n"), 0o600))
		clock.Advance(15 * time.Minute)
		r.tick(t)
		require.Empty(t, links("key-1", "dave"), "the rotated secret signs the next page")
		require.Equal(t, []string{"dave/sms", "dave/phone"}, links("key-2", "dave"))
	})
}

// TestSnoozeHoldsAckTimeout: an acknowledged incident snoozed past its
// acknowledgement timeout is not re-paged when the timeout falls, nor
// reminded: the snooze says "not before then", and its end escalates again
// (incident.WakeSnoozed, as sred wires it). Seen in the demo: snoozed for
// 30m at 04:40, the on-call was paged at 05:01 by the timeout of the
// acknowledgement of 04:31.
func TestSnoozeHoldsAckTimeout(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, `
ack_timeout: 30m
ack_reminder: 10m
ack_reminder_channels: [push]
policies:
  - name: default
    levels: [{after: 0m, schedules: [primary]}, {after: 15m, users: [carol]}]
`, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.tick(t)
		paged := len(r.paged(t, id))
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)
		clock.Advance(5 * time.Minute)
		_, err = r.svc.Snooze(ctx, id, "bob", 40*time.Minute) // until t0+45m, past the timeout at t0+30m
		require.NoError(t, err)

		for range 8 { // to t0+45m, every 5 minutes
			clock.Advance(5 * time.Minute)
			r.tick(t)
		}
		require.Len(t, r.paged(t, id), paged, "nobody paged during the snooze")
		require.Empty(t, r.reminders(t, id), "no reminder during the snooze")
		require.Equal(t, []string{"Acknowledgement timed out after 30m0s while snoozed until 2026-03-02T11:15:00Z: nobody paged now; the end of the snooze escalates if the incident is still open"},
			r.timeline(t, id, "Acknowledgement timed out"))

		// The snooze ends with the incident open: its escalation pages again.
		clock.Advance(time.Second)
		woken, err := r.svc.WakeSnoozed(ctx, func(ctx context.Context, inc *incident.Incident) (string, error) {
			return "escalating now", r.engine.EscalateNow(ctx, inc.ID, "snooze ended")
		})
		require.NoError(t, err)
		require.Equal(t, []string{id}, woken)
		r.tick(t)
		require.Greater(t, len(r.paged(t, id)), paged, "the end of the snooze pages")
	})
}
