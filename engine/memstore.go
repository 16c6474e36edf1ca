package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// MemStore is an in-memory ColdStore that keeps everything Changes carry:
// the reference implementation of persistence for tests and simulations.
type MemStore struct {
	Refs     map[refKey]RefRecord
	Txns     map[string]TxnState
	Entries  []Entry
	Usage    map[UsageDelta]UsageDelta // key: the delta with counters zeroed
	Topups   map[string]TopupRecord
	Invoices []InvoiceRecord
	Holds    map[string]Hold
	Settings Settings

	// entryIndex maps entry id -> position in Entries for the first
	// indexed entries. It is caught up lazily, on a lookup, so writing
	// costs nothing for entries nobody looks up by id.
	entryIndex map[string]int
	indexed    int
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{Refs: map[refKey]RefRecord{}, Txns: map[string]TxnState{}, Usage: map[UsageDelta]UsageDelta{}, Topups: map[string]TopupRecord{}, Holds: map[string]Hold{}}
}

// Ref implements ColdStore.
func (m *MemStore) Ref(orgID string, ns byte, ref string) (RefRecord, bool) {
	r, ok := m.Refs[refKey{orgID, ns, ref}]
	return r, ok
}

// Txn implements ColdStore: the persisted side record, else the one the
// entry implies.
func (m *MemStore) Txn(orgID, txID string) (TxnState, bool) {
	t, ok := m.Txns[txID]
	if !ok {
		e := m.entry(txID)
		if e == nil {
			return TxnState{}, false
		}
		t = TxnFromEntry(e)
	}
	if t.OrgID != orgID {
		return TxnState{}, false
	}
	return t, true
}

// Topup implements ColdStore.
func (m *MemStore) Topup(id string) (TopupRecord, bool) {
	t, ok := m.Topups[id]
	return t, ok
}

// Hold implements ColdStore.
func (m *MemStore) Hold(id string) (Hold, bool) {
	h, ok := m.Holds[id]
	return h, ok
}

// OpenHolds returns the stored open holds, as recovery loads them.
func (m *MemStore) OpenHolds() []Hold {
	var out []Hold
	for _, id := range sortedKeys(m.Holds) {
		if h := m.Holds[id]; h.Status == HoldOpen {
			out = append(out, h)
		}
	}
	return out
}

// entry finds a stored entry by id. The index is caught up with entries
// appended since the last lookup. Tests build MemStores by copying,
// reordering or truncating Entries, so an index hit is checked against the
// slice, and a miss is confirmed by a scan (misses are refusals, not the
// charging path); either way a stale index is rebuilt.
func (m *MemStore) entry(id string) *Entry {
	if m.indexed > len(m.Entries) {
		m.entryIndex, m.indexed = nil, 0
	}
	if m.entryIndex == nil {
		m.entryIndex = make(map[string]int, len(m.Entries))
	}
	for ; m.indexed < len(m.Entries); m.indexed++ {
		m.entryIndex[m.Entries[m.indexed].ID] = m.indexed
	}
	if i, ok := m.entryIndex[id]; ok && m.Entries[i].ID == id {
		return &m.Entries[i]
	}
	for i := range m.Entries {
		if m.Entries[i].ID == id { // Entries changed under the index
			m.entryIndex, m.indexed = nil, 0
			return &m.Entries[i]
		}
	}
	return nil
}

// Write persists c.
func (m *MemStore) Write(c *Changes) {
	for _, h := range c.Holds {
		m.Holds[h.ID] = h
	}
	if c.Settings != nil {
		m.Settings = *c.Settings
	}
	for _, t := range c.Topups {
		m.Topups[t.ID] = t
	}
	m.Invoices = append(m.Invoices, c.Invoices...)
	m.Entries = append(m.Entries, c.Entries...)
	for _, r := range c.Refs {
		m.Refs[refKey{r.OrgID, r.NS, r.Ref}] = r.Rec
	}
	for _, t := range c.Txns {
		m.Txns[t.ID] = t
	}
	for _, u := range c.Usage {
		k := UsageDelta{OrgID: u.OrgID, Day: u.Day, Channel: u.Channel, Group: u.Group}
		cur := m.Usage[k]
		cur.OrgID, cur.Day, cur.Channel, cur.Group = u.OrgID, u.Day, u.Channel, u.Group
		cur.Messages += u.Messages
		cur.Delivered += u.Delivered
		cur.Failed += u.Failed
		cur.CostMicros += u.CostMicros
		m.Usage[k] = cur
	}
}

// LedgerSum returns the sum of an org's entries.
func (m *MemStore) LedgerSum(orgID string) int64 {
	var s int64
	for _, e := range m.Entries {
		if e.OrgID == orgID {
			s += e.AmountMicros
		}
	}
	return s
}

// Digest is a hash of everything stored, independent of map order.
func (m *MemStore) Digest() string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(m.Entries)
	refs := make([]string, 0, len(m.Refs))
	for k, v := range m.Refs {
		refs = append(refs, k.org+"\x00"+string(k.ns)+k.ref+"\x00"+v.TxID+"\x00"+v.BodyHash)
	}
	sort.Strings(refs)
	_ = enc.Encode(refs)
	txns := make([]TxnState, 0, len(m.Txns))
	for _, t := range m.Txns {
		txns = append(txns, t)
	}
	sort.Slice(txns, func(i, j int) bool { return txns[i].ID < txns[j].ID })
	_ = enc.Encode(txns)
	usage := make([]UsageDelta, 0, len(m.Usage))
	for _, u := range m.Usage {
		usage = append(usage, u)
	}
	sort.Slice(usage, func(i, j int) bool {
		a, b := usage[i], usage[j]
		if a.OrgID != b.OrgID {
			return a.OrgID < b.OrgID
		}
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.Group < b.Group
	})
	_ = enc.Encode(usage)
	topups := make([]TopupRecord, 0, len(m.Topups))
	for _, t := range m.Topups {
		topups = append(topups, t)
	}
	sort.Slice(topups, func(i, j int) bool { return topups[i].ID < topups[j].ID })
	_ = enc.Encode(topups)
	_ = enc.Encode(m.Invoices)
	holds := make([]Hold, 0, len(m.Holds))
	for _, id := range sortedKeys(m.Holds) {
		holds = append(holds, m.Holds[id])
	}
	_ = enc.Encode(holds)
	_ = enc.Encode(m.Settings)
	return hex.EncodeToString(h.Sum(nil))
}

// Digest is a hash of the engine's in-memory state: every org record, every
// key and the apply position. Two replicas that applied the same log report
// the same digest.
func (e *Engine) Digest() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	h := sha256.New()
	enc := json.NewEncoder(h)
	var orgs []OrgRecord
	e.orgs.each(func(o *Org) { orgs = append(orgs, o.rec) })
	sortOrgRecords(orgs)
	_ = enc.Encode(orgs)
	var keys []APIKey
	e.keys.each(func(k *APIKey) { keys = append(keys, *k) })
	sortKeys(keys)
	_ = enc.Encode(keys)
	var holds []Hold
	for _, o := range orgs {
		org := e.org(o.ID)
		for _, id := range sortedKeys(org.holds) {
			holds = append(holds, *org.holds[id])
		}
	}
	_ = enc.Encode(holds)
	_ = enc.Encode(e.settings)
	_ = enc.Encode([]any{e.group, e.appliedIndex, e.lastTimeMs})
	return hex.EncodeToString(h.Sum(nil))
}
