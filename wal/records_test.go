package wal

import (
	"fmt"
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
