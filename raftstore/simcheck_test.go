package raftstore

import (
	"sort"
	"strings"

	"github.com/orbit/orbit/engine"
)

// The model side of the simulation (sim_test.go): what the clients were
// told, and the checks of SPEC section 7 that hold the store and the engine
// against it.

// simRef is the model of one (org, reference): every body sent for it and
// what the clients were told.
type simRef struct {
	org, ref string
	bodies   []int64
	// ackTx and ackAmount: the charge a client was told exists (201 or a
	// replay), empty until then.
	ackTx     string
	ackAmount int64
	// conflicts are bodies answered 409: another body was applied.
	conflicts []int64
}

func containsAmount(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// acknowledge checks one answer against the model and records it.
func (s *sim) acknowledge(req simRequest, r engine.Result) {
	s.res.acks++
	m := s.refs[req.org+"/"+req.ref]
	switch r.Code {
	case engine.CodeOK:
		if m.ackTx != "" {
			s.violate("%s charged again (%s) after it was acknowledged as %s", req.ref, r.TxID, m.ackTx)
		}
		if r.Entry == nil || r.Entry.AmountMicros != -req.amount {
			s.violate("%s: 201 with entry %+v for amount %d", req.ref, r.Entry, req.amount)
		}
		m.ackTx, m.ackAmount = r.TxID, req.amount
	case engine.CodeReplayed:
		if m.ackTx != "" && (r.TxID != m.ackTx || req.amount != m.ackAmount) {
			s.violate("%s replayed as %s (amount %d), acknowledged before as %s (amount %d)", req.ref, r.TxID, req.amount, m.ackTx, m.ackAmount)
		}
		if m.ackTx == "" {
			m.ackTx, m.ackAmount = r.TxID, req.amount
		}
	case engine.CodeConflict:
		if m.ackTx != "" && req.amount == m.ackAmount {
			s.violate("%s: conflict for the body it was acknowledged with", req.ref)
		}
		m.conflicts = append(m.conflicts, req.amount)
	case engine.CodeInsufficientFunds:
		if m.ackTx != "" {
			s.violate("%s: refused for funds after it was acknowledged as %s", req.ref, m.ackTx)
		}
	default:
		s.violate("%s: unexpected result %v %s", req.ref, r.Code, r.Message)
	}
	s.trace("answer %s %d: %v %s", req.ref, req.amount, r.Code, r.TxID)
}

// check holds the model against the stored ledger and the engine.
func (s *sim) check() {
	if s.faulted() != nil || !s.dirty {
		return // a fault is checked after the restart
	}
	s.dirty = false
	a, err := s.state.Audit()
	if err != nil {
		s.violate("audit: %v", err)
		return
	}
	if len(a.Problems) > 0 {
		s.violate("ledger problems (balance or hash chain): %+v", a.Problems)
	}
	stored := map[string]engine.OrgRecord{}
	for _, o := range a.Orgs {
		stored[o.ID] = o
	}
	for _, org := range s.orgs {
		o, ok := stored[org]
		if !ok {
			s.violate("org %s lost", org)
			continue
		}
		if o.Chain != a.ChainHeads[org] {
			s.violate("org %s: stored chain head %x, ledger's newest entry %x", org, o.Chain, a.ChainHeads[org])
		}
		sum := a.LedgerSums[org]
		if o.BalanceMicros != sum || sum < 0 || o.BalanceMicros-o.ReservedMicros < 0 {
			s.violate("org %s: stored balance %d, ledger sum %d", org, o.BalanceMicros, sum)
		}
		// Without a fault every applied batch was persisted: the engine's
		// memory and the store agree exactly.
		if mem, ok := s.eng.OrgRecord(org); !ok || mem.BalanceMicros != sum || mem.ReservedMicros != o.ReservedMicros {
			s.violate("org %s: engine balance %d, ledger sum %d", org, mem.BalanceMicros, sum)
		}
		s.checkLedger(org)
	}
}

func (s *sim) checkLedger(org string) {
	seen := map[string]engine.EntryView{}
	q := engine.TxQuery{Limit: 200}
	for {
		page, more, err := s.state.Transactions(org, q)
		if err != nil {
			s.violate("ledger of %s: %v", org, err)
			return
		}
		for _, e := range page {
			if prev, dup := seen[e.Reference]; dup {
				s.violate("%s applied twice: %s and %s", e.Reference, prev.ID, e.ID)
			}
			seen[e.Reference] = e
			q.BeforeID = e.ID
		}
		if !more {
			break
		}
	}
	if _, ok := seen["adjustment:fund"]; !ok {
		s.violate("funding of %s lost", org)
	}
	for ref, e := range seen {
		name, isCharge := strings.CutPrefix(ref, "charge:")
		if !isCharge {
			continue
		}
		m := s.refs[org+"/"+name]
		if m == nil {
			s.violate("ledger charge %s nobody sent", ref)
			continue
		}
		if !containsAmount(m.bodies, -e.AmountMicros) {
			s.violate("%s charged %d, sent with %v", ref, -e.AmountMicros, m.bodies)
		}
	}
	keys := make([]string, 0, len(s.refs))
	for k := range s.refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := s.refs[k]
		if m.org != org {
			continue
		}
		e, ok := seen["charge:"+m.ref]
		if len(m.conflicts) > 0 && (!ok || containsAmount(m.conflicts, -e.AmountMicros)) {
			s.violate("%s answered 409 for %v, but the ledger holds %+v", m.ref, m.conflicts, e.Entry)
		}
		if m.ackTx == "" {
			continue
		}
		switch {
		case !ok:
			s.violate("acknowledged charge %s (%s) lost", m.ref, m.ackTx)
		case e.ID != m.ackTx || e.AmountMicros != -m.ackAmount:
			s.violate("acknowledged charge %s is %s %d, the ledger holds %s %d", m.ref, m.ackTx, m.ackAmount, e.ID, -e.AmountMicros)
		}
	}
}
