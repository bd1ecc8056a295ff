package escalation_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

const soloPolicy = `
policies:
  - name: solo
    levels: [{after: 0m, schedules: [primary]}, {after: 2h, users: [erin]}]
`

// soloPaged opens a critical incident under soloPolicy on a rig at t0 on
// db, with sinks for every provider, and runs its first step: bob is
// paged. It returns the rig, its clock and the incident.
func soloPaged(t *testing.T, db *store.DB) (*rig, *clock.Manual, string) {
	t.Helper()
	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	clk := clock.NewManual(t0)
	r := newRig(t, db, clk, soloPolicy, notifyConfig(t, sms, push, email, slack))
	id := r.open(t, "critical")
	r.tick(t)
	require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id))
	return r, clk, id
}

// TestHandoffAfterRuntimeOverride: an override stored after level 0 was
// paged (bob) puts carol on call from 10:50; she is paged at its start,
// and nobody again when bob is back at its end (he was paged already).
func TestHandoffAfterRuntimeOverride(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		r, clock, id := soloPaged(t, db)

		clock.Advance(5 * time.Minute)
		start := t0.Add(20 * time.Minute)
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "primary", start, start.Add(time.Hour),
			[]*oncall.Override{{User: "carol", Start: start, End: start.Add(time.Hour), Reason: "swap"}}, "bob", clock.Now()))
		r.tick(t)
		require.Len(t, r.paged(t, id), 3, "bob is still on call: nobody new")

		clock.Set(start.Add(-time.Second))
		r.tick(t)
		require.Len(t, r.paged(t, id), 3)
		clock.Set(start)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "carol/sms", "carol/phone"}, r.paged(t, id))
		require.Equal(t, []string{"Shift handoff on schedule primary during an unacknowledged escalation: paging the new on-call carol via sms, phone (no push contact for carol)"},
			r.timeline(t, id, "Shift handoff"))

		clock.Set(start.Add(time.Hour))
		r.tick(t)
		require.Len(t, r.paged(t, id), 5, "bob, back on call, was paged already")
	})
}

// TestHandoffAfterReload: a reload that changes the rotation so that alice
// is on call now pages her at once.
func TestHandoffAfterReload(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		r, clock, id := soloPaged(t, db)

		clock.Advance(5 * time.Minute)
		swapped := decode[oncall.Config](t, `
users:
  - {name: alice, email: alice@example.com, phone: "+15550000001", push: dev-alice}
  - {name: bob, email: bob@example.com, phone: "+15550000002", push: dev-bob}
schedules:
  - name: primary
    time_zone: UTC
    layers: [{rotation: daily, start: "2026-03-01T10:00", users: [bob, alice]}]
`)
		r.dir.SetConfig(swapped)
		writes := r.writes.Load()
		require.NoError(t, r.engine.RecheckHandoffs(ctx, []string{"primary"}))
		require.Equal(t, writes+1, r.writes.Load(), "RecheckHandoffs goes through Options.Write")
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "alice/sms", "alice/phone", "alice/push"}, r.paged(t, id))
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Contains(t, st.Pending, escalation.PendingStep{Kind: "handoff", At: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)},
			"the next handoff follows the new rotation")
	})
}

// twicePolicy runs a chain of two levels (alice, then carol 5m later)
// twice, 10m apart.
const twicePolicy = `
policies:
  - name: twice
    repeat: 1
    repeat_after: 10m
    levels: [{after: 0m, users: [alice], channels: [sms]}, {after: 5m, users: [carol], channels: [sms]}]
`

// TestRepeatChain: with repeat 1, the whole chain runs twice, repeat_after
// after the last level, then stops.
func TestRepeatChain(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, twicePolicy, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		for _, step := range []time.Duration{0, 5 * time.Minute, 10 * time.Minute, 5 * time.Minute, time.Hour} {
			clock.Advance(step)
			r.tick(t)
		}
		require.Equal(t, []string{"alice/sms", "carol/sms", "alice/sms", "carol/sms"}, r.paged(t, id))
		require.Equal(t, []string{
			`Escalation level 0 (policy "twice"): paging alice via sms; level 1 at 2026-03-02 10:35:00 UTC if not acknowledged`,
			`Escalation level 1 (policy "twice"): paging carol via sms; level 0 at 2026-03-02 10:45:00 UTC if not acknowledged`,
			`Escalation level 0 (policy "twice"): paging alice via sms; level 1 at 2026-03-02 10:50:00 UTC if not acknowledged`,
			`Escalation level 1 (policy "twice"): paging carol via sms`,
		}, r.timeline(t, id, "Escalation level"))
		require.Equal(t, 4, sms.n)
	})
}

