package wal

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// faultWatchFS reports the first failed write or sync of any file Pebble
// writes, and a WAL file that cannot be created (see wrapCreated), before
// Pebble itself sees the error. Preallocate is not watched: Pebble ignores
// its errors (some file systems have no fallocate).
//
// Why: the state database commits without fsync, so Pebble reports a failed
// WAL write to no one until a later commit finds the writer's sticky error,
// and then it panics inside its commit pipeline with a lock held, after
// which the database cannot even be closed. Hearing of the error here first
// lets the node stop writing before any commit reaches that state.
type faultWatchFS struct {
	vfs.FS
	w *faultWatch
}

type faultWatch struct {
	seen    atomic.Bool
	onFault func(error)
}

func (w *faultWatch) check(err error) error {
	if err != nil && w.seen.CompareAndSwap(false, true) {
		w.onFault(&FatalError{Msg: "write or sync failed: " + err.Error()})
	}
	return err
}

func (fs faultWatchFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return watchedFile{File: f, w: fs.w}, nil
}

func (fs faultWatchFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrapCreated(name, f, err)
}

func (fs faultWatchFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs faultWatchFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrapCreated(newname, f, err)
}

// wrapCreated is wrap for a file just created. A WAL that cannot be
// created (a read-only or failing file system) is a storage fault, reported
// here, and Pebble gets a file whose every write and sync fails with the
// same error instead of the error itself: Pebble panics on that error in
// rotateWAL while its DB mutex is released, and unwinding through its
// deferred unlock is a fatal runtime error ("unlock of unlocked mutex")
// that no recover stops. With the file, the rotation completes, the next
// commit to that WAL fails like any failed write, and the node, told
// first, writes no more.
func (fs faultWatchFS) wrapCreated(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil && isWAL(name) {
		_ = fs.w.check(err)
		return failedFile{err: err}, nil
	}
	return fs.wrap(f, err)
}

// failedFile stands for a WAL file that could not be created: reads find
// nothing, writes and syncs fail with the creation's error.
type failedFile struct{ err error }

func (f failedFile) Close() error                       { return nil }
func (f failedFile) Read([]byte) (int, error)           { return 0, f.err }
func (f failedFile) ReadAt([]byte, int64) (int, error)  { return 0, f.err }
func (f failedFile) Write([]byte) (int, error)          { return 0, f.err }
func (f failedFile) WriteAt([]byte, int64) (int, error) { return 0, f.err }
func (f failedFile) Preallocate(int64, int64) error     { return nil }
func (f failedFile) Stat() (vfs.FileInfo, error)        { return nil, f.err }
func (f failedFile) Sync() error                        { return f.err }
func (f failedFile) SyncData() error                    { return f.err }
func (f failedFile) SyncTo(int64) (bool, error)         { return false, f.err }
func (f failedFile) Prefetch(int64, int64) error        { return nil }
func (f failedFile) Fd() uintptr                        { return vfs.InvalidFd }

type watchedFile struct {
	vfs.File
	w *faultWatch
}

func (f watchedFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.w.check(err)
}

func (f watchedFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.w.check(err)
}

func (f watchedFile) Sync() error { return f.w.check(f.File.Sync()) }

func (f watchedFile) SyncData() error { return f.w.check(f.File.SyncData()) }

func (f watchedFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.w.check(err)
}
