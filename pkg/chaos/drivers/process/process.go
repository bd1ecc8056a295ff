// Package process injects service failure on a host: it stops the process
// whose pid is in a pid file with SIGSTOP (the process is frozen: it accepts
// no work and answers no health check) and resumes it with SIGCONT at
// rollback. Nothing is lost, so the fault is fully reversible, and a revert
// from another sred process (after a crash) works from the pid alone.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rootuip/sre/pkg/chaos"
)

// Driver stops and resumes local processes.
type Driver struct{}

type state struct {
	PID int `json:"pid"`
}

// Inject implements chaos.Driver.
func (Driver) Inject(_ context.Context, _ string, f chaos.Fault) (json.RawMessage, error) {
	if f.Type != chaos.FaultProcessStop {
		return nil, fmt.Errorf("the process driver cannot inject %s faults", f.Type)
	}
	b, err := os.ReadFile(f.PIDFile)
	if err != nil {
		return nil, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return nil, fmt.Errorf("pid file %s does not hold a process id: %q", f.PIDFile, strings.TrimSpace(string(b)))
	}
	// A thread ID names its process to kill(2) too: SIGSTOP to any thread
	// of sred stops all of sred, which then never sends the SIGCONT. The
	// process the pid belongs to is what is stopped, recorded and compared.
	tgid, err := threadGroup(pid)
	if err != nil {
		return nil, fmt.Errorf("pid file %s: process %d: %w", f.PIDFile, pid, err)
	}
	if tgid <= 1 {
		return nil, fmt.Errorf("pid file %s: refusing to stop process %d (pid %d is one of its threads)", f.PIDFile, tgid, pid)
	}
	if tgid == os.Getpid() {
		return nil, fmt.Errorf("pid file %s: refusing to stop sred itself (pid %d is sred's process %d or one of its threads)", f.PIDFile, pid, tgid)
	}
	pid = tgid
	st, _ := json.Marshal(state{PID: pid})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return st, fmt.Errorf("stop process %d: %w", pid, err)
	}
	return st, nil
}

// threadGroup returns the process (thread group) that thread or process id
// pid belongs to, from /proc/<pid>/status.
func threadGroup(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if errors.Is(err, os.ErrNotExist) {
		return 0, errors.New("no such process")
	}
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if tgid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && tgid > 0 {
				return tgid, nil
			}
		}
	}
	return 0, errors.New("no Tgid in its /proc status")
}

// Revert implements chaos.Driver.
func (Driver) Revert(_ context.Context, _ string, _ chaos.Fault, raw json.RawMessage) error {
	var st state
	if len(raw) == 0 {
		return nil // never injected
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("fault state: %w", err)
	}
	if st.PID <= 1 {
		return nil
	}
	if err := syscall.Kill(st.PID, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("resume process %d: %w", st.PID, err)
	}
	return nil
}
