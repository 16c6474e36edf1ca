package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
)

// ChainHash makes the ledger tamper-evident: each entry carries
// SHA-256(previous entry's hash of the same org || this entry's canonical
// bytes), and the org record carries the hash of its last entry. Changing,
// removing or reordering any stored entry, or dropping the newest one,
// breaks the chain at that point (wal's audit recomputes it). An org's
// first entry chains from the zero hash.
type ChainHash [sha256.Size]byte

// MarshalText writes the hash as lowercase hex.
func (h ChainHash) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText reads the hex written by MarshalText.
func (h *ChainHash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return errors.New("engine: chain hash must be 64 hex digits")
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// NextChainHash is the hash of an entry whose canonical bytes are canonical,
// after an entry whose hash is prev.
func NextChainHash(prev ChainHash, canonical []byte) ChainHash {
	return sha256.Sum256(append(prev[:], canonical...))
}

// An entry's canonical bytes, which its hash covers and which the store
// keeps (followed by the hash):
//
//	formatV1 | ID | OrgID | Type | varint Amount | varint BalanceAfter |
//	Reference | Metadata | varint CreatedAt | varint ExpiresAt
//
// Field order is fixed: the same entry always has the same bytes.

// AppendEntry appends e's canonical bytes (without its hash) to dst.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, formatV1)
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.OrgID)
	dst = append(dst, byte(e.Type))
	dst = appendVarint(dst, e.AmountMicros)
	dst = appendVarint(dst, e.BalanceAfterMicros)
	dst = appendString(dst, e.Reference)
	dst = appendMetadata(dst, e.Metadata)
	dst = appendVarint(dst, e.CreatedAtMs)
	return appendVarint(dst, e.ExpiresAtMs)
}

// AppendStoredEntry appends what the store keeps for e: its canonical bytes
// then its hash.
func AppendStoredEntry(dst []byte, e *Entry) []byte {
	return append(AppendEntry(dst, e), e.Hash[:]...)
}

// DecodeStoredEntry reads what AppendStoredEntry wrote, or an entry stored
// as JSON by an earlier version (which has no hash: Hash stays zero and
// canonical is nil). canonical is the part of data the hash covers.
func DecodeStoredEntry(data []byte, e *Entry) (canonical []byte, err error) {
	if len(data) > 0 && data[0] == '{' {
		return nil, json.Unmarshal(data, e)
	}
	if len(data) < 1+len(e.Hash) || data[0] != formatV1 {
		return nil, errCorrupt
	}
	canonical = data[:len(data)-len(e.Hash)]
	r := reader{s: string(canonical), i: 1}
	*e = Entry{
		ID:                 r.string(),
		OrgID:              r.string(),
		Type:               EntryType(r.byte()),
		AmountMicros:       r.varint(),
		BalanceAfterMicros: r.varint(),
		Reference:          r.string(),
		Metadata:           r.metadata(),
		CreatedAtMs:        r.varint(),
		ExpiresAtMs:        r.varint(),
	}
	if r.err == nil && !r.done() {
		r.fail()
	}
	if r.err != nil {
		return nil, r.err
	}
	copy(e.Hash[:], data[len(canonical):])
	return canonical, nil
}

// AppendRefRecord appends the stored bytes of a reference record:
// formatV1 | TxID | BodyHash.
func AppendRefRecord(dst []byte, r *RefRecord) []byte {
	return appendString(appendString(append(dst, formatV1), r.TxID), r.BodyHash)
}

// DecodeRefRecord reads what AppendRefRecord wrote, or the JSON of an
// earlier version.
func DecodeRefRecord(data []byte) (RefRecord, error) {
	var rec RefRecord
	r, done, err := openRecord(data, &rec)
	if done {
		return rec, err
	}
	rec.TxID = r.string()
	rec.BodyHash = r.string()
	if r.err == nil && !r.done() {
		r.fail()
	}
	return rec, r.err
}
