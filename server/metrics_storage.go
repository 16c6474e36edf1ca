package server

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbit/orbit/wal"
)

// storageCollector exports the figures of the node's Pebble databases,
// read at scrape time, labelled by database (raft-log, state).
type storageCollector struct {
	stats atomic.Pointer[func() map[string]wal.DBStats]
}

type storageMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(wal.DBStats) int64
}

var storageMetrics = []storageMetric{
	{storageDesc("orbit_storage_disk_bytes", "Bytes the database takes on disk."), prometheus.GaugeValue,
		func(s wal.DBStats) int64 { return s.DiskBytes }},
	{storageDesc("orbit_storage_block_cache_bytes", "Bytes held by the database's block cache."), prometheus.GaugeValue,
		func(s wal.DBStats) int64 { return s.BlockCacheBytes }},
	{storageDesc("orbit_storage_block_cache_hits_total", "Block cache hits."), prometheus.CounterValue,
		func(s wal.DBStats) int64 { return s.BlockCacheHits }},
	{storageDesc("orbit_storage_block_cache_misses_total", "Block cache misses."), prometheus.CounterValue,
		func(s wal.DBStats) int64 { return s.BlockCacheMisses }},
	{storageDesc("orbit_storage_memtable_bytes", "Bytes of the database's memtables."), prometheus.GaugeValue,
		func(s wal.DBStats) int64 { return s.MemtableBytes }},
	{storageDesc("orbit_storage_l0_sublevels", "L0 sublevels; writes stall at 64 (compaction is behind)."), prometheus.GaugeValue,
		func(s wal.DBStats) int64 { return s.L0Sublevels }},
	{storageDesc("orbit_storage_compactions_total", "Compactions since the node started."), prometheus.CounterValue,
		func(s wal.DBStats) int64 { return s.Compactions }},
	{storageDesc("orbit_storage_flushes_total", "Memtable flushes since the node started."), prometheus.CounterValue,
		func(s wal.DBStats) int64 { return s.Flushes }},
}

// walFsyncDesc is the latency of the database's WAL syncs: for the raft
// log, the disk's share of every write's latency.
var walFsyncDesc = storageDesc("orbit_storage_wal_fsync_seconds",
	"Time to sync the database's write-ahead log to disk; every acknowledged write waits for one sync of the raft log's.")

func storageDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"db"}, nil)
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range storageMetrics {
		ch <- m.desc
	}
	ch <- walFsyncDesc
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.stats.Load()
	if f == nil {
		return
	}
	for db, s := range (*f)() {
		for _, m := range storageMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value(s)), db)
		}
		ch <- prometheus.MustNewConstHistogram(walFsyncDesc, s.WALFsync.Count, s.WALFsync.SumSeconds, s.WALFsync.Buckets, db)
	}
}

// SetStorage makes /metrics export the figures f returns, by database.
func (m *Metrics) SetStorage(f func() map[string]wal.DBStats) { m.storage.stats.Store(&f) }
