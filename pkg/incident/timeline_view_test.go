package incident_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// The read-time entries of a timeline (pages queued behind a paused
// channel) come from another subsystem's read; when it fails, the stored
// entries already read are shown alone, nothing said queued, and the
// failure is logged once a minute at most, not once per read.
func TestTimelineViewShowsStoredWhenLiveFails(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var logs bytes.Buffer
		svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(64, nil),
			slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = f.clock
		t.Cleanup(func() { svc.Close() })
		ctx := context.Background()
		id := f.open(t, "g1", "checkout", "high")
		stored, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		require.NotEmpty(t, stored)

		fail := errors.New("notifications of the incident: database is locked")
		live := incident.TimelineEntry{IncidentID: id, Time: epoch, Kind: "notification", Actor: "sred", Message: "queued",
			Data: map[string]any{"queued": true}}
		var failing bool
		svc.SetLiveTimeline(func(ctx context.Context, incID string) ([]incident.TimelineEntry, error) {
			if failing {
				return nil, fail
			}
			return []incident.TimelineEntry{live}, nil
		})
		warnings := func() []string {
			var out []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "timeline shown without its read-time entries") {
					out = append(out, l)
				}
			}
			return out
		}

		failing = true
		for range 3 {
			view, err := svc.TimelineView(ctx, id)
			require.NoError(t, err)
			require.Equal(t, stored, view, "the stored entries, nothing queued")
		}
		w := warnings()
		require.Len(t, w, 1, "one line for three failed reads")
		require.Contains(t, w[0], "incident="+id)
		require.Contains(t, w[0], "database is locked")

		f.clock.Advance(time.Minute)
		_, err = svc.TimelineView(ctx, id)
		require.NoError(t, err)
		w = warnings()
		require.Len(t, w, 2)
		require.Contains(t, w[1], "not_logged=2")

		failing = false
		view, err := svc.TimelineView(ctx, id)
		require.NoError(t, err)
		require.Equal(t, append(stored, live), view)
		require.Len(t, warnings(), 2)

		_, err = svc.TimelineView(ctx, "INC-1999-0001")
		require.ErrorIs(t, err, incident.ErrNotFound, "the stored entries' own failure is still an error")
	})
}
