package stress

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

	"github.com/prometheus/common/model"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

// waitFor polls cond (the deadline is only a safety net).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCPUStress(t *testing.T) {
	d := &Driver{MaxRuntime: time.Minute}
	ctx := context.Background()
	f := chaos.Fault{Type: chaos.FaultCPUStress, CPUPercent: 50, Workers: 1}
	st, err := d.Inject(ctx, "cpu-1", f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Revert(ctx, "cpu-1", f, st) })
	// Measured from outside: the processes' own CPU time grows.
	waitFor(t, "300ms of CPU time", func() bool { c, _ := CPUTime("cpu-1"); return c >= 300*time.Millisecond })
	if err := d.Revert(ctx, "cpu-1", f, st); err != nil {
		t.Fatal(err)
	}
	if p := Processes("cpu-1"); len(p) != 0 {
		t.Fatalf("stress-ng still running after revert: %v", p)
	}
	if c, _ := CPUTime("cpu-1"); c != 0 {
		t.Fatalf("CPU time after revert: %v", c)
	}
}

func TestDiskFill(t *testing.T) {
	d := &Driver{MaxRuntime: time.Minute}
	ctx := context.Background()
	dir := t.TempDir()
	f := chaos.Fault{Type: chaos.FaultDiskFill, Size: "4MiB", Path: dir}
	st, err := d.Inject(ctx, "disk-1", f)
	if err != nil {
		t.Fatal(err)
	}
	fill := filepath.Join(dir, "sre-chaos-disk-1")
	waitFor(t, "data written", func() bool { return OpenFileBytes("disk-1", fill) > 0 })
	if err := d.Revert(ctx, "disk-1", f, st); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fill); !os.IsNotExist(err) {
		t.Fatalf("fill directory left after revert: %v", err)
	}
	if p := Processes("disk-1"); len(p) != 0 {
		t.Fatalf("stress-ng still running: %v", p)
	}
}

// A revert from another driver instance (a restarted sred) finds the
// processes by their marker even without the recorded state.
func TestRevertWithoutState(t *testing.T) {
	ctx := context.Background()
	f := chaos.Fault{Type: chaos.FaultMemoryStress, Size: "16MiB"}
	if _, err := (&Driver{MaxRuntime: time.Minute}).Inject(ctx, "mem-1", f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stress-ng running", func() bool { return len(Processes("mem-1")) > 0 })
	if err := (&Driver{}).Revert(ctx, "mem-1", f, nil); err != nil {
		t.Fatal(err)
	}
	if p := Processes("mem-1"); len(p) != 0 {
		t.Fatalf("left: %v", p)
	}
}

type noProm struct{}

func (noProm) Instant(_ context.Context, q string, _ time.Time) (model.Vector, error) {
	if q == "steady" {
		return model.Vector{{Value: 1}}, nil
	}
	return nil, nil
}

// An experiment aborted by a manual stop cleans its stress-ng up.
func TestCleanedAfterAbort(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, chaos.Migrations, targetlock.Migrations); err != nil {
		t.Fatal(err)
	}
	clock := clock.NewManual(time.Now())
	svc := chaos.New(chaos.Options{DB: db, Prom: noProm{}, Clock: clock, Drivers: map[string]chaos.Driver{chaos.DriverStress: &Driver{MaxRuntime: time.Minute}}})
	e, err := chaos.Parse([]byte(`apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: cpu
hypothesis: {description: d, steadyState: [{name: s, promql: steady}]}
target: {service: api, environment: staging, instances: 1, totalInstances: 2}
faults: [{name: burn, type: cpu-stress, cpuPercent: 50}]
duration: 10m
`), "x.yml")
	if err != nil {
		t.Fatal(err)
	}
	info, err := svc.Start(ctx, e, "alice")
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID + "-burn"
	t.Cleanup(func() { (&Driver{}).Revert(ctx, id, e.Faults[0], nil) })
	waitFor(t, "200ms of CPU time", func() bool { c, _ := CPUTime(id); return c >= 200*time.Millisecond })
	if err := svc.Stop(ctx, info.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	go func() { // the report step waits one interval after the rollback
		for {
			if n, ch := clock.Waiters(); n > 0 {
				clock.Advance(time.Minute)
				if r, _ := svc.Get(ctx, info.ID); r != nil && r.Status != chaos.StatusRunning {
					return
				}
			} else {
				<-ch
			}
		}
	}()
	svc.Wait()
	if p := Processes(id); len(p) != 0 {
		t.Fatalf("stress-ng still running after abort: %v", p)
	}
	r, _ := svc.Get(ctx, info.ID)
	if r.Status != chaos.StatusAborted || !strings.Contains(r.Reason, "stopped by bob") {
		t.Fatalf("run %s %q", r.Status, r.Reason)
	}
}

// rss is the resident memory of the fault's processes, from /proc.
func rss(id string) int64 {
	var total int64
	for _, pid := range Processes(id) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// TestMemoryStress: measured from outside, the fault's processes hold the
// memory asked for (resident, not just mapped), and none is left after
// the revert.
func TestMemoryStress(t *testing.T) {
	d := &Driver{MaxRuntime: time.Minute}
	ctx := context.Background()
	f := chaos.Fault{Type: chaos.FaultMemoryStress, Size: "64MiB"}
	st, err := d.Inject(ctx, "mem-1", f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Revert(ctx, "mem-1", f, st) })
	waitFor(t, "64MiB resident", func() bool { return rss("mem-1") >= 64<<20 })
	if err := d.Revert(ctx, "mem-1", f, st); err != nil {
		t.Fatal(err)
	}
	if p := Processes("mem-1"); len(p) != 0 {
		t.Fatalf("stress-ng still running after revert: %v", p)
	}
	if r := rss("mem-1"); r != 0 {
		t.Fatalf("resident memory after revert: %d", r)
	}
}

// TestMemoryStressAboveHostMemory: a memory-stress larger than the host's
// memory (up to the 1 PiB a size may read) is refused, naming the size and
// the host's memory, before any stress-ng starts.
func TestMemoryStressAboveHostMemory(t *testing.T) {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	total := int64(si.Totalram) * int64(si.Unit)
	for _, size := range []string{"1048576GiB", strconv.FormatInt(total+1<<20, 10)} {
		t.Run(size, func(t *testing.T) {
			d := &Driver{MaxRuntime: time.Minute}
			ctx := context.Background()
			f := chaos.Fault{Type: chaos.FaultMemoryStress, Size: size}
			st, err := d.Inject(ctx, "mem-big", f)
			if err == nil {
				_ = d.Revert(ctx, "mem-big", f, st)
				t.Fatalf("memory-stress of %s injected on a host of %d bytes", size, total)
			}
			if want := "memory-stress: size: " + size + " ("; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "is more than this host's memory (MemTotal") {
				t.Fatalf("error %q, want it to name the size and the host's memory", err)
			}
			if p := Processes("mem-big"); len(p) != 0 {
				t.Fatalf("stress-ng started: %v", p)
			}
		})
	}
}

