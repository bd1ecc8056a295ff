// Package procexec runs a command the way sred runs commands from its
// configuration (runbook exec steps, chaos rollback actions): directly (no
// shell), in its own process group that is killed as a whole on timeout or
// cancellation and once the command ends (so that children it left behind
// die with it), killed by the kernel if sred dies (Linux), with a bound on how long Wait waits for its output pipes
// after that, and with only the first bytes of its output kept.
package procexec

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// WaitDelay is how long Run waits for the output pipes to close once the
// command has exited or its context ended (a child still holding them is
// killed with the group then).
const WaitDelay = 2 * time.Second

// Result is what Run reports.
type Result struct {
	// Output is the first bytes of stdout and stderr, interleaved;
	// Dropped counts the bytes that were read and not kept.
	Output  []byte
	Dropped int64
	// ExitCode is -1 when the command was killed by a signal or never ran.
	ExitCode int
	// Started says that the program was started at all.
	Started bool
	// Err is nil on exit status 0: a start error, the exit status, the
	// pipes left open (exec.ErrWaitDelay) or the kill.
	Err error
}

// OutputString returns the kept output followed, when some was dropped, by
// a note on how many bytes were cut ("[... N bytes truncated]").
func (r Result) OutputString() string {
	if r.Dropped > 0 {
		return string(r.Output) + fmt.Sprintf("\n[... %d bytes truncated]", r.Dropped)
	}
	return string(r.Output)
}

// Run runs argv with env (nil: an empty environment) in dir, keeping at
// most maxOutput bytes of output. When ctx ends, the process group gets
// SIGKILL; the error then says so, with the context's cause.
func Run(ctx context.Context, argv, env []string, dir string, maxOutput int) Result {
	if len(argv) == 0 || argv[0] == "" {
		return Result{ExitCode: -1, Err: fmt.Errorf("no program to run")}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = WaitDelay
	out := &CapWriter{Max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// The parent-death signal (Linux) follows the thread that forks: keep
	// this goroutine on it until the command has ended, so that the
	// runtime cannot end that thread, and the command with it, meanwhile.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return Result{ExitCode: -1, Err: fmt.Errorf("start %s: %w", argv[0], err)}
	}
	pid := cmd.Process.Pid
	err := cmd.Wait()
	_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of the group
	res := Result{Output: out.Buf.Bytes(), Dropped: out.Dropped, ExitCode: cmd.ProcessState.ExitCode(), Started: true}
	if err != nil {
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("%s killed: %w", argv[0], context.Cause(ctx))
		} else {
			res.Err = fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	return res
}

// CapWriter keeps the first Max bytes written and counts the rest.
type CapWriter struct {
	Buf     bytes.Buffer
	Max     int
	Dropped int64
}

func (w *CapWriter) Write(p []byte) (int, error) {
	room := w.Max - w.Buf.Len()
	if room > 0 {
		if len(p) <= room {
			w.Buf.Write(p)
		} else {
			w.Buf.Write(p[:room])
			w.Dropped += int64(len(p) - room)
		}
	} else {
		w.Dropped += int64(len(p))
	}
	return len(p), nil
}
