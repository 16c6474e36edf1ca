package wal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orbit/orbit/engine"
)

// State is the replicated state in Pebble: what the FSM writes after every
// applied batch and what the API reads. It implements engine.ColdStore.
//
// Writes come from one goroutine (the FSM). Reads may come from any.
type State struct {
	db   *pebble.DB
	refs atomic.Pointer[refFilter] // every stored reference; see refFilter
	// staged is Write's reusable buffer (Write has one caller at a time).
	staged sortedWrites
	// usage caches the stored usage rows Write has read or written, so
	// adding a batch's usage to a row does not read it back from Pebble
	// (a memtable or table lookup per org and batch). Only Write and
	// Restore touch it; it holds exactly what Pebble holds for its keys.
	usage usageCache

	// A reference filter still loading in the background (see
	// startRefFilter) stops when closing is set; Close waits for it.
	closing  atomic.Bool
	building sync.WaitGroup
}

// NewState returns the state stored in db and starts loading the reference
// filter from the stored references.
func NewState(db *pebble.DB) *State {
	s := &State{db: db}
	if err := s.startRefFilter(); err != nil {
		panic(fmt.Sprintf("wal: load reference filter: %v", err))
	}
	return s
}

// refFilterSyncBudget is how long opening spends loading the reference
// filter before it lets the node serve and finishes in the background.
var refFilterSyncBudget = 300 * time.Millisecond

// startRefFilter installs a new reference filter and fills it from every
// stored x/ key. A restart must not wait for a scan of every reference ever
// stored (tens of millions), so after refFilterSyncBudget the scan goes on
// in the background; until it completes, Ref asks Pebble for every
// reference (slower, never wrong).
//
// Nothing is missed: the scan's iterator sees every key committed before it
// opened, and Write adds each new key to the filter before committing it.
func (s *State) startRefFilter() error {
	f := newRefFilter()
	s.refs.Store(f)
	prefix := []byte{prefixRef, keySep}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyPrefixEnd(prefix)})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(refFilterSyncBudget)
	n := 0
	for it.First(); it.Valid(); it.Next() {
		f.add(it.Key())
		if n++; n%4096 == 0 && time.Now().After(deadline) {
			s.building.Add(1)
			go s.finishRefFilter(f, it)
			return nil
		}
	}
	return s.endRefFilter(f, it)
}

// finishRefFilter is startRefFilter's background half.
func (s *State) finishRefFilter(f *refFilter, it *pebble.Iterator) {
	defer s.building.Done()
	for it.Next() {
		if s.closing.Load() || s.refs.Load() != f {
			_ = it.Close() // closing, or a restore replaced the filter
			return
		}
		f.add(it.Key())
	}
	// An error leaves the filter incomplete: lookups keep asking Pebble.
	_ = s.endRefFilter(f, it)
}

func (s *State) endRefFilter(f *refFilter, it *pebble.Iterator) error {
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	f.complete.Store(true)
	return nil
}

// RefFilterReady reports whether the reference filter has loaded every
// stored reference (and so answers misses from memory).
func (s *State) RefFilterReady() bool { return s.refs.Load().complete.Load() }

// Close stops background work and closes the database.
func (s *State) Close() error {
	s.closing.Store(true)
	s.building.Wait()
	return s.db.Close()
}

// DB returns the underlying database.
func (s *State) DB() *pebble.DB { return s.db }