// TestFrozenPolicy: a reload during an escalation does not change it; new
// incidents get the new policy.
func TestFrozenPolicy(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		ncfg := notifyConfig(t, sms, push, email, slack)
		r := newRig(t, db, clock, escalationYAML, ncfg)
		id := r.open(t, "critical")
		r.tick(t)

		// The reload sends level 1 to dave after 5 minutes.
		r.engine.SetConfig(decode[escalation.Config](t, `
policies:
  - name: reloaded
    levels: [{after: 0m, users: [erin]}, {after: 5m, users: [dave]}]
`), ncfg, "https://sred.example.com")
		clock.Advance(5 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push"}, r.paged(t, id), "the frozen policy has no level at 5m")
		clock.Advance(10 * time.Minute)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "carol/sms", "carol/phone"}, r.paged(t, id), "level 1 of the frozen policy at 15m")
		st, err := r.engine.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, "default", st.Policy)

		other := r.open(t, "high")
		r.tick(t)
		require.Equal(t, []string{"erin/sms"}, r.paged(t, other), "a new incident gets the reloaded policy")
	})
}

// TestStepOfRemovedSchedule: a reload that removes a schedule a frozen
// policy pages leaves its step with nobody to page on it and nothing to
// watch; the step still runs (it failed on the missing schedule's handoff
// before).
func TestStepOfRemovedSchedule(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, soloPolicy, notifyConfig(t, sms, push, email, slack))
		id := r.open(t, "critical")
		r.dir.SetConfig(decode[oncall.Config](t, `
users:
  - {name: erin, email: erin@example.com, phone: "+15550000005"}
`))
		r.tick(t)
		require.Empty(t, r.paged(t, id))
		require.Equal(t, []string{"Escalation level 0 (policy \"solo\"): nobody to page (unknown schedule primary); level 1 at 2026-03-02 12:30:00 UTC if not acknowledged"},
			r.timeline(t, id, "Escalation level 0"))
		pending := pendingJobs(t, db, id, "")
		require.Len(t, pending, 1, "level 1 is pending, no handoff is watched")
		require.Equal(t, escalation.KindStep, pending[0].Kind)

		clock.Set(t0.Add(2 * time.Hour))
		r.tick(t)
		require.Equal(t, []string{"erin/sms", "erin/phone"}, r.paged(t, id))
	})
}

// TestStepOverrides: each level's step pages who the stored overrides of
// its own schedules put on call (on PostgreSQL read with the escalation's
// state, for the level's schedules found in the frozen policy), and
// watches the handoff at the end of the override.
func TestStepOverrides(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		from := t0.Add(-30 * time.Minute)
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "primary", from, t0.Add(time.Hour),
			[]*oncall.Override{{User: "dave", Start: from, End: t0.Add(time.Hour), Reason: "swap"}}, "bob", from))
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "secondary", t0, t0.Add(2*time.Hour),
			[]*oncall.Override{{User: "erin", Start: t0, End: t0.Add(2 * time.Hour)}}, "carol", from))
		users := func(id string) []string {
			var out []string
			for _, p := range r.paged(t, id) {
				if u, _, _ := strings.Cut(p, "/"); !slices.Contains(out, u) {
					out = append(out, u)
				}
			}
			return out
		}

		id := r.open(t, "critical")
		r.tick(t)
		require.Equal(t, []string{"dave"}, users(id), "level 0: primary's override")
		require.Equal(t, []time.Time{t0.Add(time.Hour)}, pendingHandoffs(t, db, id), "bob is back on primary when the override ends")

		clock.Set(t0.Add(15 * time.Minute))
		r.tick(t)
		require.Equal(t, []string{"dave", "erin"}, users(id), "level 1: secondary's override, not carol")
	})
}

// TestStepOverridesAfterSplit: a level pages who the stored overrides put
// on call also after a replaced window split a long override that a later
// one lies over: the split part keeps the long override's place (on
// PostgreSQL read with the escalation's state), so the later one still
// wins.
func TestStepOverridesAfterSplit(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		from := t0.Add(-time.Hour)
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "secondary", from, t0.Add(2*time.Hour), []*oncall.Override{
			{User: "erin", Start: from, End: t0.Add(2 * time.Hour)},
			{User: "dave", Start: t0.Add(10 * time.Minute), End: t0.Add(30 * time.Minute)},
		}, "carol", from))
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "secondary", t0.Add(-50*time.Minute), t0.Add(-40*time.Minute), nil, "carol", from))

		id := r.open(t, "critical")
		r.tick(t)
		before := len(r.paged(t, id))
		clock.Set(t0.Add(15 * time.Minute))
		r.tick(t)
		var level1 []string
		for _, p := range r.paged(t, id)[before:] {
			if u, _, _ := strings.Cut(p, "/"); !slices.Contains(level1, u) {
				level1 = append(level1, u)
			}
		}
		require.Equal(t, []string{"dave"}, level1, "level 1: dave's override over erin's split one")
	})
}

