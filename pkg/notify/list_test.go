package notify

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestListNeedsIncident: the messages of an incident are read by its ID;
// an empty ID (one not filled in) is refused, not read as every
// incident's messages, by List, Count and the sender's Queued.
func TestListNeedsIncident(t *testing.T) {
	testutil.Backends(t, [][]store.Migration{incident.Migrations, jobs.Migrations, Migrations}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)
		for _, inc := range []string{"INC-2026-0001", "INC-2026-0002"} {
			_, err := Enqueue(ctx, db, t0, inc+"/webhook/trigger",
				&Message{IncidentID: inc, Channel: ChannelWebhook, Event: EventTrigger, Subject: "x"})
			require.NoError(t, err)
		}
		one, err := List(ctx, db, "INC-2026-0001")
		require.NoError(t, err)
		require.Len(t, one, 1)
		require.Equal(t, "INC-2026-0001", one[0].IncidentID)
		n, err := Count(ctx, db, "INC-2026-0001", ChannelWebhook)
		require.NoError(t, err)
		require.Equal(t, 1, n)

		none, err := List(ctx, db, "")
		require.ErrorIs(t, err, jobs.ErrNoGroup)
		require.Empty(t, none)
		_, err = Count(ctx, db, "", ChannelWebhook)
		require.ErrorIs(t, err, jobs.ErrNoGroup)

		// The sender reads the outbox for Queued only while a channel is
		// paused: pause the webhook channel.
		s := NewSender(db, &Config{}, clock.NewManual(t0), nil, nil, prometheus.NewRegistry())
		s.channels[ChannelWebhook] = &channelHealth{failures: 1, since: t0, until: t0.Add(time.Minute), reason: "HTTP 503"}
		queued, err := s.Queued(ctx, "")
		require.ErrorIs(t, err, jobs.ErrNoGroup)
		require.Empty(t, queued)
		queued, err = s.Queued(ctx, "INC-2026-0002")
		require.NoError(t, err)
		require.Len(t, queued, 1)
	})
}
