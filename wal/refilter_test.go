package wal

import (
	"fmt"
	"testing"
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
