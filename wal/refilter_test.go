package wal

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orbit/orbit/engine"
)

func TestRefFilterNeverFalseNegativeAndGrows(t *testing.T) {
	const first = 1 << 12
	f := newRefFilterSized(first)
	const n = 3*first + 17 // forces two more layers
	for i := 0; i < n; i++ {
		f.add([]byte(fmt.Sprint("x/org/cref-", i)))
	}
	if layers := len(*f.layers.Load()); layers < 3 {
		t.Fatalf("%d layers after %d keys", layers, n)
	}
	for i := 0; i < n; i++ {
		if !f.mayContain([]byte(fmt.Sprint("x/org/cref-", i))) {
			t.Fatalf("false negative for key %d", i)
		}
	}
	fp := 0
	const probes = 200_000
	for i := 0; i < probes; i++ {
		if f.mayContain([]byte(fmt.Sprint("x/org/other-", i))) {
			fp++
		}
	}
	// Each layer is ~1%; a query probes every layer.
	if rate := float64(fp) / probes; rate > 0.05 {
		t.Fatalf("false positive rate %.3f", rate)
	}
}

// A reference stored before a restart is found after it: the filter is
// rebuilt from the stored keys.
func TestRefFilterRebuiltOnOpen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(refKey("org_x", 'c', "r1"), []byte(`{"tx":"ct_1","h":"h"}`), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := NewState(db)
	if r, ok := st.Ref("org_x", 'c', "r1"); !ok || r.TxID != "ct_1" {
		t.Fatalf("stored reference not found after reopen: %v %v", r, ok)
	}
	if _, ok := st.Ref("org_x", 'c', "r2"); ok {
		t.Fatal("absent reference found")
	}
}

// A restart over many references serves before the filter has loaded them
// all: until it has, every lookup asks Pebble, so no stored reference is
// ever missed; once it has, misses are answered from memory. Closing in the
// middle of the load stops it cleanly.
func TestRefFilterLoadsInBackground(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const refs = 40_000
	b := db.NewBatch()
	for i := 0; i < refs; i++ {
		rec := engine.RefRecord{TxID: fmt.Sprint("ct_", i), BodyHash: "h"}
		if err := b.Set(refKey("org_x", 'c', fmt.Sprint("r", i)), engine.AppendRefRecord(nil, &rec), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	defer func(d time.Duration) { refFilterSyncBudget = d }(refFilterSyncBudget)
	refFilterSyncBudget = 0 // hand over to the background after the first keys

	for _, closeEarly := range []bool{false, true} {
		db, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := NewState(db)
		if closeEarly {
			if err := st.Close(); err != nil {
				t.Fatalf("close during the load: %v", err)
			}
			continue
		}
		// Whatever the load's progress, every stored reference is found.
		for i := refs - 1; i >= 0; i -= 997 {
			if r, ok := st.Ref("org_x", 'c', fmt.Sprint("r", i)); !ok || r.TxID != fmt.Sprint("ct_", i) {
				t.Fatalf("reference r%d not found while the filter loads (ready=%v)", i, st.RefFilterReady())
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for !st.RefFilterReady() {
			if time.Now().After(deadline) {
				t.Fatal("reference filter never finished loading")
			}
			time.Sleep(time.Millisecond)
		}
		for i := 0; i < refs; i += 991 {
			if _, ok := st.Ref("org_x", 'c', fmt.Sprint("r", i)); !ok {
				t.Fatalf("reference r%d not found after the load", i)
			}
			if !st.refs.Load().mayContain(refKey("org_x", 'c', fmt.Sprint("r", i))) {
				t.Fatalf("loaded filter does not contain r%d", i)
			}
		}
		if _, ok := st.Ref("org_x", 'c', "absent"); ok {
			t.Fatal("absent reference found")
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A full layer keeps the false-positive rate of its size. The layer for
// 2^16 keys rounds up to 2^20 bits (16 per key), where a plain Bloom filter
// with 7 probes has 0.07% false positives; a blocked one pays a little for
// one cache miss per key (0.10% measured). A broken block choice or
// correlated probe bits would show as several times that.
func TestBloomLayerFalsePositiveRateAtCapacity(t *testing.T) {
	const capacity = 1 << 16
	f := newRefFilterSized(capacity)
	for i := range capacity {
		f.add([]byte(fmt.Sprint("x/org_a/cref-", i)))
	}
	if layers := len(*f.layers.Load()); layers != 1 {
		t.Fatalf("%d layers for %d keys, want 1", layers, capacity)
	}
	fp := 0
	const probes = 400_000
	for i := range probes {
		if f.mayContain([]byte(fmt.Sprint("x/org_b/cref-", i))) {
			fp++
		}
	}
	rate := float64(fp) / probes
	t.Logf("false positive rate %.4f at capacity", rate)
	if rate > 0.003 || rate == 0 {
		t.Fatalf("false positive rate %.4f at capacity, want about 0.001", rate)
	}
}

// BenchmarkRefFilter measures a filter that has outgrown the CPU caches:
// 24 million references in five layers.
func BenchmarkRefFilter(b *testing.B) {
	const stored = 24 << 20
	f := newRefFilter()
	key := []byte("x/org_0123456789/cref-0000000000")
	setKey := func(i int) {
		for j := len(key) - 1; j >= len(key)-10; j-- {
			key[j] = byte('0' + i%10)
			i /= 10
		}
	}
	for i := range stored {
		setKey(i)
		f.add(key)
	}
	b.Run("miss", func(b *testing.B) {
		falsePositives := 0
		for i := range b.N {
			setKey(stored + i)
			if f.mayContain(key) {
				falsePositives++
			}
		}
		b.ReportMetric(float64(falsePositives)/float64(b.N), "false-positives/op")
	})
	b.Run("hit", func(b *testing.B) {
		for i := range b.N {
			setKey(i * 7919 % stored)
			if !f.mayContain(key) {
				b.Fatal("false negative")
			}
		}
	})
}
