package wal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/orbit/orbit/engine"
)

func usageChanges(index uint64, org string, messages, cost int64) *engine.Changes {
	return &engine.Changes{Index: index, Usage: []engine.UsageDelta{
		{OrgID: org, Day: 20_000, Channel: "sms", Messages: messages, Delivered: messages, CostMicros: cost},
	}}
}

func mustUsage(t *testing.T, st *State, org string) engine.UsageRow {
	t.Helper()
	rows, err := st.Usage(org, 20_000, 20_000)
	if err != nil || len(rows) != 1 {
		t.Fatalf("usage of %s: %v %v, want one row", org, rows, err)
	}
	return rows[0]
}

// TestUsageRowsAddUpThroughTheCache: rows written in many batches sum every
// delta, whether the row came from the cache or from Pebble (a new State
// on the same DB starts with an empty cache), and a restored snapshot's rows
// replace what the cache held.
func TestUsageRowsAddUpThroughTheCache(t *testing.T) {
	db := openTestDB(t, t.TempDir())
	defer db.Close()
	st := NewState(db)
	var buf bytes.Buffer // a snapshot after 5 writes: 10 messages
	for i := uint64(1); i <= 10; i++ {
		if err := st.Write(usageChanges(i, "org_a", 2, 300), 0); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			snap, err := st.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := snap.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			snap.Close()
		}
	}
	if r := mustUsage(t, st, "org_a"); r.Messages != 20 || r.CostMicros != 3000 {
		t.Fatalf("after 10 writes: %+v, want 20 messages, 3000 micros", r)
	}

	again := NewState(db) // empty cache: the next write reads the row back
	if err := again.Write(usageChanges(11, "org_a", 1, 1), 0); err != nil {
		t.Fatal(err)
	}
	if r := mustUsage(t, again, "org_a"); r.Messages != 21 || r.CostMicros != 3001 {
		t.Fatalf("after a write from a fresh State: %+v, want 21 and 3001", r)
	}

	// st's cache says 20 messages, the store 21. Restoring the snapshot
	// (10) and writing 5 more must give 15, not 25 from a stale cache.
	if err := st.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(usageChanges(12, "org_a", 5, 5), 0); err != nil {
		t.Fatal(err)
	}
	if r := mustUsage(t, st, "org_a"); r.Messages != 15 || r.CostMicros != 1505 {
		t.Fatalf("after restore and a write: %+v, want 15 and 1505", r)
	}
}

// TestUsageCacheKeepsOnlyCommittedRows: staged rows enter the cache on
// commit only, and a full cache starts over instead of growing.
func TestUsageCacheKeepsOnlyCommittedRows(t *testing.T) {
	var c usageCache
	c.stage("k1", usageRow{messages: 1})
	c.dropPending()
	if _, ok := c.get("k1"); ok {
		t.Fatal("a dropped row is cached")
	}
	c.stage("k1", usageRow{messages: 2})
	c.commitPending()
	if r, ok := c.get("k1"); !ok || r.messages != 2 {
		t.Fatalf("committed row: %+v %v", r, ok)
	}
	for i := 0; i < usageCacheRowsMax; i++ {
		c.stage(fmt.Sprint("row", i), usageRow{})
	}
	c.commitPending()
	if len(c.rows) > usageCacheRowsMax {
		t.Fatalf("%d rows cached, bound %d", len(c.rows), usageCacheRowsMax)
	}
	if _, ok := c.get("k1"); ok {
		t.Fatal("the cache did not start over when full")
	}
}
