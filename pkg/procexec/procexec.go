// Package procexec runs a command the way sred runs commands from its
// configuration (runbook exec steps, chaos rollback actions): directly (no
// shell), in its own process group, killed on timeout or cancellation,
// killed by the kernel if sred dies (Linux), with a bound on how long Wait
// waits for its output pipes after that, and with only the first bytes of
// its output kept. Once the command has ended, its group is killed as a
// whole (so that children it left behind die with it) while the ended
// command is still unreaped (Linux): its PID, which is the group's ID,
// cannot have been reused by then, so no other group can be signalled.
package procexec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
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
// most maxOutput bytes of output. When ctx ends, the command gets SIGKILL,
// and the rest of its process group once it has exited (Linux); the error
// then says so, with the context's cause.
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
	cmd.WaitDelay = WaitDelay
	// The output pipe is read here rather than by exec, so that Run can
	// wait for it while the ended command is still unreaped.
	pr, pw, err := os.Pipe()
	if err != nil {
		return Result{ExitCode: -1, Err: fmt.Errorf("start %s: output pipe: %w", argv[0], err)}
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	// The parent-death signal (Linux) follows the thread that forks: keep
	// this goroutine on it until the command has ended, so that the
	// runtime cannot end that thread, and the command with it, meanwhile.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Start()
	_ = pw.Close()
	if err != nil {
		return Result{ExitCode: -1, Err: fmt.Errorf("start %s: %w", argv[0], err)}
	}
	out := &CapWriter{Max: maxOutput}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, pr)
	}()
	err = await(ctx, cmd, pr, copied)
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

// beforeGroupKill is called with the command's PID just before its process
// group is killed once it has exited (tests check that it is unreaped then).
var beforeGroupKill = func(pid int) {}

// await waits for the started command to exit and for its output pipe to
// close (at most WaitDelay after the exit; at once when ctx ends), kills
// what is left of its process group, and reaps the command. The group is
// killed while the ended command is a zombie, so that its PID, the group's
// ID, cannot have been reused by another process group. Where the command
// cannot be waited for without reaping it (outside Linux), it is reaped
// first and its group is left alone rather than signalled afterwards.
func await(ctx context.Context, cmd *exec.Cmd, pr *os.File, copied <-chan struct{}) error {
	pid := cmd.Process.Pid
	unreaped := waitExitedUnreaped(pid) == nil
	var err error
	if !unreaped {
		err = cmd.Wait()
	}
	held := !awaitOutput(ctx, copied)
	if unreaped {
		beforeGroupKill(pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	if held {
		_ = pr.Close() // a process outside the group still holds the output
	}
	<-copied
	if unreaped {
		err = cmd.Wait()
	}
	if err == nil && held {
		err = exec.ErrWaitDelay
	}
	return err
}

// awaitOutput reports whether copied closed within WaitDelay, before ctx
// ended.
func awaitOutput(ctx context.Context, copied <-chan struct{}) bool {
	timer := time.NewTimer(WaitDelay)
	defer timer.Stop()
	select {
	case <-copied:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	select {
	case <-copied:
		return true
	default:
		return false
	}
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
