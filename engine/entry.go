package engine

import (
	"encoding/json"
	"strings"
)

// EntryType is the kind of a ledger entry (credit_transactions.type).
type EntryType uint8

// Ledger entry types (SPEC.md section 4, "Ledger entries").
const (
	EntryTopup EntryType = iota + 1
	EntrySpend
	EntryRefund
	EntryTopupRefund
	EntryGrant
	EntryExpiry
	EntryAdjustment
	EntryDispute
)

var entryTypeNames = [...]string{"", "topup", "spend", "refund", "topup_refund", "grant", "expiry", "adjustment", "dispute"}

func (t EntryType) String() string {
	if int(t) < len(entryTypeNames) {
		return entryTypeNames[t]
	}
	return "unknown"
}

// ParseEntryType maps a type name to its EntryType.
func ParseEntryType(s string) (EntryType, bool) {
	for i := 1; i < len(entryTypeNames); i++ {
		if entryTypeNames[i] == s {
			return EntryType(i), true
		}
	}
	return 0, false
}

// KV is one metadata pair; Value is canonical JSON (a string, number or
// boolean literal).
type KV struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Metadata is a flat object kept sorted by key, so its encoding is canonical.
type Metadata []KV

// with returns m plus key=value (raw JSON), keeping it sorted; a key already
// present is replaced. m itself is not modified.
func (m Metadata) with(key, rawJSON string) Metadata {
	out := make(Metadata, 0, len(m)+1)
	inserted := false
	for _, kv := range m {
		if !inserted && kv.Key >= key {
			out = append(out, KV{key, rawJSON})
			inserted = true
			if kv.Key == key {
				continue
			}
		}
		out = append(out, kv)
	}
	if !inserted {
		out = append(out, KV{key, rawJSON})
	}
	return out
}

