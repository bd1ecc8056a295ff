package escalation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// An incident opened by an SLO's ticket tier (MEDIUM: push and email, level
// 1 after 15 minutes) is paged again at once over the CRITICAL channels when
// the page tier of the same SLO joins it.
func TestSeverityRaisedEscalatesAgain(t *testing.T) {
	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
		clock := clock.NewManual(t0)
		r := newRig(t, db, clock, escalationYAML, notifyConfig(t, sms, push, email, slack))
		alert := func(tier, sev string) incident.NotifiedAlert {
			return incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-" + tier, StartsAt: t0,
				Labels: map[string]string{"alertname": "SLOBurnRate", "service": "api", "slo": "availability", "severity": sev, "burn_tier": tier}}
		}
		n := incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability"}`,
			CommonLabels: map[string]string{"service": "api", "slo": "availability"},
			Alerts:       []incident.NotifiedAlert{alert("ticket_fast", "ticket")}}
		res, err := r.svc.Ingest(ctx, n)
		require.NoError(t, err)
		id := res.Created[0]
		r.tick(t)
		require.Equal(t, []string{"bob/push"}, r.paged(t, id), "MEDIUM: push (email is not configured)")

		clock.Advance(2 * time.Minute)
		n.Alerts = append(n.Alerts, alert("page_fast", "page"))
		res, err = r.svc.Ingest(ctx, n)
		require.NoError(t, err)
		require.Empty(t, res.Created)
		r.tick(t)
		require.Equal(t, []string{"bob/push", "bob/sms", "bob/phone", "bob/push"}, r.paged(t, id),
			"CRITICAL: level 0 again at once, over the CRITICAL channels")
		tl := strings.Join(r.timeline(t, id, ""), "\n")
		require.Contains(t, tl, "severity raised: MEDIUM -> CRITICAL")
		// The second freeze says it is one, for the new severity: it
		// used to read "frozen onto the incident" twice, as a duplicate.
		frozen := r.timeline(t, id, "Escalation policy")
		require.Len(t, frozen, 2, "the policy is frozen again with the new severity")
		require.True(t, strings.HasPrefix(frozen[0], `Escalation policy "default" frozen onto the incident (4 levels, `), frozen[0])
		require.True(t, strings.HasPrefix(frozen[1], `Escalation policy "default" frozen again for severity CRITICAL (was MEDIUM): 4 levels, level 0 at +0s, `), frozen[1])
		entries, err := r.svc.Timeline(ctx, id)
		require.NoError(t, err)
		var data map[string]any
		for _, e := range entries {
			if e.Message == frozen[1] {
				data = e.Data
			}
		}
		require.Equal(t, "CRITICAL", data["severity"])
		require.Equal(t, "MEDIUM", data["previous_severity"])
		require.NotContains(t, data, "previous_policy", "the same policy")
	})
}

// raiseYAML pages dave then erin for CRITICAL incidents (10 minutes to
// resolve once acknowledged), the primary then the secondary schedule for
// the others (30 minutes); the "quiet" team's MEDIUM incidents page bob,
// and nothing pages its CRITICAL ones; nothing pages the "silent" team's
// incidents but the CRITICAL ones.
const raiseYAML = `
ack_timeout: 30m
policies:
  - name: critical
    matchers: ['severity="CRITICAL"', 'team!="quiet"']
    ack_timeout: 10m
    levels:
      - {after: 0m, users: [dave]}
      - {after: 5m, users: [erin]}
  - name: default
    matchers: ['team!~"quiet|silent"']
    levels:
      - {after: 0m, schedules: [primary]}
      - {after: 15m, schedules: [secondary]}
  - name: quiet
    matchers: ['team="quiet"', 'severity="MEDIUM"']
    levels:
      - {after: 0m, users: [bob]}
`

