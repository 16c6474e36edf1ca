package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threadNice reads a thread's nice value from /proc (field 19 of stat).
func threadNice(t *testing.T, tid int) (int, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, false // the thread has ended
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	nice, err := strconv.Atoi(fields[16]) // field 19 counted from field 3
	if err != nil {
		t.Fatalf("parse stat of thread %d: %v", tid, err)
	}
	return nice, true
}

// lowered lists the process's threads whose nice value is backgroundNice,
// but for the main thread: Go cannot end it when a goroutine exits locked to
// it, so it parks it for good instead, and no goroutine runs on it again.
func lowered(t *testing.T) []int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range tasks {
		tid, _ := strconv.Atoi(filepath.Base(p))
		if n, ok := threadNice(t, tid); ok && n == backgroundNice && tid != os.Getpid() {
			out = append(out, tid)
		}
	}
	return out
}

func TestLowerBackgroundPriorityLowersOnlyItsThreadAndEndsWithIt(t *testing.T) {
	type outcome struct {
		tid, nice int
		err       error
	}
	done := make(chan outcome)
	go func() {
		tid, err := lowerBackgroundPriority()
		nice, _ := threadNice(t, tid)
		done <- outcome{tid, nice, err}
	}()
	o := <-done
	if o.err != nil {
		t.Fatalf("setpriority: %v", o.err)
	}
	if o.nice != backgroundNice {
		t.Fatalf("lowered thread %d has nice %d, want %d", o.tid, o.nice, backgroundNice)
	}
	// The goroutine has ended locked to its thread: Go ends the thread, so
	// no other goroutine can be scheduled on it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, alive := threadNice(t, o.tid); !alive || o.tid == os.Getpid() {
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
	if n := lowered(t); len(n) > 0 {
		t.Fatalf("threads %v lowered before the test", n)
	}
	db, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := make(chan int, 64)
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() { // samples the threads while Pebble works
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			for _, tid := range lowered(t) {
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
	<-watchDone
	if len(seen) == 0 {
		t.Fatal("no flush or compaction was seen on a lowered thread")
	}
	if n, ok := threadNice(t, syscall.Gettid()); !ok || n != 0 {
		t.Fatalf("the committing thread has nice %d, want 0", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := lowered(t); len(n) > 0; n = lowered(t) {
		if time.Now().After(deadline) {
			t.Fatalf("threads %v still lowered after the work ended", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
