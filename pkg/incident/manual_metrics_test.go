package incident_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
)

// TestManualIncidentCountsAsCreated: an incident opened by hand (srectl
// incidents create, the console's form, POST /api/v1/incidents) counts in
// sre_incidents_created_total under its severity, as one an alert opened
// does.
func TestManualIncidentCountsAsCreated(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, svc := openFileServiceWith(t, reg)
	_, err := svc.Create(t.Context(), incident.ManualIncident{Title: "Checkout slow", Service: "checkout",
		Severity: incident.SeverityHigh, Actor: "alice"})
	require.NoError(t, err)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	created := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sre_incidents_created_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "severity" {
					created[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	require.Equal(t, map[string]float64{"HIGH": 1}, created)
}
