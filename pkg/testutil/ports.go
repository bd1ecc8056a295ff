package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that the test may bind, for a
// server whose address must be known before it starts (a configuration
// names it). The port lies outside the kernel's ephemeral range
// (ip_local_port_range), so no outgoing connection and no listener on port
// 0 (a Prometheus, an httptest server, another test binary) is given it
// between the pick and the server's bind. It was free when picked, and it
// stays reserved until the test's cleanup: an exclusive lock on a file per
// port in os.TempDir()/sre-test-ports keeps every other process's FreePort
// off it, and one process never hands out a port twice.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi, err := portRange()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return freePortIn(t, lo, hi)
}

// ReservePort is FreePort for a program that is not a test (the benchmarks
// start sred with it): release gives the port back, once the server that
// bound it is gone.
func ReservePort() (port int, release func(), err error) {
	lo, hi, err := portRange()
	if err != nil {
		return 0, nil, err
	}
	return reserveIn(lo, hi)
}

// portsDir holds the lock files of the ports FreePort reserved, shared by
// every test process of the machine.
func portsDir() string { return filepath.Join(os.TempDir(), "sre-test-ports") }

// handedOut is every port this process's FreePort returned.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// freePortIn is FreePort on the ports lo..hi.
func freePortIn(t testing.TB, lo, hi int) int {
	t.Helper()
	port, release, err := reserveIn(lo, hi)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	t.Cleanup(release)
	return port
}

// reserveIn reserves one of the ports lo..hi, from a random one on, that
// this process never handed out before.
func reserveIn(lo, hi int) (port int, release func(), err error) {
	if err := os.MkdirAll(portsDir(), 0o777); err != nil {
		return 0, nil, err
	}
	n := hi - lo + 1
	start := rand.IntN(n)
	var lastErr error
	for i := range n {
		port := lo + (start+i)%n
		handedOut.Lock()
		taken := handedOut.ports[port]
		if !taken {
			if handedOut.ports == nil {
				handedOut.ports = map[int]bool{}
			}
			handedOut.ports[port] = true
		}
		handedOut.Unlock()
		if taken {
			continue
		}
		release, err := reservePort(port)
		if err != nil {
			lastErr = err
			handedOut.Lock()
			delete(handedOut.ports, port)
			handedOut.Unlock()
			continue
		}
		// The port stays in handedOut after the release: a later test of
		// this process gets another one.
		return port, release, nil
	}
	return 0, nil, fmt.Errorf("none of 127.0.0.1:%d-%d could be reserved (last: %v)", lo, hi, lastErr)
}

// errPortReserved: another FreePort holds the port.
var errPortReserved = errors.New("reserved by another test")

// reservePort takes the lock of port and checks that 127.0.0.1:port binds.
// release gives the port back.
func reservePort(port int) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(portsDir(), strconv.Itoa(port)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("port %d: %w", port, errPortReserved)
		}
		return nil, fmt.Errorf("port %d: lock: %w", port, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := l.Close(); err != nil {
		f.Close()
		return nil, err
	}
	// Closing the file drops the lock.
	return func() { f.Close() }, nil
}

// ephemeralRangeFile holds the kernel's range of ports for outgoing
// connections and listeners on port 0.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// ephemeralRange reads ip_local_port_range; without it (not Linux) it is
// Linux's default, whose lower end is also below the IANA range BSD and
// macOS use.
func ephemeralRange() (lo, hi int, err error) {
	b, err := os.ReadFile(ephemeralRangeFile)
	if errors.Is(err, os.ErrNotExist) {
		return 32768, 65535, nil
	}
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s: %q is not two ports", ephemeralRangeFile, b)
	}
	if lo, err = strconv.Atoi(f[0]); err == nil {
		hi, err = strconv.Atoi(f[1])
	}
	if err != nil || lo > hi {
		return 0, 0, fmt.Errorf("%s: %q is not a range of ports", ephemeralRangeFile, b)
	}
	return lo, hi, nil
}

// minPorts is the fewest ports FreePort picks from.
const minPorts = 1000

// portRange is the ports FreePort picks from: 20000 up to the ephemeral
// range; with less than minPorts there, the ports above it, or else from
// 1024 up to it.
func portRange() (lo, hi int, err error) {
	elo, ehi, err := ephemeralRange()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case elo-20000 >= minPorts:
		return 20000, elo - 1, nil
	case 65535-ehi >= minPorts:
		return ehi + 1, 65535, nil
	case elo-1024 >= minPorts:
		return 1024, elo - 1, nil
	}
	return 0, 0, fmt.Errorf("the ephemeral range %d-%d (%s) leaves fewer than %d ports outside it", elo, ehi, ephemeralRangeFile, minPorts)
}