// merged returns m with every pair of add (replacing equal keys), in one
// allocation, sorted. Neither input is modified.
func (m Metadata) merged(add Metadata) Metadata {
	out := make(Metadata, 0, len(m)+len(add))
	out = append(out, m...)
	for _, kv := range add {
		replaced := false
		for i := range out {
			if out[i].Key == kv.Key {
				out[i].Value = kv.Value
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	sortMetadata(out)
	return out
}

func sortMetadata(m Metadata) {
	// Insertion sort: metadata is small and usually nearly sorted.
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j].Key < m[j-1].Key; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

// Get returns the raw JSON value of key.
func (m Metadata) Get(key string) (string, bool) {
	for _, kv := range m {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Entry is one immutable ledger entry. Amounts are signed: negative entries
// are debits.
type Entry struct {
	ID                 string    `json:"id"`
	OrgID              string    `json:"org"`
	Type               EntryType `json:"type"`
	AmountMicros       int64     `json:"amt"`
	BalanceAfterMicros int64     `json:"bal"`
	Reference          string    `json:"ref"`
	Metadata           Metadata  `json:"md,omitempty"`
	CreatedAtMs        int64     `json:"ts"`
	ExpiresAtMs        int64     `json:"exp,omitempty"`
	// Hash chains the entry to the org's previous one (see ChainHash).
	Hash ChainHash `json:"hash"`
}

// Delivery is the state of a spend's delivery report.
type Delivery uint8

// Delivery states.
const (
	DeliveryNone Delivery = iota
	DeliveryDelivered
	DeliveryFailed
)

func (d Delivery) String() string {
	switch d {
	case DeliveryDelivered:
		return "delivered"
	case DeliveryFailed:
		return "failed"
	}
	return ""
}

// TxnState is the mutable side record of a refundable entry (a spend or a
// top-up): how much of it was refunded and its delivery report. The entry
// itself never changes; readers join the two (refunded_at is derived).
// Adjustments and refunds get one too, only so that a refund or delivery
// report naming them is answered not_refundable / invalid, not not_found.
type TxnState struct {
	ID             string    `json:"id"`
	OrgID          string    `json:"org"`
	Type           EntryType `json:"type"`
	AmountMicros   int64     `json:"amt"` // absolute value of the entry
	RefundedMicros int64     `json:"ref,omitempty"`
	RefundedAtMs   int64     `json:"rat,omitempty"`
	Delivery       Delivery  `json:"dlv,omitempty"`
	Channel        string    `json:"ch,omitempty"`
	Group          string    `json:"grp,omitempty"`
	Day            int64     `json:"day"` // unix day of the entry, for usage aggregates
}

// TxnFromEntry is the side record of an entry nothing has changed yet:
// stores derive it from the entry on a miss instead of persisting it.
func TxnFromEntry(e *Entry) TxnState {
	ch := ""
	if v, ok := e.Metadata.Get("channel"); ok {
		ch = jsonStringValue(v)
	}
	return TxnState{
		ID:           e.ID,
		OrgID:        e.OrgID,
		Type:         e.Type,
		AmountMicros: max(e.AmountMicros, -e.AmountMicros),
		Channel:      ch,
		Group:        groupOf(e.Metadata),
		Day:          UnixDay(e.CreatedAtMs),
	}
}

// jsonStringValue decodes a JSON string literal ("" for anything else).
func jsonStringValue(raw string) string {
	if len(raw) < 2 || raw[0] != '"' {
		return ""
	}
	if !strings.Contains(raw, `\`) {
		return raw[1 : len(raw)-1]
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return ""
	}
	return s
}

// RefRecord remembers what a reference (or Idempotency-Key) did, so a retry
// is answered with the original result and a different body is a conflict.
type RefRecord struct {
	TxID     string `json:"tx"`
	BodyHash string `json:"h"`
}

// Namespaces of references: each is unique per org within its namespace.
const (
	NSCharge      byte = 'c'
	NSAdjustment  byte = 'a'
	NSRefund      byte = 'f'
	NSReservation byte = 'r'
	NSGrant       byte = 'g'
	NSTopup       byte = 'u' // a top-up request's Idempotency-Key
	NSSession     byte = 's' // a payment session credited (exactly once)
	NSExtend      byte = 'e' // a hold extension's Idempotency-Key
	NSEvent       byte = 'v' // a payment provider's event id
	NSCardRefund  byte = 'R' // a refund to the card, by the provider's refund id
	NSDispute     byte = 'D' // a card dispute, by the provider's dispute id
	NSDisputeWon  byte = 'W' // a dispute closed as won
)

// Top-up states.
const (
	TopupPending = "pending"
	TopupPaid    = "paid"
	TopupExpired = "expired"
)

// TopupRecord is a top-up from its checkout to its credit.
type TopupRecord struct {
	ID            string `json:"id"`
	OrgID         string `json:"org"`
	Status        string `json:"status"`
	AmountMinor   int64  `json:"amount"`
	Currency      string `json:"currency"`
	FxRate        int64  `json:"fx_rate"` // USD per currency unit x 10^8
	CreditMicros  int64  `json:"credit"`
	SuccessURL    string `json:"success_url"`
	CancelURL     string `json:"cancel_url"`
	Provider      string `json:"provider"`
	SessionID     string `json:"session,omitempty"`
	CheckoutURL   string `json:"checkout_url,omitempty"`
	PaymentIntent string `json:"pi,omitempty"`
	CreatedAtMs   int64  `json:"created_at"`
	PaidAtMs      int64  `json:"paid_at,omitempty"`
	EntryID       string `json:"entry,omitempty"`
	InvoiceID     string `json:"invoice,omitempty"`
}

// InvoiceRecord is an invoice or a one-time payment receipt.
type InvoiceRecord struct {
	ID            string `json:"id"`
	OrgID         string `json:"org"`
	Number        string `json:"number"`
	AmountMinor   int64  `json:"amount"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	PeriodStartMs int64  `json:"period_start"`
	PeriodEndMs   int64  `json:"period_end"`
	// PDFURL is absolute, or a path on this server (starting with "/").
	PDFURL      string `json:"pdf_url"`
	CreatedAtMs int64  `json:"created_at"`
	TopupID     string `json:"topup,omitempty"`
}

// UsageDelta changes one daily usage aggregate row.
type UsageDelta struct {
	OrgID      string
	Day        int64
	Channel    string
	Group      string
	Messages   int64
	Delivered  int64
	Failed     int64
	CostMicros int64
}

// UnixDay returns the day number (days since 1970-01-01 UTC) of a unix ms time.
func UnixDay(ms int64) int64 {
	if ms < 0 {
		return (ms - 86_400_000 + 1) / 86_400_000
	}
	return ms / 86_400_000
}
