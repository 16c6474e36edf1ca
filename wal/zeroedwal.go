package wal

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// WAL files written to their full size before use, for a database whose
// every commit is synced (the raft log; see Options.ZeroedWALs).
//
// Why: an fdatasync that follows an append must also commit the file's
// new size and block allocation to the file system's journal; one that
// follows an overwrite inside the file flushes the data alone. On this
// project's ext4 VM, 5,000 appends of 3.3 KB each followed by fdatasync
// averaged 144-204 us and 3.0-3.8 disk writes per sync (Pebble's
// fallocate(KEEP_SIZE) preallocation: 152-165 us, 3.0); overwriting a file
// already written: 90-97 us, 2.0. Pebble recycles old WAL files, which
// gives overwrites once its recycler holds full-sized files, but it starts
// every process with an empty recycler and small memtables (the first
// WALs were 0.5 to 4 MB): after a start, the raft log appended until
// about 100 MB of log had passed (measured: 3.0 disk writes per sync after
// 3 s at full load, 2.2 after 60 s, with or without this; and 3.1 again
// after a restart, which deletes the old WALs). At about 180 bytes of log
// per charge that is a minute at 30,000 charges/s and, by the same
// arithmetic (not measured), half an hour at 300/s. Closed-loop http after
// a 3 s warm-up, 4 alternating pairs with this against without: 2.2
// against 3.0 disk writes per raft-log sync, average sync 225-236 against
// 281-322 us, 28.8-31.0k against 25.0-28.9k charges/s.
//
// How: once a WAL has taken zeroedWALTrigger bytes (an idle database never
// pays for a spare), one spare file is written with zeros to
// zeroedWALSize off the commit path, paced (see write) so that a raft-log
// fsync never queues behind more than a chunk of it: written a MiB and an
// fdatasync at a time, the spare raised the p99 at half rate in 4 of 5
// pairs while lowering the p50 in all. When Pebble next
// creates a WAL, the spare is renamed into its place and opened without
// truncation, as Pebble's own recycling does (vfs.FS.ReuseForWrite).
// Pebble's WAL reader stops at the zeroed tail as it does at a recycled
// file's stale tail. Without a ready spare, Create is Pebble's.
const (
	zeroedWALSize    = memTableSize + memTableSize/8 // a full memtable's WAL was 16.2 MB
	zeroedWALTrigger = 128 << 10
	zeroedWALChunk   = 256 << 10
	zeroedWALPause   = 10 * time.Millisecond
	// walSpareName has no '.', so Pebble never takes it for one of its
	// files (base.ParseFilename).
	walSpareName = "orbit-wal-spare"
)

// zeroedWALHook, when set (by tests), is called when a spare is ready
// (with true) or abandoned after an error (false).
var zeroedWALHook atomic.Pointer[func(ready bool)]

// zeroedWALFS wraps fs so that Pebble's new WAL files in dir come
// pre-written. It must be inside the fault watcher: a failed spare is
// abandoned and logged, not a storage fault.
func zeroedWALFS(fs vfs.FS, dir string, logger *slog.Logger) vfs.FS {
	z := &zeroedWALs{fs: fs, spare: fs.PathJoin(dir, walSpareName), logger: logger}
	return zeroedFS{FS: fs, z: z}
}

// zeroedWALs is the spare's state, shared by the file system and its files.
type zeroedWALs struct {
	fs     vfs.FS
	spare  string
	logger *slog.Logger

	mu        sync.Mutex
	ready     bool // the spare is complete and synced
	preparing bool
	closed    bool
	done      sync.WaitGroup
}

type zeroedFS struct {
	vfs.FS
	z *zeroedWALs
}

func (fs zeroedFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if !isWAL(name) {
		return fs.FS.Create(name, c)
	}
	if fs.z.take() {
		if f, err := fs.FS.ReuseForWrite(fs.z.spare, name, c); err == nil {
			return fs.z.watch(f), nil
		}
		// ReuseForWrite failed before or after its rename: Create below
		// replaces whatever is at name.
	}
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return f, err
	}
	return fs.z.watch(f), nil
}