// Write persists everything c carries and the applied index, in one atomic
// Pebble batch without its own fsync: the raft log already holds the batch
// durably, and recovery replays what lies after the applied index. Because
// state and applied index commit together, a crash leaves them consistent.
func (s *State) Write(c *engine.Changes, lastTimeMs int64) error {
	w := &s.staged
	w.reset()
	for i := range c.Entries {
		e := &c.Entries[i]
		w.setAppend(entryKey(e.OrgID, e.ID), func(b []byte) []byte { return engine.AppendStoredEntry(b, e) })
	}
	for i := range c.Refs {
		r := &c.Refs[i]
		k := refKey(r.OrgID, r.NS, r.Ref)
		// Into the filter before the write is visible, so a reader never
		// sees the key stored yet filtered out.
		s.refs.Load().add(k)
		w.setAppend(k, func(b []byte) []byte { return engine.AppendRefRecord(b, &r.Rec) })
	}
	for i := range c.Txns {
		t := &c.Txns[i]
		w.set(txnKey(t.OrgID, t.ID), mustJSON(t))
	}
	for i := range c.Orgs {
		o := &c.Orgs[i]
		w.setAppend(orgKey(o.ID), func(b []byte) []byte { return engine.AppendOrgRecord(b, o) })
	}
	for i := range c.Keys {
		k := &c.Keys[i]
		w.setAppend(apiKeyKey(k.Hash), func(b []byte) []byte { return engine.AppendAPIKey(b, k) })
	}
	for i := range c.Topups {
		t := &c.Topups[i]
		w.set(topupKey(t.ID), mustJSON(t))
		if t.PaymentIntent != "" {
			w.set(intentKey(t.PaymentIntent), []byte(t.ID))
		}
	}
	for i := range c.Invoices {
		inv := &c.Invoices[i]
		w.set(invoiceKey(inv.OrgID, inv.ID), mustJSON(inv))
	}
	for i := range c.Holds {
		h := &c.Holds[i]
		w.set(holdKey(h.ID), mustJSON(h))
		if h.Status == engine.HoldOpen {
			w.set(openHoldKey(h.OrgID, h.ID), nil)
		} else {
			w.delete(openHoldKey(h.OrgID, h.ID))
		}
	}
	if c.Settings != nil {
		w.set(settingsKey(c.Group), mustJSON(c.Settings))
	}
	if err := s.writeUsage(w, c.Usage); err != nil {
		return err
	}
	var applied [16]byte
	binary.BigEndian.PutUint64(applied[0:8], c.Index)
	binary.BigEndian.PutUint64(applied[8:16], uint64(lastTimeMs))
	w.set(appliedKey(c.Group), applied[:])
	b := s.db.NewBatch()
	defer b.Close()
	if err := w.applyTo(b); err != nil {
		s.usage.dropPending()
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		s.usage.dropPending()
		return err
	}
	s.usage.commitPending()
	return nil
}

// usageRow is the value of a daily usage aggregate.
type usageRow struct{ messages, delivered, failed, costMicros int64 }

func decodeUsage(v []byte) usageRow {
	if len(v) != 32 {
		return usageRow{}
	}
	return usageRow{
		int64(binary.BigEndian.Uint64(v[0:])), int64(binary.BigEndian.Uint64(v[8:])),
		int64(binary.BigEndian.Uint64(v[16:])), int64(binary.BigEndian.Uint64(v[24:])),
	}
}

func (u usageRow) encode() []byte {
	v := make([]byte, 32)
	binary.BigEndian.PutUint64(v[0:], uint64(u.messages))
	binary.BigEndian.PutUint64(v[8:], uint64(u.delivered))
	binary.BigEndian.PutUint64(v[16:], uint64(u.failed))
	binary.BigEndian.PutUint64(v[24:], uint64(u.costMicros))
	return v
}

// writeUsage adds the deltas to their rows: summed per row first, then one
// read-modify-write per row (only the FSM writes, so nothing races it).
func (s *State) writeUsage(w *sortedWrites, deltas []engine.UsageDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	sums := make(map[string]usageRow, len(deltas))
	order := make([]string, 0, len(deltas))
	for _, d := range deltas {
		k := string(usageKey(d.OrgID, d.Day, d.Channel, d.Group))
		r, seen := sums[k]
		if !seen {
			order = append(order, k)
		}
		r.messages += d.Messages
		r.delivered += d.Delivered
		r.failed += d.Failed
		r.costMicros += d.CostMicros
		sums[k] = r
	}
	for _, k := range order {
		d := sums[k]
		r, cached := s.usage.get(k)
		if !cached {
			cur, err := s.get([]byte(k))
			if err != nil {
				return err
			}
			r = decodeUsage(cur)
		}
		r.messages += d.messages
		r.delivered += d.delivered
		r.failed += d.failed
		r.costMicros += d.costMicros
		w.set([]byte(k), r.encode())
		s.usage.stage(k, r)
	}
	return nil
}

// get returns a copy of key's value, or nil when absent.
func (s *State) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// Ref implements engine.ColdStore. A read error stops the process: deciding a
// charge without knowing whether its reference exists could apply it twice.
func (s *State) Ref(orgID string, ns byte, ref string) (engine.RefRecord, bool) {
	var r engine.RefRecord
	k := refKey(orgID, ns, ref)
	if f := s.refs.Load(); f.complete.Load() && !f.mayContain(k) {
		return r, false
	}
	raw := s.mustGet(k)
	if raw == nil {
		return r, false
	}
	r, err := engine.DecodeRefRecord(raw)
	if err != nil {
		panic(fmt.Sprintf("wal: decode %q: %v", k, err))
	}
	return r, true
}

