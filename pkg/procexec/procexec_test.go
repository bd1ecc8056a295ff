package procexec

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		argv, env []string
		max       int
		out       string
		dropped   int64
		code      int
		started   bool
		err       string
		waitDelay bool
	}{
		{name: "ok", argv: []string{"/bin/echo", "-n", "hello"}, max: 100, out: "hello", started: true},
		{name: "capped", argv: []string{"/bin/echo", "-n", strings.Repeat("x", 100)}, max: 10, out: "xxxxxxxxxx\n[... 90 bytes truncated]", dropped: 90, started: true},
		{name: "exit status", argv: []string{"/bin/sh", "-c", "echo oops; exit 3"}, max: 100, out: "oops\n", code: 3, started: true, err: "/bin/sh: exit status 3"},
		{name: "no such program", argv: []string{"/nonexistent/prog"}, max: 100, code: -1, err: "start /nonexistent/prog: fork/exec /nonexistent/prog: no such file or directory"},
		{name: "only the given environment", argv: []string{"/usr/bin/env"}, env: []string{"A=1"}, max: 100, out: "A=1\n", started: true},
		{name: "empty environment", argv: []string{"/usr/bin/env"}, max: 100, out: "", started: true},
		{name: "child left holding the output", argv: []string{"/bin/sh", "-c", "echo start; /bin/sleep 1111 &"}, max: 100, out: "start\n", started: true,
			err: "/bin/sh: exec: WaitDelay expired before I/O complete", waitDelay: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), tc.argv, tc.env, "", tc.max)
			if got := r.OutputString(); got != tc.out {
				t.Errorf("output %q, want %q", got, tc.out)
			}
			if r.Dropped != tc.dropped || r.ExitCode != tc.code || r.Started != tc.started {
				t.Errorf("dropped %d exit %d started %v, want %d %d %v", r.Dropped, r.ExitCode, r.Started, tc.dropped, tc.code, tc.started)
			}
			switch {
			case tc.err == "" && r.Err != nil:
				t.Errorf("error %v", r.Err)
			case tc.err != "" && (r.Err == nil || r.Err.Error() != tc.err):
				t.Errorf("error %v, want %s", r.Err, tc.err)
			}
			if tc.waitDelay && !errors.Is(r.Err, exec.ErrWaitDelay) {
				t.Errorf("error %v is not exec.ErrWaitDelay", r.Err)
			}
		})
	}
}
