package budgettest

import (
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/rootuip/sre/pkg/budget"
	"github.com/rootuip/sre/pkg/slo"
)

// YellowSpec is the SLO of StartYellow: search's availability, 99% over a
// day.
const YellowSpec = `
apiVersion: sre.rootuip.io/v1
kind: ServiceLevelObjectives
service: search
slos:
  - name: availability
    objective: 99
    period: 1d
    sli:
      events:
        errorSelector: http_requests_total{job="search",code=~"5.."}
        totalSelector: http_requests_total{job="search"}
`

// StartYellow starts a real Prometheus where service search served 600
// requests a minute for a day, 3.6 of them failing (0.6%: 40% of its 1%
// budget left, yellow), and returns a client of it, the specs of
// YellowSpec and the time of the data's end.
func StartYellow(t *testing.T) (*budget.Prom, []*slo.Spec, time.Time) {
	t.Helper()
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	specs, err := slo.Parse([]byte(YellowSpec), "search.yml")
	if err != nil {
		t.Fatal(err)
	}
	start := end.Add(-26 * time.Hour)
	srv := Start(t, Options{Specs: specs, End: end, Series: []Series{
		{Metric: "http_requests_total", Labels: map[string]string{"job": "search", "code": "200"}, Start: start, Initial: 1e6,
			Inc: func(time.Time) float64 { return 600 - 3.6 }},
		{Metric: "http_requests_total", Labels: map[string]string{"job": "search", "code": "500"}, Start: start, Initial: 1e6,
			Inc: func(time.Time) float64 { return 3.6 }},
	}})
	prom, err := budget.NewProm(srv.URL, commoncfg.DefaultHTTPClientConfig, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return prom, specs, end
}
