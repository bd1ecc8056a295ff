package status_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/status"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestPublicIDIsKeyed: an incident's key on the page is made with the
// store's secret, the same across restarts and replicas, and cannot be
// matched to the incident's ID by whoever knows the ID scheme (before, it
// was an unkeyed hash: hashing INC-2026-0001.. found the ID in a second).
func TestPublicIDIsKeyed(t *testing.T) {
	ctx := context.Background()
	testutil.Backends(t, [][]store.Migration{incident.Migrations, status.Migrations}, func(t *testing.T, db *store.DB) {
		first := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
		stored, err := status.Load(ctx, db, first)
		require.NoError(t, err)
		key := stored.Key
		require.Len(t, key, 32)
		restart, err := status.Load(ctx, db, first.Add(time.Hour))
		require.NoError(t, err)
		again := restart.Key
		require.Equal(t, key, again, "a restart, or another replica, reads the key the first start stored")

		inc, err := incident.NewService(db, incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		inc.Clock = clock.NewManual(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
		created, err := inc.Create(ctx, incident.ManualIncident{Title: "Payments failing", Service: "payments", Severity: incident.SeverityHigh, Actor: "rita"})
		require.NoError(t, err)

		cfg := status.Config{Components: []status.Component{{Name: "Shop", Services: []string{"payments"}}}}
		require.NoError(t, cfg.Validate())
		page := func(key []byte) string {
			p, err := status.New(cfg, status.Options{Incidents: inc, Clock: inc.Clock, Key: key}).Page(ctx)
			require.NoError(t, err)
			require.Len(t, p.Incidents, 1)
			return p.Incidents[0].ID
		}
		id := page(key)
		require.Equal(t, id, page(again), "the same key gives the same public ID")
		require.NotEqual(t, id, page([]byte("another secret of sixteen+ bytes")), "the ID depends on the key")
		require.Regexp(t, `^[0-9a-f]{16}$`, id)
		for n := 1; n <= 9999; n++ {
			for _, scheme := range []string{"INC-2026-%04d", "INC-%d"} {
				guess := fmt.Sprintf(scheme, n)
				h := sha256.Sum256([]byte("sred-status\x00" + guess))
				require.NotEqual(t, hex.EncodeToString(h[:8]), id, "the public ID is an unkeyed hash of %s", guess)
			}
		}
		require.NotContains(t, id, created.ID)
	})
}
