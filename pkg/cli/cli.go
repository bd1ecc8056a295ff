// Package cli implements srectl, the command-line tool of ROOTUIP SRE.
//
// Each subcommand lives in its own file and registers itself from init()
// with registerCommand, so subsystems add commands without touching this file.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime/pprof"
	"slices"
	"sort"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"golang.org/x/term"

	"github.com/rootuip/sre/pkg/yamlerr"
)

// Env is what a command gets when it runs.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
}

// command is one registered subcommand: setup declares its flags on app and
// returns the action to run when it is selected, keyed by the full command
// name (e.g. "incidents list").
type command struct {
	order int
	setup func(app *kingpin.Application) map[string]func(env *Env) error
}

var commands []command

// registerCommand adds a subcommand. order sorts the help output.
func registerCommand(order int, setup func(app *kingpin.Application) map[string]func(env *Env) error) {
	commands = append(commands, command{order: order, setup: setup})
}

// globalOptions are the flags of srectl itself, valid with every command.
type globalOptions struct {
	// verbose prints errors whole (e.g. every line of a PromQL expression
	// that Prometheus refused) instead of their first and last lines.
	verbose bool
	// cpuProfile is a file for a CPU profile of the command (hidden flag,
	// for performance work: `srectl --cpuprofile=cpu.out generate ...`).
	cpuProfile string
}

// newApp builds the kingpin model of srectl: every registered command, and
// the actions keyed by full command name.
func newApp(stdout, stderr io.Writer) (*kingpin.Application, map[string]func(env *Env) error, *globalOptions) {
	app := kingpin.New("srectl", "Command-line tool of ROOTUIP SRE: SLO rule generation, validation, and the sred API.\n\n"+
		"Exit codes (every command): 0 done; 1 failure (an invalid or missing file, --http.config.file too; a deploy gate that denies); "+
		"2 usage (a flag value of the wrong form, --sred.url too); 3 sred unreachable or failing (5xx); 4 refused by sred (any 4xx).")
	app.Version(version.Print("srectl"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	g := &globalOptions{}
	app.Flag("verbose", "Print errors whole (e.g. every line of a PromQL expression Prometheus refused).").BoolVar(&g.verbose)
	app.Flag("cpuprofile", "Write a CPU profile of the command to this file.").Hidden().StringVar(&g.cpuProfile)

	sorted := slices.Clone(commands)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].order < sorted[j].order })
	actions := map[string]func(env *Env) error{}
	for _, c := range sorted {
		for name, act := range c.setup(app) {
			actions[name] = act
		}
	}
	return app, actions, g
}

// terminated is what kingpin's terminate function panics with once it has
// printed the help or the version: parsing stops there, as with os.Exit, but
// Main returns instead of exiting the process.
type terminated struct{ code int }

// parse runs kingpin on args. done is true when kingpin printed the help or
// the version, and code is then the exit code.
func parse(app *kingpin.Application, args []string) (selected string, done bool, code int, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, ok := r.(terminated)
			if !ok {
				panic(r)
			}
			selected, done, code, err = "", true, t.code, nil
		}
	}()
	app.Terminate(func(code int) { panic(terminated{code}) })
	selected, err = app.Parse(args)
	return selected, false, 0, err
}

// Main runs srectl with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	// Control characters in what sred answers (alert text) never reach
	// the terminal raw (termSafe).
	out, errOut := &termSafe{w: stdout, bidi: isTerminal(stdout)}, &termSafe{w: stderr, bidi: isTerminal(stderr)}
	defer func() { _ = out.Flush(); _ = errOut.Flush() }()
	stdout, stderr = out, errOut
	app, actions, g := newApp(stdout, stderr)
	selected, done, code, err := parse(app, args)
	if done {
		// --help, help, --version, or no command at all: kingpin printed the usage.
		return code
	}
	if err != nil {
		hint := negativeValueHint(err, args)
		if hint == "" {
			hint = usageHint(app, args)
		}
		fmt.Fprintf(stderr, "srectl: %v%s\n", cutParseError(err), hint)
		return 2
	}
	act, ok := actions[selected]
	if !ok {
		fmt.Fprintf(stderr, "srectl: no action for command %q\n", selected)
		return 2
	}
	if g.cpuProfile != "" {
		stop, err := startCPUProfile(g.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "srectl: %v\n", err)
			return 1
		}
		defer stop()
	}
	if err := act(&Env{Stdout: stdout, Stderr: stderr}); err != nil {
		// Config and spec files are decoded from YAML: say what the file
		// holds and what the place wants, not the Go types.
		msg := yamlerr.Message(err.Error())
		var ae *apiError
		if !g.verbose && errors.As(err, &ae) {
			// sred quotes the PromQL of a query Prometheus failed.
			msg = shorten(msg)
		}
		var ec exitCoder
		if asExitCoder(err, &ec) {
			if msg != "" {
				fmt.Fprintf(stderr, "srectl: %s\n", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintf(stderr, "srectl: %s\n", msg)
		return 1
	}
	return 0
}

// startCPUProfile starts a CPU profile into path; stop ends it and closes
// the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// exitCoder is an error that carries its own exit code (e.g. the deploy gate denies with 1,
// validation failures exit 1, unreachable servers exit 3).
type exitCoder interface {
	error
	ExitCode() int
}

func asExitCoder(err error, target *exitCoder) bool {
	for err != nil {
		if ec, ok := err.(exitCoder); ok {
			*target = ec
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// ExitError is an error with an exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode implements exitCoder.
func (e *ExitError) ExitCode() int { return e.Code }

// defaultActor is who acts when --actor is not given: $USER, else the
// account name of the process (containers often have no $USER).
func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// isTerminal reports whether w is a terminal (bidirectional control
// characters are then shown as escapes, termSafe).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
