package wal

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

const (
	blockCacheSize = 256 << 20 // 256 MiB
	memTableSize   = 64 << 20  // 64 MiB
)

// Open opens (creating if needed) the Pebble database in dir with options
// suited to the ledger: bloom filters on every level, a 256 MiB block
// cache, 64 MiB memtables, the newest format major version, and Pebble's
// logging routed to logger (slog.Default() if nil).
func Open(dir string, logger *slog.Logger) (*pebble.DB, error) {
	if logger == nil {
		logger = slog.Default()
	}
	opts := &pebble.Options{
		CacheSize:          blockCacheSize, // owned and released by the DB
		MemTableSize:       memTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{l: logger.With("component", "pebble")},
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	// pebble.Open clones opts and calls EnsureDefaults itself.
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("wal: open pebble at %q: %w", dir, err)
	}
	return db, nil
}

// pebbleLogger adapts slog to pebble.Logger. Pebble's Infof is chatty
// (compactions, flushes, WAL recycling), so it is logged at debug level.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf must not return: Pebble calls it on invariant violations and on
// failed WAL/MANIFEST syncs, after which continuing could acknowledge writes
// that are not durable. Exit like Pebble's default logger does (a panic could
// be swallowed by a recover in an HTTP handler).
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("FATAL: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
