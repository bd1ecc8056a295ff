package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
	tu "github.com/rootuip/sre/pkg/testutil"
)

// withRollback is testExp with a 5s duration and the given rollback actions.
func withRollback(actions string) string {
	return strings.Replace(testExp, "duration: 1m\n", "duration: 5s\nrollback:\n"+actions, 1)
}

// gone says whether pid has exited (no process, or a zombie nobody reaped).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// TestRollbackActionsAreBounded: a rollback action is killed with its whole
// process group at its timeout, a child it leaves holding its output ends
// the action (and dies) instead of holding the rollback until it exits, and
// its output is capped with a note of what was cut.
func TestRollbackActionsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command string // %s is a file the action writes a child's PID to
		timeout string
		want    []string
		maxLen  int
	}{
		{
			name:    "background child holds the output",
			command: `[/bin/sh, -c, 'echo start; /bin/sleep 1111 & echo $! > %s']`,
			timeout: "1h",
			want:    []string{"rollback action bg: /bin/sh: exec: WaitDelay expired before I/O complete: start"},
		},
		{
			name:    "timeout kills the group",
			command: `[/bin/sh, -c, '/bin/sleep 1111 & echo $! > %s; wait']`,
			timeout: "1s",
			want:    []string{"rollback action bg: /bin/sh killed: rollback action bg timed out after 1s"},
		},
		{
			name:    "output is capped",
			command: `[/bin/sh, -c, 'echo $$ > %s; head -c 100000 /dev/zero | tr "\0" a; exit 3']`,
			timeout: "1h",
			want:    []string{"rollback action bg: /bin/sh: exit status 3: aaaa", fmt.Sprintf("\n[... %d bytes truncated]", 100000-maxRollbackOutput)},
			maxLen:  maxRollbackOutput + 1000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, "r1")
				ctx := context.Background()
				pidFile := filepath.Join(t.TempDir(), "pid")
				exp := withRollback(fmt.Sprintf("  - {name: bg, timeout: %s, command: %s}\n", tc.timeout, fmt.Sprintf(tc.command, pidFile)))
				info, err := h.s.Start(ctx, load(t, exp), "alice")
				if err != nil {
					t.Fatal(err)
				}
				h.drain(t, 5*time.Second)
				r, err := h.s.Get(ctx, info.ID)
				if err != nil {
					t.Fatal(err)
				}
				var detail string
				for _, s := range r.Steps {
					if s.Name == "rollback" {
						detail = s.Detail
						if s.Status != "failed" {
							t.Errorf("rollback step %s, want failed", s.Status)
						}
					}
				}
				for _, w := range tc.want {
					if !strings.Contains(detail, w) {
						t.Errorf("rollback step detail lacks %q:\n%.2000s", w, detail)
					}
				}
				if tc.maxLen > 0 && len(detail) > tc.maxLen {
					t.Errorf("rollback step detail of %d bytes, want at most %d", len(detail), tc.maxLen)
				}
				if r.Status != StatusFailed {
					t.Errorf("status %s, want failed", r.Status)
				}
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatal(err)
				}
				var pid int
				if _, err := fmt.Sscan(string(b), &pid); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(5 * time.Minute) // a safety net on a busy machine, not a timing
				for !gone(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("child %d of the rollback action still alive", pid)
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		})
	}
}

