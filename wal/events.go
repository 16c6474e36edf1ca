package wal

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// eventListener is what orbit hears from a Pebble database: each flush and
// compaction begins on a lowered thread while the machine has idle CPU
// (lowerBackgroundPriority), and write stalls, which hold every write of
// the node until a flush or compaction catches up, are logged with their
// reason and length.
func eventListener(logger *slog.Logger) *pebble.EventListener {
	var stallStart atomic.Int64 // unix nanoseconds; 0 when not stalled
	return &pebble.EventListener{
		FlushBegin:      func(pebble.FlushInfo) { _, _ = lowerBackgroundPriority() },
		CompactionBegin: func(pebble.CompactionInfo) { _, _ = lowerBackgroundPriority() },
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			stallStart.Store(time.Now().UnixNano())
			logger.Warn("storage write stall began", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			if start := stallStart.Swap(0); start != 0 {
				logger.Warn("storage write stall ended", "stalled", time.Duration(time.Now().UnixNano()-start))
			}
		},
	}
}
