package app

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/jobs"
	"github.com/rootuip/sre/pkg/recovery"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// TestRecoveryWired: in sred, an incident of a configured SLO gets its
// recovery check scheduled when it opens; an incident of anything else
// does not.
func TestRecoveryWired(t *testing.T) {
	spec := filepath.Join(tu.RepoRoot(t), "examples", "slos", "api.yml")
	a, _ := runApp(t, "sqlite", fmt.Sprintf("slos:\n  spec_files: [%s]\n", spec), nil)
	ctx := context.Background()
	open := func(group string, labels map[string]string) string {
		t.Helper()
		res, err := a.Incidents.Ingest(ctx, incident.Notification{Receiver: "sred", Status: "firing", GroupKey: group, CommonLabels: labels,
			Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp-" + group, StartsAt: time.Now(), Labels: labels}}})
		require.NoError(t, err)
		require.Len(t, res.Created, 1)
		return res.Created[0]
	}
	checks := func(id string) int {
		t.Helper()
		n, err := jobs.Count(ctx, a.DB, jobs.Filter{Queue: recovery.Queue, Group: id, States: []string{jobs.StatePending}})
		require.NoError(t, err)
		return n
	}
	slo := open("slo", map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "availability", "severity": "page", "burn_tier": "page_fast"})
	require.Equal(t, 1, checks(slo), "an incident of a configured SLO is checked for recovery")
	other := open("disk", map[string]string{"alertname": "DiskSpaceLow", "service": "api", "severity": "warning"})
	require.Zero(t, checks(other), "an incident without an SLO is not")
	unknown := open("unknown", map[string]string{"alertname": "SLOBurnRatePage", "service": "api", "slo": "nope", "severity": "page"})
	require.Zero(t, checks(unknown), "nor one of an SLO no spec defines")
}
