package raftstore

import "time"

// Limits of the write pipeline, in one place.
const (
	// batchCommandsMax bounds the commands of one Raft log entry.
	batchCommandsMax = 4096
	// batchBytesMax bounds the encoded size of one Raft log entry.
	batchBytesMax = 4 << 20
	// queueGroupsMax bounds the requests waiting for the proposer; beyond it
	// Submit answers ErrOverloaded at once instead of letting latency grow.
	queueGroupsMax = 16384
	// proposalsInFlightMax bounds the batches proposed and not yet applied:
	// while they are in flight the next batch fills.
	proposalsInFlightMax = 4
	// applyTimeout bounds how long raft.Apply may wait to enqueue a batch.
	applyTimeout = 10 * time.Second
	// submitTimeout bounds how long a caller waits for its result.
	submitTimeout = 15 * time.Second
	// deadlineTick is how often the leader checks for due holds and grants:
	// a hold is released within this of its expiry (SPEC: within 1 s).
	deadlineTick = 200 * time.Millisecond
)

// A batch must be able to hold the largest request (/charges/batch: 1,000).
var _ [batchCommandsMax - 1000]struct{}
