package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricDoc is a metric's row of the tables of docs/metrics.md: its label
// names and its meaning, without the Markdown back-quotes.
type MetricDoc struct {
	Labels  []string
	Meaning string
}

var (
	// backQuoted finds the label names of a labels cell.
	backQuoted = regexp.MustCompile("`([^`]+)`")
	// parenthesised is an explanation of a labels cell, such as the
	// values a label takes: "`reason` (`queue_full`, ...)".
	parenthesised = regexp.MustCompile(`\([^)]*\)`)
	// descHelp reads the name and HELP of a prometheus.Desc's String.
	descHelp = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*")`)
)

// MetricDocs reads the metric tables of docs/metrics.md by sre_ metric name.
func MetricDocs(t testing.TB) map[string]MetricDoc {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]MetricDoc{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(strings.Trim(sc.Text(), "|"), "|")
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if len(cells) < 4 || !strings.HasPrefix(name, "sre_") {
			continue
		}
		row := MetricDoc{Meaning: strings.ReplaceAll(strings.TrimSpace(strings.Join(cells[3:], "|")), "`", "")}
		for _, m := range backQuoted.FindAllStringSubmatch(parenthesised.ReplaceAllString(cells[2], ""), -1) {
			row.Labels = append(row.Labels, m[1])
		}
		out[name] = row
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// LeadingSentences returns the meaning's first sentence, its first two,
// and so on up to the whole meaning: what a HELP text may be. "e.g." and
// "i.e." end no sentence.
func LeadingSentences(meaning string) []string {
	var out []string
	for i := 0; i < len(meaning); i++ {
		end := meaning[i] == '.' && (i+1 == len(meaning) || meaning[i+1] == ' ')
		if end && !strings.HasSuffix(meaning[:i], "e.g") && !strings.HasSuffix(meaning[:i], "i.e") {
			out = append(out, meaning[:i+1])
		}
	}
	return out
}

// HelpIsLeading reports whether help is the first sentence (or sentences)
// of meaning, word for word, and links to no page (a Markdown link reads
// as noise in promtool and Grafana).
func HelpIsLeading(help, meaning string) bool {
	return slices.Contains(LeadingSentences(meaning), help) && !strings.Contains(help, "](")
}

// CheckHelp fails t for every descriptor whose HELP is not the first
// sentence (or sentences) of its metric's meaning in docs/metrics.md, or
// whose metric is not there, and when there is no descriptor.
func CheckHelp(t testing.TB, descs []*prometheus.Desc) {
	t.Helper()
	if len(descs) == 0 {
		t.Fatal("no family described")
	}
	docs := MetricDocs(t)
	for _, desc := range descs {
		m := descHelp.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read %s", desc)
		}
		name, _ := strconv.Unquote(m[1])
		help, _ := strconv.Unquote(m[2])
		doc, ok := docs[name]
		if !ok {
			t.Errorf("%s is not in docs/metrics.md", name)
			continue
		}
		if !HelpIsLeading(help, doc.Meaning) {
			t.Errorf("%s:\nHELP %q\ndocs %q\nwant the HELP to be the docs' first sentence (or sentences)", name, help, doc.Meaning)
		}
	}
}
