package escalation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// An incident opened by an SLO's ticket tier (MEDIUM: push and email, level
// 1 after 15 minutes) is paged again at once over the CRITICAL channels when
// the page tier of the same SLO joins it.
func TestSeverityRaisedEscalatesAgain(t *testing.T) {
	testutil.Backends(t, allMigrations, func(t *testing.T, db *store.DB) {
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
		require.Equal(t, 2, strings.Count(tl, "frozen onto the incident"), "the policy is frozen again with the new severity")
	})
}
