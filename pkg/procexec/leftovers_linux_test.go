package procexec

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLeftoversKilledBeforeReap: a child the command left in its process
// group is killed once the command ends, on its own or cancelled, and the
// group is signalled while the ended command is still a zombie (its PID,
// the group's ID, cannot have been reused by another process group yet).
func TestLeftoversKilledBeforeReap(t *testing.T) {
	// The command starts a child that does not hold the output pipes and
	// writes the child's PID through a temporary file renamed into place.
	const start = `/bin/sleep 1111 >/dev/null 2>&1 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"`
	for _, tc := range []struct {
		name   string
		script string
		cancel bool
		err    string
	}{
		{name: "command ends", script: start},
		{name: "command cancelled", script: start + `; exec /bin/sleep 2222`, cancel: true,
			err: "/bin/sh killed: context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var leaderStates []byte
			hook := beforeGroupKill
			beforeGroupKill = func(pid int) { leaderStates = append(leaderStates, procState(pid)) }
			t.Cleanup(func() { beforeGroupKill = hook })
			pidfile := filepath.Join(t.TempDir(), "child")
			// The bound is only against a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if tc.cancel {
				go cancelOnceWritten(ctx, pidfile, cancel)
			}
			r := Run(ctx, []string{"/bin/sh", "-c", tc.script, pidfile}, nil, "", 100)
			switch {
			case tc.err == "" && r.Err != nil:
				t.Errorf("error %v", r.Err)
			case tc.err != "" && (r.Err == nil || r.Err.Error() != tc.err):
				t.Errorf("error %v, want %s", r.Err, tc.err)
			}
			if string(leaderStates) != "Z" {
				t.Errorf("command states when its group was killed: %q, want one zombie (Z)", leaderStates)
			}
			child := readPID(t, pidfile)
			t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
			waitUntil(t, "the child left behind was killed", func() bool { return !alive(child) })
		})
	}
}

// cancelOnceWritten calls cancel once path exists (or ctx ends).
func cancelOnceWritten(ctx context.Context, path string, cancel context.CancelFunc) {
	defer cancel()
	for ctx.Err() == nil {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procState returns the state letter of /proc/<pid>/stat, '-' when the
// process is gone (reaped).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return '-'
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return '?'
	}
	return s[i+2]
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("child PID %q: %v", b, err)
	}
	return pid
}

// TestOutputHeldOutsideTheGroup: a child that left the command's process
// group (setsid) and holds its output is not killed with the group; Run
// stops reading the output WaitDelay after the command's exit and says so.
func TestOutputHeldOutsideTheGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child")
	script := `echo start; /usr/bin/setsid /bin/sleep 1111 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"`
	r := Run(context.Background(), []string{"/bin/sh", "-c", script, pidfile}, nil, "", 100)
	child := readPID(t, pidfile)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if got := r.OutputString(); got != "start\n" {
		t.Errorf("output %q, want %q", got, "start\n")
	}
	if !errors.Is(r.Err, exec.ErrWaitDelay) || r.Err.Error() != "/bin/sh: exec: WaitDelay expired before I/O complete" {
		t.Errorf("error %v, want exec.ErrWaitDelay", r.Err)
	}
	if r.ExitCode != 0 {
		t.Errorf("exit code %d, want 0", r.ExitCode)
	}
}
