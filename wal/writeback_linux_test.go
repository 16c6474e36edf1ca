package wal

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// writeUnsynced commits n values of 64 KiB without a sync: n/16 MiB of WAL.
func writeUnsynced(db *pebble.DB, n int) error {
	value := bytes.Repeat([]byte{'v'}, 64<<10)
	for i := range n {
		if err := db.Set(fmt.Appendf(nil, "k%04d", i), value, pebble.NoSync); err != nil {
			return err
		}
	}
	return nil
}

// A database opened for unsynced commits (the state DB) hands its WAL to
// the kernel's writeback as it grows, each range on a page boundary and
// short of the WAL's last MiB; one whose commits sync (the raft log) is
// left alone.
func TestUnsyncedWALIsWrittenBackAsItGrows(t *testing.T) {
	var handoffs, badRanges atomic.Int64
	hook := func(upto int64) {
		handoffs.Add(1)
		if upto <= 0 || upto%4096 != 0 || upto > 4<<20-writebackLag {
			badRanges.Add(1)
		}
	}
	writebackHook.Store(&hook)
	defer writebackHook.Store(nil)

	for _, unsynced := range []bool{true, false} {
		handoffs.Store(0)
		db, err := OpenWith(t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UnsyncedCommits: unsynced})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeUnsynced(db, 64); err != nil { // 4 MiB: no WAL reaches past it
			t.Fatal(err)
		}
		// The WAL writer writes asynchronously; a flush returns once it
		// has written what it had.
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for unsynced && handoffs.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		switch got := handoffs.Load(); {
		case unsynced && got == 0:
			t.Error("UnsyncedCommits: 4 MiB were written to the WAL without a sync and none was handed to writeback")
		case !unsynced && got != 0:
			t.Errorf("without UnsyncedCommits the WAL was handed to writeback %d times; its commits sync it", got)
		}
	}
	if n := badRanges.Load(); n != 0 {
		t.Errorf("%d hand-offs were not page-aligned or reached into the WAL's last MiB", n)
	}
}

// The WAL writer never waits for writeback: with the writeback stuck,
// commits go on. (Pebble's own WALBytesPerSync waits, and on a busy disk
// that held the state DB's commits.)
func TestWALWriterNeverWaitsForWriteback(t *testing.T) {
	release := make(chan struct{})
	var stuck atomic.Int64
	hook := func(int64) {
		stuck.Add(1)
		<-release
	}
	writebackHook.Store(&hook)
	defer writebackHook.Store(nil)

	db, err := OpenWith(t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), UnsyncedCommits: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { // 12 MiB: many hand-offs while the first ones are stuck
		if err := writeUnsynced(db, 192); err != nil {
			done <- err
			return
		}
		done <- db.Flush()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("commits did not finish in 30 s while the writeback was stuck")
	}
	if stuck.Load() == 0 {
		t.Error("no hand-off reached the writeback: the test proved nothing")
	}
	close(release)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
