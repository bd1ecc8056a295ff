package runbook

import (
	"fmt"
	"slices"
	"strings"
)

// launcherSpec says how a launcher's command line names the program it
// runs (see the shell guard in shellguard.go).
type launcherSpec struct {
	// values are the options that take a value (the next argument unless
	// attached as --opt=value or -oVALUE); a templated value is accepted.
	values []string
	// code are the options whose value is a command line or code: it
	// cannot be a template.
	code []string
	// shell are the options that make the launcher run a shell with the
	// rest of its arguments.
	shell []string
	// flags are the options that take no value (or only an attached
	// one, --opt=value). An option in none of the lists is unknown: the
	// guard refuses a template after it (it could take the next argument
	// as its value and move the program).
	flags []string
	// positional is the number of operands before the program
	// (timeout's duration, chroot's directory, flock's file).
	positional int
	// dashDash: the program follows the first "--" (kubectl exec), and
	// there is none without it.
	dashDash bool
	// subcommands: the program is run only by these subcommands (docker
	// exec/run), each read with its own spec; other subcommands run none.
	subcommands map[string]launcherSpec
	// find: the programs follow -exec, -execdir, -ok and -okdir.
	find bool
	// script: the first operand is program text (awk, sed): it cannot be
	// a template, and nothing is run after it.
	script bool
	// alwaysShell: the launcher runs its arguments through a shell.
	alwaysShell bool
	// env: NAME=VALUE operands before the program set its environment.
	env bool
	// noProgram: the operands are not a program (script's log file); only
	// the code options run one.
	noProgram bool
}

var dockerRun = launcherSpec{flags: []string{"-d", "--detach", "-i", "--interactive", "-t", "--tty", "--rm", "--privileged", "--init", "--read-only", "-P", "--publish-all", "-q", "--quiet", "--sig-proxy", "--oom-kill-disable", "--no-healthcheck"}, positional: 1,
	values: []string{"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--name", "-v", "--volume", "-p", "--publish",
		"--network", "--net", "-l", "--label", "--mount", "--cpus", "-m", "--memory", "--restart", "-h", "--hostname", "--add-host",
		"--log-driver", "--log-opt", "--platform", "--pull", "--device", "--cap-add", "--cap-drop", "--security-opt", "--ulimit",
		"--tmpfs", "--ipc", "--pid", "--uts", "--userns", "--dns", "-a", "--attach", "--detach-keys", "--stop-signal", "--stop-timeout",
		"--gpus", "--shm-size", "--group-add", "--cidfile", "--runtime", "--init-path"},
	code: []string{"--entrypoint", "--health-cmd"},
}

var dockerExec = launcherSpec{flags: []string{"-d", "--detach", "-i", "--interactive", "-t", "--tty", "--privileged", "-s", "--sync"}, positional: 1,
	values: []string{"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"},
}

var dockerLike = launcherSpec{flags: []string{"-D", "--debug", "--tls", "--tlsverify"},
	values:      []string{"-H", "--host", "--context", "-c", "--config", "-l", "--log-level", "-n", "--namespace", "--address"},
	subcommands: map[string]launcherSpec{"run": dockerRun, "exec": dockerExec, "create": dockerRun},
}

var kubectlExec = launcherSpec{dashDash: true}

