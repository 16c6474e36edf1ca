package engine

import (
	"cmp"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// idParts are makeID's inputs within their documented ranges: 48-bit time,
// 40-bit index, 24-bit sequence.
type idParts struct {
	timeMs int64
	group  uint8
	index  uint64
	seq    uint32
}

func (p idParts) id(prefix string) string { return makeID(prefix, p.timeMs, p.group, p.index, p.seq) }

func compareParts(a, b idParts) int {
	return cmp.Or(cmp.Compare(a.timeMs, b.timeMs), cmp.Compare(a.group, b.group), cmp.Compare(a.index, b.index), cmp.Compare(a.seq, b.seq))
}

const (
	maxIDTime  = int64(1)<<48 - 1
	maxIDIndex = uint64(1)<<40 - 1
	maxIDSeq   = uint32(1)<<24 - 1
)

func randomParts(r *rand.Rand) idParts {
	// Mix small, large and extreme values in every field.
	pick64 := func(max uint64) uint64 {
		switch r.IntN(4) {
		case 0:
			return r.Uint64N(4)
		case 1:
			return max - r.Uint64N(4)
		case 2:
			return r.Uint64N(1 << 20)
		}
		return r.Uint64N(max + 1)
	}
	return idParts{
		timeMs: int64(pick64(uint64(maxIDTime))),
		group:  uint8(pick64(255)),
		index:  pick64(maxIDIndex),
		seq:    uint32(pick64(uint64(maxIDSeq))),
	}
}

func TestMakeIDFormat(t *testing.T) {
	for _, prefix := range []string{PrefixOrg, PrefixKey, PrefixTransaction, PrefixReservation, PrefixTopup, PrefixInvoice} {
		for _, p := range []idParts{{}, {1_700_000_000_123, 1, 42, 7}, {maxIDTime, 255, maxIDIndex, maxIDSeq}} {
			id := p.id(prefix)
			if len(id) != len(prefix)+24 || !strings.HasPrefix(id, prefix) {
				t.Fatalf("makeID(%q, %+v) = %q", prefix, p, id)
			}
			for _, c := range id[len(prefix):] {
				if !strings.ContainsRune(crockford, c) {
					t.Fatalf("id %q has %q outside the alphabet", id, c)
				}
			}
			if ms, ok := IDTimeMs(id, prefix); !ok || ms != p.timeMs {
				t.Fatalf("IDTimeMs(%q) = %d %v, want %d", id, ms, ok, p.timeMs)
			}
		}
	}
	if got := makeID("ct_", 0, 0, 0, 0); got != "ct_000000000000000000000000" {
		t.Fatalf("zero id %q", got)
	}
	if got := makeID("ct_", maxIDTime, 255, maxIDIndex, maxIDSeq); got != "ct_ZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Fatalf("max id %q", got)
	}
	// Each field lands in its own bits.
	if a, b := makeID("ct_", 0, 0, 0, 1), makeID("ct_", 0, 0, 0, 2); a != "ct_000000000000000000000001" || b != "ct_000000000000000000000002" {
		t.Fatalf("seq ids %q %q", a, b)
	}
}

func TestMakeIDSortsByParts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	parts := make([]idParts, 5000)
	for i := range parts {
		parts[i] = randomParts(r)
	}
	// Neighbours that differ by one in a single field, at the field's edges.
	base := idParts{1_700_000_000_000, 7, 1 << 30, 1 << 12}
	for _, d := range []idParts{
		{timeMs: 1}, {group: 1}, {index: 1}, {seq: 1},
	} {
		lo := base
		hi := idParts{base.timeMs + d.timeMs, base.group + d.group, base.index + d.index, base.seq + d.seq}
		parts = append(parts, lo, hi)
	}
	parts = append(parts,
		idParts{0, 255, maxIDIndex, maxIDSeq}, idParts{1, 0, 0, 0},
		idParts{5, 0, maxIDIndex, maxIDSeq}, idParts{5, 1, 0, 0},
		idParts{5, 1, 9, maxIDSeq}, idParts{5, 1, 10, 0})
	for i := 0; i < len(parts); i++ {
		j := r.IntN(len(parts))
		a, b := parts[i], parts[j]
		if got, want := strings.Compare(a.id("ct_"), b.id("ct_")), compareParts(a, b); got != want {
			t.Fatalf("compare(%+v, %+v): ids %d, parts %d (%s vs %s)", a, b, got, want, a.id("ct_"), b.id("ct_"))
		}
		if i > 0 {
			a, b = parts[i-1], parts[i]
			if got, want := strings.Compare(a.id("ct_"), b.id("ct_")), compareParts(a, b); got != want {
				t.Fatalf("compare(%+v, %+v): ids %d, parts %d", a, b, got, want)
			}
		}
	}
	// Sorting the ids sorts the parts.
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = p.id("rsv_")
	}
	sort.Strings(ids)
	sort.Slice(parts, func(i, j int) bool { return compareParts(parts[i], parts[j]) < 0 })
	for i := range parts {
		if ids[i] != parts[i].id("rsv_") {
			t.Fatalf("position %d: %s, want %s", i, ids[i], parts[i].id("rsv_"))
		}
	}
}

func TestIDTimeMsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10_000; i++ {
		p := randomParts(r)
		if ms, ok := IDTimeMs(p.id(PrefixTransaction), PrefixTransaction); !ok || ms != p.timeMs {
			t.Fatalf("%+v: IDTimeMs = %d %v", p, ms, ok)
		}
	}
}

func TestIDTimeMsRejects(t *testing.T) {
	good := makeID(PrefixTransaction, 1_700_000_000_000, 1, 2, 3)
	body := good[len(PrefixTransaction):]
	if strings.ToLower(good) == good {
		t.Fatalf("test id %q has no letters to lower", good)
	}
	bad := []struct{ id, prefix string }{
		{"", PrefixTransaction},
		{PrefixTransaction, PrefixTransaction},
		{good, PrefixOrg},                          // another prefix
		{"org" + body, PrefixTransaction},          // same length, wrong prefix
		{"xx_" + body, PrefixTransaction},          // same length, wrong prefix
		{good[:len(good)-1], PrefixTransaction},    // short
		{good + "0", PrefixTransaction},            // long
		{strings.ToLower(good), PrefixTransaction}, // lower case
		{PrefixTransaction + strings.Repeat("0", 23) + "I", PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 23) + "L", PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 23) + "O", PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 23) + "U", PrefixTransaction},
		{PrefixTransaction + "U" + strings.Repeat("0", 23), PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 12) + "-" + strings.Repeat("0", 11), PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 23) + "\x00", PrefixTransaction},
		{PrefixTransaction + strings.Repeat("0", 23) + "\xff", PrefixTransaction},
	}
	for _, b := range bad {
		if ms, ok := IDTimeMs(b.id, b.prefix); ok || ms != 0 {
			t.Fatalf("IDTimeMs(%q, %q) = %d %v, want rejection", b.id, b.prefix, ms, ok)
		}
	}
	if _, ok := IDTimeMs(good, PrefixTransaction); !ok {
		t.Fatal("good id rejected")
	}
	// The body alone is an id with the empty prefix.
	if ms, ok := IDTimeMs(body, ""); !ok || ms != 1_700_000_000_000 {
		t.Fatalf("bare body: %d %v", ms, ok)
	}
	for i := 0; i < 256; i++ {
		c := byte(i)
		want := strings.IndexByte(crockford, c)
		if got := decodeCrockford(c); got != want {
			t.Fatalf("decodeCrockford(%q) = %d, want %d", c, got, want)
		}
	}
}

func TestFirstIDAt(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		p := randomParts(r)
		if p.timeMs == 0 {
			continue
		}
		first := FirstIDAt(PrefixTransaction, p.timeMs)
		if id := p.id(PrefixTransaction); id < first {
			t.Fatalf("id %s made at %d sorts before FirstIDAt %s", id, p.timeMs, first)
		}
		earlier := idParts{p.timeMs - 1, 255, maxIDIndex, maxIDSeq}
		if id := earlier.id(PrefixTransaction); id >= first {
			t.Fatalf("id %s made at %d sorts at or after FirstIDAt(%d) %s", id, p.timeMs-1, p.timeMs, first)
		}
		if ms, ok := IDTimeMs(first, PrefixTransaction); !ok || ms != p.timeMs {
			t.Fatalf("IDTimeMs(FirstIDAt) = %d %v", ms, ok)
		}
	}
}
