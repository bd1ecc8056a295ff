package slo_test

import (
	"fmt"
	"testing"

	"github.com/rootuip/sre/pkg/slo"
)

func TestScratchDetection(t *testing.T) {
	specs, err := slo.LoadDir("../../examples/slos")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		for i := range s.SLOs {
			o := &s.SLOs[i]
			fmt.Println(s.Service, o.Name, o.DetectionTime(), o.Alerting.Page.MaxDetectionTime)
			for _, w := range o.Windows() {
				fmt.Println("   ", w, w.For, w.OutageDetection(o.ErrorBudget()))
			}
		}
	}
}
