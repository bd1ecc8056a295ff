package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/rootuip/sre/pkg/limits"
	"github.com/rootuip/sre/pkg/suggest"
)

// usageHint returns what to append to a command-line error: the flag or
// command the user probably meant, or the flag a path belongs to. It is ""
// when there is nothing useful to suggest.
func usageHint(app *kingpin.Application, args []string) (hint string) {
	defer func() {
		// A hint is a courtesy: it never turns an error into a crash.
		if recover() != nil {
			hint = ""
		}
	}()
	ctx, err := app.ParseContext(args)
	if ctx == nil {
		return ""
	}
	path := commandPath(app.Model(), ctx.SelectedCommand)
	cur := path[len(path)-1]
	if err == nil || ctx.EOL() {
		// A command that has subcommands, given without one.
		if cur.model != nil && len(cur.cmds) > 0 {
			return fmt.Sprintf(" (commands: %s)", strings.Join(commandNames(cur.cmds), ", "))
		}
		return ""
	}
	tok := ctx.Peek()
	switch tok.Type {
	case kingpin.TokenLong:
		name, _, _ := strings.Cut(tok.Value, "=")
		var flags []string
		for _, f := range app.Model().Flags {
			flags = append(flags, suggest.Flags(f)...)
		}
		for _, c := range path[1:] {
			for _, f := range c.model.Flags {
				flags = append(flags, suggest.Flags(f)...)
			}
		}
		if m := suggest.Closest(name, flags); m != "" {
			return fmt.Sprintf(" (did you mean --%s?)", m)
		}
		// A flag of the commands (--sred.url, --timeout, ...) given before
		// the command, as amtool's --alertmanager.url may be: say where.
		if h := commandFlagHint(cur, args, name); h != "" {
			return h
		}
		// A file named by a flag (--config.file, as sred and promtool's
		// flags have it) to a command that takes files as arguments: say so.
		if cur.model != nil && len(cur.model.Args) > 0 && fileArgs[cur.model.Args[0].Name] {
			if v := flagValue(args, tok.Value); looksLikePath(v) {
				return fmt.Sprintf(" (srectl %s takes its <%s> as an argument, not a flag: srectl %s %s)", cur.full, cur.model.Args[0].Name, cur.full, v)
			}
		}
	case kingpin.TokenArg:
		if len(cur.cmds) > 0 {
			names := commandNames(cur.cmds)
			if m := suggest.Closest(tok.Value, names); m != "" {
				return fmt.Sprintf(" (did you mean %q?)", strings.TrimSpace(cur.full+" "+m))
			}
			return fmt.Sprintf(" (commands: %s; see %s --help)", strings.Join(names, ", "), strings.TrimSpace("srectl "+cur.full))
		}
		// A spec file or directory given as an argument to a command that
		// reads it from a flag: say which flag.
		if cur.model == nil || !looksLikePath(tok.Value) {
			return ""
		}
		for _, f := range cur.model.Flags {
			if f.Name == "input" {
				flag := "--input"
				if f.Short != 0 {
					flag = "-" + string(f.Short)
				}
				return fmt.Sprintf(" (did you mean: srectl %s %s %s?)", cur.full, flag, tok.Value)
			}
		}
	}
	return ""
}

// commandFlagHint is the hint for --name given at the level cur (srectl
// itself, or a command with subcommands) when it is a flag of a command
// below: the command line with the flag moved after the command. "" when
// no command below has it.
func commandFlagHint(cur level, args []string, name string) string {
	f := subcommandFlag(cur.cmds, name)
	if f == nil {
		return ""
	}
	var rest, moved []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(moved) > 0 || (a != "--"+name && !strings.HasPrefix(a, "--"+name+"=")) {
			rest = append(rest, a)
			continue
		}
		moved = append(moved, a)
		if a == "--"+name && !f.IsBoolFlag() && i+1 < len(args) {
			i++
			moved = append(moved, args[i])
		}
	}
	if len(moved) == 0 || len(rest) == 0 {
		return fmt.Sprintf(" (--%s is a flag of the commands, not of %s: give it after the command)", name, strings.TrimSpace("srectl "+cur.full))
	}
	return fmt.Sprintf(" (--%s is a flag of the commands, not of %s: give it after the command, srectl %s %s)",
		name, strings.TrimSpace("srectl "+cur.full), strings.Join(rest, " "), strings.Join(moved, " "))
}

