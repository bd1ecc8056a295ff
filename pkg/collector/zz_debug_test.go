package collector

import (
	"fmt"
	"testing"
	"github.com/prometheus/client_golang/prometheus"
)

func logParts(b *testing.B, reg *prometheus.Registry) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == MetricScrapeDuration {
			s := ""
			for _, m := range mf.GetMetric() {
				s += fmt.Sprintf("%s=%.1fms ", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()*1000)
			}
			b.Log(s)
		}
	}
}
