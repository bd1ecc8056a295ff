package collector

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	sretest "github.com/rootuip/sre/pkg/testutil"
)

// The HELP text of every family the collector exports is the first
// sentence (or sentences) of its meaning in docs/metrics.md, word for word.
func TestHelpMatchesDocs(t *testing.T) {
	c := newCollector(t, memoryStore(t), Options{})
	ch := make(chan *prometheus.Desc, 64)
	c.Describe(ch)
	close(ch)
	var descs []*prometheus.Desc
	for d := range ch {
		descs = append(descs, d)
	}
	sretest.CheckHelp(t, descs)
}
