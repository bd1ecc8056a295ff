// Package stress injects resource faults on the host with stress-ng (Debian
// package stress-ng): CPU load at a percentage per worker, memory pressure
// up to a size, and disk fill of a directory up to a size.
//
// Every stress-ng process carries SRE_CHAOS_FAULT=<fault id> in its
// environment and runs in its own process group, so a revert finds and
// stops it from the journal alone, also in a restarted sred; stress-ng's own
// --timeout bounds it even if no revert ever comes: the run's bound
// (chaos.WithLifetime) or MaxRuntime, whichever is shorter. Disk-fill data is
// written under <path>/sre-chaos-<fault id>, removed at revert.
package stress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rootuip/sre/pkg/chaos"
)

// EnvMarker is the environment variable naming the fault of a stress-ng process.
const EnvMarker = "SRE_CHAOS_FAULT"

// Driver runs stress-ng.
type Driver struct {
	// Bin is the stress-ng binary (default: stress-ng in PATH).
	Bin string
	// MaxRuntime bounds every stress-ng run (default 2h).
	MaxRuntime time.Duration

	mu   sync.Mutex
	cmds map[string]*exec.Cmd
}

type state struct {
	PGID int    `json:"pgid"`
	Dir  string `json:"dir,omitempty"`
}

func (d *Driver) args(ctx context.Context, id string, f chaos.Fault) ([]string, string, error) {
	rt := d.MaxRuntime
	if rt <= 0 {
		rt = 2 * time.Hour
	}
	// The run's own bound (its duration, see chaos.WithLifetime): a
	// stress-ng whose sred died stops soon after the run's planned end,
	// not at max_duration.
	if l, ok := chaos.Lifetime(ctx); ok && l < rt {
		rt = l
	}
	rt = max(rt.Round(time.Second), time.Second)
	args := []string{"--timeout", strconv.Itoa(int(rt.Seconds())) + "s", "--quiet"}
	dir := ""
	switch f.Type {
	case chaos.FaultCPUStress:
		w := max(f.Workers, 1)
		args = append(args, "--cpu", strconv.Itoa(w), "--cpu-load", strconv.Itoa(f.CPUPercent))
	case chaos.FaultMemoryStress:
		n, err := chaos.MemoryStressBytes(f)
		if err != nil {
			return nil, "", fmt.Errorf("memory-stress: %w", err)
		}
		total, err := chaos.HostMemory()
		if err != nil {
			return nil, "", err
		}
		if n > total {
			return nil, "", fmt.Errorf("memory-stress: %w", chaos.MemoryAboveHost(f.Size, n, total))
		}
		args = append(args, "--vm", "1", "--vm-bytes", strconv.FormatInt(n, 10), "--vm-keep")
	case chaos.FaultDiskFill:
		n, err := chaos.ParseSize(f.Size)
		if err != nil {
			return nil, "", err
		}
		dir = filepath.Join(f.Path, "sre-chaos-"+id)
		args = append(args, "--hdd", "1", "--hdd-bytes", strconv.FormatInt(n, 10), "--temp-path", dir)
	default:
		return nil, "", fmt.Errorf("the stress driver cannot inject %s faults", f.Type)
	}
	return args, dir, nil
}

// Inject implements chaos.Driver.
func (d *Driver) Inject(ctx context.Context, id string, f chaos.Fault) (json.RawMessage, error) {
	args, dir, err := d.args(ctx, id, f)
	if err != nil {
		return nil, err
	}
	bin := d.Bin
	if bin == "" {
		bin = "stress-ng"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("stress-ng is not installed (apt-get install stress-ng): %w", err)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("disk-fill directory: %w", err)
		}
	}
	cmd := exec.Command(path, args...)
	// A minimal environment: the marker and PATH, none of sred's own
	// variables (credentials included).
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), EnvMarker + "=" + id}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stress-ng: %w", err)
	}
	d.mu.Lock()
	if d.cmds == nil {
		d.cmds = map[string]*exec.Cmd{}
	}
	d.cmds[id] = cmd
	d.mu.Unlock()
	go func() { _ = cmd.Wait() }() // reap
	st, _ := json.Marshal(state{PGID: cmd.Process.Pid, Dir: dir})
	return st, nil
}

