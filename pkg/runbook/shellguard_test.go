package runbook

import (
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
)

// TestShellGuardWrappers: a label templated into the position of the
// program that a launcher runs, into a launcher option whose value is a
// command line or code, or into the program text of awk and sed, is
// refused at load, for each launcher the guard knows; templated values in
// the launchers' ordinary options and in the arguments of the program they
// run are accepted.
func TestShellGuardWrappers(t *testing.T) {
	const head = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z][a-z0-9-]{0,40}', opt: '[a-z]*', any: '(?s).*', cmd: '[a-z][a-z0-9 /._>]{0,60}'}\nsteps:\n  - name: a\n    exec:\n      command: "
	const s = "'{{ .Labels.service }}'"
	refused := map[string]bool{} // the programs of the refused cases
	for _, tc := range []struct {
		name, command, err string
	}{
		{"env -S", "[env, -S, " + s + "]", `command[2] is the value of env -S, a command line or code: it cannot be a template`},
		{"env --split-string=", "[env, '--split-string={{ .Labels.service }} x']", `command[1] is the value of env --split-string, a command line or code`},
		// getopt: clusters of one-letter options, abbreviated long options,
		// unknown options before a template (fail closed).
		{"env -S in a cluster", "[/usr/bin/env, -iS, 'sh -c', '{{ .Labels.cmd }}']", `command[3] is the program env runs`},
		{"env -S in a cluster, attached", "[env, '-iS{{ .Labels.cmd }}']", `command[1] is the value of env -S, a command line or code`},
		{"env --split abbreviated", "[env, --split, 'sh -c', '{{ .Labels.cmd }}']", `command[3] is the program env runs`},
		{"env --spl= abbreviated", "[env, '--spl={{ .Labels.cmd }}']", `command[1] is the value of env --split-string, a command line or code`},
		{"sudo -s in a cluster", "[sudo, -Es, /opt/restart, " + s + "]", `exec.command runs a shell (sudo): command[3] cannot be a template`},
		{"sudo --shel abbreviated", "[sudo, --shel, /opt/restart, " + s + "]", `exec.command runs a shell (sudo): command[3] cannot be a template`},
		{"sudo --log abbreviated", "[sudo, --log, /opt/restart, " + s + "]", `exec.command runs a shell (sudo)`},
		{"sudo -u in a cluster", "[sudo, -nu, root, " + s + "]", `command[3] is the program sudo runs`},
		{"sudo -u attached in a cluster", "[sudo, -Euroot, " + s + "]", `command[2] is the program sudo runs`},
		{"flock -c in a cluster", "[flock, -nc, " + s + ", /tmp/lock]", `command[2] is the value of flock -c`},
		{"unknown option of a launcher", "[sudo, -Z, /opt/restart, " + s + "]", `command[1]: -Z is an option of sudo that the shell guard does not know`},
		{"unknown letter in a cluster", "[env, -iZ, /opt/restart, " + s + "]", `command[1]: -Z is an option of env that the shell guard does not know`},
		{"unknown long option of a launcher", "[timeout, --frobnicate, 30s, /opt/restart, " + s + "]", `command[1]: --frobnicate is an option of timeout that the shell guard does not know`},
		{"ambiguous long option", "[env, --ignore, /opt/restart, " + s + "]", `command[1]: --ignore is an option of env that the shell guard does not know`},
		{"unknown long option with a templated value", "[timeout, '--frob={{ .Labels.service }}', 30s, /opt/restart]", `command[1]: --frob is an option of timeout that the shell guard does not know`},
		{"templated option letters", "[sudo, '-{{ .Labels.service }}', /opt/restart]", `command[1]: the letters of an option of sudo cannot be a template`},
		{"templated long option name", "[sudo, '--{{ .Labels.service }}', /opt/restart]", `command[1]: the name of an option of sudo cannot be a template`},
		{"systemd-run --shell", "[systemd-run, --shell, " + s + "]", `exec.command runs a shell (systemd-run)`},
		{"env program", "[env, FOO=1, " + s + "]", `command[2] is the program env runs`},
		{"env templated name", "[env, '{{ .Labels.service }}=1', /bin/true]", `command[1] is the program env runs`},
		{"timeout", "[timeout, 30s, " + s + "]", `command[2] is the program timeout runs`},
		{"timeout options", "[timeout, -s, KILL, -k, 5s, 30s, " + s + ", x]", `command[6] is the program timeout runs`},
		{"xargs", "[xargs, -n, '1', " + s + "]", `command[3] is the program xargs runs`},
		{"find -exec", "[find, /var/log, -name, '*.log', -exec, " + s + ", '{}', ';']", `command[5] is the program find -exec runs`},
		{"find -execdir", "[find, /tmp, -execdir, " + s + ", '{}', +]", `command[3] is the program find -execdir runs`},
		{"find -exec shell", "[find, /tmp, -exec, sh, -c, 'rm {{ .Labels.service }}', ';']", `find -exec: exec.command runs the shell sh`},
		{"nice", "[nice, -n, '10', " + s + "]", `command[3] is the program nice runs`},
		{"nohup", "[nohup, " + s + "]", `command[1] is the program nohup runs`},
		{"setsid", "[setsid, " + s + "]", `command[1] is the program setsid runs`},
		{"stdbuf", "[stdbuf, -oL, " + s + "]", `command[2] is the program stdbuf runs`},
		{"ionice", "[ionice, -c, '3', " + s + "]", `command[3] is the program ionice runs`},
		{"sudo", "[sudo, -u, root, " + s + "]", `command[3] is the program sudo runs`},
		{"sudo -s", "[sudo, -s, " + s + "]", `exec.command runs a shell (sudo): command[2] cannot be a template`},
		{"sudo -i", "[sudo, -i, /opt/x, " + s + "]", `exec.command runs a shell (sudo): command[3] cannot be a template`},
		{"doas -s", "[doas, -s, " + s + "]", `exec.command runs a shell (doas)`},
		{"ssh", "[ssh, -p, '22', ops@bastion, " + s + "]", `command[4] is the program ssh runs`},
		{"watch", "[watch, -n, '5', " + s + "]", `command[3] is the program watch runs`},
		{"python -c", "[python3, -c, 'import os', " + s + "]", `exec.command runs inline code (python3 -c)`},
		{"perl -e", "[perl, -e, 'system(@ARGV)', " + s + "]", `exec.command runs inline code (perl -e)`},
		{"ruby -e", "[nice, ruby, -e, 'x', " + s + "]", `exec.command runs inline code (ruby -e)`},
		{"awk program", "[awk, " + s + ", /var/log/x]", `command[1] is the program text of awk`},
		{"awk -f", "[gawk, -f, " + s + "]", `command[2] is the value of gawk -f`},
		{"sed -e", "[sed, -e, " + s + ", /tmp/f]", `command[2] is the value of sed -e`},
		{"sed script", "[sed, -n, " + s + ", /tmp/f]", `command[2] is the program text of sed`},
		{"kubectl exec", "[kubectl, exec, -n, prod, pod-0, --, " + s + "]", `command[6] is the program kubectl exec runs`},
		{"kubectl exec without --", "[kubectl, exec, pod-0, " + s + "]", `command[3]: kubectl exec runs the program after "--"; without a literal "--" its operands cannot be templates`},
		{"kubectl exec shell", "[kubectl, exec, pod-0, --, sh, -c, 'echo {{ .Labels.service }}']", `exec.command runs the shell sh: command[6] cannot be a template`},
		{"docker run", "[docker, run, --rm, -e, X=1, alpine, " + s + "]", `command[6] is the program docker run runs`},
		{"docker exec", "[docker, exec, -u, root, web, " + s + "]", `command[5] is the program docker exec runs`},
		{"podman container exec", "[podman, container, exec, web, " + s + "]", `command[4] is the program podman exec runs`},
		{"docker --entrypoint", "[docker, run, '--entrypoint={{ .Labels.service }}', alpine]", `command[2] is the value of docker run --entrypoint`},
		{"docker templated subcommand", "[docker, " + s + ", web]", `command[1] is the subcommand of docker`},
		{"systemd-run", "[systemd-run, --unit, fix, -p, 'MemoryMax=1G', " + s + "]", `command[5] is the program systemd-run runs`},
		{"nsenter", "[nsenter, -t, '1', -m, -n, " + s + "]", `command[5] is the program nsenter runs`},
		{"unshare", "[unshare, -m, " + s + "]", `command[2] is the program unshare runs`},
		{"chroot", "[chroot, /srv/root, " + s + "]", `command[2] is the program chroot runs`},
		{"flock -c", "[flock, /tmp/lock, -c, 'restart {{ .Labels.service }}']", `command[3] is the value of flock -c`},
		{"flock", "[flock, /tmp/lock, " + s + "]", `command[2] is the program flock runs`},
		{"busybox", "[busybox, " + s + "]", `command[1] is the program busybox runs`},
		{"parallel", "[parallel, echo, ':::', " + s + "]", `exec.command runs a shell (parallel): command[3] cannot be a template`},
		{"ip netns exec", "[ip, netns, exec, blue, " + s + "]", `command[4] is the program ip runs`},
		{"strace", "[strace, -f, -e, trace=all, " + s + "]", `command[4] is the program strace runs`},
		{"setpriv", "[setpriv, --reuid, '1000', " + s + "]", `command[3] is the program setpriv runs`},
		{"time", "[/usr/bin/time, -v, " + s + "]", `command[2] is the program time runs`},
		{"nested launchers", "[timeout, 30s, sudo, -u, root, nice, " + s + "]", `command[6] is the program nice runs`},
		{"option-like operand", "[docker, exec, '{{ .Labels.any }}', /opt/check]", `command[2]: label "any" is an operand of docker, which would read a value starting with "-" as an option`},
		{"option-like operand of kubectl exec", "[kubectl, exec, '{{ .Labels.any }}', --, /opt/check]", `command[2]: label "any" is an operand of kubectl`},

		// Programs that run their arguments through a shell or as code.
		{"su", "[su, ops, -c, /opt/restart, " + s + "]", `exec.command runs a shell (su): command[4] cannot be a template`},
		{"su user", "[su, " + s + ", -c, /opt/restart]", `exec.command runs a shell (su): command[1] cannot be a template`},
		{"runuser", "[runuser, -u, ops, --, /opt/restart, " + s + "]", `exec.command runs a shell (runuser)`},
		{"sg", "[sg, ops, " + s + "]", `exec.command runs a shell (sg)`},
		{"tmux", "[tmux, new-session, -d, " + s + "]", `exec.command runs a shell (tmux)`},
		{"capsh", "[capsh, --, -c, " + s + "]", `exec.command runs a shell (capsh)`},
		{"hyperfine", "[hyperfine, " + s + "]", `exec.command runs a shell (hyperfine)`},
		{"vi", "[vi, -c, " + s + ", /tmp/f]", `exec.command runs a shell (vi)`},
		{"vim", "[vim, '+{{ .Labels.service }}', /tmp/f]", `exec.command runs a shell (vim)`},
		{"nvim", "[nvim, --cmd, " + s + "]", `exec.command runs a shell (nvim)`},
		{"ex", "[ex, -c, " + s + "]", `exec.command runs a shell (ex)`},
		{"view", "[view, -c, " + s + "]", `exec.command runs a shell (view)`},
		{"emacs", "[emacs, --batch, --eval, " + s + "]", `exec.command runs a shell (emacs)`},
		{"gdb", "[gdb, -batch, -ex, " + s + "]", `exec.command runs a shell (gdb)`},
		{"dc", "[dc, -e, " + s + "]", `exec.command runs a shell (dc)`},
		{"oc rsh", "[oc, rsh, pod-0, " + s + "]", `exec.command runs a shell (oc)`},
		{"entr -s", "[entr, -s, " + s + "]", `exec.command runs a shell (entr)`},
		{"script -c", "[script, -q, -c, " + s + ", /dev/null]", `command[3] is the value of script -c, a command line or code`},
		{"screen -c", "[screen, -c, " + s + "]", `command[2] is the value of screen -c`},
		{"ssh -o", "[ssh, -o, 'ProxyCommand={{ .Labels.service }}', ops@bastion, /opt/x]", `command[2] is the value of ssh -o, a command line or code`},
		{"ssh -F", "[ssh, '-F{{ .Labels.service }}', ops@bastion, /opt/x]", `command[1] is the value of ssh -F`},
		{"git -c", "[git, -c, 'core.sshCommand={{ .Labels.service }}', fetch]", `command[2] is the value of git -c`},
		{"git subcommand", "[git, -C, /srv/repo, " + s + "]", `command[3] is the program git runs`},
		// Launchers: the program they run is literal.
		{"pkexec", "[pkexec, --user, root, " + s + "]", `command[3] is the program pkexec runs`},
		{"doas", "[doas, -u, root, " + s + "]", `command[3] is the program doas runs`},
		{"chrt", "[chrt, -f, '10', " + s + "]", `command[3] is the program chrt runs`},
		{"taskset", "[taskset, '0x3', " + s + "]", `command[2] is the program taskset runs`},
		{"screen", "[screen, -d, -m, -S, fix, " + s + "]", `command[5] is the program screen runs`},
		{"faketime", "[faketime, '2026-01-01 00:00:00', " + s + "]", `command[2] is the program faketime runs`},
		{"eatmydata", "[eatmydata, " + s + "]", `command[1] is the program eatmydata runs`},
		{"chronic", "[chronic, " + s + "]", `command[1] is the program chronic runs`},
		{"unbuffer", "[unbuffer, " + s + "]", `command[1] is the program unbuffer runs`},
		{"catchsegv", "[catchsegv, " + s + "]", `command[1] is the program catchsegv runs`},
		{"torsocks", "[torsocks, " + s + "]", `command[1] is the program torsocks runs`},
		{"proxychains4", "[proxychains4, -f, /etc/p.conf, " + s + "]", `command[3] is the program proxychains runs`},
		{"runcon", "[runcon, -t, unconfined_t, " + s + "]", `command[3] is the program runcon runs`},
		{"choom", "[choom, -n, '100', --, " + s + "]", `command[4] is the program choom runs`},
		{"cpulimit", "[cpulimit, -l, '50', --, " + s + "]", `command[4] is the program cpulimit runs`},
		{"valgrind", "[valgrind, --tool=memcheck, " + s + "]", `command[2] is the program valgrind runs`},
		{"entr", "[entr, -r, " + s + "]", `command[2] is the program entr runs`},
		{"systemd-nspawn", "[systemd-nspawn, -D, /srv/c, " + s + "]", `command[3] is the program systemd-nspawn runs`},
		{"lxc-attach", "[lxc-attach, -n, web, --, " + s + "]", `command[4] is the program lxc-attach runs`},
		{"crictl exec", "[crictl, exec, -i, abc123, " + s + "]", `command[4] is the program crictl exec runs`},
		{"oc exec", "[oc, exec, pod-0, --, " + s + "]", `command[4] is the program oc exec runs`},
		{"nerdctl run", "[nerdctl, run, alpine, " + s + "]", `command[3] is the program nerdctl run runs`},
		{"prlimit", "[prlimit, --nofile=1024, " + s + "]", `command[2] is the program prlimit runs`},
		{"setarch", "[setarch, x86_64, " + s + "]", `command[2] is the program setarch runs`},
		{"numactl", "[numactl, -N, '0', " + s + "]", `command[3] is the program numactl runs`},
		{"cgexec", "[cgexec, -g, 'cpu:low', " + s + "]", `command[3] is the program cgexec runs`},
		{"firejail", "[firejail, --quiet, " + s + "]", `command[2] is the program firejail runs`},
		{"fakeroot", "[fakeroot, " + s + "]", `command[1] is the program fakeroot runs`},
		{"ltrace", "[ltrace, -f, " + s + "]", `command[2] is the program ltrace runs`},
		{"command", "[command, -p, " + s + "]", `command[2] is the program command runs`},
		{"exec", "[exec, " + s + "]", `command[1] is the program exec runs`},
		{"ip vrf exec", "[ip, vrf, exec, blue, " + s + "]", `command[4] is the program ip runs`},
		{"find -ok", "[find, /tmp, -ok, " + s + ", ';']", `command[3] is the program find -ok runs`},
		{"find -okdir", "[find, /tmp, -okdir, " + s + ", ';']", `command[3] is the program find -okdir runs`},
		// Interpreters: inline code, or a template before the script.
		{"python path and version", "[/usr/bin/python3.11, -c, 'import sys', " + s + "]", `exec.command runs inline code (python3.11 -c)`},
		{"python script position", "[/usr/bin/python3.11, " + s + "]", `command[1] could be the script python3.11 runs`},
		{"python -m template", "[python3, -m, " + s + "]", `command[2] could be the script python3 runs`},
		{"perl versioned", "[perl5.36, -E, 'say 1', " + s + "]", `exec.command runs inline code (perl5.36 -E)`},
		{"perl -I then template", "[perl, -I, /opt/lib, " + s + "]", `command[3] could be the script perl runs`},
		{"ruby script position", "[ruby3.2, -W0, " + s + "]", `command[2] could be the script ruby3.2 runs`},
		{"node", "[node18, -p, '1', " + s + "]", `exec.command runs inline code (node18 -p)`},
		{"nodejs", "[nodejs, -e, '1', " + s + "]", `exec.command runs inline code (nodejs -e)`},
		{"php", "[php8.2, -r, 'echo 1;', " + s + "]", `exec.command runs inline code (php8.2 -r)`},
		{"lua", "[lua5.4, -e, 'print(1)', " + s + "]", `exec.command runs inline code (lua5.4 -e)`},
		{"luajit", "[luajit, -e, 'print(1)', " + s + "]", `exec.command runs inline code (luajit -e)`},
		{"rscript", "[Rscript, -e, '1', " + s + "]", `exec.command runs inline code (Rscript -e)`},
		{"expect", "[expect, -c, 'spawn x', " + s + "]", `exec.command runs inline code (expect -c)`},
		{"tclsh", "[tclsh8.6, " + s + "]", `command[1] could be the script tclsh8.6 runs`},
		{"wish", "[wish, " + s + "]", `command[1] could be the script wish runs`},
		{"osascript", "[osascript, -e, 'beep', " + s + "]", `exec.command runs inline code (osascript -e)`},
		{"jshell", "[jshell, " + s + "]", `command[1] could be the script jshell runs`},
		{"mawk", "[mawk, " + s + "]", `command[1] is the program text of mawk`},
		{"nawk", "[nawk, -f, " + s + "]", `command[2] is the value of nawk -f`},
		{"gsed", "[gsed, '--expression={{ .Labels.service }}', /tmp/f]", `command[1] is the value of gsed --expression`},
		{"sed e command", "[sed, -n, '{{ .Labels.service }}e', /tmp/f]", `command[2] is the program text of sed`},
		// Shells, path-qualified and versioned.
		{"bash path", "[/usr/local/bin/bash5, /opt/x.sh, " + s + "]", `exec.command runs the shell bash5: command[2] cannot be a template`},
		{"pwsh", "[pwsh, -File, /opt/x.ps1, " + s + "]", `exec.command runs the shell pwsh`},
		{"powershell.exe", "[powershell.exe, -Command, x, " + s + "]", `exec.command runs the shell powershell.exe`},
		{"zsh", "[zsh, /opt/x.sh, " + s + "]", `exec.command runs the shell zsh`},
		{"dash", "[dash, /opt/x.sh, " + s + "]", `exec.command runs the shell dash`},
		{"ksh", "[ksh93, /opt/x.sh, " + s + "]", `exec.command runs the shell ksh93`},
		{"mksh", "[mksh, /opt/x.sh, " + s + "]", `exec.command runs the shell mksh`},
		{"ash", "[ash, /opt/x.sh, " + s + "]", `exec.command runs the shell ash`},
		{"fish", "[fish, /opt/x.sh, " + s + "]", `exec.command runs the shell fish`},
		{"csh", "[csh, /opt/x.sh, " + s + "]", `exec.command runs the shell csh`},
		{"tcsh", "[tcsh, /opt/x.sh, " + s + "]", `exec.command runs the shell tcsh`},
		{"sh", "[/bin/sh, /opt/x.sh, " + s + "]", `exec.command runs the shell sh`},
		// Option injection, for any program: a templated argument that can
		// start with "-" and is not after the program's "--".
		{"option injection find", "[find, '{{ .Labels.any }}', -name, x]", `command[1]: label "any" is an argument of find, which would read a value starting with "-" as an option`},
		{"option injection unknown program", "[/opt/restart, '{{ .Labels.any }}']", `command[1]: label "any" is an argument of restart, which would read a value starting with "-" as an option, and its pattern "(?s).*" can start with "-"`},
		{"option injection behind a launcher", "[timeout, 30s, /opt/restart, '{{ .Labels.any }}']", `command[3]: label "any" is an argument of restart`},
		{"launcher's -- is not the program's", "[kubectl, exec, pod-0, --, /opt/check, '{{ .Labels.any }}']", `command[5]: label "any" is an argument of check`},

		{"option injection through a trim marker", "[/tmp/rec.sh, /tmp/out.log, ' {{- .Labels.any }}']", `command[2]: label "any" is an argument of rec.sh, which would read a value starting with "-" as an option`},
		{"option injection through trim markers and a newline", "[/opt/restart, \"\\n\\t {{- .Labels.any -}} \"]", `command[1]: label "any" is an argument of restart`},
		{"option injection through a conditional", "[/opt/restart, '{{ if .Labels.service }}{{ .Labels.any }}{{ end }}']", `command[1]: label "any" is an argument of restart`},
		// A value that can be empty reads through to the text after it.
		{"option injection through an empty value", "[/opt/restart, '{{ .Labels.opt }}-force']", `command[1]: the argument starts with "-force" when label "opt" is empty (its pattern "[a-z]*" matches the empty value); it is an argument of restart, which would read a value starting with "-" as an option`},
		{"option injection through two empty values", "[/opt/restart, '{{ .Labels.opt }}{{ .Labels.opt }}--force']", `command[1]: the argument starts with "--force" when label "opt" is empty`},
		{"option injection through an empty value behind a launcher", "[timeout, 30s, /opt/restart, '{{ .Labels.opt }}-f']", `command[3]: the argument starts with "-f" when label "opt" is empty`},
		{"option injection through an empty conditional", "[/opt/restart, '{{ if eq .Labels.service \"web\" }}x{{ end }}-rf']", `command[1]: the argument starts with "-rf" when {{if eq .Labels.service "web"}}x{{end}} renders nothing`},
		{"dash after an empty value, then a dashy label", "[/opt/restart, '{{ .Labels.opt }}{{ .Labels.any }}']", `command[1]: label "any" is an argument of restart`},
		{"empty value then other text", "[/opt/restart, '{{ .Labels.opt }}.log']", ""},
		{"non-empty value then a dash", "[/opt/restart, '{{ .Labels.service }}-force']", ""},
		{"empty value then a dash after the program's --", "[/opt/restart, --, '{{ .Labels.opt }}-force']", ""},
		{"run fields then a dash", "[/opt/restart, '{{ .Runbook }}-{{ .RunID }}', '{{ .IncidentID }}-x']", ""},
		{"option-like operand through a trim marker", "[docker, exec, ' {{- .Labels.any }}', /opt/check]", `command[2]: label "any" is an operand of docker`},
		{"option value of the program", "[/opt/restart, '--service={{ .Labels.any }}']", ""},
		{"sudo cluster of flags", "[sudo, -En, -u, " + s + ", /opt/restart, " + s + "]", ""},
		{"env --ignore-env abbreviated", "[env, --ignore-env, /opt/restart, " + s + "]", ""},
		{"unknown option without a template after it", "[sudo, -u, " + s + ", -Z, /opt/restart, --force]", ""},
		{"unknown long option with a literal value", "[timeout, --frob=1, 30s, /opt/restart, " + s + "]", ""},
		{"leading space kept", "[/opt/restart, ' {{ .Labels.any }}']", ""},
		{"after the program's --", "[/opt/restart, --, '{{ .Labels.any }}']", ""},
		{"python module", "[python3, -m, tool, " + s + "]", ""},
		{"script with extension after a flag", "[perl, -w, /opt/x.pl, " + s + "]", ""},
		{"script", "[script, -q, -c, /opt/check, /tmp/typescript]", ""},
		{"ssh -o literal", "[ssh, -o, BatchMode=yes, " + s + ", /opt/restart]", ""},
		{"git log", "[git, -C, /srv/repo, log, " + s + "]", ""},
		{"timeout kubectl", "[timeout, 30s, kubectl, -n, " + s + ", rollout, restart, 'deployment/{{ .Labels.service }}']", ""},
		{"sudo user", "[sudo, -u, " + s + ", /usr/local/bin/restart]", ""},
		{"kubectl exec args", "[kubectl, exec, -n, " + s + ", 'deploy/{{ .Labels.service }}', --, /opt/check, " + s + ", --, '{{ .Labels.any }}']", ""},
		{"docker restart", "[docker, restart, " + s + "]", ""},
		{"docker exec container", "[docker, exec, " + s + ", /opt/check, '--reason={{ .Labels.any }}']", ""},
		{"find name", "[find, /var/log, -name, '{{ .Labels.service }}.log', -delete]", ""},
		{"find -exec literal", "[find, /var/log, -name, '{{ .Labels.service }}.log', -exec, gzip, '{}', ';']", ""},
		{"env assignment", "[env, 'SERVICE={{ .Labels.any }}', /opt/restart]", ""},
		{"awk -v", "[awk, -v, 'svc={{ .Labels.any }}', '{print svc}', /var/log/x]", ""},
		{"ssh host", "[ssh, " + s + ", /opt/restart, " + s + "]", ""},
		{"xargs literal", "[xargs, -n, '1', /opt/restart, " + s + "]", ""},
		{"nice literal", "[nice, -n, '10', /opt/restart, " + s + ", --, '{{ .Labels.any }}']", ""},
	} {
		if tc.err != "" {
			var argv []string
			require.NoError(t, yaml.Unmarshal([]byte(tc.command), &argv), tc.name)
			for _, a := range argv {
				refused[programName(a)] = true
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head+tc.command+"\n"), "rb.yml")
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
	// Every program the guard knows has a refused case.
	var known []string
	known = append(known, shellNames...)
	known = append(known, handoffNames...)
	for name := range launcherSpecs {
		known = append(known, name)
	}
	for name := range inlineFlags {
		known = append(known, name)
	}
	for _, name := range known {
		require.True(t, refused[name], "no refused case for %s", name)
	}
}

