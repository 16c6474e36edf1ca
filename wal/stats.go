package wal

import "github.com/cockroachdb/pebble/v2"

// DBStats are the figures of one Pebble database an operator watches: what
// it takes on disk and in memory, and whether compaction keeps up (L0
// sublevels climbing toward l0StopWritesThreshold stall writes).
type DBStats struct {
	DiskBytes        int64
	BlockCacheBytes  int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	MemtableBytes    int64
	L0Sublevels      int64
	Compactions      int64
	Flushes          int64
}

// Stats reads db's figures. db must be open.
func Stats(db *pebble.DB) DBStats {
	m := db.Metrics()
	return DBStats{
		DiskBytes:        int64(m.DiskSpaceUsage()),
		BlockCacheBytes:  m.BlockCache.Size,
		BlockCacheHits:   m.BlockCache.Hits,
		BlockCacheMisses: m.BlockCache.Misses,
		MemtableBytes:    int64(m.MemTable.Size),
		L0Sublevels:      int64(m.Levels[0].Sublevels),
		Compactions:      m.Compact.Count,
		Flushes:          m.Flush.Count,
	}
}