// Txn implements engine.ColdStore: the side record when something changed
// it, else the one the entry implies (fresh records are not stored).
func (s *State) Txn(orgID, txID string) (engine.TxnState, bool) {
	var t engine.TxnState
	if s.mustGetJSON(txnKey(orgID, txID), &t) {
		return t, true
	}
	raw := s.mustGet(entryKey(orgID, txID))
	if raw == nil {
		return t, false
	}
	var e engine.Entry
	if _, err := engine.DecodeStoredEntry(raw, orgID, txID, &e); err != nil {
		panic(fmt.Sprintf("wal: decode entry %s/%s: %v", orgID, txID, err))
	}
	return engine.TxnFromEntry(&e), true
}

// Hold implements engine.ColdStore.
func (s *State) Hold(id string) (engine.Hold, bool) {
	var h engine.Hold
	return h, s.mustGetJSON(holdKey(id), &h)
}

// Recovered is what the engine keeps in memory, as persisted.
type Recovered struct {
	Orgs     []engine.OrgRecord
	Keys     []engine.APIKey
	Holds    []engine.Hold // open ones
	Settings engine.Settings
}

// Recover reads what the engine keeps in memory: orgs, keys, open holds and
// the group's settings.
func (s *State) Recover(group uint8) (Recovered, error) {
	var r Recovered
	var err error
	if r.Orgs, r.Keys, err = s.LoadEngine(); err != nil {
		return r, err
	}
	err = s.scan([]byte{prefixOpen, keySep}, func(k, _ []byte) error {
		id := string(k[len(k)-len(engine.PrefixReservation)-24:])
		h, ok := s.Hold(id)
		if !ok {
			return fmt.Errorf("wal: open hold %s has no record", id)
		}
		r.Holds = append(r.Holds, h)
		return nil
	})
	if err != nil {
		return r, err
	}
	s.mustGetJSON(settingsKey(group), &r.Settings)
	return r, nil
}

// Topup implements engine.ColdStore.
func (s *State) Topup(id string) (engine.TopupRecord, bool) {
	var t engine.TopupRecord
	return t, s.mustGetJSON(topupKey(id), &t)
}

// mustGet returns the value of key, or nil when it is absent. A read error
// stops the process: deciding money on a guess could apply it twice.
func (s *State) mustGet(key []byte) []byte {
	raw, err := s.get(key)
	if err != nil {
		panic(fmt.Sprintf("wal: read %q: %v", key, err))
	}
	return raw
}

func (s *State) mustGetJSON(key []byte, v any) bool {
	raw := s.mustGet(key)
	if raw == nil {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		panic(fmt.Sprintf("wal: decode %q: %v", key, err))
	}
	return true
}

// Applied returns a group's applied index and the time of its last batch.
func (s *State) Applied(group uint8) (index uint64, lastTimeMs int64, err error) {
	v, err := s.get(appliedKey(group))
	if err != nil || len(v) != 16 {
		return 0, 0, err
	}
	return binary.BigEndian.Uint64(v[0:8]), int64(binary.BigEndian.Uint64(v[8:16])), nil
}

// LoadEngine reads what the engine keeps in memory: every org and key.
func (s *State) LoadEngine() ([]engine.OrgRecord, []engine.APIKey, error) {
	var orgs []engine.OrgRecord
	err := s.scan([]byte{prefixOrg, keySep}, func(k, v []byte) error {
		orgs = append(orgs, engine.OrgRecord{})
		if err := engine.DecodeOrgRecord(v, &orgs[len(orgs)-1]); err != nil {
			return fmt.Errorf("wal: org record %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var keys []engine.APIKey
	err = s.scan([]byte{prefixKey, keySep}, func(key, v []byte) error {
		keys = append(keys, engine.APIKey{})
		if err := engine.DecodeAPIKey(v, &keys[len(keys)-1]); err != nil {
			return fmt.Errorf("wal: API key record %q: %w", key, err)
		}
		return nil
	})
	return orgs, keys, err
}

// scan calls fn for every key with prefix, in order. fn must not keep k or v.
func (s *State) scan(prefix []byte, fn func(k, v []byte) error) error {
	return scanReader(s.db, prefix, fn)
}

// scanReader is scan over any Pebble reader (the DB or a snapshot).
func scanReader(r pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyPrefixEnd(prefix)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// Sync makes every write so far durable.
func (s *State) Sync() error { return s.db.LogData(nil, pebble.Sync) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("wal: encode %T: %v", v, err))
	}
	return b
}
