package wal

import (
	"bytes"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// sortedWrites stages the key/value operations of one state write and adds
// them to a Pebble batch in key order.
//
// Why: Pebble applies a batch to the memtable (a skiplist) in batch order,
// and its inserter remembers where the previous key went. A key that lands
// next to the previous one is placed without a search from the top of the
// skiplist, and one applied batch's keys mostly do land together once
// sorted (an org's new ledger entries and references are adjacent keys).
// Unsorted, every key costs a full descent: a cache miss per level of a
// 64 MiB memtable, the largest CPU cost of a durable charge before this.
//
// Operations on the same key keep their staging order (the sort is
// stable), so the last one staged wins, as in an unsorted batch; applyTo
// writes only that one. The buffers are reused across writes: one State
// has one writer.
type sortedWrites struct {
	arena []byte
	ops   []stagedOp
}

type stagedOp struct {
	keyOff, keyLen, valOff, valLen int
	del                            bool
}

func (w *sortedWrites) reset() {
	w.arena = w.arena[:0]
	w.ops = w.ops[:0]
}

// set stages key=value (both are copied).
func (w *sortedWrites) set(key, value []byte) {
	w.ops = append(w.ops, stagedOp{
		keyOff: len(w.arena), keyLen: len(key),
		valOff: len(w.arena) + len(key), valLen: len(value),
	})
	w.arena = append(append(w.arena, key...), value...)
}

// setAppend stages key=value where encode appends the value to the arena:
// no intermediate buffer.
func (w *sortedWrites) setAppend(key []byte, encode func([]byte) []byte) {
	keyOff := len(w.arena)
	w.arena = append(w.arena, key...)
	valOff := len(w.arena)
	w.arena = encode(w.arena)
	w.ops = append(w.ops, stagedOp{
		keyOff: keyOff, keyLen: len(key),
		valOff: valOff, valLen: len(w.arena) - valOff,
	})
}

// delete stages the deletion of key.
func (w *sortedWrites) delete(key []byte) {
	w.ops = append(w.ops, stagedOp{keyOff: len(w.arena), keyLen: len(key), del: true})
	w.arena = append(w.arena, key...)
}

func (w *sortedWrites) key(op *stagedOp) []byte {
	return w.arena[op.keyOff : op.keyOff+op.keyLen]
}

// applyTo adds the staged operations to b in key order, each key once:
// an operation that a later one on the same key supersedes is dropped, as
// the batch is atomic and nothing could read it. One write carries every
// batch of an ApplyBatch call, and each batch that touches an org stages
// its record again; the memtable would keep every copy until a flush.
func (w *sortedWrites) applyTo(b *pebble.Batch) error {
	slices.SortStableFunc(w.ops, func(x, y stagedOp) int {
		return bytes.Compare(w.key(&x), w.key(&y))
	})
	for i := range w.ops {
		op := &w.ops[i]
		if i+1 < len(w.ops) && bytes.Equal(w.key(op), w.key(&w.ops[i+1])) {
			continue // superseded: the stable sort keeps staging order
		}
		var err error
		if op.del {
			err = b.Delete(w.key(op), nil)
		} else {
			err = b.Set(w.key(op), w.arena[op.valOff:op.valOff+op.valLen], nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
