package wal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orbit/orbit/engine"
)

// Transactions lists an org's entries newest first, by (created_at, id)
// descending, which is id order. A listing continued from an entry never
// repeats or skips an older entry, because new entries always sort newer.
func (s *State) Transactions(org string, q engine.TxQuery) ([]engine.EntryView, bool, error) {
	prefix := orgScoped(prefixEntry, org, 0)
	lower := prefix
	if q.FromMs > 0 {
		lower = append(append([]byte(nil), prefix...), engine.FirstIDAt(engine.PrefixTransaction, q.FromMs)...)
	}
	upper := keyPrefixEnd(prefix)
	if q.ToMs > 0 {
		upper = append(append([]byte(nil), prefix...), engine.FirstIDAt(engine.PrefixTransaction, q.ToMs)...)
	}
	if q.BeforeID != "" {
		if b := append(append([]byte(nil), prefix...), q.BeforeID...); string(b) < string(upper) {
			upper = b
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var out []engine.EntryView
	for it.Last(); it.Valid(); it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, false, err
		}
		var e engine.Entry
		if _, err := engine.DecodeStoredEntry(v, org, string(it.Key()[len(prefix):]), &e); err != nil {
			return nil, false, err
		}
		if q.Type != 0 && e.Type != q.Type {
			continue
		}
		if q.Channel != "" && channelOf(e.Metadata) != q.Channel {
			continue
		}
		if len(out) == q.Limit {
			return out, true, s.join(org, nil, out...)
		}
		out = append(out, engine.EntryView{Entry: e})
	}
	return out, false, s.join(org, it.Error(), out...)
}

func channelOf(md engine.Metadata) string {
	v, ok := md.Get("channel")
	if !ok || len(v) < 2 {
		return ""
	}
	return strings.Trim(v, `"`)
}

// join fills in what side records derive for refundable entries.
func (s *State) join(org string, err error, views ...engine.EntryView) error {
	if err != nil {
		return err
	}
	for i := range views {
		if t := views[i].Type; t != engine.EntrySpend && t != engine.EntryTopup {
			continue
		}
		var st engine.TxnState
		if s.mustGetJSON(txnKey(org, views[i].ID), &st) {
			views[i].RefundedAtMs = st.RefundedAtMs
			views[i].Delivery = st.Delivery
		}
	}
	return nil
}

// Transaction returns one of an org's entries.
func (s *State) Transaction(org, id string) (engine.EntryView, bool, error) {
	raw, err := s.get(entryKey(org, id))
	if err != nil || raw == nil {
		return engine.EntryView{}, false, err
	}
	var v engine.EntryView
	if _, err := engine.DecodeStoredEntry(raw, org, id, &v.Entry); err != nil {
		return engine.EntryView{}, false, err
	}
	views := []engine.EntryView{v}
	if err := s.join(org, nil, views...); err != nil {
		return engine.EntryView{}, false, err
	}
	return views[0], true, nil
}

// Usage returns an org's daily usage rows for days in [fromDay, toDay].
func (s *State) Usage(org string, fromDay, toDay int64) ([]engine.UsageRow, error) {
	lower := usageDayPrefix(org, fromDay)
	upper := usageDayPrefix(org, toDay+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []engine.UsageRow
	base := len(orgScoped(prefixUsage, org, 0))
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		rest := k[base:]
		if len(rest) < 9 {
			continue
		}
		day := int64(binary.BigEndian.Uint64(rest[:8]))
		chGroup := string(rest[8:])
		ch, grp, _ := strings.Cut(chGroup, "\x00")
		u := decodeUsage(v)
		out = append(out, engine.UsageRow{Day: day, Channel: ch, Group: grp, Messages: u.messages, Delivered: u.delivered, Failed: u.failed, CostMicros: u.costMicros})
	}
	return out, it.Error()
}

// Audit is what one consistent view of the durable state says about money.
type Audit struct {
	// LedgerSums is each org's sum of ledger entries.
	LedgerSums map[string]int64
	// ChainHeads is the hash of each org's newest entry, as recomputed.
	ChainHeads map[string]engine.ChainHash
	// Orgs are the org records stored with the same applied index.
	Orgs []engine.OrgRecord
	// Applied is each group's applied index stored with them.
	Applied map[uint8]uint64
	// Entries is how many ledger entries were read.
	Entries int
	// Problems are entries that are unreadable, out of place, or break
	// their org's running balance or hash chain, and orgs with ledger
	// entries but no stored wallet.
	Problems []engine.AuditMismatch

	stored map[string]bool // the ids of Orgs
}

// HasWallet reports whether org's wallet record is among Orgs.
func (a *Audit) HasWallet(org string) bool { return a.stored[org] }

