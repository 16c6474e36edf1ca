package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	blockCacheSize = 256 << 20 // 256 MiB
	// memTableSize: a memtable is a skiplist, and a state write inserts
	// each key at a random place in it (ledger keys are ordered by org),
	// so its cost grows with the list's height and cache misses. 16 MiB
	// instead of 64: BenchmarkStateWrite/charges=8 (small batches over
	// 1,000 orgs) 14.2 -> 10.6 us per charge, charges=1024 unchanged (3
	// runs each). End to end it is within this 2-core VM's noise:
	// orbit-bench medians of 3 alternating runs, http 9.1k -> 10.6k/s;
	// http-batch=1000 109k -> 114k/s in 20 s runs but 106.6k -> 100.3k/s in
	// 60 s runs (more flushes may cost compaction over time; settle it with
	// more runs on a quiet machine). Fewer touched memtable pages also lower
	// the resident memory of an idle node.
	memTableSize = 16 << 20
	// memTableStopWrites is how many memtables may wait for their flush
	// before Pebble stops writes (its default is 2). At full load a 16 MiB
	// memtable fills in a quarter of a second, and with 2 the node stalled
	// 4-17 times per 15 s of closed-loop http-batch=1000, for up to 42 ms
	// ("memtable count limit reached"); with 4, none in 6 runs, and
	// 210-222k charges/s against 195-218k (3 alternating runs of each, 2
	// cores). It costs memory only while flushes lag: 16 MiB per memtable.
	memTableStopWrites = 4

	// Compaction shape for a ledger. Entries are keyed by org, so every
	// memtable flush spans the whole key space and overlaps all of Lbase:
	// each L0 -> Lbase compaction rewrites Lbase. Letting more L0 sublevels
	// gather (16, not Pebble's 4) and a larger Lbase (256 MiB, not 64) make
	// each rewrite carry more new data. Point reads pay little for the
	// extra sublevels (bloom filters); writes stall only at 64.
	// http-batch=1000 for 20 s, 3 alternating runs on a 2-core VM: median
	// 99.9k -> 120.9k charges/s, server CPU per charge 16.4 -> 13.2 us.
	l0CompactionThreshold = 16
	l0StopWritesThreshold = 64
	lBaseMaxBytes         = 256 << 20

	// backgroundNice is the nice value of the threads that run Pebble's
	// flushes and compactions while the machine has idle CPU
	// (lowerBackgroundPriority). A flush is a burst of CPU; on a small
	// machine requests queued behind it and made the latency tail. At nice
	// 5 the kernel runs a woken request thread first and the job takes the
	// idle CPU. Open-loop http at 14,800/s (half the peak) for 30 s, 3
	// alternating runs on a 2-core VM, every job lowered: p99 9.2/5.9/7.2
	// ms at nice 0 against 5.6/4.0/4.2 at nice 5 (nice 10: 53/5.0/5.4).
	// With minIdleToLower, later and on a noisier machine: 11.7/8.5/15.5
	// against 5.6/5.5/5.3 ms.
	backgroundNice = 5
	// minIdleToLower is the idle fraction of the machine's CPU, since the
	// previous job began, below which a job runs at normal priority. On a
	// saturated machine a lowered job falls behind ingest, and Pebble
	// stops writes until it catches up: closed-loop http-batch=1000 with
	// every job lowered had stalls of 1.2-2.5 s in 3 of 4 runs and a
	// median of 184k charges/s against 206k at nice 0 (4 alternating
	// runs); with this bound, 4 runs: median 200k against 204k, the
	// longest request 453 ms against 480 ms. Measured with vmstat on the
	// 2-core VM: http-batch leaves 3-4% idle (iowait included), closed-loop
	// http 18-23%, http at half its peak 25-32%.
	minIdleToLower = 0.10
)

