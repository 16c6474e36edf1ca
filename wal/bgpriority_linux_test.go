package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// threadNice reads a thread's nice value from /proc (field 19 of stat);
// alive is false once the thread has ended. It returns errors rather than
// failing the test: goroutines other than the test's call it.
func threadNice(tid int) (nice int, alive bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, false, nil
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(fields) < 17 {
		return 0, true, fmt.Errorf("stat of thread %d: %d fields", tid, len(fields)+2)
	}
	nice, err = strconv.Atoi(fields[16]) // field 19 counted from field 3
	if err != nil {
		return 0, true, fmt.Errorf("stat of thread %d: %v", tid, err)
	}
	return nice, true, nil
}

// mustThreadNice is threadNice on the test's goroutine.
func mustThreadNice(t *testing.T, tid int) (nice int, alive bool) {
	t.Helper()
	nice, alive, err := threadNice(tid)
	if err != nil {
		t.Fatal(err)
	}
	return nice, alive
}

// lowered lists the process's threads whose nice value is backgroundNice,
// but for the main thread: Go cannot end it when a goroutine exits locked to
// it, so it parks it for good instead, and no goroutine runs on it again.
func lowered() ([]int, error) {
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range tasks {
		tid, _ := strconv.Atoi(filepath.Base(p))
		n, alive, err := threadNice(tid)
		if err != nil {
			return nil, err
		}
		if alive && n == backgroundNice && tid != os.Getpid() {
			out = append(out, tid)
		}
	}
	return out, nil
}

func mustLowered(t *testing.T) []int {
	t.Helper()
	out, err := lowered()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeIdle makes machineIdle see a machine idle for fraction of every
// window, until the test ends.
func fakeIdle(t *testing.T, fraction float64) {
	t.Helper()
	var ticks uint64
	var mu sync.Mutex
	saved := machineIdle.Load()
	machineIdle.Store(&idleSampler{read: func() (idle, total uint64, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		ticks += 1000
		return uint64(float64(ticks) * fraction), ticks, true
	}})
	t.Cleanup(func() { machineIdle.Store(saved) })
}

func TestLowerBackgroundPriorityLowersOnlyItsThreadAndEndsWithIt(t *testing.T) {
	fakeIdle(t, 0.5)
	type outcome struct {
		tid, nice int
		lowered   bool
		err       error
	}
	done := make(chan outcome)
	go func() {
		lowered, err := lowerBackgroundPriority()
		tid := syscall.Gettid()
		nice, _, statErr := threadNice(tid)
		done <- outcome{tid, nice, lowered, errors.Join(err, statErr)}
	}()
	o := <-done
	if o.err != nil || !o.lowered {
		t.Fatalf("lowered %v, setpriority: %v", o.lowered, o.err)
	}
	if o.nice != backgroundNice {
		t.Fatalf("lowered thread %d has nice %d, want %d", o.tid, o.nice, backgroundNice)
	}
	// The goroutine has ended locked to its thread: Go ends the thread, so
	// no other goroutine can be scheduled on it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, alive := mustThreadNice(t, o.tid); !alive || o.tid == os.Getpid() {
			break // ended, or the main thread, which Go parks for good
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d outlived its goroutine", o.tid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pebble's flushes and compactions run lowered, and when they are done no
// thread of the process is left lowered, so the writers' and readers'
// goroutines never run at the background priority.
func TestFlushAndCompactionRunLoweredAndLeaveNoLoweredThread(t *testing.T) {
	fakeIdle(t, 0.5)
	if n := mustLowered(t); len(n) > 0 {
		t.Fatalf("threads %v lowered before the test", n)
	}
	db, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := make(chan int, 64)
	stopWatch := make(chan struct{})
	watchDone := make(chan error, 1)
	go func() { // samples the threads while Pebble works
		for {
			select {
			case <-stopWatch:
				watchDone <- nil
				return
			default:
			}
			tids, err := lowered()
			if err != nil {
				watchDone <- err
				return
			}
			for _, tid := range tids {
				select {
				case seen <- tid:
				default:
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	val := make([]byte, 1024)
	for round := 0; round < 6; round++ {
		b := db.NewBatch()
		for i := 0; i < 4000; i++ {
			val[0], val[1] = byte(i), byte(round)
			if err := b.Set([]byte(fmt.Sprintf("k/%06d/%d", i, round)), val, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(nil); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(context.Background(), []byte("k/"), []byte("k0"), true); err != nil {
		t.Fatal(err)
	}
	close(stopWatch)
	if err := <-watchDone; err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 {
		t.Fatal("no flush or compaction was seen on a lowered thread")
	}
	if n, ok := mustThreadNice(t, syscall.Gettid()); !ok || n != 0 {
		t.Fatalf("the committing thread has nice %d, want 0", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := mustLowered(t); len(n) > 0; n = mustLowered(t) {
		if time.Now().After(deadline) {
			t.Fatalf("threads %v still lowered after the work ended", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On a busy machine a job keeps its normal priority and its thread.
func TestBusyMachineKeepsJobsAtNormalPriority(t *testing.T) {
	fakeIdle(t, minIdleToLower/2)
	type outcome struct {
		nice    int
		lowered bool
		err     error
	}
	done := make(chan outcome)
	go func() {
		lowered, err := lowerBackgroundPriority()
		nice, _, statErr := threadNice(syscall.Gettid())
		done <- outcome{nice, lowered, errors.Join(err, statErr)}
	}()
	if o := <-done; o.lowered || o.err != nil || o.nice != 0 {
		t.Fatalf("busy machine: lowered %v, nice %d, err %v", o.lowered, o.nice, o.err)
	}
}

func TestIdleSamplerWindows(t *testing.T) {
	type reading struct{ idle, total uint64 }
	steps := []struct {
		name   string
		read   reading
		want   float64
		wantOK bool
	}{
		{"since boot", reading{300, 1000}, 0.3, true},
		{"a busy window", reading{310, 1100}, 0.1, true},
		{"too short a window repeats the last", reading{315, 1110}, 0.1, true},
		{"the short window counts in the next", reading{400, 1200}, 0.9, true},
		{"counters going back", reading{10, 50}, 0, false},
		{"a new baseline after them", reading{60, 150}, 0.5, true},
	}
	var cur reading
	s := &idleSampler{read: func() (uint64, uint64, bool) { return cur.idle, cur.total, true }}
	for _, st := range steps {
		cur = st.read
		got, ok := s.sample()
		if ok != st.wantOK || (ok && (got < st.want-1e-9 || got > st.want+1e-9)) {
			t.Fatalf("%s: got %v %v, want %v %v", st.name, got, ok, st.want, st.wantOK)
		}
	}
	unreadable := &idleSampler{read: func() (uint64, uint64, bool) { return 0, 0, false }}
	if _, ok := unreadable.sample(); ok {
		t.Fatal("unreadable counters gave a fraction")
	}
}

func TestReadProcStat(t *testing.T) {
	idle, total, ok := readProcStat()
	if !ok || total == 0 || idle > total {
		t.Fatalf("readProcStat: idle %d total %d ok %v", idle, total, ok)
	}
}
