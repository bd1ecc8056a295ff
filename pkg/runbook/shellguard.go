package runbook

import (
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"text/template/parse"
)

// The shell guard. Exec steps run argv without a shell, but a step can
// still name a shell, an interpreter or a program that runs other programs,
// and alert labels templated into the code or the program such a program
// runs, or read as options, would choose what runs. The guard reads the
// literal arguments of a step (docs/runbooks.md, "The shell guard"):
//
//   - For every program: command[0] is literal (Parse), and an argument
//     that begins with a template cannot start with "-" unless it follows
//     the program's literal "--" (checkDashes: no option injection).
//   - A launcher (launcherSpecs: env, timeout, sudo, kubectl exec, docker
//     run, find -exec, ...) is read with its options: the argument in the
//     position of the program it runs must be literal, an option whose
//     value is a command line or code (env -S, flock -c, ssh -o, ...)
//     cannot be a template, and the program it runs is checked the same way
//     in turn. A template where the guard cannot tell an option from the
//     program is refused.
//   - A shell (shellNames), or a program that runs its arguments through
//     one or as its own commands (sudo -s, su, runuser, parallel, tmux,
//     editors, gdb, ...), takes no templated argument at all.
//   - An interpreter given inline code (inlineFlags) takes no templated
//     argument either, and without it no template before its script;
//     awk and sed take no templated program text.
//   - A label templated into the environment of a shell or of an
//     interpreter given inline code, or into the arguments of a program
//     that hands its arguments to a shell (ssh, watch), must have an
//     allow-list pattern that cannot match a shell metacharacter
//     (shellMetachars).
//
// Programs are recognised by name (programName: base name, lower case, no
// version suffix); the guard knows the options listed in launcherSpecs. It
// is a safety net under the allow-list, not a sandbox.

var (
	shellNames   = []string{"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "pwsh", "powershell"}
	handoffNames = []string{"ssh", "watch"}
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
		"luajit":  {"e"},
		"rscript": {"e"},
		"expect":  {"c"},
		// osascript runs -e lines; tclsh and wish read their script
		// from a file or stdin only.
		"osascript": {"e"},
		"tclsh":     {},
		"wish":      {},
		"jshell":    {},
	}
)

// shellMetachars are the characters a POSIX shell gives a meaning to
// (operators, quoting, expansion, globbing, comments, history), with
// whitespace.
const shellMetachars = "|&;<>()$`\\\"' \t\n\r*?[]#~{}!"

// codeEnv are environment variables whose value chooses code that the
// program (or a program it runs) loads or runs: a library it preloads, the
// directories its programs and modules are found in, a file a shell or an
// interpreter runs first, options that load code, a command run for a
// password or an editor. codeEnvPrefixes name families of them.
var (
	codeEnv = []string{"PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "CDPATH",
		"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PERL5LIB", "PERLLIB", "PERL5OPT", "PERL5DB",
		"RUBYOPT", "RUBYLIB", "GEM_PATH", "GEM_HOME", "NODE_OPTIONS", "NODE_PATH", "LUA_INIT", "LUA_PATH", "LUA_CPATH",
		"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "GCONV_PATH", "TCLLIBPATH",
		"GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_ASKPASS", "GIT_EDITOR", "GIT_PAGER", "GIT_EXTERNAL_DIFF", "GIT_CONFIG_GLOBAL",
		"SSH_ASKPASS", "SUDO_ASKPASS", "EDITOR", "VISUAL", "PAGER", "KUBECONFIG", "DOCKER_CONFIG"}
	codeEnvPrefixes = []string{"LD_", "DYLD_", "BASH_FUNC_", "GIT_CONFIG_"}
)

// loadsCode reports whether the environment variable name chooses code.
func loadsCode(name string) bool {
	if slices.Contains(codeEnv, name) {
		return true
	}
	for _, p := range codeEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// checkCodeEnv refuses a label in the value of an environment variable
// that chooses code (loadsCode): LD_PRELOAD, PATH or PYTHONPATH set from
// an alert would let the alert choose what runs, whatever the program.
func checkCodeEnv(s *Step) error {
	names := make([]string, 0, len(s.Exec.Env))
	for name := range s.Exec.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if t := s.tmpls["env."+name]; t != nil && len(t.labels) > 0 && loadsCode(name) {
			return fmt.Errorf("env.%s: label %q cannot be in %s, which chooses code the program loads or runs; write its value literally", name, t.labels[0], name)
		}
	}
	return nil
}

