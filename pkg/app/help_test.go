package app

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	tu "github.com/rootuip/sre/pkg/testutil"
)

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
	rows := tu.MetricDocs(t)
	require.NotEmpty(t, rows)
	checked := 0
	for name, row := range rows {
		if mf := mfs[name]; mf != nil {
			checked++
			assertTrue(t, tu.HelpIsLeading(mf.GetHelp(), row.Meaning),
				"%s:\nHELP %q\ndocs %q\nwant the HELP to be the docs' first sentence (or sentences)", name, mf.GetHelp(), row.Meaning)
			continue
		}
		if !registered(a.Registry, name) {
			continue // cmd/sred's listeners' (TestMetricsCatalogueCurrent)
		}
		checked++
		ok := slices.ContainsFunc(tu.LeadingSentences(row.Meaning), func(help string) bool {
			return tu.HelpIsLeading(help, row.Meaning) && describedAs(t, a.Registry, name, help, row.Labels)
		})
		assertTrue(t, ok, "%s: HELP is not the docs' first sentence (or sentences) %q, or its labels are not %q",
			name, row.Meaning, row.Labels)
	}
	require.Greater(t, checked, len(rows)/2, "too few families of docs/metrics.md checked")
}
