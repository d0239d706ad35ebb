package redistest

import "syscall"

// procAttr kills the server with the test process, even when the test
// binary dies without running its cleanups.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
