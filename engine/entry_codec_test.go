package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
)

// sameEntry compares an entry with what a test expects, leaving the chain
// hash to the tests of the chain itself.
func sameEntry(got *Entry, want Entry) bool {
	if got == nil {
		return false
	}
	g := *got
	g.Hash = ChainHash{}
	want.Hash = ChainHash{}
	return reflect.DeepEqual(g, want)
}

func sameEntries(got []Entry, want ...Entry) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !sameEntry(&got[i], want[i]) {
			return false
		}
	}
	return true
}

func TestStoredEntryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 1000; i++ {
		c := randomCommand(rng) // its strings and numbers are edge cases enough
		e := Entry{ID: c.TxID, OrgID: c.OrgID, Type: EntryType(rng.Intn(10)), AmountMicros: c.AmountMicros,
			BalanceAfterMicros: c.AmountMinor, Reference: c.Reference, Metadata: c.Metadata,
			CreatedAtMs: c.TTLSeconds, ExpiresAtMs: c.ExpiresAtMs}
		rng.Read(e.Hash[:])
		data := AppendStoredEntry(nil, &e)
		var got Entry
		hashed, err := DecodeStoredEntry(data, e.OrgID, e.ID, &got)
		if err != nil || !hashed {
			t.Fatalf("case %d: hashed %v, %v", i, hashed, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("case %d: round trip\n got %+v\nwant %+v", i, got, e)
		}
		// The store's bytes leave out the org and id its key holds.
		if want := len(AppendEntry(nil, &e)) + len(e.Hash) - (len(e.OrgID) + 1) - (len(e.ID) + 1); len(data) > want {
			t.Fatalf("case %d: %d stored bytes, want at most %d", i, len(data), want)
		}
		// The first binary format, canonical bytes then hash, still reads
		// the same.
		var v1 Entry
		if hashed, err := DecodeStoredEntry(append(AppendEntry(nil, &e), e.Hash[:]...), "org_other", "ct_other", &v1); err != nil || !hashed || !reflect.DeepEqual(v1, e) {
			t.Fatalf("case %d: formatV1 entry decoded as %+v, %v, %v", i, v1, hashed, err)
		}
		// Any truncation is refused, never misread.
		if _, err := DecodeStoredEntry(data[:len(data)-1], e.OrgID, e.ID, &got); err == nil && len(data) > 33 {
			if bytes.Equal(AppendStoredEntry(nil, &got), data[:len(data)-1]) {
				continue // a shorter valid encoding is still read exactly
			}
			t.Fatalf("case %d: truncated entry decoded as %+v", i, got)
		}
	}
}

func TestDecodeStoredEntryReadsJSON(t *testing.T) {
	e := Entry{ID: "ct_1", OrgID: "org_1", Type: EntrySpend, AmountMicros: -5, BalanceAfterMicros: 10, Reference: "charge:r", CreatedAtMs: 9}
	data, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	var got Entry
	if hashed, err := DecodeStoredEntry(data, "org_1", "ct_1", &got); err != nil || hashed || !reflect.DeepEqual(got, e) {
		t.Fatalf("JSON entry decoded as %+v, %v", got, err)
	}
}

// Every entry Apply writes is chained to its org's previous entry, and the
// org record names the newest: recomputing the chain from the entries alone
// gives the same hashes, per org, whatever else the batches carried.
func TestEntriesAreChainedPerOrg(t *testing.T) {
	h := newHarness()
	a := h.org(t, "a", 100_000)
	b := h.org(t, "b", 100_000)
	for i := 0; i < 20; i++ {
		h.apply(t, int64(2000+i), charge(a, fmt.Sprint("a", i), 100), charge(b, fmt.Sprint("b", i), 300), charge(a, fmt.Sprint("a2-", i), 7))
	}
	for _, org := range []string{a, b} {
		var chain ChainHash
		n := 0
		for i := range h.st.Entries {
			e := &h.st.Entries[i]
			if e.OrgID != org {
				continue
			}
			chain = NextChainHash(chain, AppendEntry(nil, e))
			if e.Hash != chain {
				t.Fatalf("entry %d of %s: hash %x, recomputed %x", n, org, e.Hash, chain)
			}
			n++
		}
		rec, _ := h.e.OrgRecord(org)
		if n == 0 || rec.Chain != chain {
			t.Fatalf("%s: org chain head %x after %d entries, want %x", org, rec.Chain, n, chain)
		}
	}
	// The hash depends on every byte: the same entry with one field changed
	// hashes differently.
	e := h.st.Entries[len(h.st.Entries)-1]
	before := NextChainHash(ChainHash{}, AppendEntry(nil, &e))
	e.AmountMicros--
	if NextChainHash(ChainHash{}, AppendEntry(nil, &e)) == before {
		t.Fatal("changing an entry's amount did not change its hash")
	}
}

func TestChainHashText(t *testing.T) {
	var h ChainHash
	for i := range h {
		h[i] = byte(i * 7)
	}
	text, _ := h.MarshalText()
	var back ChainHash
	if err := back.UnmarshalText(text); err != nil || back != h {
		t.Fatalf("hex round trip: %v %x", err, back)
	}
	if back.UnmarshalText([]byte("abc")) == nil || back.UnmarshalText(bytes.Repeat([]byte("zz"), 32)) == nil {
		t.Fatal("bad hex accepted")
	}
}
