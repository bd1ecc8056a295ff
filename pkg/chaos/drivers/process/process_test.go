package process

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/chaos"
)

// procState reads the state letter of pid from /proc (R, S, T, ...).
func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func waitState(t *testing.T, pid int, stopped bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a safety net, not a timing
	for (procState(t, pid) == "T") != stopped {
		if time.Now().After(deadline) {
			t.Fatalf("process %d state %s, want stopped=%v", pid, procState(t, pid), stopped)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopAndResume(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pidFile := filepath.Join(t.TempDir(), "svc.pid")
	os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o600)
	f := chaos.Fault{Type: chaos.FaultProcessStop, PIDFile: pidFile}
	ctx := context.Background()
	st, err := Driver{}.Inject(ctx, "f", f)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, cmd.Process.Pid, true)
	if err := (Driver{}).Revert(ctx, "f", f, st); err != nil {
		t.Fatal(err)
	}
	waitState(t, cmd.Process.Pid, false)
}

func TestBadPIDFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.pid")
	os.WriteFile(p, []byte("not-a-pid"), 0o600)
	_, err := Driver{}.Inject(context.Background(), "f", chaos.Fault{Type: chaos.FaultProcessStop, PIDFile: p})
	if err == nil || !strings.Contains(err.Error(), `does not hold a process id: "not-a-pid"`) {
		t.Fatalf("got %v", err)
	}
}
