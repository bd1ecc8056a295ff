package cli

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/english"
	"github.com/rootuip/sre/pkg/rulegen"
	"github.com/rootuip/sre/pkg/slo"
)

func init() {
	registerCommand(11, func(app *kingpin.Application) map[string]func(*Env) error {
		var paths []string
		cmd := app.Command("validate", "Check SLO spec files (sre.rootuip.io/v1, Sloth prometheus/v1 and sloth.slok.dev/v1, OpenSLO v1, Pyrra pyrra.dev/v1alpha1) without writing anything.")
		cmd.Arg("path", "Spec files or directories.").Required().StringsVar(&paths)
		return map[string]func(*Env) error{"validate": func(env *Env) error { return runValidate(env, paths) }}
	})
}

func runValidate(env *Env, paths []string) error {
	specs, err := slo.LoadFiles(paths...)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	printWarnings(env, specs)
	// Generating checks every expression with the PromQL parser and the
	// rule files as Prometheus loads them.
	files, err := rulegen.Generate(specs)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	for _, f := range files {
		if _, err := f.Marshal(); err != nil {
			return &ExitError{Code: 1, Err: err}
		}
	}
	n := 0
	for _, s := range specs {
		n += len(s.SLOs)
	}
	verb := "are"
	if n == 1 {
		verb = "is"
	}
	fmt.Fprintf(env.Stdout, "%s in %s %s valid\n", count(n, "SLO", "SLOs"), count(len(specs), "spec", "specs"), verb)
	return nil
}

// count is english.Count: "1 SLO", "2 SLOs".
var count = english.Count

// printWarnings prints what the importers of specs kept or changed that
// the reader should know (a Sloth severity sred does not read as page),
// one line each on standard error: file:line:column: field: message.
func printWarnings(env *Env, specs []*slo.Spec) {
	for _, s := range specs {
		for _, w := range s.Warnings {
			fmt.Fprintf(env.Stderr, "warning: %s\n", w)
		}
	}
}
