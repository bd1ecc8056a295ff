package runbook

import (
	"fmt"
	"path"
	"regexp/syntax"
	"slices"
	"strings"
)

// The shell guard. Exec steps run argv without a shell, but a step can
// still name a shell or an interpreter as its program, and alert labels
// templated into the code such a program runs would be code. The guard
// looks at the literal program names of a step:
//
//   - A shell (sh, bash, zsh, dash, ksh, mksh, ash, fish, csh, tcsh, pwsh,
//     powershell) takes no templated argument at all.
//   - An interpreter given inline code (python -c, perl -e/-E, ruby -e,
//     node -e/-p/--eval/--print, php -r, lua -e, Rscript -e) takes no
//     templated argument either.
//   - A wrapper (env, busybox, sudo, doas, nice, nohup, setsid, timeout,
//     stdbuf, ionice, chrt, taskset) counts as the first later literal
//     argument that names a shell, an interpreter or another wrapper.
//   - A label templated into the environment of a shell or of an
//     interpreter given inline code, or
//     into the arguments of a program that hands its arguments to a shell
//     (ssh, su, runuser, watch), must have an allow-list pattern that
//     cannot match a shell metacharacter (shellMetachars).
//
// The guard recognises programs by name; it is a safety net under the
// allow-list, not a sandbox.

