package engine

import (
	"sync"
	"sync/atomic"
)

// OrgRecord is the persisted part of an org: identity, settings, pause state
// and wallet totals. Its size does not grow with the ledger.
type OrgRecord struct {
	ID                   string `json:"id"`
	Name                 string `json:"name"`
	CreatedAtMs          int64  `json:"created_at"`
	PauseThresholdMicros int64  `json:"threshold"`
	OperatorHold         bool   `json:"hold,omitempty"`
	HoldDetails          string `json:"hold_details,omitempty"`
	Disputed             bool   `json:"disputed,omitempty"`
	BalanceMicros        int64  `json:"balance"`
	ReservedMicros       int64  `json:"reserved"`
	// InvoiceSeq numbers the org's receipts; LastTopupID names its last paid
	// top-up.
	InvoiceSeq  int64  `json:"invoice_seq,omitempty"`
	LastTopupID string `json:"last_topup,omitempty"`
	// StripeCustomerID is the org's Stripe customer, created once.
	StripeCustomerID string `json:"stripe_customer,omitempty"`
	// RateOverride replaces the default card for the channels it names.
	RateOverride        *RateCard `json:"rates,omitempty"`
	RateOverrideVersion int64     `json:"rates_version,omitempty"`
	// Lots are the org's unexpired (or held) grants, earliest-expiring first.
	Lots []Lot `json:"lots,omitempty"`
	// Index is the log index of the last command that changed the org: the
	// org's as_of, which never goes backwards.
	Index uint64 `json:"index"`
	// Chain is the hash of the org's newest ledger entry (see ChainHash).
	Chain ChainHash `json:"chain"`
}

// clone returns a copy that shares no mutable memory with r (rate cards are
// immutable once committed).
func (r *OrgRecord) clone() OrgRecord {
	c := *r
	c.Lots = append([]Lot(nil), r.Lots...)
	return c
}

// Org is an org's in-memory state: its record, changed only by Apply under the
// engine's write lock, and the admission counters, read and changed by any
// goroutine without a lock.
type Org struct {
	rec OrgRecord
	// holds are the org's open reservations, by id.
	holds map[string]*Hold

	// availAdmit is available funds as last applied, less the debits admitted
	// on this node and still in flight (see Admit).
	availAdmit atomic.Int64
	// blocked mirrors OperatorHold || Disputed; threshold the pause threshold.
	blocked   atomic.Bool
	threshold atomic.Int64
	// inflight counts commands admitted for this org and not yet settled.
	inflight atomic.Int64
}

// APIKey is an org's API key as stored: never the secret, only its SHA-256.
type APIKey struct {
	ID          string `json:"id"`
	OrgID       string `json:"org"`
	Role        string `json:"role"`
	Hash        string `json:"hash"`
	Prefix      string `json:"prefix"`
	CreatedAtMs int64  `json:"created_at"`
	RevokedAtMs int64  `json:"revoked_at,omitempty"`
}

// Key roles.
const (
	RoleAdmin  = "admin"
	RoleCharge = "charge"
	RoleRead   = "read"
)

// ColdStore reads state that earlier batches persisted and the engine does
// not keep in memory (references, refundable transactions). Every replica
// reads it at the same applied index, so lookups keep Apply deterministic.
type ColdStore interface {
	Ref(orgID string, ns byte, ref string) (RefRecord, bool)
	Txn(orgID, txID string) (TxnState, bool)
	Topup(topupID string) (TopupRecord, bool)
	Hold(holdID string) (Hold, bool)
}

// Changes is everything one or more Apply calls decided that must be
// persisted, in the order it was decided.
type Changes struct {
	Group    uint8
	Index    uint64 // the last log index applied
	Entries  []Entry
	Refs     []RefPut
	Txns     []TxnState
	Orgs     []OrgRecord
	Keys     []APIKey
	Usage    []UsageDelta
	Topups   []TopupRecord
	Invoices []InvoiceRecord
	Holds    []Hold
	// Settings is set when the group's settings changed.
	Settings *Settings
}

// RefPut records a reference in a namespace.
type RefPut struct {
	OrgID string
	NS    byte
	Ref   string
	Rec   RefRecord
}

// Reset empties c for reuse.
func (c *Changes) Reset() {
	c.Index = 0
	c.Entries = c.Entries[:0]
	c.Refs = c.Refs[:0]
	c.Txns = c.Txns[:0]
	c.Orgs = c.Orgs[:0]
	c.Keys = c.Keys[:0]
	c.Usage = c.Usage[:0]
	c.Topups = c.Topups[:0]
	c.Invoices = c.Invoices[:0]
	c.Holds = c.Holds[:0]
	c.Settings = nil
}

type refKey struct {
	org string
	ns  byte
	ref string
}

// Engine holds every org's wallet and key in memory and decides commands.
type Engine struct {
	// mu guards every OrgRecord and the apply position against readers:
	// Apply holds it for writing for a whole batch, views for reading.
	mu sync.RWMutex

	orgs sync.Map // org id -> *Org
	keys sync.Map // key hash (hex) -> *APIKey (immutable; replaced on change)

	keyIDs  map[string]string   // key id -> hash; under mu
	orgKeys map[string][]string // org id -> its key ids, in creation order; under mu

	cold ColdStore

	// Written by this engine and not yet persisted: consulted before cold.
	pendingRefs   map[refKey]RefRecord
	pendingTxns   map[string]TxnState
	pendingTopups map[string]TopupRecord
	pendingHolds  map[string]Hold

	settings Settings
	// deadlines are the earliest hold and grant expiries (leader ticks).
	nextDeadlineMs atomic.Int64
	deadlines      deadlineHeap

	group        uint8
	appliedIndex uint64
	lastTimeMs   int64

	chainScratch []byte // reused by Apply to hash entries; under mu
}