// TestHandoffDuringMaintenanceWindow: a shift handoff that falls in a
// maintenance window of the incident pages nobody, as a level due then
// does not; the new on-call person is paged when the window ends, if the
// escalation is still unacknowledged, and the timeline says why.
func TestHandoffDuringMaintenanceWindow(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		r, clock, id := soloPaged(t, db)

		clock.Advance(5 * time.Minute)
		end := clock.Now().Add(30 * time.Minute)
		_, err := r.engine.AddMaintenance(ctx, &escalation.MaintenanceWindow{Name: "db-upgrade", Matchers: []string{`service="api"`},
			Start: clock.Now(), End: end}, "alice")
		require.NoError(t, err)
		start := clock.Now().Add(10 * time.Minute)
		require.NoError(t, r.dir.ReplaceOverrides(ctx, "primary", start, start.Add(time.Hour),
			[]*oncall.Override{{User: "carol", Start: start, End: start.Add(time.Hour), Reason: "swap"}}, "bob", clock.Now()))
		r.tick(t)
		clock.Set(start)
		r.tick(t)
		require.Len(t, r.paged(t, id), 3, "carol's shift starts in the window: nobody is paged")
		require.Equal(t, []string{`Maintenance window "db-upgrade" until 2026-03-02T11:05:00Z: not paging the new on-call carol of schedule primary`},
			r.timeline(t, id, "Maintenance"))

		clock.Set(end.Add(-time.Second))
		r.tick(t)
		require.Len(t, r.paged(t, id), 3)
		clock.Set(end)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "carol/sms", "carol/phone"}, r.paged(t, id), "paged when the window ends")
		require.Equal(t, []string{"Shift handoff on schedule primary during an unacknowledged escalation: paging the new on-call carol via sms, phone (no push contact for carol)"},
			r.timeline(t, id, "Shift handoff"))
	})
}

// TestHandoffWatchedAfterEscalateNow: escalate now cancels the incident's
// timers, its handoff watches among them; the schedules paged so far are
// watched again, so that whoever goes on call while the escalation is
// unacknowledged is paged, as before it. Their watches used to be lost
// (and could not be planned again under the cancelled watch's key).
func TestHandoffWatchedAfterEscalateNow(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		r, clock, id := soloPaged(t, db)
		_, err := r.svc.Acknowledge(ctx, id, "bob")
		require.NoError(t, err)

		clock.Advance(time.Minute)
		require.NoError(t, r.engine.EscalateNow(ctx, id, "customer report"))
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "erin/sms", "erin/phone"}, r.paged(t, id))
		handoff := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
		st, err := r.engine.Get(ctx, id)
		require.NoError(t, err)
		require.Contains(t, st.Pending, escalation.PendingStep{Kind: "handoff", At: handoff}, "primary is watched again")

		clock.Set(handoff)
		r.tick(t)
		require.Equal(t, []string{"bob/sms", "bob/phone", "bob/push", "erin/sms", "erin/phone", "alice/sms", "alice/phone", "alice/push"}, r.paged(t, id),
			"alice, on call from 10:00, is paged")
	})
}

// handoffBodies opens an incident paged to bob under the solo policy,
// hands its schedule to carol at +20m (an override), and returns the SMS
// trigger bodies by user: bob's level-0 page and carol's handoff page.
func handoffBodies(t *testing.T, db *store.DB) map[string]string {
	t.Helper()
	ctx := t.Context()
	r, clock, id := soloPaged(t, db)
	start := t0.Add(20 * time.Minute)
	require.NoError(t, r.dir.ReplaceOverrides(ctx, "primary", start, start.Add(time.Hour),
		[]*oncall.Override{{User: "carol", Start: start, End: start.Add(time.Hour), Reason: "swap"}}, "bob", clock.Now()))
	clock.Set(start)
	r.tick(t)
	return smsBodies(t, db, id)
}

// smsBodies returns the body of the last SMS page (trigger) of the
// incident to each user.
func smsBodies(t *testing.T, db *store.DB, id string) map[string]string {
	t.Helper()
	recs, err := notify.List(t.Context(), db, id)
	require.NoError(t, err)
	bodies := map[string]string{}
	for _, rec := range recs {
		if rec.Event == notify.EventTrigger && rec.Channel == notify.ChannelSMS {
			bodies[rec.User] = rec.Message.Body
		}
	}
	return bodies
}

// TestHandoffPageSaysNextUpdate: the page of a new on-call person at a
// shift handoff says when the escalation's next level is due ("Next
// Update"), as a step's page does; it had no such line.
func TestHandoffPageSaysNextUpdate(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		bodies := handoffBodies(t, db)
		require.Contains(t, bodies["bob"], "Next Update: 12:30 UTC\n", "level 1 (erin) is due 2h after level 0")
		require.Contains(t, bodies["carol"], "Next Update: 12:30 UTC\n", "the handoff page says the same")
	})
}

// TestHandoffPageSaysHandoff: the page of a new on-call person at a shift
// handoff says it is one (carol is paged because she took over the
// schedule, not because the escalation reached a new level); a step's
// page says which level it is. The handoff page used to read as a step's.
func TestHandoffPageSaysHandoff(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		actions := map[string]string{}
		for user, body := range handoffBodies(t, db) {
			for line := range strings.SplitSeq(body, "\n") {
				if strings.HasPrefix(line, "Actions: ") {
					actions[user] = line
				}
			}
		}
		require.Equal(t, map[string]string{
			"bob":   "Actions: Escalation level 0: paging bob",
			"carol": "Actions: Shift handoff on schedule primary: paging the new on-call carol (escalation level 0)",
		}, actions)
	})
}
