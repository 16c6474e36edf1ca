package wal

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"
)

// Early writeback of a WAL that is never synced (the state DB's; see
// Options.UnsyncedCommits).
//
// Why: the state DB commits without a sync (the raft log is the durable
// log), so its WAL pages stay dirty until the kernel writes the file back,
// 30 s after it first became dirty; a recycled WAL file never stops being
// dirty, and goes to the disk in bulk. The raft log's fdatasync, which
// every acknowledged write waits for, then queues behind that I/O. Handing
// the WAL to writeback every writebackEvery bytes keeps that I/O small
// and steady. Open-loop http at 14,800/s (half the peak), 30 s runs on the
// 2-core VM (ext4), 18 alternating pairs: p99 median 3.21 against 4.85
// ms, lower in 16; p99.9 mostly 5.4-7.4 against 9.6-15 ms; http-batch
// unchanged. Each side had one run with a stall: 1.49 s with this (no
// raft-log sync over 70 ms; not explained) and 369 ms without (one
// raft-log sync of 0.33-0.72 s).
//
// Why not Pebble's WALBytesPerSync, which does the same: it calls
// sync_file_range on the WAL writer's goroutine and has the kernel wait
// for the previous range's writeback first, so a busy disk holds the WAL
// writer and, once its few buffers fill, every commit of the FSM. It
// removed the raft log's 8-16 ms syncs too, but 6 of 15 runs had a p99 of
// 11-994 ms against 2 of 15 without, some with no slow raft-log sync at
// all. Here the writer only hands an offset to a goroutine of the file's
// own, and never waits: while that goroutine is busy, a hand-off is
// dropped and the next one covers its range.
const (
	writebackEvery = 512 << 10 // bytes of WAL between two hand-offs
	// writebackLag keeps the last MiB out of writeback: the WAL writer
	// rewrites its last, partial block, and a page written back would only
	// be dirtied again.
	writebackLag = 1 << 20
)

// writebackHook, when set (by tests, to count or stall hand-offs), runs
// before each hand-off reaches the kernel.
var writebackHook atomic.Pointer[func(upto int64)]

// writebackFS wraps fs so that every WAL file it creates or reuses is
// handed to writeback as it grows.
func writebackFS(fs vfs.FS) vfs.FS { return walWritebackFS{FS: fs} }

type walWritebackFS struct{ vfs.FS }

func (fs walWritebackFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return wrapWAL(name, f, err)
}

func (fs walWritebackFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return wrapWAL(newname, f, err)
}

// wrapWAL wraps a WAL file (*.log) that has a file descriptor. Its
// writeback goroutine works on a duplicate of the descriptor, so closing
// the file never waits for that goroutine, and the number is never reused
// under it.
func wrapWAL(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isWAL(name) || f.Fd() == vfs.InvalidFd {
		return f, err
	}
	fd, dupErr := unix.Dup(int(f.Fd()))
	if dupErr != nil {
		return f, nil // no early writeback, as without the wrapper
	}
	w := &writebackFile{File: f, handoff: make(chan int64, 1)}
	go w.writeback(fd)
	return w, nil
}

type writebackFile struct {
	vfs.File
	offset, handed int64 // Write's alone: Pebble's WAL writer is one goroutine
	handoff        chan int64
	closeOnce      sync.Once
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	w.offset += int64(n)
	if upto := (w.offset - writebackLag) &^ 4095; upto-w.handed >= writebackEvery {
		select {
		case w.handoff <- upto:
			w.handed = upto
		default: // still busy with an earlier range; a later hand-off covers this one
		}
	}
	return n, err
}

func (w *writebackFile) Close() error {
	w.closeOnce.Do(func() { close(w.handoff) })
	return w.File.Close()
}

func (w *writebackFile) writeback(fd int) {
	defer unix.Close(fd)
	for upto := range w.handoff {
		if hook := writebackHook.Load(); hook != nil {
			(*hook)(upto)
		}
		// Starts writeback of [0, upto) and returns without waiting for
		// it. Advisory: durability comes from the raft log, so an error
		// changes nothing.
		_ = unix.SyncFileRange(fd, 0, upto, unix.SYNC_FILE_RANGE_WRITE)
	}
}