func isTemplate(s string) bool { return strings.Contains(s, "{{") }

// programName is the name the guard knows a program by: the base name of
// its path, lower-cased, without a ".exe" suffix and without a version
// suffix (digits, dots, dashes and underscores at the end, after at least
// one letter: /usr/bin/python3.11, lua5.4, perl5.36, php8.2, node18).
func programName(arg string) string {
	p := strings.ToLower(path.Base(arg))
	p = strings.TrimSuffix(p, ".exe")
	if t := strings.TrimRight(p, "0123456789._-"); t != "" && t != p && strings.ContainsAny(p[len(t):], "0123456789") {
		return t
	}
	return p
}

// interpreter returns the inline-code flags of program, if it is an interpreter.
func interpreter(program string) ([]string, bool) {
	f, ok := inlineFlags[programName(program)]
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
	p := programName(arg)
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

// checkDashes checks, for an exec step's compiled templates, that no
// templated argument can render as an option: an argument that begins
// with a template (its first character comes from a label) must not be
// able to start with "-", for every program, known or not (option
// injection: find's -delete, a script's --force, docker's --entrypoint).
// Allowed are the values of a launcher's options (read as values whatever
// they start with) and the arguments after a literal "--" that follows the
// program which reads them; an argument beginning with literal text
// (--name={{ ... }}) says itself what it is. Values that can be empty are
// read through (leadingDash): '{{ .Labels.a }}-force' with a: '[a-z]*'
// renders "-force" for an empty a, and is refused.
func checkDashes(s *Step, fieldsEmpty bool) error {
	argv := s.Exec.Command
	var dashy []int
	prog, _, err := walkLaunchers(argv, &dashy)
	if err != nil {
		return nil // reported by checkShellArgs
	}
	for j := 1; j < len(argv); j++ {
		key := fmt.Sprintf("command[%d]", j)
		t := s.tmpls[key]
		if t == nil || !t.rendersFirst() {
			continue // starts with literal text
		}
		var whose string
		switch {
		case j < prog:
			if !slices.Contains(dashy, j) {
				continue // a launcher option's value
			}
			whose = "an operand of " + programName(argv[0]) + ", which would read a value starting with \"-\" as an option"
		case slices.Contains(argv[prog+1:j], "--"):
			continue // after the program's end of options
		default:
			whose = "an argument of " + path.Base(argv[prog]) + ", which would read a value starting with \"-\" as an option"
		}
		r := t.leadingDash(fieldsEmpty)
		switch {
		case r == nil:
		case r.label != "":
			return fmt.Errorf("%s: label %q is %s, and its pattern %q can start with \"-\"; restrict the pattern, start the argument with literal text (--name={{ ... }}) or put it after a literal \"--\"",
				key, r.label, whose, patternSource(t.allow[r.label]))
		default:
			return fmt.Errorf("%s: the argument starts with %q when %s; it is %s: make the value non-empty (a pattern with + rather than *), start the argument with other literal text or put it after a literal \"--\"",
				key, r.text, strings.Join(r.empty, " and "), whose)
		}
	}
	return nil
}

// dashRisk says how an argument could render with a leading "-": a label
// whose value can start with one, or the values that can render empty
// before literal text that starts with one.
type dashRisk struct {
	label string
	empty []string
	text  string
}

// leadingDash reads the nodes an argument renders, in order, up to the
// first that cannot render empty: a label there whose pattern can start
// with "-", or literal text starting with "-" after nodes that can all
// render empty ('{{ .Labels.a }}-force' with a: '[a-z]*' renders
// "-force"), is a risk. fieldsEmpty says that .IncidentID, .Severity and
// .Runbook render empty (in an Action, which has none). An argument whose
// first node is literal text is no risk (rendersFirst).
func (t *tmpl) leadingDash(fieldsEmpty bool) *dashRisk {
	if t.t.Tree == nil || t.t.Tree.Root == nil {
		return nil
	}
	var empty []string
	for _, n := range t.t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.CommentNode:
			continue
		case *parse.TextNode:
			if len(n.Text) == 0 {
				continue
			}
			if len(empty) > 0 && n.Text[0] == '-' {
				return &dashRisk{empty: empty, text: string(n.Text)}
			}
			return nil
		}
		refs := map[string]bool{}
		_ = walkTemplate(n, refs) // checked when the template was compiled
		names := make([]string, 0, len(refs))
		for l := range refs {
			names = append(names, l)
		}
		slices.Sort(names)
		for _, l := range names {
			if patternCanStartWith(t.allow[l].String(), '-') {
				return &dashRisk{label: l}
			}
		}
		what, canBeEmpty := t.emptyNode(n, fieldsEmpty)
		if !canBeEmpty {
			return nil
		}
		empty = append(empty, what)
	}
	return nil
}

