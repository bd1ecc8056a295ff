package procexec

import (
	"fmt"
	"syscall"
	"unsafe"
)

// waitid(2) constants (linux/wait.h).
const (
	pPID    = 1
	wExited = 0x4
	wNoWait = 0x1000000
)

// waitExitedUnreaped blocks until the child with this PID has exited and
// leaves it unreaped (WNOWAIT), so that its PID stays taken until Wait.
func waitExitedUnreaped(pid int) error {
	var info [128]byte // siginfo_t, not read
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), wExited|wNoWait, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
		default:
			return fmt.Errorf("wait for %d to exit: %w", pid, errno)
		}
	}
}
