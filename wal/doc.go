// Package wal owns all Pebble storage of a node: Open configures a Pebble
// DB (a node opens two: raft-log/ and state/), RaftStore is the raft log and
// stable store of one Raft group, and State stores the ledger's entries,
// indexes and wallets. Keys start with a one-byte keyspace prefix and '/'; the raft
// keyspace is per group, log entries at r/<group:2 BE>/l/<index:8 BE> and
// stable-store keys at r/<group:2 BE>/s/<key> (see keys.go). The rule: the
// raft log and stable store are written only with pebble.Sync, in one batch
// per StoreLogs call, because an acknowledged charge must survive kill -9.
// State is written without a sync (the raft log is the durable log; recovery
// replays what lies after the applied index), one batch per FSM call, its
// keys added in key order (sortedbatch.go); its WAL is handed to the
// kernel's writeback as it grows, off the writer's path
// (writeback_linux.go), so that it never reaches the disk in bulk ahead of
// a raft log sync. The raft log's WAL files, which every commit syncs, are
// written with zeros to their full size before Pebble writes into them
// (zeroedwal.go), so that a sync after a commit has no file size or block
// allocation to journal.
package wal