// emptyNode reports whether the template node n can render nothing, and
// says why: a label whose pattern matches the empty value, a field that an
// Action leaves empty, or any other action or conditional (whose output
// the guard does not compute).
func (t *tmpl) emptyNode(n parse.Node, fieldsEmpty bool) (string, bool) {
	a, ok := n.(*parse.ActionNode)
	if !ok || len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return fmt.Sprintf("%s renders nothing", n), true
	}
	f, ok := a.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok {
		return fmt.Sprintf("%s renders nothing", n), true
	}
	switch f.Ident[0] {
	case "Labels", "Vars":
		re := t.allow[f.Ident[1]]
		return fmt.Sprintf("label %q is empty (its pattern %q matches the empty value)", f.Ident[1], patternSource(re)), re.MatchString("")
	case "RunID":
		return "", false
	}
	return fmt.Sprintf("%s is empty (as in an action)", f), fieldsEmpty
}

// patternSource is the allow-list pattern as written, without the anchors
// compileAllowList adds.
func patternSource(re *regexp.Regexp) string {
	return strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$")
}

// rendersFirst reports whether the first character t renders can come from
// an action rather than from literal text: whether its first node, after
// the text that trim markers leave empty (" {{- .Labels.x }}"), is not
// text. What an argument starts with is read from the parsed template, not
// from its source, where leading text can vanish.
func (t *tmpl) rendersFirst() bool {
	if t.t.Tree == nil || t.t.Tree.Root == nil {
		return false
	}
	for _, n := range t.t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if len(n.Text) > 0 {
				return false
			}
		case *parse.CommentNode:
		default:
			return true
		}
	}
	return false
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
		flags, _ := interpreter(argv[i])
		flag, ok := hasInlineFlag(argv[i+1:], flags)
		if !ok {
			if j := scriptTemplate(argv, i); j > 0 {
				return fmt.Errorf("command[%d] could be the script %s runs, or the value of one of its options: it cannot be a template (a label value would choose the code; name the script first, with its extension, e.g. /opt/fix.py)", j, path.Base(argv[i]))
			}
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

// scriptExtensions mark a literal argument of an interpreter as its
// script even right after a one-letter option (which could take it as its
// value).
var scriptExtensions = []string{".py", ".pl", ".pm", ".rb", ".js", ".mjs", ".cjs", ".ts", ".php", ".lua", ".r", ".tcl", ".tk", ".exp", ".scpt", ".applescript", ".jsh"}

// scriptTemplate returns the index of a templated argument of the
// interpreter argv[i] that comes before its script (the first literal
// operand that is not right after a one-letter option, or that has a
// script's extension; python's -m MODULE), or 0: such a template could be
// the script itself or an option's value that chooses code.
func scriptTemplate(argv []string, i int) int {
	afterShort := false
	for j := i + 1; j < len(argv); j++ {
		a := argv[j]
		switch {
		case isTemplate(a):
			return j
		case a == "--":
			afterShort = false
		case a == "-m" && programName(argv[i]) == "python":
			if j+1 < len(argv) && !isTemplate(argv[j+1]) {
				return 0
			}
		case strings.HasPrefix(a, "-") && a != "-":
			afterShort = len(a) == 2
		default:
			if !afterShort || slices.Contains(scriptExtensions, strings.ToLower(path.Ext(a))) {
				return 0
			}
			afterShort = false
		}
	}
	return 0
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
			flags, _ := interpreter(s.Exec.Command[i])
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
