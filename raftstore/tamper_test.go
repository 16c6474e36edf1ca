package raftstore

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/wal"
)

// TestAuditFindsTampering changes the stored ledger behind the node's back
// (with the node stopped, straight through Pebble, as someone with the
// disk would) and requires the audit to name what was done: one flipped
// byte in an entry, an entry removed from the middle, the newest entry
// removed, an entry moved to another key.
func TestAuditFindsTampering(t *testing.T) {
	cases := []struct {
		name string
		// tamper changes the state DB given the keys of one org's entries,
		// oldest first, and returns the entry id it expects reported.
		tamper func(t *testing.T, db *pebble.DB, keys [][]byte) string
		want   engine.AuditProblem
	}{
		{"one flipped byte in an entry's amount", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			k := keys[2]
			v := get(t, db, k)
			// The amount is a varint after the id, the org and the type: flip
			// its lowest bit, leaving a well-formed entry that says another
			// amount.
			var e engine.Entry
			if _, err := engine.DecodeStoredEntry(v, orgOf(k), idOf(k), &e); err != nil {
				t.Fatal(err)
			}
			e.AmountMicros ^= 1 << 1
			e.BalanceAfterMicros ^= 1 << 1 // keep balance_after consistent: only the chain can tell
			set(t, db, k, engine.AppendStoredEntry(nil, &e))
			return e.ID
		}, engine.AuditHash},
		{"one flipped byte anywhere in the stored bytes", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			k := keys[3]
			v := bytes.Clone(get(t, db, k))
			v[len(v)/2] ^= 0x01
			set(t, db, k, v)
			return idOf(k)
		}, ""}, // hash_mismatch, or unreadable_entry if the flip broke the encoding
		{"an entry moved to another key of its org", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			// The stored bytes do not name the entry's id: the key does, and
			// the hash covers it.
			moved := append(bytes.Clone(keys[6]), '0') // sorts right after it
			set(t, db, moved, get(t, db, keys[6]))
			del(t, db, keys[6])
			return idOf(moved)
		}, engine.AuditHash},
		{"an entry removed from the middle", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			del(t, db, keys[4])
			return idOf(keys[5]) // the next entry no longer chains
		}, engine.AuditHash},
		{"the newest entry removed", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			del(t, db, keys[len(keys)-1])
			return ""
		}, engine.AuditChainHead},
		{"the wallet record removed", func(t *testing.T, db *pebble.DB, keys [][]byte) string {
			// Recovery loads wallets from their records, so the org is gone
			// from memory too: only its ledger is left to tell.
			del(t, db, []byte("o/"+orgOf(keys[0])))
			return ""
		}, engine.AuditStoredWalletMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := mustOpen(t, dir, freeAddr(t))
			org := mustFundedOrg(t, n, 1_000_000)
			for i := 0; i < 8; i++ {
				mustSubmit(t, n, charge(org, fmt.Sprint("c", i), int64(1000+i)))
			}
			mustAuditClean(t, n)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}

			db, err := wal.Open(filepath.Join(dir, "state"), nil)
			if err != nil {
				t.Fatal(err)
			}
			keys := entryKeys(t, db, org)
			if len(keys) != 9 {
				t.Fatalf("%d entries stored, want 9 (the funding and 8 charges)", len(keys))
			}
			wantEntry := tc.tamper(t, db, keys)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			n = mustOpen(t, dir, freeAddr(t))
			defer n.Close()
			_, mismatches, err := n.Audit()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range mismatches {
				if m.OrgID != org {
					t.Errorf("mismatch for another org: %+v", m)
				}
				problemOK := m.Problem == tc.want || (tc.want == "" && (m.Problem == engine.AuditHash || m.Problem == engine.AuditUnreadable))
				if problemOK && (wantEntry == "" || m.EntryID == wantEntry) {
					found = true
				}
			}
			if !found {
				t.Fatalf("audit did not report %q for entry %q; it reported %+v", tc.want, wantEntry, mismatches)
			}
		})
	}
}

func entryKeys(t *testing.T, db *pebble.DB, org string) [][]byte {
	prefix := []byte("t/" + org + "/")
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(bytes.Clone(prefix[:len(prefix)-1]), '/'+1)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys [][]byte
	for it.First(); it.Valid(); it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
	}
	return keys
}

func idOf(k []byte) string { return string(k[bytes.LastIndexByte(k, '/')+1:]) }

// orgOf is the org of an entry key, t/<org>/<id>.
func orgOf(k []byte) string { return string(k[2:bytes.LastIndexByte(k, '/')]) }

func get(t *testing.T, db *pebble.DB, k []byte) []byte {
	v, closer, err := db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}

func set(t *testing.T, db *pebble.DB, k, v []byte) {
	if err := db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, db *pebble.DB, k []byte) {
	if err := db.Delete(k, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestAuditFindsAWalletMissingFromStorage removes a wallet's stored record
// while the node runs (as a lost write would), and requires the audit to
// report the wallet it still holds in memory; a wallet created after the
// stored state is not reported.
func TestAuditFindsAWalletMissingFromStorage(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	defer n.Close()
	org := mustFundedOrg(t, n, 1_000_000)
	other := mustFundedOrg(t, n, 1_000_000)
	mustSubmit(t, n, charge(org, "c1", 1000))
	mustAuditClean(t, n)

	del(t, n.state.DB(), []byte("o/"+org))
	checked, mismatches, err := n.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if checked != 1 {
		t.Errorf("audit checked %d stored wallets, want 1 (%s's is gone)", checked, org)
	}
	var found bool
	for _, m := range mismatches {
		switch {
		case m.OrgID == org && m.Problem == engine.AuditStoredWalletMissing:
			found = true
		case m.OrgID == other:
			t.Errorf("the intact org was reported: %+v", m)
		}
	}
	if !found {
		t.Fatalf("audit did not report %s's stored wallet missing; it reported %+v", org, mismatches)
	}
}
