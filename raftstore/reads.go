package raftstore

import (
	"github.com/orbit/orbit/engine"
)

// Reads. On a single node every acknowledged write is applied before it is
// acknowledged, so the engine's memory reflects it; the state DB may lag by
// the state write under way (answers.go), so every read of it first waits
// for that write (awaitPersisted).

// awaitPersisted waits until the state DB holds everything the engine has
// applied so far. It fails only when the node has stopped on a storage
// fault.
func (n *Node) awaitPersisted() error {
	if n.persisted.wait(n.engine.AppliedIndex(), n.faulted) {
		return nil
	}
	return n.Fault()
}

// Wallet returns an org's wallet.
func (n *Node) Wallet(org string) (engine.WalletView, bool) { return n.engine.Wallet(org) }

// OrgRecord returns an org.
func (n *Node) OrgRecord(org string) (engine.OrgRecord, bool) { return n.engine.OrgRecord(org) }

// Orgs returns every org.
func (n *Node) Orgs() []engine.OrgRecord { return n.engine.Orgs() }

// OrgCount returns how many orgs the node holds.
func (n *Node) OrgCount() int { return n.engine.OrgCount() }

// KeyByHash returns the key with the given secret hash.
func (n *Node) KeyByHash(hash string) (*engine.APIKey, bool) { return n.engine.KeyByHash(hash) }

// KeyByID returns one of an org's keys.
func (n *Node) KeyByID(org, id string) (engine.APIKey, bool) { return n.engine.KeyByID(org, id) }

// Keys returns an org's keys.
func (n *Node) Keys(org string) []engine.APIKey { return n.engine.Keys(org) }

// Transactions lists an org's ledger entries.
func (n *Node) Transactions(org string, q engine.TxQuery) ([]engine.EntryView, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return nil, false, err
	}
	return n.state.Transactions(org, q)
}

// Transaction returns one ledger entry.
func (n *Node) Transaction(org, id string) (engine.EntryView, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return engine.EntryView{}, false, err
	}
	return n.state.Transaction(org, id)
}

// Usage returns an org's daily usage rows.
func (n *Node) Usage(org string, fromDay, toDay int64) ([]engine.UsageRow, error) {
	if err := n.awaitPersisted(); err != nil {
		return nil, err
	}
	return n.state.Usage(org, fromDay, toDay)
}

// Audit recomputes every balance and every entry's chain hash from the
// durable ledger and compares them with the stored wallet of the same
// applied index (its balance and chain head), and each in-memory wallet with
// its stored record when neither has moved since.
func (n *Node) Audit() (orgsChecked int, mismatches []engine.AuditMismatch, err error) {
	if err := n.awaitPersisted(); err != nil {
		return 0, nil, err
	}
	a, err := n.state.Audit()
	if err != nil {
		return 0, nil, err
	}
	mismatches = a.Problems
	// Every wallet in memory that has not changed since the stored state's
	// applied index must be stored (newer ones may not be yet).
	applied := a.Applied[group]
	for _, mem := range n.engine.Orgs() {
		if !a.HasWallet(mem.ID) && mem.Index <= applied {
			mismatches = append(mismatches, engine.AuditMismatch{OrgID: mem.ID, Problem: engine.AuditStoredWalletMissing,
				BalanceMicros: mem.BalanceMicros})
		}
	}
	for _, o := range a.Orgs {
		sum := a.LedgerSums[o.ID]
		if o.Chain != a.ChainHeads[o.ID] {
			mismatches = append(mismatches, engine.AuditMismatch{OrgID: o.ID, Problem: engine.AuditChainHead})
		}
		mem, ok := n.engine.OrgRecord(o.ID)
		switch {
		case sum != o.BalanceMicros:
			mismatches = append(mismatches, engine.AuditMismatch{OrgID: o.ID, Problem: engine.AuditBalance,
				BalanceMicros: o.BalanceMicros, LedgerSumMicros: sum})
		case !ok:
			mismatches = append(mismatches, engine.AuditMismatch{OrgID: o.ID, Problem: engine.AuditWalletMissing, LedgerSumMicros: sum})
		case mem.Index == o.Index && mem.BalanceMicros != sum:
			mismatches = append(mismatches, engine.AuditMismatch{OrgID: o.ID, Problem: engine.AuditMemory,
				BalanceMicros: mem.BalanceMicros, LedgerSumMicros: sum})
		}
	}
	return len(a.Orgs), mismatches, nil
}

