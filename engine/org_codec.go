package engine

import "encoding/json"

// The stored encodings of an org record and an API key. An org record is
// written after every batch that touches the org (usually once per charge
// on a busy node with many orgs) and decoded for every org at start, so it
// is binary like the ledger entries; JSON, which earlier versions wrote, is
// still read.
//
// Org record, formatV1 then in order: ID, Name, CreatedAtMs,
// PauseThresholdMicros, flags (1 OperatorHold, 2 Disputed), HoldDetails,
// BalanceMicros, ReservedMicros, InvoiceSeq, LastTopupID, StripeCustomerID,
// RateOverride (JSON, empty when none: rare, and a nested map),
// RateOverrideVersion, the lots (count, then EntryID, ExpiresAtMs,
// Remaining, Held each), Index, Chain (32 bytes).
//
// API key, formatV1 then: ID, OrgID, Role, Hash, Prefix, CreatedAtMs,
// RevokedAtMs.

const (
	orgFlagOperatorHold = 1 << iota
	orgFlagDisputed
)

// AppendOrgRecord appends the stored bytes of o.
func AppendOrgRecord(dst []byte, o *OrgRecord) []byte {
	b := append(dst, formatV1)
	b = appendString(b, o.ID)
	b = appendString(b, o.Name)
	b = appendVarint(b, o.CreatedAtMs)
	b = appendVarint(b, o.PauseThresholdMicros)
	var flags byte
	if o.OperatorHold {
		flags |= orgFlagOperatorHold
	}
	if o.Disputed {
		flags |= orgFlagDisputed
	}
	b = append(b, flags)
	b = appendString(b, o.HoldDetails)
	b = appendVarint(b, o.BalanceMicros)
	b = appendVarint(b, o.ReservedMicros)
	b = appendVarint(b, o.InvoiceSeq)
	b = appendString(b, o.LastTopupID)
	b = appendString(b, o.StripeCustomerID)
	if o.RateOverride == nil {
		b = appendUvarint(b, 0)
	} else {
		card, err := json.Marshal(o.RateOverride)
		if err != nil {
			// A rate card is strings, integers and maps of them.
			panic("engine: encode rate card: " + err.Error())
		}
		b = appendString(b, string(card))
	}
	b = appendVarint(b, o.RateOverrideVersion)
	b = appendUvarint(b, uint64(len(o.Lots)))
	for i := range o.Lots {
		l := &o.Lots[i]
		b = appendString(b, l.EntryID)
		b = appendVarint(b, l.ExpiresAtMs)
		b = appendVarint(b, l.Remaining)
		b = appendVarint(b, l.Held)
	}
	b = appendUvarint(b, o.Index)
	return append(b, o.Chain[:]...)
}

// DecodeOrgRecord reads what AppendOrgRecord wrote, or the JSON of an
// earlier version.
func DecodeOrgRecord(data []byte, o *OrgRecord) error {
	*o = OrgRecord{}
	r, done, err := openKeptRecord(data, o)
	if done {
		return err
	}
	*o = OrgRecord{
		ID:                   r.string(),
		Name:                 r.string(),
		CreatedAtMs:          r.varint(),
		PauseThresholdMicros: r.varint(),
	}
	flags := r.byte()
	o.OperatorHold = flags&orgFlagOperatorHold != 0
	o.Disputed = flags&orgFlagDisputed != 0
	if flags&^(orgFlagOperatorHold|orgFlagDisputed) != 0 {
		r.fail()
	}
	o.HoldDetails = r.string()
	o.BalanceMicros = r.varint()
	o.ReservedMicros = r.varint()
	o.InvoiceSeq = r.varint()
	o.LastTopupID = r.string()
	o.StripeCustomerID = r.string()
	if card := r.string(); card != "" && r.err == nil {
		o.RateOverride = &RateCard{}
		if err := json.Unmarshal([]byte(card), o.RateOverride); err != nil {
			return errCorrupt
		}
	}
	o.RateOverrideVersion = r.varint()
	if n := r.length(); n > 0 {
		o.Lots = make([]Lot, 0, min(n, 1024))
		for j := 0; j < n && r.err == nil; j++ {
			o.Lots = append(o.Lots, Lot{EntryID: r.string(), ExpiresAtMs: r.varint(), Remaining: r.varint(), Held: r.varint()})
		}
	}
	o.Index = r.uvarint()
	if r.err == nil && len(r.s)-r.i != len(o.Chain) {
		r.fail()
	}
	if r.err != nil {
		return r.err
	}
	copy(o.Chain[:], r.s[r.i:])
	return nil
}

// AppendAPIKey appends the stored bytes of k.
func AppendAPIKey(dst []byte, k *APIKey) []byte {
	b := append(dst, formatV1)
	b = appendString(b, k.ID)
	b = appendString(b, k.OrgID)
	b = appendString(b, k.Role)
	b = appendString(b, k.Hash)
	b = appendString(b, k.Prefix)
	b = appendVarint(b, k.CreatedAtMs)
	return appendVarint(b, k.RevokedAtMs)
}

// DecodeAPIKey reads what AppendAPIKey wrote, or the JSON of an earlier
// version.
func DecodeAPIKey(data []byte, k *APIKey) error {
	*k = APIKey{}
	r, done, err := openKeptRecord(data, k)
	if done {
		return err
	}
	*k = APIKey{ID: r.string(), OrgID: r.string(), Role: internRole(r.string()), Hash: r.string(), Prefix: r.string(),
		CreatedAtMs: r.varint(), RevokedAtMs: r.varint()}
	if r.err == nil && !r.done() {
		r.fail()
	}
	return r.err
}

// internRole returns the constant for a known role, so that keys in memory
// share its bytes.
func internRole(role string) string {
	for _, known := range [...]string{RoleAdmin, RoleCharge, RoleRead} {
		if role == known {
			return known
		}
	}
	return role
}
