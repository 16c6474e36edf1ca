package engine

import "encoding/binary"

// ID prefixes (SPEC.md section 3).
const (
	PrefixOrg         = "org_"
	PrefixKey         = "key_"
	PrefixTransaction = "ct_"
	PrefixReservation = "rsv_"
	PrefixTopup       = "tu_"
	PrefixInvoice     = "inv_"
)

// idLen is the length of an id's body after its prefix: 120 bits in base32.
const idLen = 24

// crockford is Crockford's base32 alphabet: ASCII order equals numeric order,
// so ids sort by the time they encode.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// makeID derives an opaque, time-sortable id from the batch's time, the Raft
// group, the log index and a sequence number within the batch. Every replica
// applying the same batch derives the same ids, and no two commands anywhere
// share one: (group, index, seq) is unique.
//
// Layout (15 bytes, big-endian): 6 bytes unix ms | 1 byte group | 5 bytes
// index | 3 bytes seq.
func makeID(prefix string, timeMs int64, group uint8, index uint64, seq uint32) string {
	var raw [16]byte // one spare leading byte for the uint64 writes
	binary.BigEndian.PutUint64(raw[0:8], uint64(timeMs)<<16)
	raw[6] = group
	binary.BigEndian.PutUint64(raw[7:15], index<<24|uint64(seq&0xFFFFFF))
	// raw[7:15] holds index in its top 40 bits and seq in its low 24 bits.
	var out [len("rsv_") + idLen]byte
	n := copy(out[:], prefix)
	// Encode raw[0:15] (120 bits) as 24 base32 digits, most significant first.
	var acc uint64
	var accBits uint
	j := n
	for i := 0; i < 15; i++ {
		acc = acc<<8 | uint64(raw[i])
		accBits += 8
		for accBits >= 5 {
			accBits -= 5
			out[j] = crockford[(acc>>accBits)&31]
			j++
		}
	}
	return string(out[:j])
}

// IDTimeMs returns the unix milliseconds encoded in an id made by makeID, and
// false when id is not such an id with the given prefix.
func IDTimeMs(id, prefix string) (int64, bool) {
	if len(id) != len(prefix)+idLen || id[:len(prefix)] != prefix {
		return 0, false
	}
	var acc uint64
	// The first 48 bits are the first 9.6 digits: decode 10 digits (50 bits)
	// and drop the 2 low bits that belong to the group byte.
	for i := 0; i < 10; i++ {
		v := decodeCrockford(id[len(prefix)+i])
		if v < 0 {
			return 0, false
		}
		acc = acc<<5 | uint64(v)
	}
	for i := 10; i < idLen; i++ {
		if decodeCrockford(id[len(prefix)+i]) < 0 {
			return 0, false
		}
	}
	return int64(acc >> 2), true
}

func decodeCrockford(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		for i := 10; i < len(crockford); i++ {
			if crockford[i] == c {
				return i
			}
		}
	}
	return -1
}

// FirstIDAt returns the smallest id with prefix made at timeMs: every id made
// at timeMs or later sorts at or after it.
func FirstIDAt(prefix string, timeMs int64) string { return makeID(prefix, timeMs, 0, 0, 0) }
