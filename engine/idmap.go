package engine

import "sync/atomic"

// idMap maps ids to values for readers that take no lock, the way the
// engine finds an org or an API key on every request. Each of its shards is
// an immutable Go map behind an atomic pointer; a writer replaces the shard
// it changes with an updated copy. Writers must be serialized by the caller
// (the engine changes its maps only under its write lock).
//
// It replaced sync.Map to keep idle orgs small: a sync.Map entry costs
// about 130 bytes (a trie node, an entry node, the boxed key), a Go map
// slot about 35. The price is the copy of one shard per write, which only
// org and key changes pay (at 10 million orgs, a shard holds about 2,500).
type idMap[V any] struct {
	shards [idMapShards]atomic.Pointer[map[string]*V]
}

const idMapShards = 4096

// shardOf is FNV-1a of k: deterministic, as everything in the engine.
func shardOf(k string) int {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return int(h % idMapShards)
}

func (m *idMap[V]) load(k string) (*V, bool) {
	p := m.shards[shardOf(k)].Load()
	if p == nil {
		return nil, false
	}
	v, ok := (*p)[k]
	return v, ok
}

// store sets k to v, publishing a new copy of k's shard.
func (m *idMap[V]) store(k string, v *V) {
	sh := &m.shards[shardOf(k)]
	var next map[string]*V
	if cur := sh.Load(); cur != nil {
		next = make(map[string]*V, len(*cur)+1)
		for ck, cv := range *cur {
			next[ck] = cv
		}
	} else {
		next = make(map[string]*V, 1)
	}
	next[k] = v
	sh.Store(&next)
}

// len counts the entries.
func (m *idMap[V]) len() int {
	n := 0
	for i := range m.shards {
		if p := m.shards[i].Load(); p != nil {
			n += len(*p)
		}
	}
	return n
}

// each calls fn for every value, in no particular order.
func (m *idMap[V]) each(fn func(*V)) {
	for i := range m.shards {
		if p := m.shards[i].Load(); p != nil {
			for _, v := range *p {
				fn(v)
			}
		}
	}
}

// replaceAll makes the map hold exactly entries, building each shard once.
func (m *idMap[V]) replaceAll(n int, entry func(i int) (string, *V)) {
	counts := make([]int32, idMapShards)
	shardOfEntry := make([]int32, n)
	for i := 0; i < n; i++ {
		k, _ := entry(i)
		s := shardOf(k)
		shardOfEntry[i] = int32(s)
		counts[s]++
	}
	built := make([]map[string]*V, idMapShards)
	for i := 0; i < n; i++ {
		s := shardOfEntry[i]
		if built[s] == nil {
			built[s] = make(map[string]*V, counts[s])
		}
		k, v := entry(i)
		built[s][k] = v
	}
	for s := range m.shards {
		if built[s] == nil {
			m.shards[s].Store(nil)
			continue
		}
		mp := built[s]
		m.shards[s].Store(&mp)
	}
}
