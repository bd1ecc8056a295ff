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

var dockerRun = launcherSpec{positional: 1,
	values: []string{"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--name", "-v", "--volume", "-p", "--publish",
		"--network", "--net", "-l", "--label", "--mount", "--cpus", "-m", "--memory", "--restart", "-h", "--hostname", "--add-host",
		"--log-driver", "--log-opt", "--platform", "--pull", "--device", "--cap-add", "--cap-drop", "--security-opt", "--ulimit",
		"--tmpfs", "--ipc", "--pid", "--uts", "--userns", "--dns", "-a", "--attach", "--detach-keys", "--stop-signal", "--stop-timeout",
		"--gpus", "--shm-size", "--group-add", "--cidfile", "--runtime", "--init-path"},
	code: []string{"--entrypoint", "--health-cmd"},
}

var dockerExec = launcherSpec{positional: 1,
	values: []string{"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"},
}

var dockerLike = launcherSpec{
	values:      []string{"-H", "--host", "--context", "-c", "--config", "-l", "--log-level", "-n", "--namespace", "--address"},
	subcommands: map[string]launcherSpec{"run": dockerRun, "exec": dockerExec, "create": dockerRun},
}

var kubectlExec = launcherSpec{dashDash: true}

// launcherSpecs are the programs that run other programs.
var launcherSpecs = map[string]launcherSpec{
	"env":     {env: true, values: []string{"-u", "--unset", "-C", "--chdir", "-P"}, code: []string{"-S", "--split-string"}},
	"timeout": {positional: 1, values: []string{"-s", "--signal", "-k", "--kill-after"}},
	"nice":    {values: []string{"-n", "--adjustment"}},
	"nohup":   {},
	"setsid":  {},
	"stdbuf":  {values: []string{"-i", "-o", "-e", "--input", "--output", "--error"}},
	"ionice":  {values: []string{"-c", "-n", "-p", "-P", "-u", "--class", "--classdata", "--pid", "--pgid", "--uid"}},
	"chrt":    {positional: 1, values: []string{"-T", "-P", "-D", "--sched-runtime", "--sched-period", "--sched-deadline"}},
	"taskset": {positional: 1},
	"sudo": {values: []string{"-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir", "-h", "--host", "-p", "--prompt",
		"-r", "--role", "-t", "--type", "-U", "--other-user", "-T", "--command-timeout", "-R", "--chroot"},
		shell: []string{"-s", "--shell", "-i", "--login"}},
	"doas":        {values: []string{"-u", "-C"}, shell: []string{"-s"}},
	"busybox":     {},
	"xargs":       {values: []string{"-a", "--arg-file", "-d", "--delimiter", "-E", "--eof", "-I", "--replace", "-L", "--max-lines", "-n", "--max-args", "-P", "--max-procs", "-s", "--max-chars", "--process-slot-var"}},
	"flock":       {positional: 1, values: []string{"-w", "--timeout", "-E", "--conflict-exit-code"}, code: []string{"-c", "--command"}},
	"time":        {values: []string{"-f", "--format", "-o", "--output"}},
	"chroot":      {positional: 1, values: []string{"--userspec", "--groups"}},
	"nsenter":     {values: []string{"-t", "--target", "-S", "--setuid", "-G", "--setgid", "-r", "--root", "-w", "--wd"}},
	"unshare":     {values: []string{"--propagation", "--setgroups", "--map-user", "--map-group", "-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"}},
	"systemd-run": {values: []string{"-u", "--unit", "-p", "--property", "--description", "--slice", "-E", "--setenv", "--uid", "--gid", "-M", "--machine", "-H", "--host", "--on-active", "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--on-calendar", "--working-directory", "--nice", "--service-type"}},
	"setpriv":     {values: []string{"--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile"}},
	"strace":      {values: []string{"-e", "-o", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-P", "-S", "-X"}},
	"ltrace":      {values: []string{"-e", "-o", "-p", "-s", "-u", "-a", "-A", "-D", "-F", "-l", "-n", "-x"}},
	"numactl":     {values: []string{"-m", "--membind", "-N", "--cpunodebind", "-C", "--physcpubind", "-i", "--interleave", "-p", "--preferred"}},
	"cgexec":      {values: []string{"-g"}},
	"firejail":    {},
	"fakeroot":    {values: []string{"-l", "--lib", "--faked", "-s", "-i"}},
	"setarch":     {positional: 1},
	"prlimit":     {values: []string{"-p", "--pid"}},
	"command":     {},
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
	"script": {noProgram: true, code: []string{"-c", "--command"},
		values: []string{"-E", "--echo", "-I", "--log-in", "-O", "--log-out", "-B", "--log-io", "-T", "--log-timing", "-m", "--logging-format", "-o", "--output-limit"}},
	"screen":         {values: []string{"-S", "-L", "-Logfile", "-e", "-h", "-p", "-T", "-t", "-X"}, code: []string{"-c"}},
	"faketime":       {positional: 1, values: []string{"-p", "-m", "-f"}},
	"eatmydata":      {},
	"chronic":        {},
	"unbuffer":       {},
	"catchsegv":      {},
	"torsocks":       {values: []string{"-u", "--user", "-p", "--pass", "-a", "--address", "-P", "--port"}},
	"proxychains":    {values: []string{"-f"}},
	"runcon":         {values: []string{"-u", "--user", "-r", "--role", "-t", "--type", "-l", "--range"}},
	"choom":          {values: []string{"-n", "--adjust", "-p", "--pid"}},
	"cpulimit":       {values: []string{"-l", "--limit", "-p", "--pid", "-e", "--exe", "-c", "--cpu"}},
	"valgrind":       {},
	"entr":           {shell: []string{"-s"}},
	"systemd-nspawn": {values: []string{"-D", "--directory", "-i", "--image", "-M", "--machine", "-u", "--user", "--bind", "--bind-ro", "-E", "--setenv", "--chdir"}},
	"lxc-attach":     {dashDash: true},
	"crictl":         {values: []string{"-r", "--runtime-endpoint", "-i", "--image-endpoint", "-c", "--config"}, subcommands: map[string]launcherSpec{"exec": dockerExec}},
	"oc":             {values: []string{"-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s", "--server", "--token", "--as", "-c", "--container"}, subcommands: map[string]launcherSpec{"exec": kubectlExec, "run": kubectlExec, "debug": kubectlExec, "rsh": {alwaysShell: true}}},
	"git":            {values: []string{"-C", "--git-dir", "--work-tree", "--namespace"}, code: []string{"-c", "--config-env", "--exec-path"}},
	"kubectl":        {values: []string{"-n", "--namespace", "--context", "--cluster", "--user", "--kubeconfig", "-s", "--server", "--token", "--as", "--as-group", "--request-timeout", "-c", "--container", "-f", "--filename", "--image", "--pod-running-timeout", "-l", "--selector"}, subcommands: map[string]launcherSpec{"exec": kubectlExec, "run": kubectlExec, "debug": kubectlExec}},
	"docker":         dockerLike,
	"podman":         dockerLike,
	"nerdctl":        dockerLike,
	"ip":             {},
	"find":           {find: true},
	"awk":            {script: true, values: []string{"-F", "--field-separator", "-v", "--assign"}, code: []string{"-f", "--file", "-e", "--source"}},
	"gawk":           {script: true, values: []string{"-F", "--field-separator", "-v", "--assign"}, code: []string{"-f", "--file", "-e", "--source"}},
	"mawk":           {script: true, values: []string{"-F", "-v"}, code: []string{"-f"}},
	"nawk":           {script: true, values: []string{"-F", "-v"}, code: []string{"-f"}},
	"sed":            {script: true, values: []string{"-l", "--line-length"}, code: []string{"-e", "--expression", "-f", "--file"}},
	"gsed":           {script: true, values: []string{"-l", "--line-length"}, code: []string{"-e", "--expression", "-f", "--file"}},
	// The hand-off programs: their program is read the same way; the
	// arguments after it are checked for shell metacharacters.
	// ssh -o ProxyCommand=... and LocalCommand=... run local commands, a
	// config file (-F) can hold them: their values cannot be templates.
	"ssh":   {positional: 1, values: []string{"-p", "-i", "-l", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-I", "-m", "-O", "-Q", "-S", "-W", "-w", "-B"}, code: []string{"-o", "-F"}},
	"watch": {values: []string{"-n", "--interval", "-d", "--differences", "-q", "--equexit"}},
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
			opt, attached, hasValue := a, "", false
			if strings.HasPrefix(a, "--") {
				opt, attached, hasValue = strings.Cut(a, "=")
			} else if len(a) > 2 && (slices.Contains(spec.values, a[:2]) || slices.Contains(spec.code, a[:2])) {
				opt, attached, hasValue = a[:2], a[2:], true
			}
			switch {
			case slices.Contains(spec.shell, opt):
				return j, true, nil
			case slices.Contains(spec.code, opt):
				v := attached
				if !hasValue && j+1 < len(argv) {
					j++
					v = argv[j]
				}
				if isTemplate(v) {
					return -1, false, fmt.Errorf("command[%d] is the value of %s %s, a command line or code: it cannot be a template", j, name, opt)
				}
				if spec.script {
					return -1, false, nil // the program text came with the option
				}
			case slices.Contains(spec.values, opt) && !hasValue:
				j++ // its value, templated or not
			}
			continue
		}
		if options && isTemplate(a) && dashy != nil {
			*dashy = append(*dashy, j)
		}
		if spec.env && !isTemplate(a[:max(strings.IndexByte(a, '='), 0)]) && strings.Contains(a, "=") && !strings.HasPrefix(a, "=") {
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
