package raftstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/wal"
)

// Storage faults: a failed write or sync of either database (a full or
// failing disk) stops the node. See failStop for why, and fsm.go for what a
// failed state write answers.

// ErrStorageFault is what every write fails with once the node has hit a
// storage fault (errors.Is matches the errors of failed writes too): the
// node refuses writes until it is restarted. Like the other errors of this
// package, the outcome of the write is unknown and a retry is safe.
var ErrStorageFault = wal.ErrStorageFault

// failStop handles a storage fault on either database. wal calls it (as
// Options.OnFatal) from the goroutine whose write or sync failed: Pebble's
// own, or the one committing.
//
// Why stop rather than retry: Pebble's WAL writer keeps its first error for
// good (record.LogWriter), so the database refuses every later write until
// it is reopened, and retrying an fsync that failed is not safe anyway (the
// kernel may have dropped the dirty pages). So the node stops: it reports
// itself not ready (writes and /readyz answer 503), writes to both
// databases are refused from now on, raft stops starting elections (it
// panics when it cannot persist a new term), and nothing that was not
// persisted is acknowledged: a failed log write fails its requests,
// a failed or refused state write answers its requests with an error
// (fsm.go). The raft log is the source of truth: a restart loads the state
// at its durable applied index and replays the log after it, so no
// acknowledged write is lost and none applies twice. cmd/orbitd exits
// non-zero once Faulted is closed, so its supervisor restarts it when the
// disk is healthy again.
func (n *Node) failStop(err error) {
	if !errors.Is(err, ErrStorageFault) {
		err = fmt.Errorf("%w: %v", ErrStorageFault, err)
	}
	n.faultOnce.Do(func() {
		n.fault.Store(&err)
		close(n.faulted)
		n.logger.Error("storage fault: refusing writes and stopping raft; restart the node once the disk is healthy", "err", err)
		// Raft is not shut down here: futures it holds at shutdown (in its
		// apply queue or on their way to the FSM) are never answered, and
		// the proposer waits for them. Running, it answers all of them: the
		// FSM with the fault, a follower with ErrNotLeader. Close shuts it
		// down. Its timeouts go out of reach so that a node whose log cannot
		// be written does not elect itself (raft panics when it cannot
		// persist a new term). A follower in a cluster can still be asked
		// to take a newer term; then raft's panic stops the process, which
		// is the same fail-stop.
		go func() {
			<-n.started
			if n.raft == nil {
				return
			}
			rc := n.raft.ReloadableConfig()
			rc.HeartbeatTimeout, rc.ElectionTimeout = faultedRaftTimeout, faultedRaftTimeout
			if err := n.raft.ReloadConfig(rc); err != nil {
				n.logger.Error("storage fault: cannot stop elections", "err", err)
			}
		}()
	})
}

// faultedRaftTimeout is raft's heartbeat and election timeout once the node
// has a storage fault: never, in practice.
const faultedRaftTimeout = 365 * 24 * time.Hour

// Faulted is closed once the node has hit a storage fault and stopped
// taking writes.
func (n *Node) Faulted() <-chan struct{} { return n.faulted }

// Fault returns the storage fault that stopped the node, or nil.
func (n *Node) Fault() error {
	if p := n.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// syncState makes the state durable; after a storage fault it reports the
// fault instead of writing.
func (n *Node) syncState() (err error) {
	defer wal.CatchFatal(&err)
	if err := n.Fault(); err != nil {
		return err
	}
	return n.state.Sync()
}

// guardedLogs is the raft log and stable store, refusing every write once
// the node has a storage fault: a database whose WAL failed must not be
// written again (Pebble would panic in its commit pipeline holding a lock,
// and the database could not even be closed).
type guardedLogs struct {
	*wal.RaftStore
	n *Node
}

func (g guardedLogs) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

func (g guardedLogs) StoreLogs(logs []*raft.Log) error {
	if err := g.n.Fault(); err != nil {
		return err
	}
	return g.RaftStore.StoreLogs(logs)
}

func (g guardedLogs) DeleteRange(lo, hi uint64) error {
	if err := g.n.Fault(); err != nil {
		return err
	}
	return g.RaftStore.DeleteRange(lo, hi)
}

func (g guardedLogs) Set(k, v []byte) error {
	if err := g.n.Fault(); err != nil {
		return err
	}
	return g.RaftStore.Set(k, v)
}

func (g guardedLogs) SetUint64(k []byte, v uint64) error {
	if err := g.n.Fault(); err != nil {
		return err
	}
	return g.RaftStore.SetUint64(k, v)
}