// Table blocks. Under write load, flushes and compactions are the largest
// CPU cost after the FSM: 27% and 10% of the server's CPU in a profile of
// closed-loop http-batch=1000 (ledger keys are ordered by org, so every
// flush overlaps the whole base level and compactions rewrite it).
//
// tableBlockSize: 16 KiB data blocks instead of Pebble's 4 KiB. The
// columnar block writer has a cost per block, and BenchmarkFlushAndCompact
// (200,000 charges flushed and compacted) spends 1.79 us of CPU per charge
// with 4 KiB Snappy blocks against 1.14 with 16 KiB MinLZ ones (benchstat,
// 6 runs). The block size does it: with the block size fixed, the two
// codecs cost the same there; with Snappy, 64 KiB blocks gave 0.85-0.97
// (3 runs), but 32 KiB did not beat 16 end to end. A point read that
// misses the block cache decompresses 16 KiB instead of 4; the hot point
// reads (a charge's reference) are answered by the reference filter first
// and rarely reach a block.
//
// tableCompression: MinLZ instead of Pebble's default Snappy, the same
// ratio on ledger blocks (a 10 s http-batch run left 140 against 149
// bytes of state per charge) with a cheaper encoder (5.4% against 6.9% of
// the server's CPU in two profiles of http-batch=1000 at 4 KiB blocks).
// No compression at all was slower (more bytes through every compaction). MinLZ needs table format v6,
// which FormatNewest selects. Tables written earlier (Snappy, 4 KiB) stay
// readable, as both are recorded per table and per block, and compactions
// rewrite them over time.
//
// Together, closed-loop http-batch=1000 on the 2-core VM, 5 alternating
// 12 s runs: median 236.3k against 220.4k charges/s, ahead in 4 of 5 pairs
// (MinLZ alone, 6 pairs: 228.2k against 217.7k). The cost seen so far: at
// half the peak rate of one-charge requests, the p99 median over 13
// alternating 30 s pairs was 5.60 ms against 4.75 (README, Performance).
var (
	tableBlockSize   = 16 << 10
	tableCompression = sstable.MinLZCompression
)

// Options are the optional settings of OpenWith; the zero value is what Open
// uses.
type Options struct {
	// Logger receives Pebble's logging (slog.Default() if nil).
	Logger *slog.Logger
	// FS is the file system Pebble works on; nil is the operating system's.
	// Tests pass vfs/errorfs to inject I/O errors, or a crashable MemFS.
	FS vfs.FS
	// OnFatal, when set, is called with a *FatalError as soon as a write
	// or sync of any of the database's files fails (seen on the file
	// system, before Pebble reacts), and again when Pebble reports an error
	// it cannot continue from (its Fatalf: a failed WAL commit or sync, a
	// failed MANIFEST write); after the latter the calling goroutine panics
	// with the *FatalError. A caller that commits (RaftStore's writes, the
	// FSM's state write) turns that panic back into an error with
	// CatchFatal; in Pebble's background goroutines it stops the process,
	// as exiting would. When nil, Pebble's Fatalf exits the process.
	//
	// Why a panic and not a return: Fatalf must not return (Pebble's commit
	// pipeline is broken at that point and continuing could report a write
	// as durable), and Pebble's WAL writer keeps its first error, so the
	// database accepts no further write until it is reopened. The caller
	// must stop writing to it after the first OnFatal.
	OnFatal func(error)
	// CacheSize is the block cache in bytes; 0 is blockCacheSize (256 MiB).
	CacheSize int64
	// UnsyncedCommits says the caller commits without a sync (the state
	// DB: the raft log is the durable log), so the WAL is handed to the
	// kernel's writeback as it grows (writeback_linux.go).
	UnsyncedCommits bool
	// ZeroedWALs says the caller syncs every commit (the raft log), so new
	// WAL files are written with zeros to their full size before use, and
	// a sync after a commit has no file size or allocation to journal
	// (zeroedwal.go).
	ZeroedWALs bool
	// Cache, when set, is the block cache and CacheSize is ignored. The
	// caller keeps it (see EmptyCache) and must Unref it once the database
	// is closed.
	Cache *pebble.Cache
}

// NewCache returns a block cache of the default size, for Options.Cache.
func NewCache() *pebble.Cache { return pebble.NewCache(blockCacheSize) }

// EmptyCache evicts every block c holds and frees their memory; c goes on
// caching what is read next. After start-up, the cache holds the blocks of
// every org record, key and reference that recovery read once: an idle
// node has no use for them.
func EmptyCache(c *pebble.Cache) {
	c.Reserve(int(c.MaxSize()))() // a reservation of everything evicts everything
}

