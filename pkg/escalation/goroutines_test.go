package escalation_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestWriterHooksStartNoGoroutinePerDelivery (SQLite): the escalation's
// statements run by the incident service's writer, in the transaction of a
// delivery that opens an incident (the escalation's start and its state's
// epoch, a query), start no goroutine. A query of a transaction starts one
// in database/sql to watch the transaction's context (Rows.awaitDone),
// created and scheduled by the writer's goroutine, whose time bounds
// ingestion; the writer's hooks query the writer's connection instead
// (store.TxQueries).
func TestWriterHooksStartNoGoroutinePerDelivery(t *testing.T) {
	ctx := context.Background()
	// open returns a store in a file (the writer has a connection of its
	// own).
	open := func() *store.DB {
		db, err := store.OpenSQLite(ctx, t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		require.NoError(t, db.Migrate(ctx, allMigrations...))
		return db
	}
	// created is how many goroutines n deliveries, each opening an
	// incident, started through svc, one after another (so one writer
	// transaction each, and database/sql's goroutine of each transaction).
	created := func(svc *incident.Service, n int) uint64 {
		deliver := func(i int) {
			labels := map[string]string{"alertname": "APIDown", "service": "api", "severity": "critical", "n": fmt.Sprint(i)}
			res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing",
				GroupKey: fmt.Sprintf("{}:{n=%q}", fmt.Sprint(i)), CommonLabels: labels,
				Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: fmt.Sprintf("fp-%d", i), StartsAt: t0, Labels: labels}}})
			require.NoError(t, err)
			require.Len(t, res.Created, 1)
		}
		deliver(0) // the writer's connection, its statements prepared
		before := testutil.GoroutinesCreated()
		for i := 1; i <= n; i++ {
			deliver(i)
		}
		return testutil.GoroutinesCreated() - before
	}
	const n = 20
	plain, err := incident.NewService(open(), incident.DefaultOptions(), nil, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	plain.Clock = clock.NewManual(t0)
	t.Cleanup(func() { plain.Close() })
	base := created(plain, n)

	sms, push, email, slack := newSink(t), newSink(t), newSink(t), newSink(t)
	r := newRig(t, open(), clock.NewManual(t0), escalationYAML, notifyConfig(t, sms, push, email, slack))
	withHooks := created(r.svc, n)
	steps, err := jobs.List(ctx, r.db, jobs.Filter{Queue: escalation.Queue, AllGroups: true})
	require.NoError(t, err)
	require.Len(t, steps, n+1, "every delivery started an escalation")
	require.LessOrEqual(t, withHooks, base+4,
		"goroutines started by the escalation's statements in %d deliveries (%d with the hook, %d without)", n, withHooks, base)
}
