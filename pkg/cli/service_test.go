package cli

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
)

// newIncidentService is the incident service the srectl commands' tests
// talk to through sred's API: default options, on a manual clock at now,
// closed with the test.
func newIncidentService(t *testing.T, db *store.DB, now time.Time) *incident.Service {
	t.Helper()
	svc, err := incident.NewService(db, incident.DefaultOptions(), nil, events.NewBus(8, nil), nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { svc.Close() })
	svc.Clock = clock.NewManual(now)
	return svc
}
