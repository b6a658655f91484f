//go:build unix

package collector

import "syscall"

// processCPU returns the CPU time (user + system) the process has used, in
// nanoseconds: a benchmark figure that other load on the machine does not
// inflate the way wall time is.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
