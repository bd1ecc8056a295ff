package escalation_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/app"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/escalation"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/notify"
	"github.com/rootuip/sre/pkg/oncall"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestExampleConfig runs examples/sred.yml as shipped: its escalation,
// on-call and notification sections load, every channel they use is
// configured, every secret file exists, and a CRITICAL incident pages the
// example's endpoints, where nothing listens: each delivery fails, is
// retried with backoff and recorded, and nothing else breaks.
func TestExampleConfig(t *testing.T) {
	loaded, err := app.LoadConfig(filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml"))
	require.NoError(t, err)
	cfg := app.Escalation.Of(loaded)
	nc := &cfg.Notifications
	warnings, err := cfg.Escalation.CheckRefs(&cfg.OnCall, nc)
	require.NoError(t, err)
	require.Empty(t, warnings, "every channel the example uses is configured")
	key, err := nc.AckKey()
	require.NoError(t, err)
	require.Contains(t, key, "REPLACE-ME", "the example's secrets are obviously fake")
	for _, ch := range notify.Channels {
		require.True(t, nc.Configured(ch), ch)
	}

	testutil.MigratedBackends(t, allMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
		clock := clock.NewManual(start)
		var engine *escalation.Engine
		svc, err := incident.NewService(db, incident.DefaultOptions(), func() []incident.Hook { return []incident.Hook{engine} }, nil, nil, prometheus.NewRegistry())
		require.NoError(t, err)
		svc.Clock = clock
		engine = escalation.NewEngine(db, &cfg.Escalation, oncall.NewDirectory(db, &cfg.OnCall), nc, loaded.Global.ExternalURL,
			escalation.Options{Clock: clock, Timeline: svc, Registerer: prometheus.NewRegistry()})
		worker := jobs.NewWorker(db, escalation.Queue, engine.Handle, jobs.Options{Clock: clock, Kinds: escalation.Kinds, Registerer: prometheus.NewRegistry()})
		sender := notify.NewSender(db, nc, clock, svc, nil, prometheus.NewRegistry())

		labels := map[string]string{"alertname": "APIDown", "service": "api", "severity": "critical"}
		res, err := svc.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: "{}:api", CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "f1", StartsAt: start, Labels: labels}}})
		require.NoError(t, err)
		id := res.Created[0]
		_, err = worker.RunDue(ctx)
		require.NoError(t, err)
		n, err := sender.DeliverDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 4, n, "the on-call person (bob on api-primary) by sms, phone, push and email")

		recs, err := notify.List(ctx, db, id)
		require.NoError(t, err)
		require.Len(t, recs, 4)
		for _, r := range recs {
			require.Equal(t, notify.StatePending, r.State, r.Channel)
			require.Equal(t, 1, r.Attempts, r.Channel)
			require.NotEmpty(t, r.LastError, r.Channel)
			require.Equal(t, start.Add(10*time.Second), r.NextAttempt, "min_backoff")
			require.True(t, strings.HasPrefix(r.Message.AckURL, "http://localhost:8095/ack/"), r.Message.AckURL)
		}
		tl, err := svc.Timeline(ctx, id)
		require.NoError(t, err)
		var retries int
		for _, e := range tl {
			if e.Kind == "notification" && strings.Contains(e.Message, "failed (attempt 1), retrying in 10s") {
				retries++
			}
		}
		require.Equal(t, 4, retries)
	})
}
