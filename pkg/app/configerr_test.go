package app

import (
	"flag"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/rootuip/sre/pkg/testutil"
)

var updateConfigErr = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestConfigSectionErrors: a problem in a subsystem's section of sred.yml
// (escalation, notifications, retention, runbooks, auth ...) reads "load
// config file:line:col: msg", one problem a line, as those of the core
// sections and of the SLO specs do, never "line N:" without the file nor
// a Go type name (golden files in testdata/configerr; -update rewrites
// them).
func TestConfigSectionErrors(t *testing.T) {
	testutil.ErrorGoldens(t, filepath.Join("testdata", "configerr"), *updateConfigErr, func(f string) error {
		_, err := LoadConfig(f)
		return err
	}, "load config ", regexp.MustCompile(`\w+\.[A-Z]\w*|\[\]\w|line \d+:`))
}
