package collector

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/rootuip/sre/pkg/store"
	sretest "github.com/rootuip/sre/pkg/testutil"
)

// serviceValues returns the service label values of metric, and the sum of
// the metric's values (counts for histograms) by service.
func serviceValues(t *testing.T, c prometheus.Collector, metric string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			var svc string
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" {
					svc = l.GetValue()
				}
			}
			if svc == "" {
				continue // the zero series of a severity without incidents
			}
			out[svc] += value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestServiceCap: 40 distinct services of one incident each, plus a busy
// one, do not make 41 sets of series: without configured services, the
// busiest keep their names and the rest count under "other"; with
// configured services only those keep their names. Totals are unchanged.
func TestServiceCap(t *testing.T) {
	sretest.Backends(t, migrations, func(t *testing.T, db *store.DB) {
		for i := range 40 {
			upsert(t, db, row{id: fmt.Sprintf("INC-%03d", i), service: fmt.Sprintf("svc-%02d", i), severity: "LOW", status: "resolved",
				created: time.Duration(i) * time.Minute, resolved: d(time.Duration(i)*time.Minute + time.Minute)})
		}
		for i := range 3 {
			upsert(t, db, row{id: fmt.Sprintf("INC-B%d", i), service: "busy", severity: "HIGH", status: "triggered",
				detected: time.Duration(i) * time.Hour, created: time.Duration(i) * time.Hour})
		}
		upsert(t, db, row{id: "INC-Z", service: "svc-39", severity: "HIGH", status: "triggered", created: 2 * time.Hour})

		c := newCollector(t, db, Options{Services: func() ([]string, int) { return nil, 3 }})
		stored := serviceValues(t, c, MetricIncidentsStored)
		// busy (3 incidents), svc-39 (2), then svc-00 (1, first by name).
		if got, want := keys(stored), []string{"busy", "other", "svc-00", "svc-39"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("services of %s: %v, want %v", MetricIncidentsStored, got, want)
		}
		if stored["other"] != 38 || stored["busy"] != 3 || stored["svc-39"] != 2 {
			t.Errorf("counts %v", stored)
		}
		if got := serviceValues(t, c, MetricTimeToResolve)["other"]; got != 38 {
			t.Errorf("resolve histogram count of other: %g, want 38", got)
		}
		if got := serviceValues(t, c, MetricIncidentsOpen); fmt.Sprint(got) != "map[busy:3 svc-39:1]" {
			t.Errorf("open: %v", got)
		}
		if got := keys(serviceValues(t, c, MetricLastDetected)); len(got) != 4 {
			t.Errorf("last detected services: %v", got)
		}
		if n := testutil.CollectAndCount(c); n > 4*40 {
			t.Errorf("%d series for 41 services capped at 3", n)
		}

		named := newCollector(t, db, Options{Services: func() ([]string, int) { return []string{"svc-05"}, 100 }})
		stored = serviceValues(t, named, MetricIncidentsStored)
		if fmt.Sprint(stored) != "map[other:43 svc-05:1]" {
			t.Errorf("configured services: %v", stored)
		}
		if got := serviceValues(t, named, MetricIncidentsOpen); fmt.Sprint(got) != "map[other:4]" {
			t.Errorf("open with configured services: %v", got)
		}

		uncapped := newCollector(t, db, Options{})
		if got := len(serviceValues(t, uncapped, MetricIncidentsStored)); got != 41 {
			t.Errorf("default cap %d: %d services, want all 41", DefaultMaxServices, got)
		}
	})
}
