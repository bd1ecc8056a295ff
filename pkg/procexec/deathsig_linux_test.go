package procexec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play sred: with PROCEXEC_TEST_PARENT set it
// runs that command through Run (as a runbook step) and exits when it ends.
func TestMain(m *testing.M) {
	if argv := os.Getenv("PROCEXEC_TEST_PARENT"); argv != "" {
		Run(context.Background(), strings.Split(argv, "\x1f"), nil, "", 100)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCommandDiesWithSred: a command Run started is killed by the kernel
// when the process that started it dies with SIGKILL, so that a step of a
// killed replica does not run on beside the step another replica resumes.
func TestCommandDiesWithSred(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	// The step writes its PID through a temporary file renamed into place,
	// so the file is whole once it exists, then sleeps.
	step := []string{"/bin/sh", "-c", `echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec /bin/sleep 1111`, pidfile}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "PROCEXEC_TEST_PARENT="+strings.Join(step, "\x1f"))
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitUntil(t, "the step wrote its PID", func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	if !alive(pid) {
		t.Fatalf("step %d is not running before its parent is killed", pid)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	waitUntil(t, "the step died with its parent", func() bool { return !alive(pid) })
}

// alive reports whether pid is a process that is not a zombie (an orphan's
// zombie waits for the container's init to reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// waitUntil polls cond until it holds; the bound is only against a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}
