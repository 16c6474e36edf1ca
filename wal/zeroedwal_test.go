package wal

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeSynced commits n values of 64 KiB, each with a sync, keys from
// first on.
func writeSynced(db *pebble.DB, first, n int) error {
	value := bytes.Repeat([]byte{'v'}, 64<<10)
	for i := first; i < first+n; i++ {
		if err := db.Set(fmt.Appendf(nil, "k%05d", i), value, pebble.Sync); err != nil {
			return err
		}
	}
	return nil
}

// watchSpares counts the spares made ready and abandoned, for the test.
func watchSpares(t *testing.T) (ready, abandoned *atomic.Int64) {
	ready, abandoned = new(atomic.Int64), new(atomic.Int64)
	hook := func(ok bool) {
		if ok {
			ready.Add(1)
		} else {
			abandoned.Add(1)
		}
	}
	zeroedWALHook.Store(&hook)
	t.Cleanup(func() { zeroedWALHook.Store(nil) })
	return ready, abandoned
}

// waitSpare waits until the hook has seen a spare made ready.
func waitSpare(t *testing.T, ready *atomic.Int64, atLeast int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for ready.Load() < atLeast {
		if time.Now().After(deadline) {
			t.Fatalf("no zeroed WAL spare became ready (%d of %d)", ready.Load(), atLeast)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func walSizes(t *testing.T, fs vfs.FS, dir string) (sizes map[string]int64, spare bool) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	sizes = map[string]int64{}
	for _, n := range names {
		if n == walSpareName {
			spare = true
		}
		if !strings.HasSuffix(n, ".log") {
			continue
		}
		st, err := fs.Stat(fs.PathJoin(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		sizes[n] = st.Size()
	}
	return sizes, spare
}

// A database opened with ZeroedWALs writes WALs into files already written
// to their full size once it has written enough to want one, keeps every
// synced write across a reopen, and writes nothing more in its directory
// once closed. Without the option no spare is made.
func TestZeroedWALsReplaceGrowingOnes(t *testing.T) {
	ready, abandoned := watchSpares(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	dir := t.TempDir()
	db, err := OpenWith(dir, Options{Logger: logger, ZeroedWALs: true})
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB: past the trigger, far from filling the first memtable.
	if err := writeSynced(db, 0, 16); err != nil {
		t.Fatal(err)
	}
	waitSpare(t, ready, 1)
	// Each flush makes Pebble start a new WAL; the first takes the spare,
	// and the WAL after it asks for the next.
	for round := range 3 {
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := writeSynced(db, 16+round*4, 4); err != nil {
			t.Fatal(err)
		}
		waitSpare(t, ready, int64(round+2))
	}
	sizes, spare := walSizes(t, vfs.Default, dir)
	zeroed := 0
	for _, size := range sizes {
		if size == zeroedWALSize {
			zeroed++
		}
	}
	if zeroed == 0 || !spare {
		t.Fatalf("WAL sizes %v, spare present %v: want WALs of %d bytes and a spare", sizes, spare, zeroedWALSize)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = OpenWith(dir, Options{Logger: logger, ZeroedWALs: true})
	if err != nil {
		t.Fatalf("reopen over zeroed WAL tails: %v", err)
	}
	for i := range 28 {
		v, closer, err := db.Get(fmt.Appendf(nil, "k%05d", i))
		if err != nil {
			t.Fatalf("key %d after reopen: %v", i, err)
		}
		if len(v) != 64<<10 {
			t.Fatalf("key %d: %d bytes", i, len(v))
		}
		closer.Close()
	}
	// Open removed the spare (it cannot tell a whole one from a partial
	// one), so these 256 KiB start a new one, which takes most of a second to
	// write (its pauses); the database closes meanwhile, and
	// Close returns only once the writer has stopped and removed it.
	if err := writeSynced(db, 100, 4); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, spare := walSizes(t, vfs.Default, dir); spare || abandoned.Load() != 1 {
		t.Fatalf("after Close: spare present %v, spares abandoned %d; want none present, 1 abandoned", spare, abandoned.Load())
	}

	before := ready.Load()
	plain := t.TempDir()
	db, err = OpenWith(plain, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSynced(db, 0, 16); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, spare := walSizes(t, vfs.Default, plain); spare || ready.Load() != before {
		t.Fatal("a database without ZeroedWALs made a spare")
	}
}

// Every synced write survives a crash at any point, with WALs that came
// from spares: the reader stops at the zeroed tail of the last WAL as at
// the end of a plain one. Crashes are clones of Pebble's crashable
// in-memory file system, which keep what was synced and drop a random part
// of what was not.
func TestZeroedWALsKeepSyncedWritesAcrossCrashes(t *testing.T) {
	ready, _ := watchSpares(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rng := rand.New(rand.NewPCG(7, 11))

	mem := vfs.NewCrashableMem()
	dir := "db"
	if err := mem.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := OpenWith(dir, Options{Logger: logger, FS: mem, ZeroedWALs: true})
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for crash := range 4 {
		if err := writeSynced(db, written, 16); err != nil {
			t.Fatal(err)
		}
		written += 16
		waitSpare(t, ready, int64(crash+1))
		if err := db.Flush(); err != nil { // the next WAL takes the spare
			t.Fatal(err)
		}
		n := 1 + rng.IntN(8)
		if err := writeSynced(db, written, n); err != nil {
			t.Fatal(err)
		}
		written += n

		sizes, _ := walSizes(t, mem, dir)
		zeroed := false
		for _, size := range sizes {
			zeroed = zeroed || size == zeroedWALSize
		}
		if !zeroed {
			t.Fatalf("crash %d: no WAL came from a spare (sizes %v)", crash, sizes)
		}
		clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))})
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		mem = clone
		db, err = OpenWith(dir, Options{Logger: logger, FS: mem, ZeroedWALs: true})
		if err != nil {
			t.Fatalf("crash %d: reopen: %v", crash, err)
		}
		for i := range written {
			v, closer, err := db.Get(fmt.Appendf(nil, "k%05d", i))
			if err != nil {
				t.Fatalf("crash %d: synced key %d lost: %v", crash, i, err)
			}
			if len(v) != 64<<10 {
				t.Fatalf("crash %d: key %d has %d bytes", crash, i, len(v))
			}
			closer.Close()
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A spare left by a crash may be partly written: opening the database
// removes it (only once the directory's lock is held), and a new one is
// written when wanted.
func TestZeroedWALsDropALeftoverSpare(t *testing.T) {
	ready, _ := watchSpares(t)

	dir := t.TempDir()
	leftover := filepath.Join(dir, walSpareName)
	if err := os.WriteFile(leftover, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := OpenWith(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ZeroedWALs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("a leftover spare is still there after open (stat: %v)", err)
	}
	if err := writeSynced(db, 0, 4); err != nil {
		t.Fatal(err)
	}
	waitSpare(t, ready, 1)
	if st, err := os.Stat(leftover); err != nil || st.Size() != zeroedWALSize {
		t.Fatalf("the new spare: %v, %v; want %d bytes", st, err, zeroedWALSize)
	}
}
