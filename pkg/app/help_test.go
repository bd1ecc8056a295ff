package app

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	tu "github.com/rootuip/sre/pkg/testutil"
)

// docsRow is a metric's row of the tables of docs/metrics.md: its label
// names and its meaning, without the Markdown back-quotes.
type docsRow struct {
	labels  []string
	meaning string
}

var (
	// backQuoted finds the label names of a labels cell.
	backQuoted = regexp.MustCompile("`([^`]+)`")
	// parenthesised is an explanation of a labels cell, such as the
	// values a label takes: "`reason` (`queue_full`, ...)".
	parenthesised = regexp.MustCompile(`\([^)]*\)`)
)

// docsRows reads the metric tables of docs/metrics.md by metric name.
func docsRows(t *testing.T) map[string]docsRow {
	t.Helper()
	f, err := os.Open(filepath.Join(tu.RepoRoot(t), "docs", "metrics.md"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string]docsRow{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(strings.Trim(sc.Text(), "|"), "|")
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if len(cells) < 4 || !strings.HasPrefix(name, "sre_") {
			continue
		}
		row := docsRow{meaning: strings.ReplaceAll(strings.TrimSpace(strings.Join(cells[3:], "|")), "`", "")}
		for _, m := range backQuoted.FindAllStringSubmatch(parenthesised.ReplaceAllString(cells[2], ""), -1) {
			row.labels = append(row.labels, m[1])
		}
		out[name] = row
	}
	require.NoError(t, sc.Err())
	return out
}

// leadingSentences returns the meaning's first sentence, its first two,
// and so on up to the whole meaning: what a HELP text may be. "e.g." and
// "i.e." end no sentence.
func leadingSentences(meaning string) []string {
	var out []string
	for i := 0; i < len(meaning); i++ {
		end := meaning[i] == '.' && (i+1 == len(meaning) || meaning[i+1] == ' ')
		if end && !strings.HasSuffix(meaning[:i], "e.g") && !strings.HasSuffix(meaning[:i], "i.e") {
			out = append(out, meaning[:i+1])
		}
	}
	return out
}

// helpIsLeading reports whether help is the first sentence (or sentences)
// of meaning, word for word, and links to no page (a Markdown link reads
// as noise in promtool and Grafana).
func helpIsLeading(help, meaning string) bool {
	return slices.Contains(leadingSentences(meaning), help) && !strings.Contains(help, "](")
}

// describedAs reports whether reg registered name with this help and these
// label names: a descriptor of a registered name is refused for its help or
// labels only when they differ (client_golang compares a hash of both).
func describedAs(t *testing.T, reg *prometheus.Registry, name, help string, labels []string) bool {
	t.Helper()
	probe := probeCollector{prometheus.NewDesc(name, help, labels, nil)}
	err := reg.Register(probe)
	if err == nil {
		reg.Unregister(probe)
		t.Fatalf("%s is not registered", name)
	}
	var already prometheus.AlreadyRegisteredError
	return errors.As(err, &already) || !strings.Contains(err.Error(), "different help string")
}

// TestHelpMatchesDocs: the HELP text of every sre_ family sred registers is
// the first sentence (or sentences) of its meaning in docs/metrics.md, word
// for word, as promtool and Grafana show it beside the series. (The health
// checks' probe_ families keep blackbox_exporter's HELP with its names.) The families a
// fresh sred exposes (and the event relay's) are read from /metrics; the
// others, vectors without series yet, are probed on the registry with the
// docs' leading sentences and label names.
func TestHelpMatchesDocs(t *testing.T) {
	root := tu.RepoRoot(t)
	a, srv := runAppOptions(t, Options{
		ConfigFile:  filepath.Join(root, "examples", "sred.yml"),
		StoragePath: filepath.Join(t.TempDir(), "data"),
	}, nil)
	mfs, _ := scrape(t, srv.URL)
	for name, mf := range relayFamilies(t) {
		mfs[name] = mf
	}
	rows := docsRows(t)
	require.NotEmpty(t, rows)
	checked := 0
	for name, row := range rows {
		if mf := mfs[name]; mf != nil {
			checked++
			assertTrue(t, helpIsLeading(mf.GetHelp(), row.meaning),
				"%s:\nHELP %q\ndocs %q\nwant the HELP to be the docs' first sentence (or sentences)", name, mf.GetHelp(), row.meaning)
			continue
		}
		if !registered(a.Registry, name) {
			continue // cmd/sred's listeners' (TestMetricsCatalogueCurrent)
		}
		checked++
		ok := slices.ContainsFunc(leadingSentences(row.meaning), func(help string) bool {
			return helpIsLeading(help, row.meaning) && describedAs(t, a.Registry, name, help, row.labels)
		})
		assertTrue(t, ok, "%s: HELP is not the docs' first sentence (or sentences) %q, or its labels are not %q",
			name, row.meaning, row.labels)
	}
	require.Greater(t, checked, len(rows)/2, "too few families of docs/metrics.md checked")
}
