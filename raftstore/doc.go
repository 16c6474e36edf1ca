// Package raftstore turns commands into replicated, durable, applied state:
// the admission filter in front of the log, the proposer that groups waiting
// commands into one Raft log entry (group commit), hashicorp/raft with the
// log in Pebble (package wal), and the FSM that hands each batch to the
// engine and persists what it decided.
//
// The write path, and the one rule each step keeps:
//
//	Submit -> admission (lock-free CAS; refuses doomed debits before the log)
//	       -> proposer (one goroutine; a batch = whatever is waiting, bounded)
//	       -> raft.Apply (fsync of the log on a quorum = the write is durable)
//	       -> FSM.ApplyBatch -> engine.Apply -> results to the waiting callers
//	          (answers.go) -> wal.State.Write (state + applied index in one
//	          Pebble batch, no fsync).
//
// A caller is answered only after its command is in the durable log and
// applied, so every acknowledged write survives kill -9: recovery loads the
// state at its applied index and raft replays the log after it. Reads of
// the stored state wait for the state write that may still be under way
// (persisted.go), so they see every write answered before they began.
package raftstore
