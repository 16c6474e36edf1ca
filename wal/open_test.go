package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"
)

// walFault fails every WAL write (writes) or sync (syncs) while on.
type walFault struct {
	on    atomic.Bool
	syncs bool
}

func (f *walFault) String() string { return "walFault" }

func (f *walFault) MaybeError(op errorfs.Op) error {
	if !f.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	isSync := op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
	isWrite := op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt
	if (f.syncs && isSync) || (!f.syncs && isWrite) {
		return fmt.Errorf("injected: %w", syscall.EIO)
	}
	return nil
}

// A failed WAL write or fsync under a RaftStore reaches OnFatal once and
// comes back from StoreLogs as an error wrapping ErrStorageFault, never as
// success; the bounds stay where they were; after the fault clears and the
// database is reopened, what was stored before is intact.
func TestStoreLogsStorageFault(t *testing.T) {
	for _, syncs := range []bool{false, true} {
		t.Run(fmt.Sprint("syncs=", syncs), func(t *testing.T) {
			fault := &walFault{syncs: syncs}
			mem := vfs.NewMem()
			var fatals atomic.Int32
			var first atomic.Pointer[error]
			opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FS: errorfs.Wrap(mem, fault),
				OnFatal: func(err error) {
					fatals.Add(1)
					first.CompareAndSwap(nil, &err)
				}}
			db, err := OpenWith("/log", opts)
			if err != nil {
				t.Fatal(err)
			}
			s := NewRaftStore(db, 0)
			for i := uint64(1); i <= 3; i++ {
				if err := s.StoreLogs([]*raft.Log{mkLog(i, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			fault.on.Store(true)
			err = s.StoreLogs([]*raft.Log{mkLog(4, 1)})
			if !errors.Is(err, ErrStorageFault) {
				t.Fatalf("StoreLogs during the fault: %v, want ErrStorageFault", err)
			}
			if fatals.Load() == 0 || !errors.Is(*first.Load(), ErrStorageFault) {
				t.Fatalf("OnFatal calls %d, first %v", fatals.Load(), first.Load())
			}
			if last, _ := s.LastIndex(); last != 3 {
				t.Fatalf("last index %d after a failed store, want 3", last)
			}
			fault.on.Store(false)
			_ = db.Close() // may report the WAL's error

			db, err = OpenWith("/log", Options{Logger: opts.Logger, FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s = NewRaftStore(db, 0)
			var l raft.Log
			for i := uint64(1); i <= 3; i++ {
				if err := s.GetLog(i, &l); err != nil {
					t.Fatalf("log %d after reopening: %v", i, err)
				}
			}
			if err := s.StoreLogs([]*raft.Log{mkLog(4, 2)}); err != nil {
				t.Fatalf("StoreLogs after the fault cleared: %v", err)
			}
		})
	}
}

// Without OnFatal the file system is not wrapped and CatchFatal leaves other
// panics alone.
func TestOpenDefaultsAndCatchFatal(t *testing.T) {
	db, err := OpenWith(t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the other panic to pass through", r)
		}
	}()
	func() (err error) {
		defer CatchFatal(&err)
		panic("other")
	}()
}
