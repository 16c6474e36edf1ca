package wal

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orbit/orbit/engine"
)

// TestLoadEngineReadsEarlierJSONRecords: a store written before org records
// and API keys were binary (JSON values) still loads, next to binary ones.
func TestLoadEngineReadsEarlierJSONRecords(t *testing.T) {
	st := NewState(openTestDB(t, t.TempDir()))
	db := st.DB()
	defer st.Close()
	old := engine.OrgRecord{ID: "org_old", Name: "Old", BalanceMicros: 7, Index: 2}
	oldKey := engine.APIKey{ID: "key_old", OrgID: "org_old", Role: engine.RoleCharge, Hash: "h1", Prefix: "p"}
	if err := db.Set(orgKey(old.ID), mustJSON(&old), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(apiKeyKey(oldKey.Hash), mustJSON(&oldKey), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	cur := engine.OrgRecord{ID: "org_new", Name: "New", BalanceMicros: 9, Index: 3}
	curKey := engine.APIKey{ID: "key_new", OrgID: "org_new", Role: engine.RoleRead, Hash: "h2", Prefix: "q"}
	if err := st.Write(&engine.Changes{Index: 3, Orgs: []engine.OrgRecord{cur}, Keys: []engine.APIKey{curKey}}, 0); err != nil {
		t.Fatal(err)
	}
	orgs, keys, err := st.LoadEngine()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(orgs) != fmt.Sprint([]engine.OrgRecord{cur, old}) || fmt.Sprint(keys) != fmt.Sprint([]engine.APIKey{oldKey, curKey}) {
		t.Fatalf("loaded orgs %+v keys %+v", orgs, keys)
	}
}

// TestLedgerReadsEntriesOfEveryFormat: one org's ledger holding an entry in
// the first binary format (org and id in the stored bytes) and one in the
// current format (org and id only in the key) reads back whole, and its
// chain audits clean across the two.
func TestLedgerReadsEntriesOfEveryFormat(t *testing.T) {
	st := NewState(openTestDB(t, t.TempDir()))
	defer st.Close()
	const org = "org_mixed"
	v1 := engine.Entry{ID: "ct_0000000000000000000001", OrgID: org, Type: engine.EntryAdjustment, AmountMicros: 5000,
		BalanceAfterMicros: 5000, Reference: "adjustment:fund", CreatedAtMs: 1000}
	v1.Hash = engine.NextChainHash(engine.ChainHash{}, engine.AppendEntry(nil, &v1))
	if err := st.DB().Set(entryKey(org, v1.ID), append(engine.AppendEntry(nil, &v1), v1.Hash[:]...), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	v2 := engine.Entry{ID: "ct_0000000000000000000002", OrgID: org, Type: engine.EntrySpend, AmountMicros: -1200,
		BalanceAfterMicros: 3800, Reference: "charge:r1", CreatedAtMs: 2000}
	v2.Hash = engine.NextChainHash(v1.Hash, engine.AppendEntry(nil, &v2))
	wallet := engine.OrgRecord{ID: org, Name: "Mixed", BalanceMicros: 3800, Index: 2, Chain: v2.Hash}
	if err := st.Write(&engine.Changes{Index: 2, Entries: []engine.Entry{v2}, Orgs: []engine.OrgRecord{wallet}}, 0); err != nil {
		t.Fatal(err)
	}
	raw, err := st.get(entryKey(org, v2.ID))
	if err != nil || raw[0] != 0x02 || len(raw) >= len(engine.AppendEntry(nil, &v2))+len(v2.Hash) {
		t.Fatalf("the new entry is stored as %x (%v): want the current format, without org and id", raw, err)
	}

	views, more, err := st.Transactions(org, engine.TxQuery{Limit: 10})
	if err != nil || more || len(views) != 2 {
		t.Fatalf("listing: %d entries, more %v, %v", len(views), more, err)
	}
	if !reflect.DeepEqual(views[0].Entry, v2) || !reflect.DeepEqual(views[1].Entry, v1) {
		t.Fatalf("listing newest first:\n got %+v\n     %+v\nwant %+v\n     %+v", views[0].Entry, views[1].Entry, v2, v1)
	}
	for _, want := range []engine.Entry{v1, v2} {
		got, ok, err := st.Transaction(org, want.ID)
		if err != nil || !ok || !reflect.DeepEqual(got.Entry, want) {
			t.Fatalf("entry %s read as %+v (%v, %v)", want.ID, got.Entry, ok, err)
		}
	}
	a, err := st.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Problems) != 0 || a.Entries != 2 || a.LedgerSums[org] != 3800 || a.ChainHeads[org] != v2.Hash {
		t.Fatalf("audit: problems %+v, %d entries, sum %d, head matches %v", a.Problems, a.Entries, a.LedgerSums[org], a.ChainHeads[org] == v2.Hash)
	}
}
