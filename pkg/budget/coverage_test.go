package budget

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
)

// TestCoverageOfDataYoungerThanAMinute: in the first minute of an SLO's
// data the coverage query (a subquery at 1m steps) finds no first sample
// yet while the events are recorded. The events are then those of the
// first sample's five minutes, not its rate times the whole period (17
// million events after ten seconds of data, coverage null, before).
func TestCoverageOfDataYoungerThanAMinute(t *testing.T) {
	o := apiAvailability(t)
	at := time.Date(2026, 12, 5, 10, 0, 30, 0, time.UTC)
	f := func(v float64) *float64 { return &v }

	young := compute(o, at, &sample{avgTotal: f(10), avgErr: f(0.1), ratioPeriod: f(0.01)})
	require.NotNil(t, young.Coverage)
	require.InDelta(t, 300.0/(30*24*3600), *young.Coverage, 1e-9)
	require.Equal(t, 3000.0, *young.Budget.TotalEvents, "10 events/s over the first sample's 5 minutes")
	require.Equal(t, 30.0, *young.Budget.BadEvents)

	first := float64(at.Add(-time.Hour).Unix())
	hour := compute(o, at, &sample{avgTotal: f(10), avgErr: f(0.1), ratioPeriod: f(0.01), first: &first})
	require.InDelta(t, 3900.0/(30*24*3600), *hour.Coverage, 1e-9, "an hour of samples and the first one's 5 minutes")
	require.Equal(t, 39000.0, *hour.Budget.TotalEvents)

	none := compute(o, at, &sample{})
	require.Nil(t, none.Coverage, "no data: no coverage")
	require.Nil(t, none.Budget.TotalEvents)
}

// apiAvailability is the objective of a 30-day 99.9% events SLO of
// service api, as the young-SLO tests of compute and forecast use it.
func apiAvailability(t *testing.T) Objective {
	t.Helper()
	specs, err := slo.Parse([]byte(`apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        errorSelector: http_requests_total{job="api",code=~"5.."}
        totalSelector: http_requests_total{job="api"}
`), "api.yml")
	require.NoError(t, err)
	return Objectives(specs)[0]
}