// New returns an empty engine for one Raft group reading cold state from cold.
func New(group uint8, cold ColdStore) *Engine {
	return &Engine{
		group:         group,
		cold:          cold,
		keyIDs:        make(map[string]string),
		orgKeys:       make(map[string][]string),
		pendingRefs:   make(map[refKey]RefRecord),
		pendingTxns:   make(map[string]TxnState),
		pendingTopups: make(map[string]TopupRecord),
		pendingHolds:  make(map[string]Hold),
	}
}

// Load installs persisted state: used at startup and after a snapshot
// restore, before any Apply. It replaces everything the engine held.
func (e *Engine) Load(orgs []OrgRecord, keys []APIKey, appliedIndex uint64, lastTimeMs int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.orgs.Range(func(k, _ any) bool { e.orgs.Delete(k); return true })
	e.keys.Range(func(k, _ any) bool { e.keys.Delete(k); return true })
	e.keyIDs = make(map[string]string)
	e.orgKeys = make(map[string][]string)
	e.pendingRefs = make(map[refKey]RefRecord)
	e.pendingTxns = make(map[string]TxnState)
	e.pendingTopups = make(map[string]TopupRecord)
	e.pendingHolds = make(map[string]Hold)
	e.settings = Settings{}
	for _, r := range orgs {
		o := &Org{rec: r, holds: map[string]*Hold{}}
		o.publish(0)
		e.orgs.Store(r.ID, o)
	}
	for i := range keys {
		k := keys[i]
		e.keys.Store(k.Hash, &k)
		e.keyIDs[k.ID] = k.Hash
		e.orgKeys[k.OrgID] = append(e.orgKeys[k.OrgID], k.ID)
	}
	e.appliedIndex = appliedIndex
	e.lastTimeMs = lastTimeMs
	e.rebuildDeadlines()
}

// AppliedIndex returns the last log index applied.
func (e *Engine) AppliedIndex() uint64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.appliedIndex
}

// LastTimeMs returns the time of the last batch applied.
func (e *Engine) LastTimeMs() int64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.lastTimeMs
}

// Persisted tells the engine that every Changes it produced so far is now
// readable through its ColdStore, so it can drop its pending copies.
func (e *Engine) Persisted() {
	clear(e.pendingRefs)
	clear(e.pendingTxns)
	clear(e.pendingTopups)
	clear(e.pendingHolds)
}

func (e *Engine) org(id string) *Org {
	v, ok := e.orgs.Load(id)
	if !ok {
		return nil
	}
	return v.(*Org)
}

// Wallet returns a consistent view of an org's wallet.
func (e *Engine) Wallet(orgID string) (WalletView, bool) {
	o := e.org(orgID)
	if o == nil {
		return WalletView{}, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.viewLocked(o), true
}

// OrgRecord returns a copy of an org's record.
func (e *Engine) OrgRecord(orgID string) (OrgRecord, bool) {
	o := e.org(orgID)
	if o == nil {
		return OrgRecord{}, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return o.rec.clone(), true
}

// Orgs returns copies of every org record, sorted by id.
func (e *Engine) Orgs() []OrgRecord {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []OrgRecord
	e.orgs.Range(func(_, v any) bool { out = append(out, v.(*Org).rec.clone()); return true })
	sortOrgRecords(out)
	return out
}

// KeyByHash returns the API key whose secret hashes to hash (hex SHA-256).
func (e *Engine) KeyByHash(hash string) (*APIKey, bool) {
	v, ok := e.keys.Load(hash)
	if !ok {
		return nil, false
	}
	return v.(*APIKey), true
}

// Keys returns an org's keys sorted by id.
func (e *Engine) Keys(orgID string) []APIKey {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]APIKey, 0, len(e.orgKeys[orgID]))
	for _, id := range e.orgKeys[orgID] {
		if v, ok := e.keys.Load(e.keyIDs[id]); ok {
			out = append(out, *v.(*APIKey))
		}
	}
	sortKeys(out)
	return out
}

// KeyByID returns one key of an org.
func (e *Engine) KeyByID(orgID, id string) (APIKey, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	hash, ok := e.keyIDs[id]
	if !ok {
		return APIKey{}, false
	}
	v, ok := e.keys.Load(hash)
	if !ok || v.(*APIKey).OrgID != orgID {
		return APIKey{}, false
	}
	return *v.(*APIKey), true
}

func (e *Engine) viewLocked(o *Org) WalletView {
	r := &o.rec
	return WalletView{
		OrgID:           r.ID,
		BalanceMicros:   r.BalanceMicros,
		ReservedMicros:  r.ReservedMicros,
		ThresholdMicros: r.PauseThresholdMicros,
		OperatorHold:    r.OperatorHold,
		HoldDetails:     r.HoldDetails,
		Disputed:        r.Disputed,
		Group:           e.group,
		Index:           r.Index,
	}
}

// publish updates the admission mirrors after the record changed; delta is
// the change of available funds the apply caused (0 on load, where the
// counter is set outright).
func (o *Org) publish(delta int64) {
	if delta == 0 && o.inflight.Load() == 0 {
		o.availAdmit.Store(o.rec.BalanceMicros - o.rec.ReservedMicros)
	} else {
		o.availAdmit.Add(delta)
	}
	o.blocked.Store(o.rec.OperatorHold || o.rec.Disputed)
	o.threshold.Store(o.rec.PauseThresholdMicros)
}
