package wal

import (
	"runtime"
	"syscall"
)

// lowerBackgroundPriority moves the calling goroutine onto an OS thread of
// its own and lowers that thread's scheduling priority to backgroundNice.
// Pebble calls it (through the event listener) at the start of every flush
// and compaction, on the goroutine that does the work: Pebble v2 starts one
// goroutine per flush and per compaction, so the goroutine ends with the
// job and Go ends its locked thread with it. No other goroutine ever runs
// on a lowered thread, which the test checks through /proc.
//
// Lowering is all an unprivileged process may do (raising a thread's
// priority back needs CAP_SYS_NICE), hence a fresh thread per job rather
// than a restore at the end. A failure (a sandbox that forbids
// setpriority) leaves the job at normal priority, as before.
func lowerBackgroundPriority() (tid int, err error) {
	runtime.LockOSThread()
	tid = syscall.Gettid()
	return tid, syscall.Setpriority(syscall.PRIO_PROCESS, tid, backgroundNice)
}
