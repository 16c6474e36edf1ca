package cputime

import (
	"syscall"
	"time"
)

// Self returns this process's user and system CPU time (getrusage), which
// is finer than /proc's clock ticks; 0 if the call fails.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
