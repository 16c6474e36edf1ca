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
	// keys are the org's API keys, in creation order (a revoked key is
	// replaced by its revoked copy). Under the engine's mu, like rec.
	keys []*APIKey
	// holds are the org's open reservations, by id; nil while it has none,
	// which is most orgs most of the time (an empty map is an allocation
	// per org kept resident).
	holds map[string]*Hold

	// availAdmit is available funds as last applied, less the debits admitted
	// on this node and still in flight (see Admit).
	availAdmit atomic.Int64
	// blocked mirrors OperatorHold || Disputed; threshold the pause threshold.
	blocked   atomic.Bool
	threshold atomic.Int64
	// inflight counts commands admitted for this org and not yet settled.
	inflight atomic.Int64
	// settled counts Unadmit calls: a refused admission stands only if no
	// command settled between its look at availAdmit and its look at
	// inflight (AdmitDebit).
	settled atomic.Uint64
}

// keyIndex is the position of the key with id in o.keys, or -1.
func (o *Org) keyIndex(id string) int {
	for i, k := range o.keys {
		if k.ID == id {
			return i
		}
	}
	return -1
}

// addHold records an open hold.
func (o *Org) addHold(h *Hold) {
	if o.holds == nil {
		o.holds = make(map[string]*Hold, 1)
	}
	o.holds[h.ID] = h
}

// removeHold forgets a closed hold, and the map with the last one.
func (o *Org) removeHold(id string) {
	delete(o.holds, id)
	if len(o.holds) == 0 {
		o.holds = nil
	}
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

	orgs idMap[Org]    // org id -> its state
	keys idMap[APIKey] // key hash (hex) -> key (immutable; replaced on change)

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
		pendingRefs:   make(map[refKey]RefRecord),
		pendingTxns:   make(map[string]TxnState),
		pendingTopups: make(map[string]TopupRecord),
		pendingHolds:  make(map[string]Hold),
	}
}

// Load installs persisted state: used at startup and after a snapshot
// restore, before any Apply. It replaces everything the engine held. The
// engine keeps keys' backing array as its keys (no second copy of every key
// at start-up): the caller must not use the slice afterwards.
func (e *Engine) Load(orgs []OrgRecord, keys []APIKey, appliedIndex uint64, lastTimeMs int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pendingRefs = make(map[refKey]RefRecord)
	e.pendingTxns = make(map[string]TxnState)
	e.pendingTopups = make(map[string]TopupRecord)
	e.pendingHolds = make(map[string]Hold)
	e.settings = Settings{}
	loaded := make([]Org, len(orgs)) // one allocation for every org
	for i := range loaded {
		loaded[i].rec = orgs[i]
		loaded[i].publish(0)
	}
	e.orgs.replaceAll(len(loaded), func(i int) (string, *Org) { return loaded[i].rec.ID, &loaded[i] })
	for i := range keys {
		k := &keys[i]
		if o := e.org(k.OrgID); o != nil {
			k.OrgID = o.rec.ID // one copy of the id in memory, not one per key
			o.keys = append(o.keys, k)
		}
	}
	e.keys.replaceAll(len(keys), func(i int) (string, *APIKey) { return keys[i].Hash, &keys[i] })
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
	o, _ := e.orgs.load(id)
	return o
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
	e.orgs.each(func(o *Org) { out = append(out, o.rec.clone()) })
	sortOrgRecords(out)
	return out
}

// OrgCount returns how many orgs the engine holds, without copying them.
func (e *Engine) OrgCount() int { return e.orgs.len() }

// KeyByHash returns the API key whose secret hashes to hash (hex SHA-256).
func (e *Engine) KeyByHash(hash string) (*APIKey, bool) {
	return e.keys.load(hash)
}

// Keys returns an org's keys sorted by id.
func (e *Engine) Keys(orgID string) []APIKey {
	o := e.org(orgID)
	if o == nil {
		return []APIKey{}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]APIKey, 0, len(o.keys))
	for _, k := range o.keys {
		out = append(out, *k)
	}
	sortKeys(out)
	return out
}

// KeyByID returns one key of an org.
func (e *Engine) KeyByID(orgID, id string) (APIKey, bool) {
	o := e.org(orgID)
	if o == nil {
		return APIKey{}, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if i := o.keyIndex(id); i >= 0 {
		return *o.keys[i], true
	}
	return APIKey{}, false
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
