package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// kernelEphemeralRange reads ip_local_port_range on its own, so that the
// test does not trust the code it checks.
func kernelEphemeralRange(t *testing.T) (lo, hi int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
	return lo, hi
}

// FreePort never returns a port of the ephemeral range, and never one port
// twice: not to two goroutines at once, not to a later test after the
// first one's ports were released.
func TestFreePort(t *testing.T) {
	elo, ehi := kernelEphemeralRange(t)
	seen := map[int]string{}
	var mu sync.Mutex
	check := func(t *testing.T, who string, port int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if port >= elo && port <= ehi {
			t.Errorf("%s: port %d is in the ephemeral range %d-%d", who, port, elo, ehi)
		}
		if port < 1024 || port > 65535 {
			t.Errorf("%s: port %d", who, port)
		}
		if prev, ok := seen[port]; ok {
			t.Errorf("%s: port %d was handed out before (%s)", who, port, prev)
		}
		seen[port] = who
	}
	t.Run("two goroutines", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 300 {
					check(t, fmt.Sprintf("goroutine %d call %d", g, i), FreePort(t))
				}
			}()
		}
		wg.Wait()
	})
	// The ports of the first subtest are released by now.
	t.Run("later test", func(t *testing.T) {
		for i := range 300 {
			check(t, fmt.Sprintf("later call %d", i), FreePort(t))
		}
	})
}

const childEnv = "SRE_TEST_FREEPORT_CHILD"

// A port reserved by FreePort in one process is not handed out by
// FreePort in another until the first releases it. The other process is
// this test binary run again: it reserves ports of a window of 100, says
// which, and holds them until its stdin closes.
func TestFreePortAcrossProcesses(t *testing.T) {
	if spec := os.Getenv(childEnv); spec != "" {
		var lo, hi, n int
		if _, err := fmt.Sscanf(spec, "%d-%d-%d", &lo, &hi, &n); err != nil {
			t.Fatalf("%s=%q: %v", childEnv, spec, err)
		}
		for range n {
			fmt.Printf("port %d\n", freePortIn(t, lo, hi))
		}
		fmt.Println("held")
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}

	elo, ehi := kernelEphemeralRange(t)
	lo, hi, err := portRange()
	if err != nil {
		t.Fatal(err)
	}
	wlo := lo + rand.IntN(hi-lo+1-100)
	whi := wlo + 99
	const n = 40
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d-%d-%d", childEnv, wlo, whi, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			stdin.Close()
			_ = cmd.Wait()
		}
	}()
	child := map[int]bool{}
	var out []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out = append(out, line)
		if line == "held" {
			break
		}
		if p, ok := strings.CutPrefix(line, "port "); ok {
			port, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("child: %q", line)
			}
			if child[port] {
				t.Errorf("child got port %d twice", port)
			}
			if port < wlo || port > whi || (port >= elo && port <= ehi) {
				t.Errorf("child got port %d, outside %d-%d or in the ephemeral range %d-%d", port, wlo, whi, elo, ehi)
			}
			child[port] = true
		}
	}
	if len(child) != n {
		t.Fatalf("child reserved %d ports, want %d; its output:\n%s\n%s", len(child), n, strings.Join(out, "\n"), stderr.String())
	}

	// While the child holds them, its ports are not to be had here.
	for port := range child {
		if release, err := reservePort(port); !errors.Is(err, errPortReserved) {
			if err == nil {
				release()
			}
			t.Errorf("port %d held by the child: reservePort here = %v, want %v", port, err, errPortReserved)
		}
	}
	for i := range n {
		if port := freePortIn(t, wlo, whi); child[port] {
			t.Errorf("call %d: FreePort handed out port %d, held by the child", i, port)
		}
	}

	// Once the child is gone, its ports are free again.
	stdin.Close()
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	freed := 0
	for port := range child {
		// Another test binary may take one of them now, not all.
		if release, err := reservePort(port); err == nil {
			release()
			freed++
		}
	}
	if freed == 0 {
		t.Errorf("none of the child's %d ports can be reserved after it exited", n)
	}
}