// notices lists "user/channel" of every update message (not a page).
func (r *rig) notices(t *testing.T, id string) []string {
	t.Helper()
	recs, err := notify.List(context.Background(), r.db, id)
	require.NoError(t, err)
	out := []string{}
	for _, rec := range recs {
		if rec.Event == escalation.EventUpdate {
			out = append(out, rec.User+"/"+rec.Channel)
		}
	}
	return out
}

// TestSeverityRaised: a severity raised on an incident nobody acknowledged
// pages again at once with the new severity's policy; on an acknowledged,
// investigated or snoozed one it pages nobody, tells the acknowledger (or
// the assignee) once, and the new severity's policy is the one used when
// the acknowledgement times out or the snooze ends.
func TestSeverityRaised(t *testing.T) {
	ticket := func(team string) incident.NotifiedAlert {
		return incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-ticket", StartsAt: t0,
			Labels: map[string]string{"alertname": "SLOBurnRate", "service": "api", "slo": "availability", "team": team, "severity": "ticket", "burn_tier": "ticket_fast"}}
	}
	page := func(team string) incident.NotifiedAlert {
		return incident.NotifiedAlert{Status: "firing", Fingerprint: "fp-page", StartsAt: t0.Add(4 * time.Minute),
			Labels: map[string]string{"alertname": "SLOBurnRate", "service": "api", "slo": "availability", "team": team, "severity": "page", "burn_tier": "page_fast"}}
	}
	group := func(team string) incident.Notification {
		return incident.Notification{Receiver: "sred", Status: "firing", GroupKey: `{}:{service="api",slo="availability",team="` + team + `"}`,
			CommonLabels: map[string]string{"service": "api", "slo": "availability", "team": team}}
	}
	// byAlert raises the severity as Alertmanager does: the page tier's
	// alert joins the incident.
	byAlert := func(t *testing.T, r *rig, id, team string) {
		n := group(team)
		n.Alerts = []incident.NotifiedAlert{ticket(team), page(team)}
		res, err := r.svc.Ingest(context.Background(), n)
		require.NoError(t, err)
		require.Equal(t, []string{id}, res.Incidents)
	}
	// byBudget raises it as an exhausted error budget does.
	byBudget := func(t *testing.T, r *rig, id, _ string) {
		_, err := r.svc.Raise(context.Background(), id, "budget", incident.SeverityCritical, "budget", "error budget exhausted")
		require.NoError(t, err)
	}
	ack := func(actor string) func(t *testing.T, r *rig, id string) {
		return func(t *testing.T, r *rig, id string) {
			_, err := r.svc.Acknowledge(context.Background(), id, actor)
			require.NoError(t, err)
		}
	}
	wake := func(t *testing.T, r *rig) {
		_, err := r.svc.WakeSnoozed(context.Background(), func(ctx context.Context, inc *incident.Incident) (string, error) {
			return "escalating now", r.engine.EscalateNow(ctx, inc.ID, "snooze ended")
		})
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		name string
		team string
		// before runs at +2m, the raise at +4m.
		before func(t *testing.T, r *rig, id string)
		raise  func(t *testing.T, r *rig, id, team string)
		// raised: pages and notices once the raise is handled, the
		// escalation's state, policy and pending timers then, and the
		// timeline entry of the raise.
		raisedPages, raisedNotices []string
		state, policy              string
		pending                    []escalation.PendingStep
		entry                      string
		// later: the pages up to +40m, and an entry of the timeline then.
		laterPages []string
		laterEntry string
	}{
		{
			name: "triggered", team: "api", raise: byAlert,
			raisedPages:   []string{"bob/push", "dave/sms", "dave/phone"},
			raisedNotices: []string{},
			state:         escalation.StateActive, policy: "critical",
			pending: []escalation.PendingStep{{Kind: "step", Level: 1, At: t0.Add(9 * time.Minute)}},
			entry:   `Escalation policy "critical" frozen again for severity CRITICAL (was MEDIUM, policy "default"): 2 levels, level 0 at +0s, level 1 at +5m0s`,
			// Nobody acknowledges: erin at +9m, then nothing more.
			laterPages: []string{"bob/push", "dave/sms", "dave/phone", "erin/sms", "erin/phone"},
		},
		{
			name: "acknowledged", team: "api", before: ack("bob"), raise: byAlert,
			raisedPages:   []string{"bob/push"},
			raisedNotices: []string{"bob/push"},
			state:         escalation.StateAcknowledged, policy: "critical",
			// The ack timeout planned at the acknowledgement keeps its time.
			pending: []escalation.PendingStep{{Kind: "ack_timeout", Level: 0, At: t0.Add(32 * time.Minute)}},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is acknowledged: nobody is paged again; ` +
				`escalation policy "critical" frozen for CRITICAL (2 levels, level 0 at +0s, level 1 at +5m0s), ` +
				`for a later escalation (acknowledgement timeout, end of the snooze, escalate now); told bob via push`,
			// The ack timeout re-escalates with the CRITICAL policy.
			laterPages: []string{"bob/push", "dave/sms", "dave/phone", "erin/sms", "erin/phone"},
			laterEntry: "Acknowledgement timed out after 30m0s without resolution: re-escalating from level 0",
		},
		{
			name: "acknowledged from outside the on-call directory", team: "api", before: ack("api"), raise: byAlert,
			raisedPages:   []string{"bob/push"},
			raisedNotices: []string{"bob/push"}, // the users paged so far
			state:         escalation.StateAcknowledged, policy: "critical",
			pending: []escalation.PendingStep{{Kind: "ack_timeout", Level: 0, At: t0.Add(32 * time.Minute)}},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is acknowledged: nobody is paged again; ` +
				`escalation policy "critical" frozen for CRITICAL (2 levels, level 0 at +0s, level 1 at +5m0s), ` +
				`for a later escalation (acknowledgement timeout, end of the snooze, escalate now); told bob via push`,
			laterPages: []string{"bob/push", "dave/sms", "dave/phone", "erin/sms", "erin/phone"},
		},
		{
			name: "investigating", team: "api", raise: byAlert,
			before: func(t *testing.T, r *rig, id string) {
				_, err := r.svc.Investigate(context.Background(), id, "bob", "alice")
				require.NoError(t, err)
			},
			raisedPages:   []string{"bob/push"},
			raisedNotices: []string{"alice/push"}, // the assignee
			state:         escalation.StateAcknowledged, policy: "critical",
			pending: []escalation.PendingStep{{Kind: "ack_timeout", Level: 0, At: t0.Add(32 * time.Minute)}},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is investigating: nobody is paged again; ` +
				`escalation policy "critical" frozen for CRITICAL (2 levels, level 0 at +0s, level 1 at +5m0s), ` +
				`for a later escalation (acknowledgement timeout, end of the snooze, escalate now); told alice via push`,
			laterPages: []string{"bob/push", "dave/sms", "dave/phone", "erin/sms", "erin/phone"},
		},
		{
			name: "snoozed, raised by the error budget", team: "api", raise: byBudget,
			before: func(t *testing.T, r *rig, id string) {
				ack("bob")(t, r, id)
				_, err := r.svc.Snooze(context.Background(), id, "bob", 20*time.Minute)
				require.NoError(t, err)
			},
			raisedPages:   []string{"bob/push"},
			raisedNotices: []string{"bob/push"},
			state:         escalation.StateAcknowledged, policy: "critical",
			pending: []escalation.PendingStep{{Kind: "ack_timeout", Level: 0, At: t0.Add(32 * time.Minute)}},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is acknowledged (snoozed until 2026-03-02T10:52:00Z): nobody is paged again; ` +
				`escalation policy "critical" frozen for CRITICAL (2 levels, level 0 at +0s, level 1 at +5m0s), ` +
				`for a later escalation (acknowledgement timeout, end of the snooze, escalate now); told bob via push`,
			// The snooze ends at +22m: the next level of the CRITICAL
			// policy (erin) at once; nothing after the last level.
			laterPages: []string{"bob/push", "erin/sms", "erin/phone"},
		},
		{
			name: "acknowledged, no policy for the new severity", team: "quiet", before: ack("bob"), raise: byAlert,
			raisedPages:   []string{"bob/push"},
			raisedNotices: []string{"bob/push"},
			state:         escalation.StateNoPolicy, policy: "",
			pending: []escalation.PendingStep{},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is acknowledged: nobody is paged again; ` +
				`no escalation policy matches it now (1 pending timer(s) cancelled); told bob via push`,
			laterPages: []string{"bob/push"},
		},
		{
			name: "acknowledged, no policy until the new severity", team: "silent", before: ack("bob"), raise: byAlert,
			raisedPages:   nil,
			raisedNotices: []string{"bob/push"},
			state:         escalation.StateAcknowledged, policy: "critical",
			// Acknowledged under the new policy from the raise.
			pending: []escalation.PendingStep{{Kind: "ack_timeout", Level: 0, At: t0.Add(14 * time.Minute)}},
			entry: `Severity raised MEDIUM -> CRITICAL while the incident is acknowledged: nobody is paged again; ` +
				`escalation policy "critical" frozen for CRITICAL (2 levels, level 0 at +0s, level 1 at +5m0s), ` +
				`for a later escalation (acknowledgement timeout, end of the snooze, escalate now); re-escalates if not resolved within 10m0s; told bob via push`,
			laterPages: []string{"dave/sms", "dave/phone", "erin/sms", "erin/phone"},
			laterEntry: "Acknowledgement timed out after 10m0s without resolution: re-escalating from level 0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
				clock := clock.NewManual(t0)
				r := newRig(t, db, clock, raiseYAML, notifyConfig(t, sms, push, email, slack))
				n := group(tc.team)
				n.Alerts = []incident.NotifiedAlert{ticket(tc.team)}
				res, err := r.svc.Ingest(ctx, n)
				require.NoError(t, err)
				require.Len(t, res.Created, 1)
				id := res.Created[0]
				r.tick(t)
				if tc.team == "silent" {
					require.Empty(t, r.paged(t, id), "no policy")
				} else {
					require.Equal(t, []string{"bob/push"}, r.paged(t, id), "MEDIUM: push (email is not configured)")
				}

				clock.Advance(2 * time.Minute)
				if tc.before != nil {
					tc.before(t, r, id)
				}
				before, err := r.svc.Get(ctx, id)
				require.NoError(t, err)
				clock.Advance(2 * time.Minute)
				tc.raise(t, r, id, tc.team)
				r.tick(t)

				inc, err := r.svc.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, incident.SeverityCritical, inc.Severity)
				require.Equal(t, before.Status, inc.Status, "a raise does not change the status")
				require.Equal(t, tc.raisedPages, r.paged(t, id))
				require.Equal(t, tc.raisedNotices, r.notices(t, id))
				st, err := r.engine.Get(ctx, id)
				require.NoError(t, err)
				require.Equal(t, tc.state, st.State)
				require.Equal(t, tc.policy, st.Policy)
				require.Equal(t, "CRITICAL", st.Frozen.Severity)
				require.Equal(t, tc.pending, st.Pending)
				tl := r.timeline(t, id, "")
				require.Contains(t, tl, tc.entry)

				for clock.Now().Before(t0.Add(40 * time.Minute)) {
					clock.Advance(time.Minute)
					wake(t, r)
					r.tick(t)
				}
				require.Equal(t, tc.laterPages, r.paged(t, id))
				require.Equal(t, tc.raisedNotices, r.notices(t, id), "told once")
				if tc.laterEntry != "" {
					require.Contains(t, r.timeline(t, id, ""), tc.laterEntry)
				}
			})
		})
	}
}
