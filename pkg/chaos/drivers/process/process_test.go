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
	st, err := readProcState(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readProcState(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0], nil
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

// selfThreadEnv makes the test binary, run by TestRefusesSredsOwnThreads,
// point a pid file at one of its own threads and inject.
const selfThreadEnv = "SRE_TEST_PROCESS_SELF_THREAD"

// TestRefusesSredsOwnThreads: kill(2) given the ID of any thread of a
// process signals the whole process, so a pid file holding a thread ID of
// sred (sred's pid plus a few) would stop sred, which would then never
// resume anything. The driver runs in a child process (the test binary)
// that points the pid file at its own pid and at each of its other threads;
// the child must not stop and must report every refusal.
func TestRefusesSredsOwnThreads(t *testing.T) {
	if os.Getenv(selfThreadEnv) != "" {
		injectIntoOwnThreads()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRefusesSredsOwnThreads$")
	cmd.Env = append(os.Environ(), selfThreadEnv+"=1", "GOMAXPROCS=4")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until the child either exits or stops itself.
	deadline := time.Now().Add(60 * time.Second) // a safety net, not a timing
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out.String())
			}
			got := out.String()
			if !strings.Contains(got, "refused own pid: ") || !strings.Contains(got, "refused thread ") ||
				!strings.Contains(got, "refusing to stop sred itself") {
				t.Fatalf("child output:\n%s", got)
			}
			if strings.Contains(got, "INJECTED") {
				t.Fatalf("a pid file holding a thread of sred was injected:\n%s", got)
			}
			return
		default:
		}
		// An error: the child exited and Wait reaped it between the
		// select and the read; its result is on exited.
		if st, err := readProcState(cmd.Process.Pid); err == nil && st == "T" {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("a pid file holding a thread ID of sred stopped sred itself:\n%s", out.String())
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child neither exited nor stopped:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// injectIntoOwnThreads runs in the child of TestRefusesSredsOwnThreads.
func injectIntoOwnThreads() {
	dir, err := os.MkdirTemp("", "sre-process-test")
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	inject := func(pid int) error {
		p := filepath.Join(dir, "sred.pid")
		os.WriteFile(p, []byte(fmt.Sprintf("%d\n", pid)), 0o600)
		st, err := Driver{}.Inject(context.Background(), "f", chaos.Fault{Type: chaos.FaultProcessStop, PIDFile: p})
		if err == nil {
			fmt.Printf("INJECTED %d: %s\n", pid, st)
		}
		return err
	}
	if err := inject(os.Getpid()); err != nil {
		fmt.Println("refused own pid:", err)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	threads := 0
	for _, e := range tasks {
		var tid int
		fmt.Sscan(e.Name(), &tid)
		if tid == os.Getpid() {
			continue
		}
		threads++
		if err := inject(tid); err != nil {
			fmt.Printf("refused thread %d: %v\n", tid, err)
		}
	}
	if threads == 0 {
		fmt.Println("FAIL: no thread besides the main one")
		os.Exit(1)
	}
	os.Exit(0)
}