// Ready reports whether the node has recovered and knows a leader.
//
// A node that hit a storage fault is never ready again until reopened.
// Recovery is done once raft has re-applied every log entry this node held
// when it started: before that, local state may lag what was acknowledged
// before a restart, so reads and writes wait (503).
func (n *Node) Ready() bool {
	if n.Fault() != nil {
		return false // stopped on a storage fault (see failStop)
	}
	if !n.recovered.Load() {
		if !n.replayedStartLog() {
			return false
		}
		n.recovered.Store(true)
	}
	// The leader knows a leader: an atomic read, no lock, on the hot path.
	if n.IsLeader() {
		return true
	}
	a, _ := n.raft.LeaderWithID()
	return a != ""
}

// replayedStartLog reports whether raft has re-applied the log this node
// held when it started. A node that led before its restart may hold a tail
// of entries that never committed; a new leader replaces that tail, so the
// log then ends before the old last index, and raft never applies up to it.
// Then the log that replaced it counts: everything committed in it is
// applied. (Only a leader's AppendEntries shortens the log, so this cannot
// fire before the node has heard from a leader.)
func (n *Node) replayedStartLog() bool {
	applied := n.raft.AppliedIndex()
	if applied >= n.startLastIndex {
		return true
	}
	commit := n.raft.CommitIndex()
	return n.raft.LastIndex() < n.startLastIndex && commit > 0 && applied >= commit
}

// Invoices lists an org's invoices, newest first.
func (n *Node) Invoices(org string, limit int) ([]engine.InvoiceRecord, error) {
	if err := n.awaitPersisted(); err != nil {
		return nil, err
	}
	return n.state.Invoices(org, limit)
}

// Invoice returns one invoice.
func (n *Node) Invoice(org, id string) (engine.InvoiceRecord, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return engine.InvoiceRecord{}, false, err
	}
	return n.state.Invoice(org, id)
}

// Topup returns a top-up.
func (n *Node) Topup(id string) (engine.TopupRecord, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return engine.TopupRecord{}, false, err
	}
	return n.state.TopupByID(id)
}

// Estimate prices usage for admission with the cards in force now.
func (n *Node) Estimate(org, channel string, u *engine.Usage) (int64, string, bool) {
	return n.engine.Estimate(org, channel, u)
}

// Rates returns the org's effective rate card.
func (n *Node) Rates(org string) (engine.RateCard, int64, bool) { return n.engine.Rates(org) }

// Hold returns one of an org's reservations as last applied.
func (n *Node) Hold(org, id string) (engine.Hold, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return engine.Hold{}, false, err
	}
	h, ok := n.state.Hold(id)
	if !ok || h.OrgID != org {
		return engine.Hold{}, false, nil
	}
	return h, true, nil
}

// TopupByPaymentIntent finds the top-up a payment intent paid.
func (n *Node) TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error) {
	if err := n.awaitPersisted(); err != nil {
		return engine.TopupRecord{}, false, err
	}
	return n.state.TopupByPaymentIntent(pi)
}

// FxRates returns the committed FX table (USD per unit x 10^8).
func (n *Node) FxRates() map[string]int64 { return n.engine.FxRates() }

// DefaultRates returns the default rate card and its version.
func (n *Node) DefaultRates() (engine.RateCard, int64) {
	st := n.engine.Settings()
	if st.DefaultCard == nil {
		return engine.RateCard{Channels: map[string]engine.ChannelRate{}}, st.DefaultCardVersion
	}
	return *st.DefaultCard, st.DefaultCardVersion
}
