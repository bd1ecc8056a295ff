package incident_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestOpenWithServices: the open incidents with their services in one
// query, on both backends. An API incident that correlation attached the
// database's group to names both services (as Get does); a resolved
// incident is left out; incidents come newest first, each once however
// many groups it has; the limit cuts the oldest and says more are open.
func TestOpenWithServices(t *testing.T) {
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.svc.SetCorrelation(&incident.Correlation{Window: time.Hour,
			DependsOn: map[string]map[string][]string{"api": {"db": {"api", "db"}}, "db": {}}})

		api := f.open(t, "g-api", "api", "critical")
		f.clock.Advance(time.Minute)
		res, err := f.svc.Ingest(ctx, notification("g-db", "db", "critical", epoch.Add(-4*time.Minute), "db-a"))
		require.NoError(t, err)
		require.Equal(t, []string{api}, res.Incidents, "correlation attaches the database's group")
		got, err := f.svc.Get(ctx, api)
		require.NoError(t, err)
		require.Equal(t, []string{"api", "db"}, got.Services)

		var ids []string
		for i := range 3 {
			f.clock.Advance(time.Minute)
			ids = append(ids, f.open(t, fmt.Sprintf("g-%d", i), fmt.Sprintf("svc-%d", i), "high"))
		}
		f.clock.Advance(time.Minute)
		_, err = f.svc.Resolve(ctx, ids[1], "ann", "fixed")
		require.NoError(t, err)

		open, more, err := f.svc.OpenWithServices(ctx, 10)
		require.NoError(t, err)
		require.False(t, more)
		type row struct {
			ID       string
			Services []string
			Status   incident.Status
		}
		var rows []row
		for _, inc := range open {
			rows = append(rows, row{inc.ID, inc.Services, inc.Status})
		}
		require.Equal(t, []row{
			{ids[2], []string{"svc-2"}, incident.StatusTriggered},
			{ids[0], []string{"svc-0"}, incident.StatusTriggered},
			{api, []string{"api", "db"}, incident.StatusTriggered},
		}, rows)
		require.Equal(t, got.Title, open[2].Title)
		require.Equal(t, got.RootService, open[2].RootService)

		open, more, err = f.svc.OpenWithServices(ctx, 2)
		require.NoError(t, err)
		require.True(t, more)
		require.Len(t, open, 2)
		require.Equal(t, ids[0], open[1].ID)
		open, more, err = f.svc.OpenWithServices(ctx, 3)
		require.NoError(t, err)
		require.False(t, more)
		require.Len(t, open, 3)
	})
}
