// Package benchenv is what the whole-process benchmark programs
// (cmd/bench-http, cmd/bench-generate, cmd/bench-retention) share: a
// scratch directory, the binary under test built from this checkout, a sred
// process started and stopped, the machine's load, and the webhook load
// (Payload, Post) with its latency quantiles (Quantile).
package benchenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rootuip/sre/pkg/testutil"
)

// Dir makes a scratch directory; done removes it unless keep is set (then
// its path is printed to stderr).
func Dir(prefix string, keep bool) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "keeping %s\n", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// Binary returns bin when it is set, else builds the command pkg
// (./cmd/NAME) of this checkout into dir and returns its path.
func Binary(bin, dir, pkg string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	name := filepath.Base(pkg)
	out := filepath.Join(dir, name)
	fmt.Fprintf(os.Stderr, "building %s ...\n", name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return out, nil
}

// LoadAvg is the 1, 5 and 15 minute load average ("unknown" off Linux):
// the benchmarks print it beside their figures.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Sred is a sred process started by StartSred.
type Sred struct {
	Cmd  *exec.Cmd
	URL  string // http://127.0.0.1:PORT
	Log  string // its standard output and error
	done chan struct{}
}

// StartSred runs bin (sred) with config, listening on a free loopback
// port, its output in dir/sred.log, with the extra flags (the store's), and
// waits until /-/ready answers 200 or until ready has passed.
func StartSred(bin, dir, config string, ready time.Duration, flags ...string) (*Sred, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// A port outside the ephemeral range, reserved against the tests and
	// other benchmarks until sred exits: a port taken from a listener on
	// port 0 and closed could be given to another one before sred binds it.
	port, release, err := testutil.ReservePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "sred.log")
	logf, err := os.Create(logPath)
	if err != nil {
		release()
		return nil, err
	}
	args := append([]string{"--config.file=" + config, "--web.listen-address=" + addr, "--log.level=warn", "--web.no-auth"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		release()
		return nil, fmt.Errorf("start sred: %w", err)
	}
	p := &Sred{Cmd: cmd, URL: "http://" + addr, Log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); release(); close(p.done) }()
	deadline := time.Now().Add(ready)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if !p.Alive() {
			return nil, fmt.Errorf("sred exited at start (log: %s)", logPath)
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("sred not ready after %s (log: %s)", ready, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Alive tells whether the process is still running.
func (p *Sred) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop interrupts the process and waits for it (killing it after 60 s).
func (p *Sred) Stop() {
	if !p.Alive() {
		return
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}
