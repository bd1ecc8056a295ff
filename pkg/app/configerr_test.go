package app

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateConfigErr = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestConfigSectionErrors: a problem in a subsystem's section of sred.yml
// (escalation, notifications, retention, runbooks, auth ...) reads "load
// config file:line:col: msg", one problem a line, as those of the core
// sections and of the SLO specs do, never "line N:" without the file nor
// a Go type name (golden files in testdata/configerr; -update rewrites
// them).
func TestConfigSectionErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "configerr", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := LoadConfig(f)
			require.Error(t, err)
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *updateConfigErr {
				require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
			}
			want, rerr := os.ReadFile(golden)
			require.NoError(t, rerr)
			require.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
			for _, line := range strings.Split(err.Error(), "\n") {
				require.Regexp(t, `^(load config )?`+regexp.QuoteMeta(f)+`:\d+:\d+: `, line)
			}
			require.NotRegexp(t, `\w+\.[A-Z]\w*|\[\]\w|line \d+:`, err.Error())
		})
	}
}