// Revert implements chaos.Driver: SIGTERM (stress-ng cleans up), then
// SIGKILL after 5 s, then the disk-fill directory is removed.
func (d *Driver) Revert(ctx context.Context, id string, f chaos.Fault, raw json.RawMessage) error {
	var st state
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("fault state: %w", err)
		}
	}
	signal := func(sig syscall.Signal) int {
		n := 0
		// The group recorded at injection is signalled only while a
		// stress-ng process leads it or belongs to it: after a restart its
		// ID may have been reused by an unrelated group.
		if st.PGID > 1 && stressGroup(st.PGID) {
			if syscall.Kill(-st.PGID, sig) == nil {
				n++
			}
		}
		for _, pid := range Processes(id) {
			if syscall.Kill(pid, sig) == nil {
				n++
			}
		}
		return n
	}
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for len(Processes(id)) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if len(Processes(id)) > 0 {
		signal(syscall.SIGKILL)
	}
	d.mu.Lock()
	delete(d.cmds, id)
	d.mu.Unlock()
	dir := st.Dir
	if dir == "" && f.Type == chaos.FaultDiskFill && f.Path != "" {
		dir = filepath.Join(f.Path, "sre-chaos-"+id)
	}
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove disk-fill data: %w", err)
		}
	}
	if left := Processes(id); len(left) > 0 {
		return fmt.Errorf("stress-ng processes %v of fault %s survive SIGKILL", left, id)
	}
	return nil
}

// stressGroup says whether a live process of process group pgid is a
// stress-ng process (its command name starts with stress-ng: the workers
// rename themselves stress-ng-cpu and the like).
func stressGroup(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if i < 0 || j < i {
			continue
		}
		fs := bytes.Fields(stat[j+1:])
		if len(fs) < 3 || fs[0][0] == 'Z' || string(fs[2]) != strconv.Itoa(pgid) {
			continue
		}
		if bytes.HasPrefix(stat[i+1:j], []byte("stress-ng")) {
			return true
		}
	}
	return false
}

// Processes returns the live (not zombie) processes of fault id: those
// carrying its marker in their environment and every member of their
// process groups (stress-ng workers rewrite their title over the
// environment, so they are found through their group).
func Processes(id string) []int {
	want := []byte("\x00" + EnvMarker + "=" + id + "\x00")
	ents, _ := os.ReadDir("/proc")
	type proc struct{ pid, pgid int }
	var all []proc
	groups := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		fs := bytes.Fields(stat[i+1:])
		if len(fs) < 3 || fs[0][0] == 'Z' {
			continue
		}
		pgid, _ := strconv.Atoi(string(fs[2]))
		all = append(all, proc{pid, pgid})
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(append([]byte{0}, env...), want) {
			groups[pgid] = true
		}
	}
	var out []int
	for _, p := range all {
		if groups[p.pgid] {
			out = append(out, p.pid)
		}
	}
	return out
}

// OpenFileBytes returns the size of the regular files under dir that the
// processes of fault id hold open (stress-ng unlinks its files at once).
func OpenFileBytes(id, dir string) int64 {
	var n int64
	for _, pid := range Processes(id) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link := fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())
			target, err := os.Readlink(link)
			if err != nil || !strings.HasPrefix(target, dir) {
				continue
			}
			if fi, err := os.Stat(link); err == nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
		}
	}
	return n
}

// CPUTime returns the CPU time (user + system) used so far by the live
// processes of fault id, read from /proc/<pid>/stat.
func CPUTime(id string) (time.Duration, error) {
	var ticks int64
	for _, pid := range Processes(id) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		fs := bytes.Fields(b[i+2:])
		if len(fs) < 13 {
			return 0, errors.New("short /proc stat line")
		}
		u, _ := strconv.ParseInt(string(fs[11]), 10, 64)
		s, _ := strconv.ParseInt(string(fs[12]), 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}
