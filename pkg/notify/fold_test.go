package notify

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// A notification that fails five times before it is delivered leaves two
// timeline entries, the first failure and the delivery with its count, not
// one per attempt; another that keeps failing leaves the first failure and
// the give-up with its count.
func TestTimelineFoldsRetries(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		clock := clock.NewManual(t0)
		svc, incID := openIncident(t, db, t0)
		fail := answer{code: http.StatusServiceUnavailable}
		flaky := newEndpoint(t, fail, fail, fail, fail, fail)
		dead := newEndpoint(t, fail, fail, fail, fail, fail, fail, fail, fail, fail, fail)
		cfg := &Config{MaxAttempts: 8, MinBackoff: 1, MaxBackoff: 1,
			Webhook:   &WebhookConfig{URL: flaky.URL, Secret: commoncfg.Secret("k")},
			PagerDuty: &PagerDutyConfig{URL: dead.URL, RoutingKey: commoncfg.Secret("r")}}
		require.NoError(t, cfg.Validate())
		for _, ch := range []string{ChannelWebhook, ChannelPagerDuty} {
			_, err := Enqueue(ctx, db, t0, incID+"/"+ch, &Message{IncidentID: incID, Channel: ch, Event: EventTrigger, Subject: "x"})
			require.NoError(t, err)
		}
		reg := prometheus.NewRegistry()
		s := NewSender(db, cfg, clock, svc, nil, reg)
		for range 10 {
			_, err := s.DeliverDue(ctx)
			require.NoError(t, err)
			clock.Advance(time.Minute)
		}
		require.Len(t, flaky.Requests(), 6)
		require.Len(t, dead.Requests(), 8)

		tl, err := svc.Timeline(ctx, incID)
		require.NoError(t, err)
		var joined []string
		for _, e := range tl {
			if e.Kind == "notification" {
				joined = append(joined, e.Message)
			}
		}
		require.Len(t, joined, 4, "%q", joined)
		all := strings.Join(joined, "\n")
		require.Contains(t, all, "Notification (trigger) by webhook failed (attempt 1), retrying in")
		require.Contains(t, all, "Notification (trigger) sent by webhook after 6 attempts")
		require.Contains(t, all, "Notification (trigger) by pagerduty failed (attempt 1), retrying in")
		require.Contains(t, all, "Notification (trigger) by pagerduty failed after 8 attempts, giving up")
		require.NotContains(t, all, "(attempt 2)")
	})
}
