package incident_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/incident"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/testutil"
)

// TestTimelineAlertLabelsOneLine: the timeline names each alert that fired
// as Prometheus 3 prints a series: label values quoted as Prometheus quotes
// them (a newline is \n, & stays &), and an alert name or label name
// outside the legacy character set quoted inside the braces. Before, an
// alert name with a newline split the entry's line ("alert fired: Disk
// \"full\"" and "now{...}"), and & in a value read \u0026.
func TestTimelineAlertLabelsOneLine(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"plain", map[string]string{"alertname": "DiskFull", "instance": "db-1"},
			`alert fired: DiskFull{instance="db-1", service="svc"}`},
		{"value with quotes, newline, unicode and &", map[string]string{"alertname": "DiskFull", "path": "/data \"x\"\n☃ a&b<c"},
			`alert fired: DiskFull{path="/data \"x\"\n☃ a&b<c", service="svc"}`},
		{"alert name with newline and quotes", map[string]string{"alertname": "Disk \"full\"\nnow"},
			`alert fired: {"Disk \"full\"\nnow", service="svc"}`},
		{"UTF-8 alert and label names", map[string]string{"alertname": "disk.full", "host name": "a", "le}": "b"},
			`alert fired: {"disk.full", "host name"="a", "le}"="b", service="svc"}`},
		{"no alert name", map[string]string{"job": "node"},
			`alert fired: {job="node", service="svc"}`},
	}
	testutil.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for i, c := range cases {
			labels := map[string]string{"service": "svc"}
			for k, v := range c.labels {
				labels[k] = v
			}
			res, err := f.svc.Ingest(context.Background(), incident.Notification{
				Receiver: "sred", Status: "firing", GroupKey: c.name, CommonLabels: map[string]string{"service": "svc"},
				Alerts: []incident.NotifiedAlert{{Status: "firing", Fingerprint: "fp" + string(rune('a'+i)),
					StartsAt: epoch.Add(-time.Minute), Labels: labels}},
			})
			require.NoError(t, err, c.name)
			require.Len(t, res.Created, 1, c.name)
			tl, err := f.svc.Timeline(context.Background(), res.Created[0])
			require.NoError(t, err, c.name)
			var fired []string
			for _, e := range tl {
				if e.Kind == "alert_fired" {
					fired = append(fired, e.Message)
				}
			}
			require.Equal(t, []string{c.want}, fired, c.name)
		}
	})
}
