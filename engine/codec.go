package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"unsafe"
)

// The binary encodings of what the log and the store carry. They replace
// JSON on the write path: a batch is encoded once by the leader and decoded
// once per replica, and a ledger entry is encoded once for its hash and its
// stored bytes, so these run for every charge.
//
// Every encoding starts with a format byte. JSON starts with '{', so a
// reader can still tell the earlier JSON encoding apart and decode it.
//
// Primitives: integers are varints (zig-zag for signed), strings are a
// length then the bytes, and a field list is (tag, value) pairs ended by a
// zero tag, so a zero field costs nothing.

// formatV1 is the first byte of every binary encoding.
const formatV1 = 0x01

// errCorrupt is what every decoder returns for bytes it cannot read.
var errCorrupt = errors.New("engine: corrupt encoding")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendMetadata(b []byte, md Metadata) []byte {
	b = binary.AppendUvarint(b, uint64(len(md)))
	for _, kv := range md {
		b = appendString(b, kv.Key)
		b = appendString(b, kv.Value)
	}
	return b
}

// openRecord starts decoding a stored record. done is set when nothing is
// left to read: data was the JSON of an earlier version (decoded into v,
// err its outcome) or is not a record (errCorrupt). Otherwise r reads the
// fields after the format byte.
func openRecord(data []byte, v any) (r reader, done bool, err error) {
	if len(data) > 0 && data[0] == '{' {
		return reader{}, true, json.Unmarshal(data, v)
	}
	if len(data) == 0 || data[0] != formatV1 {
		return reader{}, true, errCorrupt
	}
	return reader{s: string(data), i: 1}, false, nil
}

// openKeptRecord is openRecord for records kept in memory for the life of
// the process (org records, API keys): each decoded string is its own copy
// of just its bytes. Substrings of one copy of the record, as openRecord
// makes, would keep every record's bytes resident, numbers included.
// data is only read during the decode, through a view that is not retained.
func openKeptRecord(data []byte, v any) (reader, bool, error) {
	if len(data) == 0 || data[0] != formatV1 {
		return openRecord(data, v) // the JSON of an earlier version, or corrupt
	}
	return reader{s: unsafe.String(unsafe.SliceData(data), len(data)), i: 1, clone: true}, false, nil
}

// reader decodes from one string: every decoded string is a substring of
// it, so decoding a whole batch allocates its bytes once. A reader stops at
// the first error and keeps it; callers check err once at the end.
type reader struct {
	s   string
	i   int
	err error
	// clone: string returns copies, not substrings (openKeptRecord).
	clone bool
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.i = len(r.s)
}

func (r *reader) done() bool { return r.i >= len(r.s) }

func (r *reader) byte() byte {
	if r.i >= len(r.s) {
		r.fail()
		return 0
	}
	c := r.s[r.i]
	r.i++
	return c
}

func (r *reader) uvarint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.i >= len(r.s) {
			break
		}
		c := r.s[r.i]
		r.i++
		if shift == 63 && c > 1 {
			break // overflows 64 bits
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.fail()
	return 0
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// length reads a count or a string length, which never exceeds what is left.
func (r *reader) length() int {
	n := r.uvarint()
	if n > uint64(len(r.s)-r.i) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.length()
	s := r.s[r.i : r.i+n]
	r.i += n
	if r.clone {
		return strings.Clone(s)
	}
	return s
}

func (r *reader) metadata() Metadata {
	n := r.length()
	if n == 0 {
		return nil
	}
	md := make(Metadata, 0, n)
	for j := 0; j < n && r.err == nil; j++ {
		md = append(md, KV{Key: r.string(), Value: r.string()})
	}
	return md
}
