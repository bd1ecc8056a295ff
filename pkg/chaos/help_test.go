package chaos

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	tu "github.com/rootuip/sre/pkg/testutil"
)

// describer collects the descriptors of everything registered with it.
type describer struct{ descs []*prometheus.Desc }

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	c.Describe(ch)
	close(ch)
	for desc := range ch {
		d.descs = append(d.descs, desc)
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

// The HELP text of every chaos family is the first sentence (or sentences)
// of its meaning in docs/metrics.md, word for word.
func TestHelpMatchesDocs(t *testing.T) {
	d := &describer{}
	newMetrics(d, nil)
	tu.CheckHelp(t, d.descs)
}
