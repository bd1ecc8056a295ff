package chaos

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	tu "github.com/rootuip/sre/pkg/testutil"
)

var descHelp = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*")`)

// docsMeanings reads the meaning column of the metric tables of
// docs/metrics.md, by metric name, without the Markdown back-quotes.
func docsMeanings(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(tu.RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(strings.Trim(sc.Text(), "|"), "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`sre_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		out[name] = strings.ReplaceAll(strings.TrimSpace(strings.Join(cells[3:], "|")), "`", "")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

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
	meanings := docsMeanings(t)
	d := &describer{}
	newMetrics(d, nil)
	if len(d.descs) == 0 {
		t.Fatal("no chaos family registered")
	}
	for _, desc := range d.descs {
		m := descHelp.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read %s", desc)
		}
		name, _ := strconv.Unquote(m[1])
		help, _ := strconv.Unquote(m[2])
		meaning, ok := meanings[name]
		if !ok {
			t.Errorf("%s is not in docs/metrics.md", name)
			continue
		}
		if !strings.HasPrefix(meaning, help) || !strings.HasSuffix(help, ".") ||
			(len(meaning) > len(help) && meaning[len(help)] != ' ') {
			t.Errorf("%s:\nHELP %q\ndocs %q\nwant the HELP to be the docs' first sentences", name, help, meaning)
		}
	}
}
