package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

// TestReloadAllOrNothing: a reload whose second subsystem (escalation)
// fails leaves the first (core) on the old configuration, the App on the
// old Config, and says why; sre_config_last_reload_successful is 0 until a
// good reload, which applies every subsystem's part.
func TestReloadAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(file, []byte(s), 0o644)) }
	write("global: {incident_id_prefix: OLD}\nincidents: {default_severity: low}\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	go func() { _ = a.reloadLoop(ctx) }()
	reloadOK := func() float64 { return testutil.ToFloat64(a.metrics.reloadSuccess) }
	require.Equal(t, 1.0, reloadOK())

	// core's sections are valid and changed; the escalation policy names
	// a user that does not exist.
	write(`
global: {incident_id_prefix: NEW}
incidents: {default_severity: critical}
escalation:
  policies:
    - name: p
      levels: [{after: 0s, users: [nobody], channels: [webhook]}]
`)
	err = a.RequestReload(ctx)
	// At the line and column of the unknown user.
	require.EqualError(t, err, "load config "+file+`:7:36: escalation: policies[0] (p): levels[0].users[0]: unknown user "nobody"`)
	require.Equal(t, 0.0, reloadOK())
	require.Equal(t, "OLD", a.Incidents.Options().IDPrefix, "core keeps the old configuration")
	require.Equal(t, incident.SeverityLow, a.Incidents.Options().DefaultSeverity)
	require.Equal(t, "OLD", a.Config().Global.IncidentIDPrefix)
	require.Empty(t, Escalation.Of(a.Config()).Escalation.Policies)

	write(`
global: {incident_id_prefix: NEW}
incidents: {default_severity: critical}
oncall:
  users: [{name: alice, email: alice@example.com}]
notifications:
  webhook: {url: "http://127.0.0.1:1/hook", secret: s3cret}
escalation:
  policies:
    - name: p
      levels: [{after: 0s, users: [alice], channels: [webhook]}]
`)
	require.NoError(t, a.RequestReload(ctx))
	require.Equal(t, 1.0, reloadOK())
	require.Equal(t, "NEW", a.Incidents.Options().IDPrefix)
	require.Equal(t, incident.SeverityCritical, a.Incidents.Options().DefaultSeverity)
	require.Len(t, Escalation.Of(a.Config()).Escalation.Policies, 1)
}

// TestHandlerTwice: Handler can be called any number of times.
func TestHandlerTwice(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sred.yml")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	a, err := New(context.Background(), Options{ConfigFile: file, StoragePath: filepath.Join(dir, "data")})
	require.NoError(t, err)
	defer a.Close()
	require.NotPanics(t, func() { a.Handler(); a.Handler() })
}
