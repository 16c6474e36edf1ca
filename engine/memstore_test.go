package engine

import "testing"

// The entry index is caught up lazily: entries written after a lookup are
// found, and an Entries slice replaced or truncated under the index (as
// tests that copy stores do) is re-indexed rather than misread.
func TestMemStoreEntryIndexFollowsEntries(t *testing.T) {
	st := NewMemStore()
	mk := func(ids ...string) *Changes {
		c := &Changes{}
		for _, id := range ids {
			c.Entries = append(c.Entries, Entry{ID: id, OrgID: "org_a", Type: EntrySpend, AmountMicros: -1})
		}
		return c
	}
	st.Write(mk("t1", "t2"))
	if e := st.entry("t2"); e == nil || e.ID != "t2" {
		t.Fatalf("t2 after first write: %+v", e)
	}
	st.Write(mk("t3"))
	if e := st.entry("t3"); e == nil || e.ID != "t3" {
		t.Fatalf("t3 written after a lookup: %+v", e)
	}
	if e := st.entry("t9"); e != nil {
		t.Fatalf("unknown id found: %+v", e)
	}
	// Reordered in place: positions the index remembers now hold other ids.
	st.Entries[0], st.Entries[2] = st.Entries[2], st.Entries[0]
	if e := st.entry("t1"); e == nil || e.ID != "t1" {
		t.Fatalf("t1 after reorder: %+v", e)
	}
	// Truncated below what was indexed.
	st.Entries = st.Entries[:1]
	if e := st.entry("t2"); e != nil {
		t.Fatalf("t2 found after truncation: %+v", e)
	}
	if e := st.entry(st.Entries[0].ID); e == nil {
		t.Fatal("the remaining entry is not found")
	}
	// Truncated and refilled to the indexed length with new ids.
	st.Entries = append(st.Entries, Entry{ID: "t7", OrgID: "org_a"}, Entry{ID: "t8", OrgID: "org_a"})
	if e := st.entry("t8"); e == nil || e.ID != "t8" {
		t.Fatalf("t8 after refill: %+v", e)
	}
	if _, ok := st.Txn("org_a", st.Entries[0].ID); !ok {
		t.Fatal("Txn does not derive the remaining entry's record")
	}
}