// LogCacheSize is a block cache for the raft-log database: raft reads its
// log only in order (replay at start, a lagging follower's catch-up), and a
// large cache there would keep every block replay read resident.
const LogCacheSize = 8 << 20

// ErrStorageFault is wrapped by every *FatalError: the disk failed a write
// or sync and this database accepts no more writes until it is reopened.
var ErrStorageFault = errors.New("wal: storage fault")

// FatalError is the panic value raised after Options.OnFatal.
type FatalError struct{ Msg string }

func (e *FatalError) Error() string { return "wal: storage fault: " + e.Msg }

// Unwrap makes errors.Is(err, ErrStorageFault) hold.
func (e *FatalError) Unwrap() error { return ErrStorageFault }

// CatchFatal, deferred by a function that writes to a database opened with
// OnFatal, stores a *FatalError panic into *err; other panics go on.
func CatchFatal(err *error) {
	r := recover()
	if r == nil {
		return
	}
	fe, ok := r.(*FatalError)
	if !ok {
		panic(r)
	}
	*err = fe
}

// Open opens (creating if needed) the Pebble database in dir with options
// suited to the ledger: bloom filters on every level, 16 KiB MinLZ-compressed
// table blocks, a 256 MiB block cache, 16 MiB memtables, the newest format major
// version, and Pebble's logging routed to logger (slog.Default() if nil).
func Open(dir string, logger *slog.Logger) (*pebble.DB, error) {
	return OpenWith(dir, Options{Logger: logger})
}

// OpenWith is Open with a file system and a fatal-error handler of the
// caller's choice (see Options).
func OpenWith(dir string, o Options) (*pebble.DB, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	fs := o.FS
	if o.ZeroedWALs {
		if fs == nil {
			fs = vfs.Default
		}
		// Inside the fault watcher: a failed spare is not a storage fault.
		fs = zeroedWALFS(fs, dir, logger)
	}
	if o.OnFatal != nil {
		if fs == nil {
			fs = vfs.Default
		}
		fs = faultWatchFS{FS: fs, w: &faultWatch{onFault: o.OnFatal}}
	}
	if o.UnsyncedCommits {
		if fs == nil {
			fs = vfs.Default
		}
		fs = writebackFS(fs)
	}
	cacheSize := o.CacheSize
	if cacheSize <= 0 {
		cacheSize = blockCacheSize
	}
	opts := &pebble.Options{
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: memTableStopWrites,
		L0CompactionThreshold:       l0CompactionThreshold,
		L0StopWritesThreshold:       l0StopWritesThreshold,
		LBaseMaxBytes:               lBaseMaxBytes,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{l: logger.With("component", "pebble"), onFatal: o.OnFatal},
		FS:                          fs,
		EventListener:               eventListener(logger.With("component", "pebble")),
	}
	if o.Cache != nil {
		opts.Cache = o.Cache
	} else {
		opts.CacheSize = cacheSize // owned and released by the DB
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return tableCompression }
		opts.Levels[i].BlockSize = tableBlockSize
	}
	// pebble.Open clones opts and calls EnsureDefaults itself (a nil FS
	// becomes vfs.Default).
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("wal: open pebble at %q: %w", dir, err)
	}
	return db, nil
}

// pebbleLogger adapts slog to pebble.Logger. Pebble's Infof is chatty
// (compactions, flushes, WAL recycling), so it is logged at debug level.
type pebbleLogger struct {
	l       *slog.Logger
	onFatal func(error)
}

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf must not return: Pebble calls it on invariant violations and on
// failed WAL/MANIFEST writes and syncs, after which continuing could
// acknowledge writes that are not durable. Without OnFatal, exit like
// Pebble's default logger does (a panic could be swallowed by a recover in
// an HTTP handler); with it, panic with a *FatalError (see Options.OnFatal).
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("FATAL: " + msg)
	if p.onFatal == nil {
		os.Exit(1)
	}
	fe := &FatalError{Msg: msg}
	p.onFatal(fe)
	panic(fe)
}
