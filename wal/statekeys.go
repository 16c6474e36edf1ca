package wal

import (
	"encoding/binary"
)

// State keyspaces (everything but the raft keyspace 'r'). Org, key and
// transaction ids have fixed formats without '/', so plain concatenation is
// unambiguous; references are last in their keys.
//
//	a/<group:1>                       applied index and batch time of a group
//	o/<org>                           org record (engine.OrgRecord)
//	k/<sha256 hex>                    API key (engine.APIKey)
//	t/<org>/<entry id>                ledger entry; ids sort by (created_at, id)
//	m/<org>/<entry id>                mutable side record of a spend or top-up
//	x/<org>/<ns:1><reference>         reference -> transaction (exactly-once)
//	u/<org>/<day:8 BE><channel>\x00<group>  daily usage aggregate
//	p/<topup id>                      top-up (engine.TopupRecord)
//	i/<org>/<invoice id>              invoice or receipt
//	h/<hold id>                       reservation (engine.Hold)
//	q/<org>/<hold id>                 present while the hold is open
//	g/<group:1>                       group settings (default rate card)
//	y/<payment intent>                top-up id
const (
	prefixApplied byte = 'a'
	prefixOrg     byte = 'o'
	prefixKey     byte = 'k'
	prefixEntry   byte = 't'
	prefixTxn     byte = 'm'
	prefixRef     byte = 'x'
	prefixUsage   byte = 'u'
	prefixTopup   byte = 'p'
	prefixInvoice byte = 'i'
	prefixHold    byte = 'h'
	prefixOpen    byte = 'q'
	prefixSetting byte = 'g'
	prefixIntent  byte = 'y'
)

// intentKey indexes top-ups by the provider's payment intent, which refund
// and dispute events name.
func intentKey(pi string) []byte { return append([]byte{prefixIntent, keySep}, pi...) }

func holdKey(id string) []byte { return append([]byte{prefixHold, keySep}, id...) }

// openHoldKey marks a hold open, so recovery loads only open holds.
func openHoldKey(org, id string) []byte { return append(orgScoped(prefixOpen, org, len(id)), id...) }

func settingsKey(group uint8) []byte { return []byte{prefixSetting, keySep, group} }

func topupKey(id string) []byte { return append([]byte{prefixTopup, keySep}, id...) }

func invoiceKey(org, id string) []byte { return append(orgScoped(prefixInvoice, org, len(id)), id...) }

func appliedKey(group uint8) []byte { return []byte{prefixApplied, keySep, group} }

func orgKey(org string) []byte { return append([]byte{prefixOrg, keySep}, org...) }

func apiKeyKey(hash string) []byte { return append([]byte{prefixKey, keySep}, hash...) }

// orgScoped returns <prefix>/<org>/ with room for more.
func orgScoped(prefix byte, org string, extra int) []byte {
	k := make([]byte, 0, 3+len(org)+extra)
	k = append(k, prefix, keySep)
	k = append(k, org...)
	return append(k, keySep)
}

func entryKey(org, id string) []byte { return append(orgScoped(prefixEntry, org, len(id)), id...) }

func txnKey(org, id string) []byte { return append(orgScoped(prefixTxn, org, len(id)), id...) }

func refKey(org string, ns byte, ref string) []byte {
	return append(append(orgScoped(prefixRef, org, 1+len(ref)), ns), ref...)
}

func usageKey(org string, day int64, channel, group string) []byte {
	k := orgScoped(prefixUsage, org, 8+len(channel)+1+len(group))
	k = binary.BigEndian.AppendUint64(k, uint64(day))
	k = append(k, channel...)
	k = append(k, 0)
	return append(k, group...)
}

func usageDayPrefix(org string, day int64) []byte {
	return binary.BigEndian.AppendUint64(orgScoped(prefixUsage, org, 8), uint64(day))
}
