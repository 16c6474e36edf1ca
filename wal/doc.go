// Package wal owns all Pebble storage of a node: Open configures the single
// Pebble DB, RaftStore is the raft log and stable store of one Raft group,
// and other files in this package store the ledger's entries, indexes and
// state. Keys start with a one-byte keyspace prefix and '/'; the raft
// keyspace is per group, log entries at r/<group:2 BE>/l/<index:8 BE> and
// stable-store keys at r/<group:2 BE>/s/<key> (see keys.go). The rule: the
// raft log and stable store are written only with pebble.Sync, in one batch
// per StoreLogs call, because an acknowledged charge must survive kill -9.
package wal
