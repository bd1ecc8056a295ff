package procexec

import "syscall"

// sysProcAttr puts the command in its own process group and has the kernel
// SIGKILL it when sred dies (Pdeathsig), so that a step of a replica killed
// with SIGKILL does not run on beside the step another replica resumes (the
// run's target lock has moved on by then). The signal follows the thread
// that started the command: Run keeps its goroutine on that thread until
// the command has ended.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
