package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/slo"
)

func TestValidate(t *testing.T) {
	examples := filepath.Join("..", "..", "examples", "slos")
	sloth := filepath.Join("..", "slo", "sloth", "testdata")
	openslo := filepath.Join("..", "slo", "openslo", "testdata")
	pyrra := filepath.Join("..", "slo", "pyrra", "testdata")
	bad := filepath.Join("..", "slo", "testdata", "bad")

	specs, err := slo.LoadDir(examples)
	require.NoError(t, err)
	n := 0
	for _, s := range specs {
		n += len(s.SLOs)
	}

	// Sloth's severity label is kept on the alerts, with a warning.
	slothWarning := "warning: " + filepath.Join(sloth, "sloth.yml") + `:21:21: slos[0].alerting.page_alert.labels.severity: SLO myservice/requests-availability: the page alerts keep severity "critical", as Sloth's do, instead of severity="page" (they also carry sloth_severity="page"): sred maps "critical" to an incident severity through severity_map (a value not in it gets the default severity), and srectl generate --inhibit-rules gives this SLO an inhibit rule of its own, matching its pages by burn_tier` + "\n"

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"examples", []string{examples}, 0, fmt.Sprintf("%d SLOs in %d specs are valid\n", n, len(specs)), ""},
		{"one file", []string{filepath.Join(examples, "api.yml")}, 0, "4 SLOs in 1 spec are valid\n", ""},
		{"one SLO", []string{filepath.Join(sloth, "sloth.yml")}, 0, "1 SLO in 1 spec is valid\n", slothWarning},
		{"sloth and openslo", []string{filepath.Join(sloth, "sloth.yml"), filepath.Join(openslo, "openslo.yml")}, 0, "2 SLOs in 2 specs are valid\n", slothWarning},
		{"pyrra", []string{filepath.Join(pyrra, "pyrra.yml"), filepath.Join(pyrra, "list.yml")}, 0, "6 SLOs in 4 specs are valid\n", ""},
		{"pyrra target as a fraction", []string{filepath.Join(pyrra, "target-fraction.yml")}, 1, "",
			"srectl: " + filepath.Join(pyrra, "target-fraction.yml") + ":8:11: spec.target: target \"0.995\" is a fraction, but Pyrra's target is a percentage (Pyrra only warns, and its alerts never fire): write \"99.5\"\n"},
		{"objective as a fraction", []string{filepath.Join(bad, "objective-fraction.yml")}, 1, "",
			"srectl: " + filepath.Join(bad, "objective-fraction.yml") + ":6:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)\n"},
		{"groupBy label dropped", []string{filepath.Join(bad, "groupby-dropped.yml")}, 1, "",
			"srectl: " + filepath.Join(bad, "groupby-dropped.yml") + ":10:21: slos[0].sli.events.errorQuery: result drops the groupBy label \"customer\" (aggregate by it)\n" +
				filepath.Join(bad, "groupby-dropped.yml") + ":11:21: slos[0].sli.events.totalQuery: result drops the groupBy label \"customer\" (aggregate by it)\n"},
		{"unknown field", []string{filepath.Join(bad, "unknown-field.yml")}, 1, "",
			"srectl: " + filepath.Join(bad, "unknown-field.yml") + ":7:5: slos[0].target: unknown field \"target\" (known fields: name, objective, period, description, groupBy, labels, sli, alerting, budgetPolicy)\n"},
		{"sloth objective as a fraction", []string{filepath.Join(sloth, "objective-fraction.yml")}, 1, "",
			"srectl: " + filepath.Join(sloth, "objective-fraction.yml") + ":5:16: slos[0].objective: objective 0.999 looks like a fraction; write it as a percentage (99.9)\n"},
		{"good and bad", []string{examples, filepath.Join(bad, "objective-100.yml")}, 1, "",
			"srectl: " + filepath.Join(bad, "objective-100.yml") + ":6:16: slos[0].objective: objective 100 leaves no error budget; it must be below 100\n"},
		{"defined twice", []string{filepath.Join(examples, "api.yml"), examples}, 1, "",
			"srectl: " + filepath.Join(examples, "api.yml") + ":8:11: slos[0].name: SLO \"availability\" of service \"api\" is already defined at " + filepath.Join(examples, "api.yml") + ":8\n" +
				filepath.Join(examples, "api.yml") + ":26:11: slos[1].name: SLO \"latency\" of service \"api\" is already defined at " + filepath.Join(examples, "api.yml") + ":26\n" +
				filepath.Join(examples, "api.yml") + ":37:11: slos[2].name: SLO \"success-rate\" of service \"api\" is already defined at " + filepath.Join(examples, "api.yml") + ":37\n" +
				filepath.Join(examples, "api.yml") + ":48:11: slos[3].name: SLO \"data-integrity\" of service \"api\" is already defined at " + filepath.Join(examples, "api.yml") + ":48\n"},
		{"missing file", []string{"nonexistent.yml"}, 1, "", "srectl: load SLO spec: open nonexistent.yml: no such file or directory\n"},
		{"no path", nil, 2, "", "srectl: required argument 'path' not provided\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := srectl(t, append([]string{"validate"}, c.args...)...)
			require.Equal(t, c.code, code, stderr)
			require.Equal(t, c.stdout, stdout)
			require.Equal(t, c.stderr, stderr)
		})
	}
}

// Every bad fixture fails validation with the same message slo.LoadFile
// gives, each line positioned as file:line:column.
func TestValidateBadFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "slo", "testdata", "bad", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		_, want := slo.LoadFile(f)
		var es slo.Errors
		require.True(t, errors.As(want, &es), f)
		for _, e := range es {
			require.Equal(t, f, e.File)
			require.Positive(t, e.Line, "%s: %s", f, e)
		}
		code, stdout, stderr := srectl(t, "validate", f)
		require.Equal(t, 1, code, f)
		require.Empty(t, stdout)
		require.Equal(t, "srectl: "+want.Error()+"\n", stderr)
	}
}

// validate writes nothing, even next to the specs.
func TestValidateWritesNothing(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "slos", "checkout.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "checkout.yml"), data, 0o644))
	code, stdout, stderr := srectl(t, "validate", dir)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "2 SLOs in 1 spec are valid\n", stdout)
	require.Equal(t, []string{"checkout.yml"}, listDir(t, dir))
}
