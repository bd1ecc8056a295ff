package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/events"
	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/web"
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

// incidentsCommand serves svc's incidents API for the test and returns a
// function running `srectl incidents --sred.url=<it> <prefix> <args>`:
// its exit code, stdout and stderr.
func incidentsCommand(t *testing.T, svc *incident.Service, prefix ...string) func(args ...string) (int, string, string) {
	t.Helper()
	mux := http.NewServeMux()
	(&web.IncidentsAPI{Service: svc}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(append(append([]string{"incidents", "--sred.url=" + srv.URL}, prefix...), args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
}
