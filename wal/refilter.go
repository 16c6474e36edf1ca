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

// bloomLayer is a blocked Bloom filter: a key's bits all lie in one
// 512-bit block, a single cache line, so an add or a query costs one cache
// miss instead of one per probe. The layers outgrow the CPU caches, which
// made the probes' misses the filter's whole cost: 4.7% of the server's CPU
// at 193k charges/s before blocking. For the same bits per key a blocked
// filter has somewhat more false positives than a plain one; a full layer
// measures 0.1% here (TestBloomLayerFalsePositiveRateAtCapacity: layer
// sizes round up to a power of two), and a false positive only costs a
// Pebble read.
type bloomLayer struct {
	bits      []atomic.Uint64
	blockBits uint // log2 of the number of blocks
	capacity  int64
	count     atomic.Int64
}

const (
	bloomHashes        = 7 // ~1% false positives at 10 bits per key
	bloomBitsPerKey    = 10
	bloomBlockWords    = 8       // 512 bits, one 64-byte cache line
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
	var blockBits uint
	for uint64(1)<<blockBits*bloomBlockWords*64 < uint64(capacity*bloomBitsPerKey) {
		blockBits++
	}
	return &bloomLayer{bits: make([]atomic.Uint64, bloomBlockWords<<blockBits), blockBits: blockBits, capacity: capacity}
}

// hash returns the key's 64-bit hash; a layer takes its block from the
// mixed top bits and the bit positions from the low 63 bits, 9 per probe.
func (f *refFilter) hash(key []byte) uint64 { return maphash.Bytes(f.seed, key) }

// block returns the key's 512-bit block.
func (l *bloomLayer) block(h uint64) []atomic.Uint64 {
	// Go defines a shift by 64 as 0: one block when blockBits is 0.
	b := (h * 0x9E3779B97F4A7C15) >> (64 - l.blockBits)
	return l.bits[b*bloomBlockWords : (b+1)*bloomBlockWords : (b+1)*bloomBlockWords]
}

func (l *bloomLayer) has(h uint64) bool {
	blk := l.block(h)
	for i := range uint64(bloomHashes) {
		bit := h >> (9 * i) & 511
		if blk[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (l *bloomLayer) add(h uint64) {
	blk := l.block(h)
	for i := range uint64(bloomHashes) {
		bit := h >> (9 * i) & 511
		blk[bit/64].Or(1 << (bit % 64))
	}
	l.count.Add(1)
}

// mayContain reports false only when key was certainly never added.
func (f *refFilter) mayContain(key []byte) bool {
	h := f.hash(key)
	for _, l := range *f.layers.Load() {
		if l.has(h) {
			return true
		}
	}
	return false
}

// add records key.
func (f *refFilter) add(key []byte) {
	h := f.hash(key)
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
	last.add(h)
}
