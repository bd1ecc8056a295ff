// Package cli implements srectl, the command-line tool of ROOTUIP SRE.
//
// Each subcommand lives in its own file and registers itself from init()
// with registerCommand, so subsystems add commands without touching this file.
package cli

import (
	"fmt"
	"io"
	"os"
	"os/user"

	"sort"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
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

// Main runs srectl with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New("srectl", "Command-line tool of ROOTUIP SRE: SLO rule generation, validation, and the sred API.")
	app.Version(version.Print("srectl"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(nil)

	sort.SliceStable(commands, func(i, j int) bool { return commands[i].order < commands[j].order })
	actions := map[string]func(env *Env) error{}
	for _, c := range commands {
		for name, act := range c.setup(app) {
			actions[name] = act
		}
	}
	selected, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "srectl: %v\n", err)
		return 2
	}
	act, ok := actions[selected]
	if !ok {
		// --help or --version was handled by kingpin.
		return 0
	}
	if err := act(&Env{Stdout: stdout, Stderr: stderr}); err != nil {
		var ec exitCoder
		if asExitCoder(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintf(stderr, "srectl: %s\n", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintf(stderr, "srectl: %v\n", err)
		return 1
	}
	return 0
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
