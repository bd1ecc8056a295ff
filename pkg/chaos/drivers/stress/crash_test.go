package stress

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootuip/sre/pkg/chaos"
	"github.com/rootuip/sre/pkg/clock"
	"github.com/rootuip/sre/pkg/store"
	"github.com/rootuip/sre/pkg/targetlock"
)

const crashExp = `apiVersion: chaos.sre.rootuip.io/v1
kind: Experiment
name: crash
hypothesis: {description: d, steadyState: [{name: s, promql: steady}]}
target: {service: api, environment: staging, instances: 1, totalInstances: 2}
faults: [{name: burn, type: cpu-stress, cpuPercent: 30}]
duration: 30m
`

// TestMain lets the test binary play a sred process that runs an
// experiment until it is killed (SRE_CHAOS_CRASH_DIR set).
func TestMain(m *testing.M) {
	if dir := os.Getenv("SRE_CHAOS_CRASH_DIR"); dir != "" {
		os.Exit(crashRunner(dir))
	}
	os.Exit(m.Run())
}

func crashRunner(dir string) int {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	svc := chaos.New(chaos.Options{DB: db, Prom: noProm{}, Owner: "victim",
		Drivers: map[string]chaos.Driver{chaos.DriverStress: &Driver{MaxRuntime: 10 * time.Minute}}})
	e, err := chaos.Parse([]byte(crashExp), "crash.yml")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	info, err := svc.Start(ctx, e, "alice")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("started", info.ID)
	select {} // run until killed
}

// sred is SIGKILLed mid-experiment: its stress-ng keeps running (the fault
// outlives its runner); the next start rolls it back once the lease expired.
func TestRollbackAfterSIGKILL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.OpenSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, chaos.Migrations, targetlock.Migrations); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SRE_CHAOS_CRASH_DIR="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		cmd.Process.Kill()
		t.Fatalf("runner: %q %v", line, err)
	}
	runID := strings.TrimSpace(strings.TrimPrefix(line, "started "))
	faultID := runID + "-burn"
	t.Cleanup(func() { (&Driver{}).Revert(ctx, faultID, chaos.Fault{Type: chaos.FaultCPUStress}, nil) })
	waitFor(t, "stress-ng burning CPU", func() bool { c, _ := CPUTime(faultID); return c >= 100*time.Millisecond })

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	c0, _ := CPUTime(faultID)
	waitFor(t, "the orphaned fault to keep burning CPU", func() bool { c, _ := CPUTime(faultID); return c > c0 })

	// The restarted sred, while the lease is valid: nothing happens.
	clock := clock.NewManual(time.Now())
	restarted := chaos.New(chaos.Options{DB: db, Prom: noProm{}, Clock: clock, Owner: "restarted",
		Drivers: map[string]chaos.Driver{chaos.DriverStress: &Driver{}}})
	if err := restarted.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if len(Processes(faultID)) == 0 {
		t.Fatal("fault rolled back while its lease was valid")
	}
	// Once the lease (30s) expired it rolls the fault back.
	clock.Advance(time.Minute)
	if err := restarted.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if p := Processes(faultID); len(p) != 0 {
		t.Fatalf("stress-ng still running after recovery: %v", p)
	}
	r, err := restarted.Get(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != chaos.StatusAborted || r.Faults[0].Status != chaos.FaultReverted || r.Faults[0].Owner != "restarted" {
		t.Fatalf("run %s %q, fault %+v", r.Status, r.Reason, r.Faults[0])
	}
	if k, _ := targetlock.New(db).Get(ctx, "staging/api"); k != nil {
		t.Fatalf("target lock of the dead run not released: %+v", k)
	}
}