// TestRevertSparesAReusedGroup: the process group recorded at injection is
// signalled only while a stress-ng process is in it; after a restart its ID
// may belong to an unrelated group, which Revert leaves alone.
func TestRevertSparesAReusedGroup(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Driver{}
	st := []byte(`{"pgid":` + strconv.Itoa(cmd.Process.Pid) + `}`)
	f := chaos.Fault{Type: chaos.FaultCPUStress, CPUPercent: 50}
	revertErr := d.Revert(context.Background(), "gone-1", f, st)
	// Which signal ended the process: a SIGTERM sent by Revert is recorded
	// as its cause at once, before this SIGKILL.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if revertErr != nil {
		t.Fatal(revertErr)
	}
	if sig := cmd.ProcessState.Sys().(syscall.WaitStatus).Signal(); sig != syscall.SIGKILL {
		t.Fatalf("the unrelated process group %d got %v from Revert", cmd.Process.Pid, sig)
	}
}

// TestStressEnvironment: stress-ng gets PATH and its fault's marker, none of
// sred's other variables.
func TestStressEnvironment(t *testing.T) {
	t.Setenv("SRE_TEST_SECRET", "hunter2")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	bin := filepath.Join(dir, "stress-ng")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nenv > "+out+".tmp && mv "+out+".tmp "+out+"\nexec /bin/sleep 1000\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	d := &Driver{Bin: bin, MaxRuntime: time.Minute}
	ctx := context.Background()
	f := chaos.Fault{Type: chaos.FaultCPUStress, CPUPercent: 50, Workers: 1}
	st, err := d.Inject(ctx, "env-1", f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Revert(ctx, "env-1", f, st) })
	waitFor(t, "the environment dump", func() bool { _, err := os.Stat(out); return err == nil })
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, _, _ := strings.Cut(l, "=")
		switch k {
		case "PWD", "SHLVL", "_", "OLDPWD": // set by the shell itself
			continue
		}
		names = append(names, k)
	}
	if got := strings.Join(names, ","); got != "PATH,"+EnvMarker && got != EnvMarker+",PATH" {
		t.Fatalf("environment of stress-ng: %s\n%s", got, b)
	}
	if err := d.Revert(ctx, "env-1", f, st); err != nil {
		t.Fatal(err)
	}
}

// TestTimeoutIsTheRunsLifetime: stress-ng's --timeout, which ends it when
// its sred died and nothing reverts it, is the run's bound
// (chaos.WithLifetime) when that is shorter than MaxRuntime.
func TestTimeoutIsTheRunsLifetime(t *testing.T) {
	d := &Driver{MaxRuntime: time.Hour}
	f := chaos.Fault{Type: chaos.FaultCPUStress, CPUPercent: 1, Workers: 1}
	for _, tc := range []struct {
		id   string
		ctx  context.Context
		want string
	}{
		{"lifetime-1", chaos.WithLifetime(context.Background(), 95*time.Second), "95s"},
		{"lifetime-2", chaos.WithLifetime(context.Background(), 3*time.Hour), "3600s"},
		{"lifetime-3", context.Background(), "3600s"},
	} {
		st, err := d.Inject(tc.ctx, tc.id, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Revert(context.Background(), tc.id, f, st) })
		var pids []int
		waitFor(t, "stress-ng of "+tc.id, func() bool { pids = Processes(tc.id); return len(pids) > 0 })
		found := false
		for _, pid := range pids {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			for i, a := range args {
				if a == "--timeout" && i+1 < len(args) {
					found = true
					if args[i+1] != tc.want {
						t.Errorf("%s: stress-ng --timeout %s, want %s", tc.id, args[i+1], tc.want)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no --timeout on the command line of %v", tc.id, pids)
		}
		if err := d.Revert(context.Background(), tc.id, f, st); err != nil {
			t.Fatal(err)
		}
	}
}