var (
	shellNames   = []string{"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "pwsh", "powershell"}
	wrapperNames = []string{"env", "busybox", "sudo", "doas", "nice", "nohup", "setsid", "timeout", "stdbuf", "ionice", "chrt", "taskset"}
	handoffNames = []string{"ssh", "su", "runuser", "watch"}
	// inlineFlags are the options that make an interpreter run code given
	// on its command line; single letters also match inside clusters (-le).
	inlineFlags = map[string][]string{
		"python":  {"c"},
		"perl":    {"e", "E"},
		"ruby":    {"e"},
		"node":    {"e", "p", "--eval", "--print"},
		"nodejs":  {"e", "p", "--eval", "--print"},
		"php":     {"r"},
		"lua":     {"e"},
		"rscript": {"e"},
	}
)

// shellMetachars are the characters a POSIX shell gives a meaning to
// (operators, quoting, expansion, globbing, comments, history), with
// whitespace.
const shellMetachars = "|&;<>()$`\\\"' \t\n\r*?[]#~{}!"

func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// interpreter returns the inline-code flags of program, if it is an interpreter.
func interpreter(program string) ([]string, bool) {
	p := strings.ToLower(program)
	if strings.HasPrefix(p, "python") && strings.Trim(p[len("python"):], "0123456789.") == "" {
		return inlineFlags["python"], true
	}
	f, ok := inlineFlags[p]
	return f, ok
}

// programKind classifies a program name (a path's base name).
type programKind int

const (
	kindOther programKind = iota
	kindShell
	kindInterpreter
	kindWrapper
	kindHandoff
)

func kindOf(arg string) programKind {
	p := path.Base(arg)
	switch {
	case slices.Contains(shellNames, p):
		return kindShell
	case slices.Contains(wrapperNames, p):
		return kindWrapper
	case slices.Contains(handoffNames, p):
		return kindHandoff
	}
	if _, ok := interpreter(p); ok {
		return kindInterpreter
	}
	return kindOther
}

// effectiveProgram returns the index in argv of the program that runs the
// rest of the command line: argv[0], or for wrappers the first later
// literal argument naming a shell, an interpreter or another wrapper.
func effectiveProgram(argv []string) (int, programKind) {
	i, k := 0, kindOf(argv[0])
	for k == kindWrapper {
		j := slices.IndexFunc(argv[i+1:], func(a string) bool {
			return !isTemplate(a) && kindOf(a) != kindOther && kindOf(a) != kindHandoff
		})
		if j < 0 {
			// No shell nor interpreter behind the wrapper; a hand-off
			// program behind it still counts.
			if h := slices.IndexFunc(argv[i+1:], func(a string) bool { return !isTemplate(a) && kindOf(a) == kindHandoff }); h >= 0 {
				return i + 1 + h, kindHandoff
			}
			return i, kindWrapper
		}
		i += 1 + j
		k = kindOf(argv[i])
	}
	return i, k
}

// hasInlineFlag reports whether args hold one of flags: long flags exactly
// (or with "="), one-letter flags alone or in a cluster of short options.
// It looks at every argument, also those after a script name: an option's
// value (python -W ignore -c ...) cannot be told from a script without
// knowing every option of every interpreter, and a false alarm is safer.
func hasInlineFlag(args, flags []string) (string, bool) {
	for _, a := range args {
		if isTemplate(a) || !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		for _, f := range flags {
			if strings.HasPrefix(f, "--") {
				if a == f || strings.HasPrefix(a, f+"=") {
					return a, true
				}
			} else if !strings.HasPrefix(a, "--") && strings.Contains(a[1:], f) {
				return a, true
			}
		}
	}
	return "", false
}

// checkShellArgs rejects templated arguments of a shell, or of an
// interpreter given inline code.
func checkShellArgs(argv []string) error {
	i, k := effectiveProgram(argv)
	var what string
	switch k {
	case kindShell:
		what = "the shell " + path.Base(argv[i])
	case kindInterpreter:
		flags, _ := interpreter(path.Base(argv[i]))
		flag, ok := hasInlineFlag(argv[i+1:], flags)
		if !ok {
			return nil
		}
		what = fmt.Sprintf("inline code (%s %s)", path.Base(argv[i]), flag)
	default:
		return nil
	}
	for j := i + 1; j < len(argv); j++ {
		if isTemplate(argv[j]) {
			return fmt.Errorf("exec.command runs %s: command[%d] cannot be a template (a label value would become code; pass it in env and quote it, \"$NAME\")", what, j)
		}
	}
	return nil
}

// checkMetachars checks, for an exec step's compiled templates, that the
// labels reaching a shell's environment or a hand-off program's arguments
// have patterns that cannot match a shell metacharacter.
func checkMetachars(s *Step) error {
	i, k := effectiveProgram(s.Exec.Command)
	var (
		keys []string
		what string
	)
	switch k {
	case kindShell, kindInterpreter:
		if k == kindInterpreter {
			flags, _ := interpreter(path.Base(s.Exec.Command[i]))
			if _, ok := hasInlineFlag(s.Exec.Command[i+1:], flags); !ok {
				return nil // a script file: its environment is as inert as its arguments
			}
		}
		what = "the environment of " + path.Base(s.Exec.Command[i])
		for name := range s.Exec.Env {
			keys = append(keys, "env."+name)
		}
	case kindHandoff:
		what = "the arguments of " + path.Base(s.Exec.Command[i]) + ", which hands them to a shell"
		for j := i + 1; j < len(s.Exec.Command); j++ {
			keys = append(keys, fmt.Sprintf("command[%d]", j))
		}
	default:
		return nil
	}
	slices.Sort(keys)
	for _, key := range keys {
		t := s.tmpls[key]
		if t == nil {
			continue
		}
		for _, l := range t.labels {
			if c, ok := patternMatchesAny(t.allow[l].String(), shellMetachars); ok {
				return fmt.Errorf("%s: label %q reaches %s, and its pattern %q can match the shell metacharacter %q; restrict the pattern",
					key, l, what, strings.TrimSuffix(strings.TrimPrefix(t.allow[l].String(), "^(?:"), ")$"), string(c))
			}
		}
	}
	return nil
}

// patternMatchesAny returns the first rune of chars that some string
// matched by the regular expression pat can contain.
func patternMatchesAny(pat, chars string) (rune, bool) {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return 0, false // compiled before: cannot happen
	}
	re = re.Simplify()
	for _, c := range chars {
		if canContain(re, c) {
			return c, true
		}
	}
	return 0, false
}

func canContain(re *syntax.Regexp, c rune) bool {
	switch re.Op {
	case syntax.OpAnyChar:
		return true
	case syntax.OpAnyCharNotNL:
		return c != '\n'
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == c || re.Flags&syntax.FoldCase != 0 && strings.EqualFold(string(r), string(c)) {
				return true
			}
		}
		return false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= c && c <= re.Rune[i+1] {
				return true
			}
		}
		return false
	}
	for _, sub := range re.Sub {
		if canContain(sub, c) {
			return true
		}
	}
	return false
}
