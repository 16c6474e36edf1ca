package raftstore

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/wal"
)

// fsm is the thin adapter between raft and the engine: it decodes batches,
// calls engine.Apply, answers the leader's waiting callers (answers.go), and
// persists the Changes with the applied index in one Pebble batch.
//
// raft calls ApplyBatch, Snapshot and Restore from its FSM goroutine, one at a
// time; Persist of a snapshot runs concurrently with ApplyBatch, on an
// immutable Pebble snapshot.
type fsm struct {
	group  uint8
	engine *engine.Engine
	state  *wal.State

	mu sync.Mutex // serializes ApplyBatch with Restore

	onApply func(batches, commands int) // metrics hook; may be nil

	// answers are the leader's waiting batches, answered as soon as they
	// are applied (answers.go); persisted is advanced after each state
	// write, for the reads that wait on it.
	answers   *answers
	persisted *persistWatch

	// fault reports the node's storage fault (nil if none); stopped is the
	// error after which nothing more is applied.
	fault   func() error
	stop    func(error) // stops the node (Node.failStop); may be nil
	stopped error
}

var _ raft.BatchingFSM = (*fsm)(nil)

// ApplyBatch implements raft.BatchingFSM: it returns one response per log,
// a []engine.Result for each command batch and nil for everything else.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.faultErr(); err != nil {
		return f.fail(logs, err)
	}
	resp := make([]any, len(logs))
	// A fresh Changes per call: results handed to callers point into it, so
	// it must not be reused while they read it.
	changes := &engine.Changes{}
	applied := f.engine.AppliedIndex()
	var batches, commands int
	for i, l := range logs {
		if l.Type != raft.LogCommand || l.Index <= applied {
			// Configuration and no-op entries carry no commands; entries at
			// or below the applied index were applied before a restart.
			continue
		}
		var b engine.Batch
		if err := engine.DecodeBatch(l.Data, &b); err != nil {
			// A committed entry that cannot be decoded means the log is not
			// ours or is corrupt: deciding money past it is not safe.
			panic(fmt.Sprintf("raftstore: decode log %d: %v", l.Index, err))
		}
		b.Group = f.group
		b.Index = l.Index
		resp[i] = f.engine.Apply(&b, changes)
		batches++
		commands += len(b.Commands)
	}
	if changes.Index > 0 {
		err := f.faultErr() // a fault seen while applying: do not write
		if err == nil && f.answers != nil {
			// The batches are committed in the fsynced raft log: their
			// results are final, whether or not the state write below
			// succeeds (answers.go).
			for i, l := range logs {
				if res, ok := resp[i].([]engine.Result); ok {
					if b := f.answers.take(l.Extensions); b != nil {
						b.answer(res, nil)
					}
				}
			}
		}
		if err == nil {
			err = f.persist(changes)
		}
		if err != nil {
			// The engine moved on in memory but its state did not persist.
			// Requests answered above stand; every log gets the error, so
			// requests not answered yet fail (503). Nothing is lost: the
			// batches are in the durable raft log above the persisted
			// applied index, and the node stops (Node.failStop), so a
			// restart replays them. Later calls apply nothing (see
			// stopped), so the engine never runs further ahead of the disk.
			return f.fail(logs, err)
		}
		if f.persisted != nil {
			f.persisted.advance(changes.Index)
		}
	}
	f.engine.Persisted()
	if f.onApply != nil && batches > 0 {
		f.onApply(batches, commands)
	}
	return resp
}

// persist writes one call's changes. A storage fault (wal.FatalError, after
// Node.failStop has run) comes back as an error.
func (f *fsm) persist(c *engine.Changes) (err error) {
	defer wal.CatchFatal(&err)
	if h := persistHook.Load(); h != nil {
		(*h)()
	}
	return f.state.Write(c, f.engine.LastTimeMs())
}

// persistHook, when set (by tests, to hold a state write), runs before each.
var persistHook atomic.Pointer[func()]

// faultErr returns the error that stops applying, if any.
func (f *fsm) faultErr() error {
	if f.stopped == nil && f.fault != nil {
		f.stopped = f.fault()
	}
	return f.stopped
}

// fail answers every log with err and applies nothing more.
func (f *fsm) fail(logs []*raft.Log, err error) []any {
	if f.stopped == nil && f.stop != nil {
		f.stop(err) // a write error that was not a storage fault
	}
	f.stopped = err
	resp := make([]any, len(logs))
	for i := range resp {
		resp[i] = err
	}
	return resp
}

// Apply implements raft.FSM for a single log.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// Snapshot implements raft.FSM: the state is already in Pebble, so a snapshot
// is a synced Pebble snapshot that Persist streams.
func (f *fsm) Snapshot() (_ raft.FSMSnapshot, err error) {
	// After a failed persist the stored state is behind raft's applied
	// index: a snapshot would let raft drop log entries it still needs.
	f.mu.Lock()
	stopped := f.faultErr()
	f.mu.Unlock()
	if stopped != nil {
		return nil, stopped
	}
	defer wal.CatchFatal(&err)
	ss, err := f.state.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{ss: ss}, nil
}

// Restore implements raft.FSM: it replaces all state with the snapshot's and
// reloads the engine from it.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.state.Restore(rc); err != nil {
		return err
	}
	if err := loadEngine(f.engine, f.state, f.group); err != nil {
		return err
	}
	if f.persisted != nil {
		f.persisted.advance(f.engine.AppliedIndex())
	}
	return nil
}

// loadEngine installs the persisted state into the engine.
func loadEngine(e *engine.Engine, st *wal.State, group uint8) error {
	rec, err := st.Recover(group)
	if err != nil {
		return err
	}
	applied, lastTimeMs, err := st.Applied(group)
	if err != nil {
		return err
	}
	e.Load(rec.Orgs, rec.Keys, applied, lastTimeMs)
	e.LoadSettings(rec.Settings)
	e.LoadHolds(rec.Holds)
	return nil
}

type fsmSnapshot struct{ ss *wal.StateSnapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.ss.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { _ = s.ss.Close() }