// TestShellGuardCodeEnv: a label in an environment variable that chooses
// the code a program loads or runs (LD_PRELOAD, PATH, PYTHONPATH, ...),
// in the step's env or as a NAME=VALUE operand of env, is refused at load,
// whatever the program; a literal value, and a label in any other
// variable, are accepted.
func TestShellGuardCodeEnv(t *testing.T) {
	const head = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z][a-z0-9/._-]{0,40}'}\nsteps:\n  - name: a\n    exec:\n"
	for _, tc := range []struct {
		name, exec, err string
	}{
		{"LD_PRELOAD", "      command: [/opt/restart]\n      env: {LD_PRELOAD: '/tmp/{{ .Labels.service }}.so'}\n", `env.LD_PRELOAD: label "service" cannot be in LD_PRELOAD, which chooses code`},
		{"LD_LIBRARY_PATH", "      command: [/opt/restart]\n      env: {LD_LIBRARY_PATH: '{{ .Labels.service }}'}\n", `env.LD_LIBRARY_PATH: label "service"`},
		{"PATH", "      command: [/usr/bin/sudo, systemctl, restart]\n      env: {PATH: '/opt/{{ .Labels.service }}/bin'}\n", `env.PATH: label "service"`},
		{"PYTHONPATH of a script", "      command: [python3, /opt/fix.py]\n      env: {PYTHONPATH: '{{ .Labels.service }}'}\n", `env.PYTHONPATH: label "service"`},
		{"NODE_OPTIONS", "      command: [node, /opt/fix.js]\n      env: {NODE_OPTIONS: '--require={{ .Labels.service }}'}\n", `env.NODE_OPTIONS: label "service"`},
		{"BASH_ENV", "      command: [/opt/restart]\n      env: {BASH_ENV: '{{ .Labels.service }}'}\n", `env.BASH_ENV: label "service"`},
		{"GIT_SSH_COMMAND", "      command: [git, fetch]\n      env: {GIT_SSH_COMMAND: '{{ .Labels.service }}'}\n", `env.GIT_SSH_COMMAND: label "service"`},
		{"env operand LD_PRELOAD", "      command: [env, 'LD_PRELOAD=/tmp/{{ .Labels.service }}.so', /opt/restart]\n", `command[1] sets LD_PRELOAD for the program env runs, which chooses code it loads or runs`},
		{"env operand PATH behind a launcher", "      command: [timeout, 30s, env, 'PATH={{ .Labels.service }}', restart]\n", `command[3] sets PATH for the program env runs`},
		{"literal LD_PRELOAD", "      command: [/opt/restart, '--service={{ .Labels.service }}']\n      env: {LD_PRELOAD: /opt/lib/hook.so, PATH: /usr/sbin:/usr/bin}\n", ""},
		{"other variable", "      command: [/opt/restart]\n      env: {SERVICE: '{{ .Labels.service }}', RUN: '{{ .RunID }}'}\n", ""},
		{"non-label template in PATH", "      command: [/opt/restart]\n      env: {PATH: '/opt/{{ .Runbook }}/bin'}\n", ""},
		{"env operand other variable", "      command: [env, 'SERVICE={{ .Labels.service }}', /opt/restart]\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head+tc.exec), "rb.yml")
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestProgramName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/python3.11": "python", "python3": "python", "lua5.4": "lua", "perl5.36.0": "perl",
		"PowerShell.exe": "powershell", "node18": "node", "/bin/sh": "sh", "proxychains4": "proxychains",
		"systemd-run": "systemd-run", "ip": "ip", "k3s": "k3s", "7z": "7z", "tclsh8.6": "tclsh",
	} {
		require.Equal(t, want, programName(in), in)
	}
}