// Audit walks every org's ledger in order from one Pebble snapshot (so the
// org records read with it are at the same applied index, whatever the FSM
// writes meanwhile), recomputing each balance and each entry's chain hash
// from the stored bytes.
//
// After a bad entry the walk takes that entry's stored hash and balance as
// the chain's new start, so each tampered entry is reported once and the
// entries after it are still checked.
func (s *State) Audit() (Audit, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	a := Audit{LedgerSums: make(map[string]int64), ChainHeads: make(map[string]engine.ChainHash)}
	balances := make(map[string]int64) // the running balance_after, resynchronized after a break
	var canonical []byte               // the bytes an entry's hash covers, rebuilt per entry
	err := scanReader(snap, []byte{prefixEntry, keySep}, func(k, v []byte) error {
		a.Entries++
		org, id, ok := splitOrgScoped(k)
		if !ok {
			a.Problems = append(a.Problems, engine.AuditMismatch{Problem: engine.AuditMisplaced, EntryID: string(k)})
			return nil
		}
		var e engine.Entry
		hashed, err := engine.DecodeStoredEntry(v, org, id, &e)
		switch {
		case err != nil:
			a.Problems = append(a.Problems, engine.AuditMismatch{OrgID: org, EntryID: id, Problem: engine.AuditUnreadable})
			return nil
		case e.OrgID != org || e.ID != id:
			a.Problems = append(a.Problems, engine.AuditMismatch{OrgID: org, EntryID: id, Problem: engine.AuditMisplaced})
			return nil
		}
		a.LedgerSums[org] += e.AmountMicros
		if running := balances[org] + e.AmountMicros; running != e.BalanceAfterMicros {
			a.Problems = append(a.Problems, engine.AuditMismatch{OrgID: org, EntryID: id, Problem: engine.AuditBalanceAfter,
				BalanceMicros: e.BalanceAfterMicros, LedgerSumMicros: running})
		}
		balances[org] = e.BalanceAfterMicros
		// Entries stored as JSON by an earlier version carry no hash: the
		// chain starts after them.
		if hashed {
			canonical = engine.AppendEntry(canonical[:0], &e)
		}
		if hashed && engine.NextChainHash(a.ChainHeads[org], canonical) != e.Hash {
			a.Problems = append(a.Problems, engine.AuditMismatch{OrgID: org, EntryID: id, Problem: engine.AuditHash})
		}
		a.ChainHeads[org] = e.Hash
		return nil
	})
	if err != nil {
		return a, err
	}
	err = scanReader(snap, []byte{prefixOrg, keySep}, func(k, v []byte) error {
		a.Orgs = append(a.Orgs, engine.OrgRecord{})
		if err := engine.DecodeOrgRecord(v, &a.Orgs[len(a.Orgs)-1]); err != nil {
			return fmt.Errorf("wal: org record %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return a, err
	}
	// A ledger whose wallet record is gone: the wallet was deleted on disk,
	// and a restart would not even load the org (recovery loads wallets).
	a.stored = make(map[string]bool, len(a.Orgs))
	for _, o := range a.Orgs {
		a.stored[o.ID] = true
	}
	var orphans []string
	for org := range a.LedgerSums {
		if !a.HasWallet(org) {
			orphans = append(orphans, org)
		}
	}
	slices.Sort(orphans)
	for _, org := range orphans {
		a.Problems = append(a.Problems, engine.AuditMismatch{OrgID: org, Problem: engine.AuditStoredWalletMissing,
			LedgerSumMicros: a.LedgerSums[org]})
	}
	a.Applied = make(map[uint8]uint64)
	err = scanReader(snap, []byte{prefixApplied, keySep}, func(k, v []byte) error {
		if len(k) == 3 && len(v) == 16 {
			a.Applied[k[2]] = binary.BigEndian.Uint64(v[:8])
		}
		return nil
	})
	return a, err
}

// splitOrgScoped splits a key made by orgScoped into its org and the rest.
func splitOrgScoped(k []byte) (org, rest string, ok bool) {
	if len(k) < 2 {
		return "", "", false
	}
	body := string(k[2:])
	i := strings.IndexByte(body, keySep)
	if i <= 0 {
		return "", "", false
	}
	return body[:i], body[i+1:], true
}

// Invoices lists an org's invoices and receipts, newest first.
func (s *State) Invoices(org string, limit int) ([]engine.InvoiceRecord, error) {
	prefix := orgScoped(prefixInvoice, org, 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyPrefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []engine.InvoiceRecord
	for it.Last(); it.Valid(); it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		var inv engine.InvoiceRecord
		if err := json.Unmarshal(v, &inv); err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAtMs > out[j].CreatedAtMs })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, it.Error()
}

// TopupByPaymentIntent finds the top-up a payment intent paid.
func (s *State) TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error) {
	id, err := s.get(intentKey(pi))
	if err != nil || id == nil {
		return engine.TopupRecord{}, false, err
	}
	return s.TopupByID(string(id))
}

// Invoice returns one of an org's invoices.
func (s *State) Invoice(org, id string) (engine.InvoiceRecord, bool, error) {
	raw, err := s.get(invoiceKey(org, id))
	if err != nil || raw == nil {
		return engine.InvoiceRecord{}, false, err
	}
	var inv engine.InvoiceRecord
	return inv, true, json.Unmarshal(raw, &inv)
}

// TopupByID returns a top-up.
func (s *State) TopupByID(id string) (engine.TopupRecord, bool, error) {
	raw, err := s.get(topupKey(id))
	if err != nil || raw == nil {
		return engine.TopupRecord{}, false, err
	}
	var t engine.TopupRecord
	return t, true, json.Unmarshal(raw, &t)
}

// Digest hashes every state key and value (everything outside the raft
// keyspace) from one snapshot, with the applied index of group it covers.
// Replicas that applied the same log report the same digest.
func (s *State) Digest(group uint8) (digest string, applied uint64, err error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	h := sha256.New()
	var n [8]byte
	write := func(lower, upper []byte) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			for _, b := range [][]byte{it.Key(), v} {
				binary.BigEndian.PutUint64(n[:], uint64(len(b)))
				h.Write(n[:])
				h.Write(b)
			}
		}
		return it.Error()
	}
	if err := write(nil, []byte{prefixRaft}); err != nil {
		return "", 0, err
	}
	if err := write([]byte{prefixRaft + 1}, nil); err != nil {
		return "", 0, err
	}
	if v, closer, err := snap.Get(appliedKey(group)); err == nil {
		if len(v) == 16 {
			applied = binary.BigEndian.Uint64(v[:8])
		}
		closer.Close()
	}
	return hex.EncodeToString(h.Sum(nil)), applied, nil
}
