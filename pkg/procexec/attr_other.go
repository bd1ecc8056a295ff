//go:build !linux

package procexec

import "syscall"

// sysProcAttr puts the command in its own process group (no parent-death
// signal outside Linux).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
