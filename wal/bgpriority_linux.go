package wal

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// lowerBackgroundPriority is called (through the event listener) at the
// start of every Pebble flush and compaction, on the goroutine that does
// the job. If the machine had idle CPU since the previous job began
// (machineIdle), it moves the goroutine onto an OS thread of its own and
// lowers that thread's scheduling priority to backgroundNice; it reports
// whether it did.
//
// Pebble v2 starts one goroutine per flush and per compaction, so the
// goroutine ends with the job and Go ends its locked thread with it (the
// main thread, which cannot end, Go parks for good): no other goroutine
// ever runs on a lowered thread, which the tests check through /proc.
// Lowering is all an unprivileged process may do (raising a thread's
// priority back needs CAP_SYS_NICE), hence a fresh thread per job rather
// than a restore at the end. A failure (a sandbox that forbids
// setpriority) leaves the job at normal priority, as before.
func lowerBackgroundPriority() (lowered bool, err error) {
	if idle, ok := machineIdle.Load().sample(); !ok || idle < minIdleToLower {
		return false, nil
	}
	runtime.LockOSThread()
	return true, syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
}

// machineIdle measures the machine's idle CPU between background jobs (a
// pointer that tests swap).
var machineIdle atomic.Pointer[idleSampler]

func init() { machineIdle.Store(&idleSampler{read: readProcStat}) }

// idleSampler gives the fraction of the machine's CPU time that was idle
// between two calls of sample, from the kernel's counters.
type idleSampler struct {
	mu          sync.Mutex
	read        func() (idle, total uint64, ok bool)
	idle, total uint64  // counters at the start of the current window
	last        float64 // the previous window's fraction
	hasLast     bool
}

// minSampleTicks is the shortest window measured on its own (the kernel
// counts in ticks of 10 ms per CPU): a job that begins sooner after the
// previous one is given the previous window's fraction.
const minSampleTicks = 20

// sample returns the idle fraction since the previous window ended (since
// boot on the first call), and false if the counters cannot be read or go
// backwards.
func (s *idleSampler) sample() (float64, bool) {
	idle, total, ok := s.read()
	if !ok {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case total < s.total || idle < s.idle || idle-s.idle > total-s.total:
		s.idle, s.total, s.hasLast = idle, total, false
		return 0, false
	case total-s.total < minSampleTicks:
		return s.last, s.hasLast
	}
	s.last = float64(idle-s.idle) / float64(total-s.total)
	s.idle, s.total, s.hasLast = idle, total, true
	return s.last, true
}

// readProcStat reads the machine's idle and total CPU time (in clock
// ticks) from the first line of /proc/stat: "cpu user nice system idle
// iowait irq softirq steal ...". Idle counts idle and iowait.
func readProcStat() (idle, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	fields := bytes.Fields(line)
	if len(fields) < 6 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, total, true
}
