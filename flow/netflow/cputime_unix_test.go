//go:build unix

package netflow

import (
	"syscall"
	"time"
)

// processCPUTime is user+system CPU time of the process: benchmarks report
// it per record too, as wall time means little on a shared, loaded machine.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