// ReuseForWrite is Pebble recycling an old WAL. One shorter than a spare
// (the first WAL of a process, or one made before a spare was ready) is
// replaced by the spare if one is ready, and removed, as the method's
// contract allows.
func (fs zeroedFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if isWAL(newname) {
		if st, err := fs.FS.Stat(oldname); err == nil && st.Size() < zeroedWALSize && fs.z.take() {
			if f, err := fs.FS.ReuseForWrite(fs.z.spare, newname, c); err == nil {
				_ = fs.FS.Remove(oldname)
				return fs.z.watch(f), nil
			}
		}
	}
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	if err != nil || !isWAL(newname) {
		return f, err
	}
	return fs.z.watch(f), nil
}

// Lock is called by Pebble's Open, and its closer by Close. Once the
// directory is ours, a spare left by a crash (perhaps partly written) is
// removed; closing the lock also stops and waits for the spare's writer,
// so nothing writes in the directory once the database is closed.
func (fs zeroedFS) Lock(name string) (io.Closer, error) {
	l, err := fs.FS.Lock(name)
	if err != nil {
		return l, err
	}
	_ = fs.FS.Remove(fs.z.spare)
	return lockThenStop{Closer: l, z: fs.z}, nil
}

type lockThenStop struct {
	io.Closer
	z *zeroedWALs
}

func (l lockThenStop) Close() error {
	l.z.stop()
	return l.Closer.Close()
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// take claims a ready spare.
func (z *zeroedWALs) take() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	ok := z.ready && !z.closed
	z.ready = false
	return ok
}

// want starts writing a spare unless one is ready or under way.
func (z *zeroedWALs) want() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.ready || z.preparing || z.closed {
		return
	}
	z.preparing = true
	z.done.Add(1)
	go z.prepare()
}

func (z *zeroedWALs) stop() {
	z.mu.Lock()
	z.closed = true
	z.mu.Unlock()
	z.done.Wait()
}

func (z *zeroedWALs) stopping() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.closed
}

func (z *zeroedWALs) prepare() {
	defer z.done.Done()
	err := z.write()
	z.mu.Lock()
	z.preparing = false
	z.ready = err == nil && !z.closed
	ready := z.ready
	z.mu.Unlock()
	if err != nil && err != errStopping {
		z.logger.Warn("wal: could not prepare a zeroed WAL file; WALs are created as before", "err", err)
	}
	if !ready {
		_ = z.fs.Remove(z.spare)
	}
	if hook := zeroedWALHook.Load(); hook != nil {
		(*hook)(ready)
	}
}

var errStopping = errors.New("wal: closing")

// write writes the spare with zeros, a chunk at a time, each handed to the
// disk (SyncTo: sync_file_range on Linux, which commits no metadata) after
// the one before has reached it, with a pause between them; then syncs it
// once, which commits its allocation.
func (z *zeroedWALs) write() error {
	f, err := z.fs.Create(z.spare, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	zeros := make([]byte, zeroedWALChunk)
	for off := 0; off < zeroedWALSize; {
		if z.stopping() {
			f.Close()
			return errStopping
		}
		if _, err := f.Write(zeros); err != nil {
			f.Close()
			return err
		}
		off += len(zeros)
		if _, err := f.SyncTo(int64(off)); err != nil {
			f.Close()
			return err
		}
		time.Sleep(zeroedWALPause)
	}
	if err := f.SyncData(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// watch wraps a WAL file to ask for a spare once it has taken
// zeroedWALTrigger bytes.
func (z *zeroedWALs) watch(f vfs.File) vfs.File { return &zeroedWALFile{File: f, z: z} }

type zeroedWALFile struct {
	vfs.File
	z       *zeroedWALs
	written int64 // Write's alone: Pebble's WAL writer is one goroutine
}

func (f *zeroedWALFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if f.written < zeroedWALTrigger {
		if f.written += int64(n); f.written >= zeroedWALTrigger {
			f.z.want()
		}
	}
	return n, err
}
