package collector

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	sretest "github.com/rootuip/sre/pkg/testutil"
)

// docsMeanings reads the meaning column of the metric tables of
// docs/metrics.md, by metric name, without the Markdown back-quotes.
func docsMeanings(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(sretest.RepoRoot(t), "docs", "metrics.md"))
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

var descHelp = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*")`)

// The HELP text of every family the collector exports is the first
// sentence (or sentences) of its meaning in docs/metrics.md, word for word.
func TestHelpMatchesDocs(t *testing.T) {
	meanings := docsMeanings(t)
	c := newCollector(t, memoryStore(t), Options{})
	ch := make(chan *prometheus.Desc, 64)
	c.Describe(ch)
	close(ch)
	n := 0
	for d := range ch {
		m := descHelp.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		name, _ := strconv.Unquote(m[1])
		help, _ := strconv.Unquote(m[2])
		n++
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
	if n == 0 {
		t.Fatal("the collector describes no family")
	}
}