// TestRollbackKeepsTheTargetLocked: while a rollback action runs for longer
// than the lease, the runner keeps renewing its run's lease and the target
// lock, so another experiment on the target is refused until the rollback
// ended; then the lock is released.
func TestRollbackKeepsTheTargetLocked(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, "r1")
		cfg := testConfig()
		cfg.Lease = model.Duration(10 * time.Second)
		if err := h.s.ApplyConfig(cfg, nil); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		// try writes to the FIFO if its reader (the rollback command) has
		// opened it; release waits for that reader (a non-blocking open
		// fails with ENXIO until it has, which on a loaded machine can be
		// after its step was recorded).
		try := func() bool {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return false
			}
			_, _ = f.WriteString("go\n")
			f.Close()
			return true
		}
		release := func() {
			t.Helper()
			deadline := time.Now().Add(5 * time.Minute) // a safety net, not a timing
			for !try() {
				if time.Now().After(deadline) {
					t.Fatal("the rollback command never opened its FIFO")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		t.Cleanup(func() { try() })
		exp := withRollback(fmt.Sprintf("  - {name: slow, timeout: 1h, command: [/bin/sh, -c, 'read x < %s']}\n", fifo))
		first, err := h.s.Start(ctx, load(t, exp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.tick(t, 5*time.Second) // the end of the 5s duration
		deadline := time.Now().Add(20 * time.Second)
		for {
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM chaos_steps WHERE run_id = $1 AND step = 'rollback'`, first.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the run never reached its rollback")
			}
			time.Sleep(5 * time.Millisecond)
		}
		for range 4 { // 20s, twice the lease
			h.tick(t, 5*time.Second)
		}
		h.blocked(t) // the renewal after the last tick is done
		second, err := h.s.Start(ctx, load(t, exp), "bob")
		var ref *Refusal
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "target staging/api is locked by chaos "+first.ID) {
			t.Fatalf("second run during the rollback: %v (%+v), want refused as locked by %s", err, second, first.ID)
		}
		var lease int64
		if err := db.QueryRowContext(ctx, `SELECT lease_ms FROM chaos_runs WHERE id = $1`, first.ID).Scan(&lease); err != nil {
			t.Fatal(err)
		}
		if now := h.clock.Now(); !time.UnixMilli(lease).After(now) {
			t.Errorf("run lease until %v, not after now %v", time.UnixMilli(lease).UTC(), now)
		}
		if err := h.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := h.s.Get(ctx, first.ID); r.Status != StatusRunning {
			t.Fatalf("first run %s while rolling back, want running", r.Status)
		}
		release()
		h.drain(t, 5*time.Second)
		if r, _ := h.s.Get(ctx, first.ID); r.Status != StatusSucceeded {
			t.Fatalf("first run %s (%s)", r.Status, r.Reason)
		}
		if k, _ := targetlock.New(db).Get(ctx, "staging/api"); k != nil {
			t.Errorf("target lock not released: %+v", k)
		}
	})
}

// TestFaultResourceLocks: two experiments on different targets whose faults
// act on the same real resource (a proxy, a process's PID file, Chaos Mesh
// pods) do not run at once: the second is refused naming the resource and
// the run holding it. Different resources run side by side; the locks are
// released with the run.
func TestFaultResourceLocks(t *testing.T) {
	dir := t.TempDir()
	// svc.pid names this process, alias.pid too, thread.pid one of its
	// threads (the recording driver stops nothing).
	pid := os.Getpid()
	tid := 0
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range tasks {
		if n, _ := strconv.Atoi(d.Name()); n != pid && n > 0 {
			tid = n
			break
		}
	}
	if tid == 0 {
		t.Fatal("this process has no thread but its main one")
	}
	for name, p := range map[string]int{"svc.pid": pid, "alias.pid": pid, "thread.pid": tid} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(p)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proc := "fault resource target process:" + strconv.Itoa(pid) + "@"
	const first = `{name: a, type: latency, proxy: p, latency: 300ms}
  - {name: s, type: process-stop, pidFile: %[1]s/svc.pid}
  - {name: m, type: process-stop, driver: chaosmesh, kubernetes: {namespace: shop, labels: {app: web, tier: front}}}`
	for _, tc := range []struct {
		name, fault, want string
	}{
		{"same proxy", `{name: x, type: timeout, proxy: p, timeout: 1s}`, "fault resource target proxy:p is locked by chaos "},
		{"same pid file", `{name: x, type: process-stop, pidFile: %[1]s/./svc.pid}`, "fault resource target pidfile:%[1]s/svc.pid is locked by chaos "},
		{"same pods", `{name: x, type: process-stop, driver: chaosmesh, kubernetes: {namespace: shop, labels: {tier: front, app: web}}}`,
			"fault resource target chaosmesh:shop/app=web,tier=front is locked by chaos "},
		{"other proxy", `{name: x, type: latency, proxy: q, latency: 300ms}`, ""},
		{"same process, other pid file", `{name: x, type: process-stop, pidFile: %[1]s/alias.pid}`, proc},
		{"same process through a thread", `{name: x, type: process-stop, pidFile: %[1]s/thread.pid}`, proc},
		{"other pid file", `{name: x, type: process-stop, pidFile: %[1]s/other.pid}`, ""},
		{"other pods", `{name: x, type: process-stop, driver: chaosmesh, kubernetes: {namespace: shop, labels: {app: db}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
				h := newHarness(t, db, "r1")
				cfg := testConfig()
				cfg.Proxies = append(cfg.Proxies, ProxyConfig{Name: "q", Kind: "tcp", Listen: "127.0.0.1:0", Upstream: "127.0.0.1:1"})
				if err := h.s.ApplyConfig(cfg, nil); err != nil {
					t.Fatal(err)
				}
				h.s.o.Drivers[DriverProcess] = h.d
				h.s.o.Drivers[DriverChaosMesh] = h.d
				ctx := context.Background()
				faults := func(text, f string) string {
					i := strings.Index(text, "faults:\n")
					j := strings.Index(text, "duration:")
					return text[:i] + "faults:\n  - " + strings.ReplaceAll(f, "%[1]s", dir) + "\n" + text[j:]
				}
				one, err := h.s.Start(ctx, load(t, faults(testExp, first)), "alice")
				if err != nil {
					t.Fatal(err)
				}
				other := strings.Replace(faults(testExp, tc.fault), "service: api", "service: web", 1)
				two, err := h.s.Start(ctx, load(t, other), "bob")
				if tc.want == "" {
					if err != nil {
						t.Fatalf("second run on other resources: %v", err)
					}
				} else {
					var ref *Refusal
					want := strings.ReplaceAll(tc.want, "%[1]s", dir)
					if !errors.As(err, &ref) || len(ref.Reasons) != 1 || !strings.HasPrefix(ref.Reasons[0], want) ||
						!strings.Contains(ref.Reasons[0], " is locked by chaos "+one.ID) {
						t.Fatalf("second run: %v (%+v), want refused with %q ... locked by chaos %s", err, two, want, one.ID)
					}
					// The refused run holds nothing (its target lock included).
					if k, _ := targetlock.New(db).Get(ctx, "staging/web"); k != nil {
						t.Errorf("refused run kept a lock: %+v", k)
					}
				}
				if err := h.s.Stop(ctx, one.ID, "alice"); err != nil {
					t.Fatal(err)
				}
				if tc.want == "" {
					if err := h.s.Stop(ctx, two.ID, "bob"); err != nil {
						t.Fatal(err)
					}
				}
				h.drain(t, 5*time.Second)
				var n int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM target_locks`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("%d locks left after the runs", n)
				}
			})
		})
	}
}

// TestRecoverReleasesLocksOfGoneProcess: when the runner of a run with a
// process-stop fault dies and the process has gone away, the replica that
// recovers the run releases every lock of the run, the
// process:<pid>@<start> one included, which the pid file no longer names.
func TestRecoverReleasesLocksOfGoneProcess(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		proc := exec.Command("sleep", "1000")
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = proc.Process.Kill(); _ = proc.Wait() })
		pidFile := filepath.Join(t.TempDir(), "svc.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(proc.Process.Pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		key := processKey(pidFile)
		if key == "" {
			t.Fatalf("no process key for %s", pidFile)
		}
		exp := testExp[:strings.Index(testExp, "faults:\n")] + "faults:\n  - {name: s, type: process-stop, pidFile: " + pidFile + "}\n" +
			testExp[strings.Index(testExp, "duration:"):]
		dead := newHarness(t, db, "dead")
		dead.s.o.Drivers[DriverProcess] = dead.d
		info, err := dead.s.Start(ctx, load(t, exp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		dead.tick(t, 5*time.Second)
		dead.blocked(t) // in monitor, the fault active; the runner now "dies"
		if k, _ := targetlock.New(db).Get(ctx, key); k == nil || k.Holder != info.ID {
			t.Fatalf("lock %s: %+v, want held by %s", key, k, info.ID)
		}
		// The process goes away while nobody renews the run.
		if err := proc.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()

		other := newHarness(t, db, "other")
		other.s.o.Drivers = map[string]Driver{DriverToxiproxy: dead.d, DriverProcess: dead.d}
		other.clock.Set(dead.clock.Now().Add(31 * time.Second))
		if err := other.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := other.s.Get(ctx, info.ID); r.Status != StatusAborted {
			t.Fatalf("run %s, want aborted", r.Status)
		}
		rows, err := db.QueryContext(ctx, `SELECT target FROM target_locks`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var left []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			left = append(left, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("locks left after the recovery: %v", left)
		}
	})
}

// TestRecoverRunsRollbackActions: when the runner of a run dies with its
// faults injected, the replica that rolls the faults back also runs the
// experiment's rollback actions (once, whichever replicas recover), records
// them as the run's rollback step and closes the step left running; a run
// that died before injecting anything runs none.
func TestRecoverRunsRollbackActions(t *testing.T) {
	tu.Backends(t, migrations(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		out := filepath.Join(t.TempDir(), "rollback.log")
		exp := strings.Replace(withRollback(fmt.Sprintf("  - {name: heal, command: [/bin/sh, -c, 'echo heal >> %s']}\n", out)),
			"duration: 5s\n", "duration: 1m\n", 1)
		dead := newHarness(t, db, "dead")
		info, err := dead.s.Start(ctx, load(t, exp), "alice")
		if err != nil {
			t.Fatal(err)
		}
		dead.tick(t, 5*time.Second)
		dead.blocked(t) // in monitor, faults active; the runner now "dies"
		replicas := []*harness{newHarness(t, db, "other"), newHarness(t, db, "third")}
		for _, o := range replicas {
			o.s.o.Drivers = map[string]Driver{DriverToxiproxy: dead.d, DriverStress: dead.d}
			o.clock.Set(dead.clock.Now().Add(31 * time.Second))
		}
		for _, o := range replicas {
			if err := o.s.Recover(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if dead.d.count() != 0 {
			t.Fatal("expired faults not rolled back")
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("rollback action not run after the runner died: %v", err)
		}
		if string(b) != "heal\n" {
			t.Fatalf("rollback action output %q, want it run once", b)
		}
		r, err := replicas[0].s.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusAborted {
			t.Fatalf("run %s, want aborted", r.Status)
		}
		var rollback *Step
		for i, s := range r.Steps {
			if s.Finished == nil || s.Status == "running" {
				t.Errorf("step %s left %s", s.Name, s.Status)
			}
			if s.Name == "rollback" {
				rollback = &r.Steps[i]
			}
		}
		if rollback == nil || rollback.Status != "ok" || !strings.Contains(rollback.Detail, "1 rollback action run by other") {
			t.Fatalf("rollback step %+v", rollback)
		}

		// A run that died waiting for its approval injected nothing: no action.
		gated := strings.Replace(exp, "duration: 1m\n", "duration: 1m\napproval: {role: admin}\n", 1)
		waiting := newHarness(t, db, "waiting")
		waiting.clock.Set(dead.clock.Now().Add(time.Minute))
		w, err := waiting.s.Start(ctx, load(t, gated), "alice")
		if err != nil {
			t.Fatal(err)
		}
		waiting.blocked(t)
		rec := replicas[1]
		rec.clock.Set(waiting.clock.Now().Add(31 * time.Second))
		if err := rec.s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := rec.s.Get(ctx, w.ID); r.Status != StatusAborted {
			t.Fatalf("waiting run %s, want aborted", r.Status)
		}
		if b, _ := os.ReadFile(out); string(b) != "heal\n" {
			t.Fatalf("rollback action output %q after a run that injected nothing", b)
		}
	})
}
