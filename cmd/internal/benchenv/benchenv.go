// Package benchenv is what the whole-process benchmark programs
// (cmd/bench-http, cmd/bench-generate) share: a scratch directory, the
// binary under test built from this checkout, and the machine's load.
package benchenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
