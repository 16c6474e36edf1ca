package wal

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestSortedWritesOrderAndLastWins: the staged operations reach the batch in
// key order, operations on one key keep their staging order (so the last
// one staged is what the database holds), and deletions are deletions.
func TestSortedWritesOrderAndLastWins(t *testing.T) {
	db := openTestDB(t, t.TempDir())
	defer db.Close()
	if err := db.Set([]byte("c"), []byte("old"), pebble.Sync); err != nil {
		t.Fatal(err)
	}

	var w sortedWrites
	for round := 0; round < 2; round++ { // the second round reuses the buffers
		w.reset()
		w.set([]byte("d"), []byte(fmt.Sprint("d", round)))
		w.setAppend([]byte("b"), func(b []byte) []byte { return append(b, "first"...) })
		w.delete([]byte("c"))
		w.set([]byte("a"), nil)
		w.set([]byte("b"), []byte(fmt.Sprint("last", round)))
		w.set([]byte("e"), []byte("gone"))
		w.delete([]byte("e")) // a deletion after a set wins
		w.delete([]byte("f"))
		w.set([]byte("f"), []byte(fmt.Sprint("f", round))) // a set after a deletion wins
		b := db.NewBatch()
		if err := w.applyTo(b); err != nil {
			t.Fatal(err)
		}
		var got []string
		r := b.Reader()
		for {
			kind, k, v, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, fmt.Sprintf("%s:%s=%s", kind, k, v))
		}
		// b's first value is superseded in the same batch: not written.
		want := []string{"SET:a=", fmt.Sprintf("SET:b=last%d", round), "DEL:c=", fmt.Sprintf("SET:d=d%d", round), "DEL:e=", fmt.Sprintf("SET:f=f%d", round)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: batch holds %v, want %v", round, got, want)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
		b.Close()
		for k, want := range map[string]string{"a": "", "b": fmt.Sprint("last", round), "d": fmt.Sprint("d", round), "f": fmt.Sprint("f", round)} {
			v, closer, err := db.Get([]byte(k))
			if err != nil {
				t.Fatalf("round %d: get %s: %v", round, k, err)
			}
			if string(v) != want {
				t.Errorf("round %d: %s = %q, want %q", round, k, v, want)
			}
			closer.Close()
		}
		for _, k := range []string{"c", "e"} {
			if _, _, err := db.Get([]byte(k)); err != pebble.ErrNotFound {
				t.Errorf("round %d: %s after its deletion: %v, want not found", round, k, err)
			}
		}
	}
}
