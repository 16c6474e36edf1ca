package engine

import (
	"fmt"
	"sync"
	"testing"
)

func TestIDMapStoreLoadEachReplace(t *testing.T) {
	var m idMap[int]
	vals := make([]int, 10_000)
	for i := range vals {
		vals[i] = i
		m.store(fmt.Sprint("id", i), &vals[i])
	}
	for i := range vals {
		if v, ok := m.load(fmt.Sprint("id", i)); !ok || *v != i {
			t.Fatalf("load id%d: %v %v", i, v, ok)
		}
	}
	if _, ok := m.load("absent"); ok {
		t.Fatal("found an id never stored")
	}
	other := -1
	m.store("id7", &other) // replace
	if v, _ := m.load("id7"); *v != -1 {
		t.Fatalf("id7 = %d after replacing it", *v)
	}
	seen := 0
	m.each(func(*int) { seen++ })
	if seen != len(vals) || m.len() != len(vals) {
		t.Fatalf("each saw %d values, len %d, want %d", seen, m.len(), len(vals))
	}

	fresh := []int{1, 2, 3}
	m.replaceAll(len(fresh), func(i int) (string, *int) { return fmt.Sprint("new", i), &fresh[i] })
	if _, ok := m.load("id1"); ok {
		t.Fatal("replaceAll kept an old id")
	}
	seen = 0
	m.each(func(*int) { seen++ })
	if v, ok := m.load("new2"); !ok || *v != 3 || seen != 3 {
		t.Fatalf("after replaceAll: new2 %v %v, %d values", v, ok, seen)
	}
}

// TestIDMapReadersDuringWrites: readers without a lock always find every id
// stored before they started, while one writer keeps adding (run with
// -race in make test).
func TestIDMapReadersDuringWrites(t *testing.T) {
	var m idMap[int]
	const before, during = 2000, 2000
	vals := make([]int, before+during)
	for i := 0; i < before; i++ {
		vals[i] = i
		m.store(fmt.Sprint("k", i), &vals[i])
	}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 5; round++ {
				for i := 0; i < before; i++ {
					if v, ok := m.load(fmt.Sprint("k", i)); !ok || *v != i {
						t.Errorf("k%d: %v %v", i, v, ok)
						return
					}
				}
			}
		}()
	}
	for i := before; i < before+during; i++ {
		vals[i] = i
		m.store(fmt.Sprint("k", i), &vals[i])
	}
	wg.Wait()
}
