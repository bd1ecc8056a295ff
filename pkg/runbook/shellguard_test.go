package runbook

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestShellGuardWrappers: a label templated into the position of the
// program that a launcher runs, into a launcher option whose value is a
// command line or code, or into the program text of awk and sed, is
// refused at load, for each launcher the guard knows; templated values in
// the launchers' ordinary options and in the arguments of the program they
// run are accepted.
func TestShellGuardWrappers(t *testing.T) {
	const head = "name: rb\nmatchers: ['alertname=\"X\"']\nlabels: {service: '[a-z][a-z0-9-]{0,40}', any: '(?s).*'}\nsteps:\n  - name: a\n    exec:\n      command: "
	const s = "'{{ .Labels.service }}'"
	for _, tc := range []struct {
		name, command, err string
	}{
		{"env -S", "[env, -S, " + s + "]", `command[2] is the value of env -S, a command line or code: it cannot be a template`},
		{"env --split-string=", "[env, '--split-string={{ .Labels.service }} x']", `command[1] is the value of env --split-string, a command line or code`},
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

		{"timeout kubectl", "[timeout, 30s, kubectl, -n, " + s + ", rollout, restart, 'deployment/{{ .Labels.service }}']", ""},
		{"sudo user", "[sudo, -u, " + s + ", /usr/local/bin/restart]", ""},
		{"kubectl exec args", "[kubectl, exec, -n, " + s + ", 'deploy/{{ .Labels.service }}', --, /opt/check, '{{ .Labels.any }}']", ""},
		{"docker restart", "[docker, restart, " + s + "]", ""},
		{"docker exec container", "[docker, exec, " + s + ", /opt/check, '{{ .Labels.any }}']", ""},
		{"find name", "[find, /var/log, -name, '{{ .Labels.service }}.log', -delete]", ""},
		{"find -exec literal", "[find, /var/log, -name, '{{ .Labels.service }}.log', -exec, gzip, '{}', ';']", ""},
		{"env assignment", "[env, 'SERVICE={{ .Labels.any }}', /opt/restart]", ""},
		{"awk -v", "[awk, -v, 'svc={{ .Labels.any }}', '{print svc}', /var/log/x]", ""},
		{"ssh host", "[ssh, " + s + ", /opt/restart, " + s + "]", ""},
		{"xargs literal", "[xargs, -n, '1', /opt/restart, " + s + "]", ""},
		{"nice literal", "[nice, -n, '10', /opt/restart, '{{ .Labels.any }}']", ""},
	} {
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
}
