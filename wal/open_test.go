package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
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
			fatals := &fatalRecorder{}
			opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FS: errorfs.Wrap(mem, fault), OnFatal: fatals.record}
			db, s := openWithLogs(t, "/log", opts)
			fault.on.Store(true)
			err := s.StoreLogs([]*raft.Log{mkLog(4, 1)})
			if !errors.Is(err, ErrStorageFault) {
				t.Fatalf("StoreLogs during the fault: %v, want ErrStorageFault", err)
			}
			if fatals.count.Load() == 0 || !errors.Is(fatals.first(), ErrStorageFault) {
				t.Fatalf("OnFatal calls %d, first %v", fatals.count.Load(), fatals.first())
			}
			if last, _ := s.LastIndex(); last != 3 {
				t.Fatalf("last index %d after a failed store, want 3", last)
			}
			fault.on.Store(false)
			_ = db.Close() // may report the WAL's error

			reopenKeepsLogs(t, "/log", Options{Logger: opts.Logger, FS: mem})
		})
	}
}

// fatalRecorder is an Options.OnFatal that counts its calls and keeps the
// first error.
type fatalRecorder struct {
	count atomic.Int32
	err   atomic.Pointer[error]
}

func (f *fatalRecorder) record(err error) {
	f.count.Add(1)
	f.err.CompareAndSwap(nil, &err)
}

// first is the first error recorded, or nil.
func (f *fatalRecorder) first() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// openWithLogs opens the raft-log database at dir with o and stores logs
// 1-3 in it, before any fault.
func openWithLogs(t *testing.T, dir string, o Options) (*pebble.DB, *RaftStore) {
	t.Helper()
	db, err := OpenWith(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	s := NewRaftStore(db, 0)
	for i := uint64(1); i <= 3; i++ {
		if err := s.StoreLogs([]*raft.Log{mkLog(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	return db, s
}

// reopenKeepsLogs reopens the raft-log database at dir once a fault has
// cleared and requires the logs 1-3 stored before it, and a new store.
func reopenKeepsLogs(t *testing.T, dir string, o Options) {
	t.Helper()
	db, err := OpenWith(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := NewRaftStore(db, 0)
	var l raft.Log
	for i := uint64(1); i <= 3; i++ {
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("log %d after reopening: %v", i, err)
		}
	}
	if err := s.StoreLogs([]*raft.Log{mkLog(4, 2)}); err != nil {
		t.Fatalf("StoreLogs after the fault cleared: %v", err)
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

// Tables are written in 16 KiB MinLZ blocks, and a database whose tables an
// earlier build wrote in Pebble's default blocks (4 KiB, Snappy) opens,
// reads, and is rewritten by a compaction without losing a key.
func TestTableBlocksAndEarlierTablesStayReadable(t *testing.T) {
	dir := t.TempDir()
	value := func(i int) []byte { return []byte(strings.Repeat(fmt.Sprintf("entry %06d ", i), 20)) }
	put := func(db *pebble.DB, from, to int) {
		t.Helper()
		b := db.NewBatch()
		for i := from; i < to; i++ {
			if err := b.Set(fmt.Appendf(nil, "t/org/%06d", i), value(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// tables counts the live tables with Snappy and with MinLZ blocks, and
	// returns the smallest mean size of a table's data blocks, uncompressed.
	tables := func(db *pebble.DB) (snappy, minlz, minBlock int) {
		t.Helper()
		levels, err := db.SSTables(pebble.WithProperties())
		if err != nil {
			t.Fatal(err)
		}
		for _, level := range levels {
			for _, tbl := range level {
				stats := tbl.Properties.CompressionStats
				if strings.Contains(stats, "Snappy") {
					snappy++
				}
				if strings.Contains(stats, "MinLZ") {
					minlz++
				}
				p := tbl.Properties
				if mean := int((p.RawKeySize + p.RawValueSize) / max(p.NumDataBlocks, 1)); minBlock == 0 || mean < minBlock {
					minBlock = mean
				}
			}
		}
		return snappy, minlz, minBlock
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	old := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{l: quiet}}
	for i := range old.Levels {
		old.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.SnappyCompression }
		old.Levels[i].BlockSize = 4 << 10
	}
	db, err := pebble.Open(dir, old)
	if err != nil {
		t.Fatal(err)
	}
	put(db, 0, 1000)
	if s, m, block := tables(db); s == 0 || m != 0 || block > 8<<10 {
		t.Fatalf("the earlier build's tables: %d Snappy, %d MinLZ, blocks of %d bytes; want Snappy only, 4 KiB", s, m, block)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = OpenWith(dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	put(db, 1000, 2000)
	if s, m, _ := tables(db); s == 0 || m == 0 {
		t.Fatalf("after a flush: %d Snappy, %d MinLZ tables; want both", s, m)
	}
	if err := db.Compact(context.Background(), []byte("t/"), []byte("t0"), false); err != nil {
		t.Fatal(err)
	}
	if s, m, block := tables(db); s != 0 || m == 0 || block < 12<<10 {
		t.Fatalf("after a full compaction: %d Snappy, %d MinLZ tables, blocks of %d bytes; want MinLZ only, 16 KiB", s, m, block)
	}
	for i := 0; i < 2000; i++ {
		v, closer, err := db.Get(fmt.Appendf(nil, "t/org/%06d", i))
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if string(v) != string(value(i)) {
			t.Fatalf("key %d: read %q", i, v)
		}
		closer.Close()
	}
}

// walCreateFault fails the creation of WAL files (a read-only or failing
// file system) while on; files already open stay writable.
type walCreateFault struct{ on atomic.Bool }

func (f *walCreateFault) String() string { return "walCreateFault" }

func (f *walCreateFault) MaybeError(op errorfs.Op) error {
	if f.on.Load() && strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpReuseForWrite) {
		return fmt.Errorf("injected: %w", syscall.EROFS)
	}
	return nil
}

// A WAL that cannot be created when Pebble rotates its WAL (a memtable
// flush) reaches OnFatal and the next commit fails with ErrStorageFault;
// the process survives (Pebble panics on that error with its mutex
// released, which used to end in a fatal "unlock of unlocked mutex"), and
// after the fault clears what was stored before is intact.
func TestWALCreationFailureIsAStorageFault(t *testing.T) {
	for _, zeroed := range []bool{false, true} {
		t.Run(fmt.Sprint("zeroed=", zeroed), func(t *testing.T) {
			fault := &walCreateFault{}
			dir := t.TempDir()
			fatals := &fatalRecorder{}
			opts := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FS: errorfs.Wrap(vfs.Default, fault),
				ZeroedWALs: zeroed, OnFatal: fatals.record}
			db, s := openWithLogs(t, dir, opts)
			fault.on.Store(true)
			_ = db.Flush() // rotates the WAL: its new file cannot be created
			if first := fatals.first(); fatals.count.Load() == 0 || !errors.Is(first, ErrStorageFault) || !strings.Contains(first.Error(), "read-only") {
				t.Fatalf("OnFatal calls %d, first %v; want a storage fault naming the creation's error", fatals.count.Load(), first)
			}
			if err := s.StoreLogs([]*raft.Log{mkLog(4, 1)}); !errors.Is(err, ErrStorageFault) {
				t.Fatalf("StoreLogs after the failed creation: %v, want ErrStorageFault", err)
			}
			fault.on.Store(false)
			_ = db.Close() // may report the WAL's error

			reopenKeepsLogs(t, dir, Options{Logger: opts.Logger})
		})
	}
}
