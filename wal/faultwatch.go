package wal

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// faultWatchFS reports the first failed write or sync of any file Pebble
// writes, before Pebble itself sees the error. Preallocate is not watched:
// Pebble ignores its errors (some file systems have no fallocate).
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
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs faultWatchFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs faultWatchFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

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
