package server

import (
	"strconv"

	"github.com/orbit/orbit/engine"
)

// writeEntry writes one ledger entry (credit_transactions) with the seed's
// fields plus the exact micros.
func writeEntry(w *jw, e *engine.EntryView) {
	w.objStart()
	w.kStr("id", e.ID)
	w.kStr("type", e.Type.String())
	w.kInt("amount_minor", cents(e.AmountMicros))
	w.kInt("amount_micros", e.AmountMicros)
	w.kInt("balance_after_micros", e.BalanceAfterMicros)
	w.kStr("reference", e.Reference)
	w.key("metadata")
	w.objStart()
	for _, kv := range e.Metadata {
		w.key(kv.Key)
		w.raw(kv.Value)
	}
	w.objEnd()
	w.kTime("created_at", e.CreatedAtMs)
	w.kTime("expires_at", e.ExpiresAtMs)
	w.kTime("refunded_at", e.RefundedAtMs)
	if e.Type == engine.EntrySpend {
		w.kStrOrNull("delivery_status", e.Delivery.String())
	}
	w.objEnd()
}

// writeBalance writes the /balance fields for a wallet.
func writeBalance(w *jw, v engine.WalletView) {
	w.objStart()
	writeBalanceFields(w, v)
	w.objEnd()
}

func writeBalanceFields(w *jw, v engine.WalletView) {
	w.kUSD("balance_usd", v.BalanceMicros)
	w.kInt("balance_cents", cents(v.BalanceMicros))
	w.kInt("credits", cents(v.BalanceMicros))
	reason := v.BlockReason()
	w.kBool("outbound_paused", reason != "")
	w.kStrOrNull("outbound_block_reason", reason)
	w.kInt("balance_micros", v.BalanceMicros)
	w.kInt("reserved_micros", v.ReservedMicros)
	w.kInt("available_micros", v.AvailableMicros())
	w.kStr("currency", "usd")
	w.kStrOrNull("outbound_block_details", v.HoldDetails)
	w.kInt("pause_threshold_micros", v.ThresholdMicros)
	w.key("as_of")
	w.sep()
	w.b = append(w.b, '"')
	w.b = appendAsOf(w.b, v)
	w.b = append(w.b, '"')
}

// asOf names the log position a wallet view reflects: "<group>:<index>".
// For one org it never goes backwards.
func appendAsOf(b []byte, v engine.WalletView) []byte {
	b = strconv.AppendUint(b, uint64(v.Group), 10)
	b = append(b, ':')
	return strconv.AppendUint(b, v.Index, 10)
}

// writeOrg writes an org as the operator API shows it.
func writeOrg(w *jw, o engine.OrgRecord, v engine.WalletView) {
	w.objStart()
	w.kStr("id", o.ID)
	w.kStr("name", o.Name)
	w.kTime("created_at", o.CreatedAtMs)
	w.kInt("pause_threshold_micros", o.PauseThresholdMicros)
	w.key("wallet")
	writeBalance(w, v)
	w.objEnd()
}

// writeKey writes an API key, never its secret.
func writeKey(w *jw, k engine.APIKey, secret string) {
	w.objStart()
	w.kStr("id", k.ID)
	w.kStr("org_id", k.OrgID)
	w.kStr("role", k.Role)
	w.kStr("prefix", k.Prefix)
	if secret != "" {
		w.kStr("key", secret)
	}
	w.kTime("created_at", k.CreatedAtMs)
	w.kTime("revoked_at", k.RevokedAtMs)
	w.objEnd()
}
