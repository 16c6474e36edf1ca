package gctune

import (
	"os"
	"runtime/debug"
)

const (
	// gcPercent is orbitd's GOGC: the heap may grow to five times what is
	// live before a collection, instead of Go's twice. The charge path
	// allocates per request and per charge, and with Go's default the
	// collector took 8% of the server's CPU at full load. 3 alternating
	// runs on the 2-core VM, GOGC 100 against 400: http-batch=1000
	// 209-220k -> 242-252k charges/s, http 27.5-29.8k -> 28.8-31.9k.
	gcPercent = 400
	// memLimitShare is the part of the memory available to the process
	// (its cgroup's limit, else the machine's RAM) that orbitd gives the Go
	// heap as a soft limit (GOMEMLIMIT): as the heap nears it, Go collects
	// as often as needed, so the larger GOGC never costs more memory than
	// the machine has. The rest is for Pebble's block cache and memtables,
	// which live outside the Go heap, and the kernel's page cache.
	memLimitShare = 0.5
)

// Apply sets the collector's target to gcPercent unless GOGC is set, and
// a soft memory limit of memLimitShare of the available memory unless
// GOMEMLIMIT is set (or the memory cannot be found). It returns the
// settings in force.
func Apply() (percent int, limitBytes int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if avail := availableMemory(); avail > 0 {
			debug.SetMemoryLimit(int64(float64(avail) * memLimitShare))
		}
	}
	return Current()
}

// Current returns the collector's settings in force: GOGC (-1 for off) and
// the soft memory limit in bytes (math.MaxInt64 for none). Go has no
// getter for GOGC, so it is set to itself and the previous value kept.
func Current() (percent int, limitBytes int64) {
	percent = debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1) // a negative input only reads
}
