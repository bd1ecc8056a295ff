//go:build !linux

package procexec

import "errors"

// waitExitedUnreaped cannot wait without reaping outside Linux; Run then
// leaves the group alone once the command has ended.
func waitExitedUnreaped(pid int) error {
	return errors.New("waiting without reaping is not supported on this system")
}
