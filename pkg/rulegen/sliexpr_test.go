package rulegen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
	"github.com/rootuip/sre/pkg/testutil"
)

// The range expressions of every SLI kind (testdata/range-in.yml) for
// October 2026 match testdata/range-out.txt, and parse; so do those of the
// examples.
func TestRangeExprsGolden(t *testing.T) {
	specs, err := slo.LoadFiles(filepath.Join(goldenDir, "range-in.yml"))
	require.NoError(t, err)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	var got strings.Builder
	kinds := map[string]bool{}
	for _, sp := range specs {
		for i := range sp.SLOs {
			o := &sp.SLOs[i]
			e, tot, err := rulegen.RangeExprs(o, start, end)
			require.NoError(t, err, "%s/%s", sp.Service, o.Name)
			kinds[o.SLI.Kind()] = true
			got.WriteString("# " + sp.Service + "/" + o.Name + " (" + o.SLI.Kind() + ")\n## errors\n" + e + "\n## total\n" + tot + "\n\n")
		}
	}
	require.Equal(t, map[string]bool{slo.KindEvents: true, slo.KindLatency: true, slo.KindBool: true, slo.KindRaw: true}, kinds)
	golden := filepath.Join(goldenDir, "range-out.txt")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./pkg/rulegen -update")
	require.Equal(t, string(want), got.String())

	examples, err := slo.LoadDir(filepath.Join(testutil.RepoRoot(t), "examples", "slos"))
	require.NoError(t, err)
	for _, sp := range examples {
		for i := range sp.SLOs {
			_, _, err := rulegen.RangeExprs(&sp.SLOs[i], start, end)
			require.NoError(t, err, "%s/%s", sp.Service, sp.SLOs[i].Name)
		}
	}

	_, _, err = rulegen.RangeExprs(&specs[0].SLOs[0], end, end)
	require.EqualError(t, err, "range 2026-11-01 00:00:00 +0000 UTC - 2026-11-01 00:00:00 +0000 UTC is empty")
}

// A raw SLI's ratio gets a 0 for every denominator series without a
// numerator series (no error yet) only when it is a plain division.
func TestRatioDenominator(t *testing.T) {
	for q, want := range map[string]string{
		`sum(rate(bad[5m])) / sum(rate(total[5m]))`:                             `sum(rate(total[5m]))`,
		`(sum by (c) (rate(bad[5m])) / sum by (c) (rate(total[5m])))`:           `sum by (c) (rate(total[5m]))`,
		`sum by (b, a) (rate(bad[5m])) / (sum by (a, b) (rate(total[5m])))`:     `(sum by (a, b) (rate(total[5m])))`,
		`rate(bad[5m]) / rate(total[5m])`:                                       "",
		`sum by (code) (rate(bad[5m])) / sum(rate(total[5m]))`:                  "",
		`sum without (code) (rate(bad[5m])) / sum by (code) (rate(total[5m]))`:  "",
		`sum(rate(bad[5m])) / on() sum(rate(total[5m]))`:                        "",
		`sum by (c) (rate(bad[5m])) / ignoring(x) sum by (c) (rate(total[5m]))`: "",
		`rate(bad[5m]) / on(c) group_left() sum by (c) (rate(total[5m]))`:       "",
		`1 - sum(rate(good[5m])) / sum(rate(total[5m]))`:                        "",
		`sum(rate(bad[5m])) / 100`:                                              "",
		`1 - avg_over_time(up[5m])`:                                             "",
	} {
		e, err := slo.Parser.ParseExpr(q)
		require.NoError(t, err)
		require.Equal(t, want, rulegen.RatioDenominator(e), q)
	}
}