// subcommandFlag returns the visible flag called name of one of cmds or
// of their subcommands, nil when none has it.
func subcommandFlag(cmds []*kingpin.CmdModel, name string) *kingpin.FlagModel {
	for _, c := range cmds {
		for _, f := range c.Flags {
			if f.Name == name && !f.Hidden {
				return f
			}
		}
		if f := subcommandFlag(c.Commands, name); f != nil {
			return f
		}
	}
	return nil
}

// level is one level of the command tree: the application (model nil) or a command.
type level struct {
	full  string
	model *kingpin.CmdModel
	cmds  []*kingpin.CmdModel
}

// commandPath returns the levels from the application down to selected.
func commandPath(app *kingpin.ApplicationModel, selected *kingpin.CmdClause) []level {
	path := []level{{cmds: app.Commands}}
	if selected == nil {
		return path
	}
	cmds := app.Commands
	for _, name := range strings.Fields(selected.FullCommand()) {
		for _, c := range cmds {
			if c.Name == name {
				path = append(path, level{full: c.FullCommand, model: c, cmds: c.Commands})
				cmds = c.Commands
				break
			}
		}
	}
	return path
}

// commandNames returns the names and aliases of the visible commands.
func commandNames(cmds []*kingpin.CmdModel) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
			names = append(names, c.Aliases...)
		}
	}
	return names
}

// looksLikePath reports whether s names an existing file or directory, or a
// spec file by its extension.
func looksLikePath(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return true
	}
	return fileLike(s)
}

// shorten keeps the first and the last line of a multi-line error message
// (an error from Prometheus quotes the whole PromQL expression, often 20
// lines, before the cause): the first line names the SLO and the start of
// the query, the last one carries the cause. --verbose prints it whole.
func shorten(msg string) string {
	lines := strings.Split(strings.TrimRight(msg, "\n"), "\n")
	if len(lines) <= 2 {
		return msg
	}
	hidden := len(lines) - 2
	return fmt.Sprintf("%s [… %d more lines; --verbose prints them] %s",
		strings.TrimRight(lines[0], " "), hidden, strings.TrimSpace(lines[len(lines)-1]))
}

// fileArgs are the names of the arguments that take files or directories.
var fileArgs = map[string]bool{"file": true, "files": true, "path": true}

// flagValue returns the value args give the long flag tok (kingpin's
// token: the name, or name=value): after its "=", or the next argument;
// "" when there is none.
func flagValue(args []string, tok string) string {
	name, v, ok := strings.Cut(tok, "=")
	if ok {
		return v
	}
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			return args[i+1]
		}
	}
	return ""
}

// negativeValueHint is the hint for kingpin's "expected argument for flag
// '--for'" when the flag is followed by a value starting with '-' (a
// negative duration or number, --for -5m), which kingpin reads as another
// flag: the same value after '=' reaches the command, which says what is
// wrong with it. "" otherwise.
func negativeValueHint(err error, args []string) string {
	flag, ok := strings.CutPrefix(err.Error(), "expected argument for flag '")
	if !ok {
		return ""
	}
	flag, ok = strings.CutSuffix(flag, "'")
	if !ok || !strings.HasPrefix(flag, "--") {
		return ""
	}
	for i := 0; i+1 < len(args); i++ {
		if v := args[i+1]; args[i] == flag && len(v) > 1 && v[0] == '-' && (v[1] >= '0' && v[1] <= '9' || v[1] == '.') {
			return fmt.Sprintf(" (a value starting with '-' goes after '=': %s=%s)", flag, limits.Cut(v))
		}
	}
	return ""
}
