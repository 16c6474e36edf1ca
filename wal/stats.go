package wal

import (
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	dto "github.com/prometheus/client_model/go"
)

// DBStats are the figures of one Pebble database an operator watches: what
// it takes on disk and in memory, whether compaction keeps up (L0
// sublevels climbing toward l0StopWritesThreshold stall writes), and how
// long the disk takes to sync its WAL (every acknowledged write waits for
// one sync of the raft log's).
type DBStats struct {
	DiskBytes        int64
	BlockCacheBytes  int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	MemtableBytes    int64
	L0Sublevels      int64
	Compactions      int64
	Flushes          int64
	WALFsync         FsyncHistogram
}

// FsyncHistogram is the latency of a database's WAL syncs since it opened,
// in the shape of a Prometheus histogram.
type FsyncHistogram struct {
	Count      uint64
	SumSeconds float64
	// Buckets maps an upper bound in seconds to the syncs that took at
	// most that long.
	Buckets map[float64]uint64
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
		WALFsync:         walFsync(m),
	}
}

// walFsync converts Pebble's WAL sync histogram, kept in nanoseconds over
// 100 buckets (every 100 us up to 5 ms, then 50 up to 10 s), to seconds,
// keeping about one bucket per doubling: 16 bounds from 100 us to 7.3 s.
// Each kept bucket's count is Pebble's own (the counts are cumulative), so
// the coarser histogram is exact at its bounds; above 5 ms Pebble's bounds
// are not round numbers, and their labels are rounded to 3 significant
// digits (at most 0.5% off).
func walFsync(m *pebble.Metrics) FsyncHistogram {
	var h FsyncHistogram
	if m.LogWriter.FsyncLatency == nil {
		return h
	}
	var d dto.Metric
	if err := m.LogWriter.FsyncLatency.Write(&d); err != nil || d.Histogram == nil {
		return h
	}
	h.Count = d.Histogram.GetSampleCount()
	h.SumSeconds = d.Histogram.GetSampleSum() / 1e9
	h.Buckets = make(map[float64]uint64)
	var kept float64
	for _, b := range d.Histogram.GetBucket() {
		bound := b.GetUpperBound() / 1e9
		if bound <= 0 || bound < 1.9*kept {
			continue
		}
		kept = bound
		rounded, _ := strconv.ParseFloat(strconv.FormatFloat(bound, 'g', 3, 64), 64)
		h.Buckets[rounded] = b.GetCumulativeCount()
	}
	return h
}
