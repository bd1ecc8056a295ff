package runbook

import (
	"fmt"
	"path"
	"regexp/syntax"
	"slices"
	"strings"
)

// The shell guard. Exec steps run argv without a shell, but a step can
// still name a shell, an interpreter or a program that runs other programs,
// and alert labels templated into the code or the program such a program
// runs would be code. The guard reads the literal arguments of a step:
//
//   - A launcher (a program that runs another program: env, timeout, nice,
//     nohup, sudo, doas, setsid, stdbuf, ionice, chrt, taskset, busybox,
//     xargs, flock, time, chroot, nsenter, unshare, systemd-run, setpriv,
//     strace, ltrace, numactl, cgexec, firejail, fakeroot, setarch, prlimit,
//     kubectl exec/run/debug, docker/podman/nerdctl exec/run, ip netns exec,
//     find -exec/-execdir/-ok/-okdir, and the hand-off programs below) is
//     read with its options (launcherSpecs): the argument in the position
//     of the program it runs must be literal, an option whose value is a
//     command line or code (env -S, flock -c, docker --entrypoint, ...)
//     cannot be a template, and the program it runs is checked the same way
//     in turn. A template where the guard cannot tell an option from the
//     program is refused.
//   - A shell (sh, bash, zsh, dash, ksh, mksh, ash, fish, csh, tcsh, pwsh,
//     powershell), or a launcher told to run one (sudo -s/-i, doas -s,
//     parallel, which runs its arguments through a shell), takes no
//     templated argument at all.
//   - An interpreter given inline code (python -c, perl -e/-E, ruby -e,
//     node -e/-p/--eval/--print, php -r, lua -e, Rscript -e) takes no
//     templated argument either; awk and sed take no templated program
//     text (sed's e flag and awk's system() run commands).
//   - A label templated into the environment of a shell or of an
//     interpreter given inline code, or into the arguments of a program
//     that hands its arguments to a shell (ssh, su, runuser, watch), must
//     have an allow-list pattern that cannot match a shell metacharacter
//     (shellMetachars).
//
// The guard recognises programs by name and knows the options listed in
// launcherSpecs; an option it does not know that takes a value can mislead
// it. It is a safety net under the allow-list, not a sandbox.

var (
	shellNames   = []string{"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "pwsh", "powershell"}
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
	case slices.Contains(handoffNames, p):
		return kindHandoff
	}
	if _, ok := launcherSpecs[p]; ok {
		return kindWrapper
	}
	if _, ok := interpreter(p); ok {
		return kindInterpreter
	}
	return kindOther
}

// effectiveProgram returns the index in argv of the program that runs the
// rest of the command line: argv[0], or for launchers the program they run
// (launchTarget), in turn; a launcher that runs no program is kindOther. It
// fails when a template sits where a program or code would be.
func effectiveProgram(argv []string) (int, programKind, error) {
	return walkLaunchers(argv, nil)
}

// walkLaunchers is effectiveProgram; it adds to dashy the templated
// operands that a launcher would read as an option if they rendered with
// a leading "-".
func walkLaunchers(argv []string, dashy *[]int) (int, programKind, error) {
	i := 0
	for hops := 0; hops < len(argv); hops++ {
		k := kindOf(argv[i])
		if k != kindWrapper && k != kindHandoff {
			return i, k, nil
		}
		if k == kindHandoff && !slices.Contains([]string{"ssh", "watch"}, path.Base(argv[i])) {
			return i, kindHandoff, nil // su, runuser: the user and -c are read by checkMetachars
		}
		p, shell, err := launchTarget(argv, i, dashy)
		if err != nil {
			return i, k, err
		}
		if shell {
			return i, kindShell, nil
		}
		if k == kindHandoff {
			return i, kindHandoff, nil
		}
		if p < 0 {
			return i, kindOther, nil
		}
		i = p
	}
	return i, kindOf(argv[i]), nil
}

// checkDashes checks, for an exec step's compiled templates, that the
// templated operands a launcher reads while it still reads options cannot
// render with a leading "-" (which would make them options, e.g. docker's
// --entrypoint): the label at the start of such an argument must have a
// pattern that cannot start with "-".
func checkDashes(s *Step) error {
	var dashy []int
	if _, _, err := walkLaunchers(s.Exec.Command, &dashy); err != nil {
		return nil // reported by checkShellArgs
	}
	for _, j := range dashy {
		a := s.Exec.Command[j]
		if !strings.HasPrefix(strings.TrimSpace(a), "{{") {
			continue // starts with literal text
		}
		key := fmt.Sprintf("command[%d]", j)
		t := s.tmpls[key]
		if t == nil {
			continue
		}
		for _, l := range t.labels {
			if patternCanStartWith(t.allow[l].String(), '-') {
				return fmt.Errorf("%s: label %q is an operand of %s, which would read a value starting with \"-\" as an option, and its pattern %q can start with \"-\"; restrict the pattern or put the value after a literal \"--\"",
					key, l, path.Base(s.Exec.Command[0]), strings.TrimSuffix(strings.TrimPrefix(t.allow[l].String(), "^(?:"), ")$"))
			}
		}
	}
	return nil
}

// patternCanStartWith reports whether a non-empty string matched by the
// regular expression pat can start with c.
func patternCanStartWith(pat string, c rune) bool {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return true
	}
	return startsWith(re.Simplify(), c)
}

func startsWith(re *syntax.Regexp, c rune) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpLiteral, syntax.OpCharClass:
		if re.Op == syntax.OpLiteral {
			return len(re.Rune) > 0 && canContain(&syntax.Regexp{Op: syntax.OpLiteral, Rune: re.Rune[:1], Flags: re.Flags}, c)
		}
		return canContain(re, c)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if startsWith(sub, c) {
				return true
			}
			if !nullable(sub) {
				return false
			}
		}
		return false
	case syntax.OpAlternate, syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		for _, sub := range re.Sub {
			if startsWith(sub, c) {
				return true
			}
		}
		return false
	}
	return false
}

// nullable reports whether re can match the empty string.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpPlus, syntax.OpCapture:
		return nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !nullable(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if nullable(sub) {
				return true
			}
		}
		return false
	}
	return false
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
	i, k, err := effectiveProgram(argv)
	if err != nil {
		return err
	}
	var what string
	switch k {
	case kindShell:
		what = "the shell " + path.Base(argv[i])
		if kindOf(argv[i]) != kindShell {
			what = "a shell (" + path.Base(argv[i]) + ")"
		}
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
	i, k, err := effectiveProgram(s.Exec.Command)
	if err != nil {
		return nil // reported by checkShellArgs
	}
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
