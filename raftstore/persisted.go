package raftstore

import (
	"sync"
	"sync/atomic"
)

// persistWatch is the index up to which the state DB holds what the engine
// applied. The FSM answers the leader's requests before it writes the state
// (answers.go), so reads of stored state wait on it.
type persistWatch struct {
	index atomic.Uint64

	mu      sync.Mutex
	waiters chan struct{} // closed at the next advance; nil while no one waits
}

// advance records that the state is persisted up to index.
func (w *persistWatch) advance(index uint64) {
	w.mu.Lock()
	if index > w.index.Load() {
		w.index.Store(index)
	}
	if w.waiters != nil {
		close(w.waiters)
		w.waiters = nil
	}
	w.mu.Unlock()
}

// wait returns true once the state is persisted up to index, or false when
// stop is closed first.
func (w *persistWatch) wait(index uint64, stop <-chan struct{}) bool {
	for {
		if w.index.Load() >= index {
			return true
		}
		w.mu.Lock()
		if w.index.Load() >= index {
			w.mu.Unlock()
			return true
		}
		if w.waiters == nil {
			w.waiters = make(chan struct{})
		}
		ch := w.waiters
		w.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}
