package raftstore

import "errors"

// Infrastructure failures. Each means the command may or may not have been
// applied; a retry with the same reference or Idempotency-Key is always safe.
var (
	// ErrNotLeader: this node cannot order writes now.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrOverloaded: the proposal queue is full.
	ErrOverloaded = errors.New("raftstore: overloaded")
	// ErrTimeout: no result within the deadline.
	ErrTimeout = errors.New("raftstore: timed out waiting for the log")
	// ErrClosed: the node is shutting down.
	ErrClosed = errors.New("raftstore: closed")
)
