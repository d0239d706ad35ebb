//go:build unix

package server

import "syscall"

// cpuTime is the CPU time this process has used (user + system), in
// nanoseconds: unlike wall time, it does not count waiting for a core on
// a busy machine.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
