package wal

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// refFilter is an in-memory, scalable Bloom filter of every reference ever
// stored (x/ keys). A charge's reference is almost always new, and proving
// that through Pebble costs a memtable search plus a filter probe per level;
// the filter answers "certainly absent" in a few hundred nanoseconds. A
// "maybe present" answer falls back to Pebble, so false positives cost a
// read and never a wrong decision.
//
// Layers double in capacity as references accumulate (no rebuild); a query
// probes every layer. Bits are set and read atomically: the FSM adds while
// HTTP goroutines (admission) query.
type refFilter struct {
	seed   maphash.Seed
	mu     sync.Mutex // serializes adds that open a new layer
	layers atomic.Pointer[[]*bloomLayer]
	// complete is set once every stored reference has been added; before
	// that a miss proves nothing (see State.startRefFilter).
	complete atomic.Bool
}

type bloomLayer struct {
	bits     []atomic.Uint64
	mask     uint64 // number of bits - 1 (a power of two)
	capacity int64
	count    atomic.Int64
}

const (
	bloomHashes        = 7 // ~1% false positives at 10 bits per key
	bloomBitsPerKey    = 10
	bloomFirstCapacity = 1 << 20 // references in the first layer (1.25 MiB)
)

func newRefFilter() *refFilter { return newRefFilterSized(bloomFirstCapacity) }

func newRefFilterSized(firstCapacity int64) *refFilter {
	f := &refFilter{seed: maphash.MakeSeed()}
	layers := []*bloomLayer{newBloomLayer(firstCapacity)}
	f.layers.Store(&layers)
	return f
}

func newBloomLayer(capacity int64) *bloomLayer {
	bits := uint64(1)
	for bits < uint64(capacity*bloomBitsPerKey) {
		bits <<= 1
	}
	return &bloomLayer{bits: make([]atomic.Uint64, bits/64), mask: bits - 1, capacity: capacity}
}

func (f *refFilter) hash(key []byte) (uint64, uint64) {
	h := maphash.Bytes(f.seed, key)
	return h, h>>32 | h<<32 | 1 // the second hash is odd, so probes cover the table
}

func (l *bloomLayer) has(h1, h2 uint64) bool {
	for i := uint64(0); i < bloomHashes; i++ {
		bit := (h1 + i*h2) & l.mask
		if l.bits[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (l *bloomLayer) add(h1, h2 uint64) {
	for i := uint64(0); i < bloomHashes; i++ {
		bit := (h1 + i*h2) & l.mask
		l.bits[bit/64].Or(1 << (bit % 64))
	}
	l.count.Add(1)
}

// mayContain reports false only when key was certainly never added.
func (f *refFilter) mayContain(key []byte) bool {
	h1, h2 := f.hash(key)
	for _, l := range *f.layers.Load() {
		if l.has(h1, h2) {
			return true
		}
	}
	return false
}

// add records key.
func (f *refFilter) add(key []byte) {
	h1, h2 := f.hash(key)
	layers := *f.layers.Load()
	last := layers[len(layers)-1]
	if last.count.Load() >= last.capacity {
		f.mu.Lock()
		layers = *f.layers.Load()
		last = layers[len(layers)-1]
		if last.count.Load() >= last.capacity {
			grown := append(append([]*bloomLayer(nil), layers...), newBloomLayer(last.capacity*2))
			f.layers.Store(&grown)
			last = grown[len(grown)-1]
		}
		f.mu.Unlock()
	}
	last.add(h1, h2)
}