// launcherSpecs are the programs that run other programs.
var launcherSpecs = map[string]launcherSpec{
	"env":     {flags: []string{"-i", "--ignore-environment", "-0", "--null", "-v", "--debug", "--default-signal", "--ignore-signal", "--block-signal", "--list-signal-handling"}, env: true, values: []string{"-u", "--unset", "-C", "--chdir", "-P"}, code: []string{"-S", "--split-string"}},
	"timeout": {flags: []string{"-v", "--verbose", "--preserve-status", "--foreground"}, positional: 1, values: []string{"-s", "--signal", "-k", "--kill-after"}},
	"nice":    {values: []string{"-n", "--adjustment"}},
	"nohup":   {},
	"setsid":  {flags: []string{"-c", "--ctty", "-f", "--fork", "-w", "--wait"}},
	"stdbuf":  {values: []string{"-i", "-o", "-e", "--input", "--output", "--error"}},
	"ionice":  {flags: []string{"-t", "--ignore"}, values: []string{"-c", "-n", "-p", "-P", "-u", "--class", "--classdata", "--pid", "--pgid", "--uid"}},
	"chrt":    {flags: []string{"-a", "--all-tasks", "-b", "--batch", "-d", "--deadline", "-e", "--ext", "-f", "--fifo", "-i", "--idle", "-o", "--other", "-r", "--rr", "-R", "--reset-on-fork", "-v", "--verbose"}, positional: 1, values: []string{"-T", "-P", "-D", "--sched-runtime", "--sched-period", "--sched-deadline"}},
	"taskset": {flags: []string{"-a", "--all-tasks", "-c", "--cpu-list"}, positional: 1},
	"sudo": {flags: []string{"-A", "--askpass", "-b", "--background", "-B", "--bell", "-E", "--preserve-env", "-H", "--set-home", "-k", "--reset-timestamp", "-K", "--remove-timestamp", "-n", "--non-interactive", "-N", "--no-update", "-P", "--preserve-groups", "-S", "--stdin"}, values: []string{"-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir", "-h", "--host", "-p", "--prompt",
		"-r", "--role", "-t", "--type", "-U", "--other-user", "-T", "--command-timeout", "-R", "--chroot"},
		shell: []string{"-s", "--shell", "-i", "--login"}},
	"doas":        {flags: []string{"-n"}, values: []string{"-u", "-C"}, shell: []string{"-s"}},
	"busybox":     {},
	"xargs":       {flags: []string{"-0", "--null", "-r", "--no-run-if-empty", "-t", "--verbose", "-p", "--interactive", "-x", "--exit", "-o", "--open-tty"}, values: []string{"-a", "--arg-file", "-d", "--delimiter", "-E", "--eof", "-I", "--replace", "-L", "--max-lines", "-n", "--max-args", "-P", "--max-procs", "-s", "--max-chars", "--process-slot-var"}},
	"flock":       {flags: []string{"-s", "--shared", "-x", "-e", "--exclusive", "-u", "--unlock", "-n", "--nb", "--nonblock", "-o", "--close", "-F", "--no-fork", "--verbose"}, positional: 1, values: []string{"-w", "--timeout", "-E", "--conflict-exit-code"}, code: []string{"-c", "--command"}},
	"time":        {flags: []string{"-v", "--verbose", "-p", "--portability", "-a", "--append", "-q", "--quiet"}, values: []string{"-f", "--format", "-o", "--output"}},
	"chroot":      {flags: []string{"--skip-chdir"}, positional: 1, values: []string{"--userspec", "--groups"}},
	"nsenter":     {flags: []string{"-a", "--all", "-m", "-u", "-i", "-n", "-p", "-U", "-C", "-T", "--mount", "--uts", "--ipc", "--net", "--pid", "--user", "--cgroup", "--time", "-F", "--no-fork", "--preserve-credentials"}, values: []string{"-t", "--target", "-S", "--setuid", "-G", "--setgid", "-r", "--root", "-w", "--wd"}},
	"unshare":     {flags: []string{"-m", "--mount", "-u", "--uts", "-i", "--ipc", "-n", "--net", "-p", "--pid", "-U", "--user", "-C", "--cgroup", "-T", "--time", "-f", "--fork", "-r", "--map-root-user", "-c", "--map-current-user", "--mount-proc", "--kill-child"}, values: []string{"--propagation", "--setgroups", "--map-user", "--map-group", "-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"}},
	"systemd-run": {shell: []string{"-S", "--shell"}, flags: []string{"--user", "--system", "--scope", "-t", "--pty", "-P", "--pipe", "-q", "--quiet", "--wait", "-G", "--collect", "--same-dir", "-d", "--no-block", "-r", "--remain-after-exit", "--no-ask-password"}, values: []string{"-u", "--unit", "-p", "--property", "--description", "--slice", "-E", "--setenv", "--uid", "--gid", "-M", "--machine", "-H", "--host", "--on-active", "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--on-calendar", "--working-directory", "--nice", "--service-type"}},
	"setpriv":     {flags: []string{"--nnp", "--no-new-privs", "--clear-groups", "--init-groups", "--keep-groups", "--reset-env", "-d", "--dump"}, values: []string{"--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile"}},
	"strace":      {flags: []string{"-f", "-ff", "-c", "-C", "-d", "-D", "-F", "-i", "-q", "-qq", "-r", "-t", "-tt", "-ttt", "-T", "-v", "-V", "-w", "-x", "-xx", "-y", "-yy", "-k", "-n", "-Z", "-z"}, values: []string{"-e", "-o", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X"}},
	"ltrace":      {flags: []string{"-f", "-c", "-C", "-i", "-L", "-r", "-S", "-t", "-tt", "-ttt", "-T", "-w"}, values: []string{"-e", "-o", "-p", "-s", "-u", "-a", "-A", "-D", "-F", "-l", "-n", "-x"}},
	"numactl":     {flags: []string{"-a", "--all", "-l", "--localalloc", "-b", "--balancing"}, values: []string{"-m", "--membind", "-N", "--cpunodebind", "-C", "--physcpubind", "-i", "--interleave", "-p", "--preferred"}},
	"cgexec":      {flags: []string{"--sticky"}, values: []string{"-g"}},
	"firejail":    {flags: []string{"--quiet", "--noprofile", "--private", "--seccomp", "--caps.drop=all", "--nonewprivs", "--noroot"}},
	"fakeroot":    {flags: []string{"-u", "--unknown-is-real"}, values: []string{"-l", "--lib", "--faked", "-s", "-i"}},
	"setarch":     {positional: 1},
	"prlimit":     {values: []string{"-p", "--pid"}},
	"command":     {flags: []string{"-p"}},
	"exec":        {},
	"parallel":    {alwaysShell: true},
	// Programs that run their arguments through a shell or as commands of
	// their own language: no templated argument at all.
	"su":        {alwaysShell: true},
	"runuser":   {alwaysShell: true},
	"sg":        {alwaysShell: true},
	"tmux":      {alwaysShell: true},
	"capsh":     {alwaysShell: true},
	"hyperfine": {alwaysShell: true},
	"vi":        {alwaysShell: true},
	"vim":       {alwaysShell: true},
	"nvim":      {alwaysShell: true},
	"ex":        {alwaysShell: true},
	"view":      {alwaysShell: true},
	"emacs":     {alwaysShell: true},
	"gdb":       {alwaysShell: true},
	"dc":        {alwaysShell: true},
	"pkexec":    {values: []string{"--user"}},
	"script": {flags: []string{"-a", "--append", "-e", "--return", "-f", "--flush", "-q", "--quiet"}, noProgram: true, code: []string{"-c", "--command"},
		values: []string{"-E", "--echo", "-I", "--log-in", "-O", "--log-out", "-B", "--log-io", "-T", "--log-timing", "-m", "--logging-format", "-o", "--output-limit"}},
	"screen":         {flags: []string{"-d", "-m", "-D", "-r", "-R", "-x", "-q", "-A", "-a", "-U", "-l", "-ln", "-O"}, values: []string{"-S", "-L", "-Logfile", "-e", "-h", "-p", "-T", "-t", "-X"}, code: []string{"-c"}},
	"faketime":       {positional: 1, values: []string{"-p", "-m", "-f"}},
	"eatmydata":      {},
	"chronic":        {},
	"unbuffer":       {},
	"catchsegv":      {},
	"torsocks":       {flags: []string{"-i", "--isolate", "-d", "-q"}, values: []string{"-u", "--user", "-p", "--pass", "-a", "--address", "-P", "--port"}},
	"proxychains":    {flags: []string{"-q"}, values: []string{"-f"}},
	"runcon":         {flags: []string{"-c", "--compute"}, values: []string{"-u", "--user", "-r", "--role", "-t", "--type", "-l", "--range"}},
	"choom":          {values: []string{"-n", "--adjust", "-p", "--pid"}},
	"cpulimit":       {flags: []string{"-z", "--lazy", "-i", "--include-children", "-v", "--verbose", "-b", "--background", "-k", "--kill", "-r", "--restore"}, values: []string{"-l", "--limit", "-p", "--pid", "-e", "--exe", "-c", "--cpu"}},
	"valgrind":       {},
	"entr":           {flags: []string{"-a", "-c", "-d", "-n", "-p", "-r", "-z"}, shell: []string{"-s"}},
	"systemd-nspawn": {flags: []string{"-q", "--quiet", "-b", "--boot", "-x", "--ephemeral", "--read-only", "--private-network", "-a", "--as-pid2"}, values: []string{"-D", "--directory", "-i", "--image", "-M", "--machine", "-u", "--user", "--bind", "--bind-ro", "-E", "--setenv", "--chdir"}},
	"lxc-attach":     {flags: []string{"--clear-env", "--keep-env"}, dashDash: true},
	"crictl":         {flags: []string{"-D", "--debug"}, values: []string{"-r", "--runtime-endpoint", "-i", "--image-endpoint", "-c", "--config"}, subcommands: map[string]launcherSpec{"exec": dockerExec}},
	"oc":             {flags: []string{"--insecure-skip-tls-verify", "-i", "--stdin", "-t", "--tty", "-q", "--quiet"}, values: []string{"-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s", "--server", "--token", "--as", "-c", "--container"}, subcommands: map[string]launcherSpec{"exec": kubectlExec, "run": kubectlExec, "debug": kubectlExec, "rsh": {alwaysShell: true}}},
	"git":            {flags: []string{"-p", "--paginate", "-P", "--no-pager", "--bare", "--no-replace-objects", "--literal-pathspecs", "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs", "--no-optional-locks"}, values: []string{"-C", "--git-dir", "--work-tree", "--namespace"}, code: []string{"-c", "--config-env", "--exec-path"}},
	"kubectl":        {flags: []string{"--insecure-skip-tls-verify", "-i", "--stdin", "-t", "--tty", "-q", "--quiet"}, values: []string{"-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s", "--server", "--token", "--as", "--as-group", "--request-timeout", "-c", "--container", "-f", "--filename", "--image", "--pod-running-timeout", "-l", "--selector"}, subcommands: map[string]launcherSpec{"exec": kubectlExec, "run": kubectlExec, "debug": kubectlExec}},
	"docker":         dockerLike,
	"podman":         dockerLike,
	"nerdctl":        dockerLike,
	"ip":             {},
	"find":           {find: true},
	"awk":            {flags: []string{"-b", "--characters-as-bytes", "-c", "--traditional", "-C", "--copyright", "-N", "--use-lc-numeric", "-n", "--non-decimal-data", "-O", "--optimize", "-P", "--posix", "-r", "--re-interval", "-s", "--no-optimize", "-S", "--sandbox", "-t", "--lint-old"}, script: true, values: []string{"-F", "--field-separator", "-v", "--assign"}, code: []string{"-f", "--file", "-e", "--source", "-i", "--include", "-l", "--load", "-E", "--exec"}},
	"gawk":           {flags: []string{"-b", "--characters-as-bytes", "-c", "--traditional", "-C", "--copyright", "-N", "--use-lc-numeric", "-n", "--non-decimal-data", "-O", "--optimize", "-P", "--posix", "-r", "--re-interval", "-s", "--no-optimize", "-S", "--sandbox", "-t", "--lint-old"}, script: true, values: []string{"-F", "--field-separator", "-v", "--assign"}, code: []string{"-f", "--file", "-e", "--source", "-i", "--include", "-l", "--load", "-E", "--exec"}},
	"mawk":           {script: true, values: []string{"-F", "-v"}, code: []string{"-f"}},
	"nawk":           {script: true, values: []string{"-F", "-v"}, code: []string{"-f"}},
	"sed":            {flags: []string{"-n", "--quiet", "--silent", "-E", "-r", "--regexp-extended", "-s", "--separate", "-u", "--unbuffered", "-z", "--null-data", "--posix", "--debug", "--sandbox", "-i", "--in-place"}, script: true, values: []string{"-l", "--line-length"}, code: []string{"-e", "--expression", "-f", "--file"}},
	"gsed":           {flags: []string{"-n", "--quiet", "--silent", "-E", "-r", "--regexp-extended", "-s", "--separate", "-u", "--unbuffered", "-z", "--null-data", "--posix", "--debug", "--sandbox", "-i", "--in-place"}, script: true, values: []string{"-l", "--line-length"}, code: []string{"-e", "--expression", "-f", "--file"}},
	// The hand-off programs: their program is read the same way; the
	// arguments after it are checked for shell metacharacters.
	// ssh -o ProxyCommand=... and LocalCommand=... run local commands, a
	// config file (-F) can hold them: their values cannot be templates.
	"ssh":   {flags: []string{"-4", "-6", "-A", "-a", "-C", "-f", "-G", "-g", "-K", "-k", "-M", "-N", "-n", "-q", "-s", "-T", "-t", "-V", "-v", "-X", "-x", "-Y", "-y"}, positional: 1, values: []string{"-p", "-i", "-l", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-I", "-m", "-O", "-Q", "-S", "-W", "-w", "-B"}, code: []string{"-o", "-F"}},
	"watch": {flags: []string{"-t", "--no-title", "-b", "--beep", "-e", "--errexit", "-g", "--chgexit", "-c", "--color", "-x", "--exec", "-p", "--precise", "-w", "--no-wrap"}, values: []string{"-n", "--interval", "-d", "--differences", "-q", "--equexit"}},
}

// launchTarget reads the launcher argv[i] and returns the index of the
// program it runs (-1 when none), or shell when it runs a shell with its
// arguments. It fails when a template sits where the program, a command
// line or code is.
func launchTarget(argv []string, i int, dashy *[]int) (prog int, shell bool, err error) {
	name := programName(argv[i])
	spec := launcherSpecs[name]
	if name == "ip" {
		// ip [options] netns|vrf exec NAME program ...
		for j := i + 1; j+2 < len(argv); j++ {
			if (argv[j] == "netns" || argv[j] == "vrf") && argv[j+1] == "exec" {
				return checkProgram(argv, j+3, name)
			}
		}
		return -1, false, nil
	}
	if spec.alwaysShell {
		return i, true, nil
	}
	if spec.find {
		for j := i + 1; j < len(argv); j++ {
			switch argv[j] {
			case "-exec", "-execdir", "-ok", "-okdir":
				p, _, err := checkProgram(argv, j+1, name+" "+argv[j])
				if err != nil {
					return -1, false, err
				}
				if p < 0 {
					return -1, false, nil
				}
				// The command ends at ";" or "+": check it as a command
				// line of its own.
				end := len(argv)
				for k := p; k < len(argv); k++ {
					if argv[k] == ";" || argv[k] == "+" {
						end = k
						break
					}
				}
				if err := checkShellArgs(argv[p:end]); err != nil {
					return -1, false, fmt.Errorf("%s %s: %w", name, argv[j], err)
				}
				j = end
			}
		}
		return -1, false, nil
	}
	return scanLauncher(argv, i+1, name, spec, dashy)
}

// checkProgram checks that argv[p], the program a launcher runs, is not a
// template; it returns p, or -1 when argv ends before it.
func checkProgram(argv []string, p int, launcher string) (int, bool, error) {
	if p >= len(argv) {
		return -1, false, nil
	}
	if isTemplate(argv[p]) {
		return -1, false, fmt.Errorf("command[%d] is the program %s runs: it cannot be a template (a label value would choose the program)", p, launcher)
	}
	return p, false, nil
}

// scanLauncher reads the options and operands of a launcher from argv[j].
// The indices of templated operands read while the launcher still reads
// options are added to dashy: a value starting with "-" would be an option
// of the launcher (checkDashes).
func scanLauncher(argv []string, j int, name string, spec launcherSpec, dashy *[]int) (int, bool, error) {
	positional := spec.positional
	options := true
	if spec.dashDash {
		dd := slices.Index(argv[j:], "--")
		if dd < 0 {
			// No program; a templated operand could render as "--" and
			// make the next one the program.
			for k := j; k < len(argv); k++ {
				if isTemplate(argv[k]) && (k == j || !slices.Contains(spec.values, argv[k-1])) {
					return -1, false, fmt.Errorf("command[%d]: %s runs the program after \"--\"; without a literal \"--\" its operands cannot be templates", k, name)
				}
			}
			return -1, false, nil
		}
		for k := j; k < j+dd; k++ {
			if isTemplate(argv[k]) && dashy != nil {
				*dashy = append(*dashy, k)
			}
		}
		return checkProgram(argv, j+dd+1, name)
	}
	for ; j < len(argv); j++ {
		a := argv[j]
		if options && a == "--" {
			options = false
			continue
		}
		if options && strings.HasPrefix(a, "-") && a != "-" {
			next, shell, done, err := scanOption(argv, j, name, spec)
			if err != nil || shell || done {
				if shell {
					return j, true, nil
				}
				return -1, false, err
			}
			j = next
			continue
		}
		if options && isTemplate(a) && dashy != nil {
			*dashy = append(*dashy, j)
		}
		if spec.env && !isTemplate(a[:max(strings.IndexByte(a, '='), 0)]) && strings.Contains(a, "=") && !strings.HasPrefix(a, "=") {
			if n := a[:strings.IndexByte(a, '=')]; loadsCode(n) && isTemplate(a) {
				return -1, false, fmt.Errorf("command[%d] sets %s for the program %s runs, which chooses code it loads or runs: its value cannot be a template", j, n, name)
			}
			continue // NAME=VALUE
		}
		if positional > 0 {
			positional--
			continue
		}
		if spec.noProgram {
			return -1, false, nil
		}
		if spec.subcommands != nil {
			if isTemplate(a) {
				return -1, false, fmt.Errorf("command[%d] is the subcommand of %s: it cannot be a template", j, name)
			}
			sub, ok := spec.subcommands[a]
			if !ok && a == "container" {
				continue // docker container run|exec
			}
			if !ok {
				return -1, false, nil // a subcommand that runs no program
			}
			if sub.alwaysShell {
				return j, true, nil
			}
			return scanLauncher(argv, j+1, name+" "+a, sub, dashy)
		}
		if spec.script {
			if isTemplate(a) {
				return -1, false, fmt.Errorf("command[%d] is the program text of %s: it cannot be a template", j, name)
			}
			return -1, false, nil
		}
		if isTemplate(a) {
			return -1, false, fmt.Errorf("command[%d] is the program %s runs, or an option of it the guard does not know: it cannot be a template (a label value would choose the program)", j, name)
		}
		return j, false, nil
	}
	return -1, false, nil
}

// optionKind is what a launcher's option does with the arguments.
type optionKind int

const (
	optUnknown optionKind = iota
	optFlag               // takes no value
	optValue              // takes a value
	optCode               // takes a command line or code
	optShell              // runs a shell with the rest
)

// kindOfOption returns what spec's option opt (with its dashes) is.
func (spec launcherSpec) kindOfOption(opt string) optionKind {
	switch {
	case slices.Contains(spec.shell, opt):
		return optShell
	case slices.Contains(spec.code, opt):
		return optCode
	case slices.Contains(spec.values, opt):
		return optValue
	case slices.Contains(spec.flags, opt):
		return optFlag
	}
	return optUnknown
}

// longOption resolves a long option name as getopt_long does: an exact
// name, or else the one known long option it abbreviates (--split for
// --split-string). It returns "" when the name is unknown or ambiguous.
func (spec launcherSpec) longOption(name string) string {
	var match string
	for _, list := range [][]string{spec.shell, spec.code, spec.values, spec.flags} {
		for _, o := range list {
			if !strings.HasPrefix(o, "--") || !strings.HasPrefix(o, name) {
				continue
			}
			if o == name {
				return o
			}
			if match != "" && match != o {
				return "" // ambiguous
			}
			match = o
		}
	}
	return match
}

// scanOption reads the option argument argv[j] of the launcher name, as
// getopt does: a long option by its name or an unambiguous abbreviation,
// with its value after "=" or in the next argument; a single-dash argument
// as a cluster of one-letter options (-iS is -i -S), where an option that
// takes a value takes the rest of the cluster or the next argument. It
// returns the index of the last argument read, whether the launcher runs
// a shell, whether the scan is done (the program text of awk and sed came
// with the option) and an error for a template in a command line or code,
// or where the guard does not know what an option does (fail closed: an
// unknown option could take the next argument as its value and move the
// program).
func scanOption(argv []string, j int, name string, spec launcherSpec) (next int, shell, done bool, err error) {
	a := argv[j]
	laterTemplate := slices.ContainsFunc(argv[j+1:], isTemplate)
	unknown := func(opt string) error {
		return fmt.Errorf("command[%d]: %s is an option of %s that the shell guard does not know, and it cannot tell what it does with the arguments after it, of which one is a template; use the options it knows (docs/runbooks.md, \"The shell guard\") or a wrapper script", j, opt, name)
	}
	// value reads the value of opt: attached, or the next argument.
	value := func(opt, attached string, hasValue bool, k optionKind) (int, bool, bool, error) {
		at := j
		v := attached
		if !hasValue && j+1 < len(argv) {
			at = j + 1
			v = argv[at]
		}
		switch k {
		case optShell:
			return at, true, false, nil
		case optCode:
			if isTemplate(v) {
				return at, false, false, fmt.Errorf("command[%d] is the value of %s %s, a command line or code: it cannot be a template", at, name, opt)
			}
			return at, false, spec.script, nil
		}
		return at, false, false, nil
	}
	// A known option written with a single dash and several letters
	// (screen -Logfile, strace -ff), or a one-letter option.
	if k := spec.kindOfOption(a); k != optUnknown {
		if k == optFlag {
			return j, false, false, nil
		}
		return value(a, "", false, k)
	}
	if strings.HasPrefix(a, "--") {
		optName, attached, hasValue := strings.Cut(a, "=")
		if isTemplate(optName) {
			return j, false, false, fmt.Errorf("command[%d]: the name of an option of %s cannot be a template", j, name)
		}
		opt := spec.longOption(optName)
		k := spec.kindOfOption(opt)
		switch {
		case k == optUnknown && hasValue && !isTemplate(attached):
			return j, false, false, nil // takes nothing after it
		case k == optUnknown && (hasValue || laterTemplate):
			return j, false, false, unknown(optName)
		case k == optUnknown, k == optFlag:
			return j, false, false, nil
		case k == optValue && hasValue:
			return j, false, false, nil
		}
		return value(opt, attached, hasValue, k)
	}
	// A cluster of one-letter options.
	for c := 1; c < len(a); c++ {
		if strings.HasPrefix(a[c:], "{{") {
			return j, false, false, fmt.Errorf("command[%d]: the letters of an option of %s cannot be a template", j, name)
		}
		opt := "-" + a[c:c+1]
		k := spec.kindOfOption(opt)
		switch k {
		case optFlag:
			continue
		case optUnknown:
			if laterTemplate || isTemplate(a) {
				return j, false, false, unknown(opt)
			}
			return j, false, false, nil
		case optShell:
			return j, true, false, nil
		}
		rest := a[c+1:]
		return value(opt, rest, rest != "", k)
	}
	return j, false, false, nil
}
