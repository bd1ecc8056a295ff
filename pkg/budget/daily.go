package budget

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/rulegen"
)

// DailySLI returns, per UTC day from the midnight from to the day of now,
// the worst SLI achieved over that day by the configured SLOs of the
// services: 1 - bad/total events, summed from the 5m rate recordings of
// the generated rules (every SLO group counted together). The key is the
// date (YYYY-MM-DD); days without data are absent. Whole days come from one
// range query (a point per midnight, over the day before it); today so
// far from one instant query at now.
func (s *Service) DailySLI(ctx context.Context, services []string, from, now time.Time) (map[string]float64, error) {
	_, objs, prom, perr := s.state()
	if prom == nil {
		return nil, perr
	}
	var names []string
	for _, svc := range services {
		for _, o := range objs {
			if o.Service == svc {
				names = append(names, regexpQuote(svc))
				break
			}
		}
	}
	out := map[string]float64{}
	if len(names) == 0 {
		return out, nil
	}
	sel := fmt.Sprintf(`{service=~%q}`, strings.Join(names, "|"))
	expr := func(window string) string {
		return fmt.Sprintf("min(1 - (sum by (service, slo) (sum_over_time(%s%s[%s])) / (sum by (service, slo) (sum_over_time(%s%s[%s])) > 0)))",
			rulegen.ErrorEventsRate5m, sel, window, rulegen.TotalEventsRate5m, sel, window)
	}
	now = now.UTC()
	today := now.Truncate(24 * time.Hour)
	from = from.UTC().Truncate(24 * time.Hour)
	if today.After(from) {
		m, err := prom.Range(ctx, expr("1d"), v1.Range{Start: from.Add(24 * time.Hour), End: today, Step: 24 * time.Hour})
		if err != nil {
			return nil, err
		}
		for _, ss := range m {
			for _, p := range ss.Values {
				if v := float64(p.Value); !math.IsNaN(v) {
					out[p.Timestamp.Time().UTC().Add(-24*time.Hour).Format(time.DateOnly)] = v
				}
			}
		}
	}
	if sofar := now.Sub(today); sofar >= time.Minute {
		vec, err := prom.Instant(ctx, expr(model.Duration(sofar.Truncate(time.Second)).String()), now)
		if err != nil {
			return nil, err
		}
		for _, smp := range vec {
			if v := float64(smp.Value); !math.IsNaN(v) {
				out[today.Format(time.DateOnly)] = v
			}
		}
	}
	return out, nil
}
