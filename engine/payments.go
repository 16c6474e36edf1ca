package engine

import (
	"math/bits"
	"strconv"
)

// Payments: FX rates, Stripe checkout sessions, and the provider's events
// (credits, expiries, invoices, refunds to the card and disputes), each
// applied at most once by its event id and by the id of what it carries.

// Stripe event types the engine acts on.
const (
	EventCheckoutCompleted     = "checkout.session.completed"
	EventCheckoutAsyncSucceded = "checkout.session.async_payment_succeeded"
	EventCheckoutExpired       = "checkout.session.expired"
	EventInvoicePaid           = "invoice.paid"
	EventInvoiceFinalized      = "invoice.finalized"
	EventChargeRefunded        = "charge.refunded"
	EventDisputeCreated        = "charge.dispute.created"
	EventDisputeClosed         = "charge.dispute.closed"
)

// currencyExponents lists ISO 4217 minor-unit exponents other than 2.
var currencyExponents = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0, "pyg": 0,
	"rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}

// CurrencyExponent is the number of decimals of a currency's minor unit.
func CurrencyExponent(currency string) int {
	if e, ok := currencyExponents[currency]; ok {
		return e
	}
	return 2
}

// FxRateMax bounds an FX rate: 10,000 USD per unit, x 10^8.
const FxRateMax int64 = 10_000 * USDRateScale

// creditMicros converts an amount in a currency's minor unit to USD micros:
// floor(amount x 10^(6-exponent) x rate / 10^8), with a 128-bit intermediate.
func creditMicros(amountMinor int64, currency string, rate int64) (int64, bool) {
	if amountMinor < 0 || rate <= 0 {
		return 0, false
	}
	scale := uint64(1)
	for i := CurrencyExponent(currency); i < 6; i++ {
		scale *= 10
	}
	hi, lo := bits.Mul64(uint64(amountMinor), scale)
	if hi != 0 {
		return 0, false
	}
	return mulDivFloor(lo, uint64(rate), uint64(USDRateScale))
}

// fxRate returns the committed rate of a currency (usd is 1).
func (e *Engine) fxRate(currency string) (int64, bool) {
	if currency == "usd" {
		return USDRateScale, true
	}
	r, ok := e.settings.FxRates[currency]
	return r, ok
}

// FxRates returns the committed FX table.
func (e *Engine) FxRates() map[string]int64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make(map[string]int64, len(e.settings.FxRates))
	for k, v := range e.settings.FxRates {
		out[k] = v
	}
	return out
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'a' || c[i] > 'z' {
			return false
		}
	}
	return true
}

// setFxRates replaces the FX table.
func (a *applier) setFxRates(c *Command) Result {
	for _, cur := range sortedKeys(c.FxRates) {
		if !validCurrency(cur) || cur == "usd" {
			return Result{Code: CodeInvalid, Message: "currency " + strconv.Quote(cur) + " must be a lowercase ISO 4217 code other than usd"}
		}
		if r := c.FxRates[cur]; r < 1 || r > FxRateMax {
			return Result{Code: CodeInvalid, Message: "rate of " + cur + " out of range"}
		}
	}
	table := make(map[string]int64, len(c.FxRates))
	for k, v := range c.FxRates {
		table[k] = v
	}
	a.e.settings.FxRates = table
	copied := a.e.settings
	a.out.Settings = &copied
	return Result{Code: CodeOK}
}

// topupSession records the provider's checkout session of a pending top-up,
// so a retried request returns the same checkout URL without a new session,
// and the org's provider customer (Name) the first time one is made.
func (a *applier) topupSession(o *Org, c *Command) Result {
	if c.Name != "" && o.rec.StripeCustomerID == "" {
		o.rec.StripeCustomerID = c.Name
		a.touch(o)
	}
	if c.TopupID == "" {
		return Result{Code: CodeOK}
	}
	t, ok := a.topup(c.TopupID)
	if !ok || t.OrgID != o.rec.ID {
		return Result{Code: CodeNotFound, Message: "top-up not found"}
	}
	if t.SessionID == "" {
		t.SessionID = c.SessionID
		t.CheckoutURL = c.CheckoutURL
		a.putTopup(t)
	}
	return Result{Code: CodeOK, ID: t.ID}
}

// paymentEvent applies a provider event once per event id.
func (a *applier) paymentEvent(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSEvent, c.Reference); ok {
		return Result{Code: CodeReplayed, TxID: rec.TxID}
	}
	var r Result
	switch c.Name {
	case EventCheckoutCompleted, EventCheckoutAsyncSucceded:
		r = a.topupComplete(o, c)
		if r.Code == CodeReplayed {
			r.Code = CodeOK // credited before (by another event of the session)
		}
	case EventCheckoutExpired:
		r = a.topupExpire(o, c)
	case EventInvoicePaid, EventInvoiceFinalized:
		r = a.storeInvoice(o, c)
	case EventChargeRefunded:
		r = a.cardRefund(o, c)
	case EventDisputeCreated:
		r = a.disputeCreated(o, c)
	case EventDisputeClosed:
		r = a.disputeClosed(o, c)
	default:
		return Result{Code: CodeOK} // unknown events change nothing
	}
	if r.Code == CodeOK {
		a.putRef(o.rec.ID, NSEvent, c.Reference, RefRecord{TxID: r.TxID})
	}
	return r
}

func (a *applier) storeInvoice(o *Org, c *Command) Result {
	if c.Invoice == nil || c.Invoice.ID == "" {
		return Result{Code: CodeInvalid, Message: "invoice missing"}
	}
	inv := *c.Invoice
	inv.OrgID = o.rec.ID
	a.out.Invoices = append(a.out.Invoices, inv)
	return Result{Code: CodeOK, ID: inv.ID}
}

// topupMicros converts a refund or dispute amount in the top-up's currency
// to micros at the top-up's own rate.
func topupMicros(t TopupRecord, amountMinor int64) (int64, bool) {
	m, ok := creditMicros(amountMinor, t.Currency, t.FxRate)
	return min(m, t.CreditMicros), ok
}

// forcedDebit takes what the provider took back, as far as available funds
// reach; a shortfall is recorded and pauses the org (payment_disputed).
func (a *applier) forcedDebit(o *Org, typ EntryType, wanted int64, reference string, md Metadata) *Entry {
	avail := max(o.rec.BalanceMicros-o.rec.ReservedMicros, 0)
	taken := min(wanted, avail)
	if short := wanted - taken; short > 0 {
		md = md.with("uncollected_micros", jsonInt(short))
		o.rec.Disputed = true
	}
	return a.debit(o, typ, taken, reference, md)
}

// cardRefund records a refund to the card that the provider reports. A
// refund this API made (RefundEntryID set, or its id already recorded)
// debits nothing again.
func (a *applier) cardRefund(o *Org, c *Command) Result {
	if c.TxID == "" {
		return Result{Code: CodeInvalid, Message: "refund id missing"}
	}
	if rec, ok := a.ref(o.rec.ID, NSCardRefund, c.TxID); ok {
		return Result{Code: CodeOK, TxID: rec.TxID}
	}
	if c.RefundEntryID != "" {
		a.putRef(o.rec.ID, NSCardRefund, c.TxID, RefRecord{TxID: c.RefundEntryID})
		return Result{Code: CodeOK, TxID: c.RefundEntryID}
	}
	t, ok := a.topup(c.TopupID)
	if !ok || t.OrgID != o.rec.ID || t.EntryID == "" {
		return Result{Code: CodeNotFound, Message: "top-up not found"}
	}
	micros, ok := topupMicros(t, c.AmountMinor)
	if !ok || micros <= 0 {
		return Result{Code: CodeInvalid, Message: "refund amount out of range"}
	}
	// Never more than is still refundable of the top-up: what was refunded
	// or disputed before is gone already.
	if st, ok := a.txn(o.rec.ID, t.EntryID); ok {
		micros = min(micros, max(st.AmountMicros-st.RefundedMicros, 0))
	}
	md := Metadata{}.with("refunded_transaction_id", jsonString(t.EntryID)).with("stripe_refund_id", jsonString(c.TxID))
	if micros == 0 {
		a.putRef(o.rec.ID, NSCardRefund, c.TxID, RefRecord{})
		return Result{Code: CodeOK}
	}
	e := a.forcedDebit(o, EntryTopupRefund, micros, "topup_refund:"+c.TxID, md)
	a.noteTopupRefunded(o, t.EntryID, -e.AmountMicros)
	a.putRef(o.rec.ID, NSCardRefund, c.TxID, RefRecord{TxID: e.ID})
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

// noteTopupRefunded adds to what was refunded of a top-up.
func (a *applier) noteTopupRefunded(o *Org, entryID string, micros int64) {
	st, ok := a.txn(o.rec.ID, entryID)
	if !ok {
		return
	}
	st.RefundedMicros = min(st.RefundedMicros+micros, st.AmountMicros)
	if st.RefundedMicros == st.AmountMicros && st.RefundedAtMs == 0 {
		st.RefundedAtMs = a.timeMs
	}
	a.putTxn(st)
}

func (a *applier) disputeCreated(o *Org, c *Command) Result {
	if c.TxID == "" {
		return Result{Code: CodeInvalid, Message: "dispute id missing"}
	}
	if rec, ok := a.ref(o.rec.ID, NSDispute, c.TxID); ok {
		return Result{Code: CodeOK, TxID: rec.TxID}
	}
	t, ok := a.topup(c.TopupID)
	if !ok || t.OrgID != o.rec.ID {
		return Result{Code: CodeNotFound, Message: "top-up not found"}
	}
	micros, ok := topupMicros(t, c.AmountMinor)
	if !ok || micros < 0 {
		return Result{Code: CodeInvalid, Message: "dispute amount out of range"}
	}
	md := Metadata{}.with("stripe_dispute_id", jsonString(c.TxID)).with("topup_id", jsonString(t.ID))
	e := a.forcedDebit(o, EntryDispute, micros, "dispute:"+c.TxID, md)
	// What a dispute takes back can no longer be refunded to the card.
	if t.EntryID != "" {
		a.noteTopupRefunded(o, t.EntryID, micros)
	}
	o.rec.Disputed = true
	a.touch(o)
	a.putRef(o.rec.ID, NSDispute, c.TxID, RefRecord{TxID: e.ID})
	a.noteEntry(e)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

// disputeClosed gives back what a dispute took when the dispute is won.
func (a *applier) disputeClosed(o *Org, c *Command) Result {
	if c.Reason != "won" {
		return Result{Code: CodeOK}
	}
	if rec, ok := a.ref(o.rec.ID, NSDisputeWon, c.TxID); ok {
		return Result{Code: CodeOK, TxID: rec.TxID}
	}
	rec, ok := a.ref(o.rec.ID, NSDispute, c.TxID)
	if !ok {
		return Result{Code: CodeOK} // a dispute we never debited
	}
	st, ok := a.txn(o.rec.ID, rec.TxID)
	if !ok || st.AmountMicros == 0 {
		a.putRef(o.rec.ID, NSDisputeWon, c.TxID, RefRecord{})
		return Result{Code: CodeOK}
	}
	md := Metadata{}.with("stripe_dispute_id", jsonString(c.TxID)).with("status", jsonString("won"))
	e := a.write(o, EntryDispute, st.AmountMicros, "dispute_won:"+c.TxID, md, 0)
	// The money is the org's again, and refundable again.
	if t, ok := a.topup(c.TopupID); ok && t.OrgID == o.rec.ID && t.EntryID != "" {
		if ts, ok := a.txn(o.rec.ID, t.EntryID); ok {
			ts.RefundedMicros = max(ts.RefundedMicros-st.AmountMicros, 0)
			ts.RefundedAtMs = 0
			a.putTxn(ts)
		}
	}
	a.putRef(o.rec.ID, NSDisputeWon, c.TxID, RefRecord{TxID: e.ID})
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

// topupRefund returns (part of) a top-up to the card: a negative
// `topup_refund` entry, refused when available funds do not cover it. The
// server then asks the provider to refund the payment, keyed by the entry's
// id, so a retry never refunds the card twice.
func (a *applier) topupRefund(o *Org, c *Command, t TxnState) Result {
	amt, refusal := refundAmount(t, c.AmountMicros)
	if refusal != nil {
		return *refusal
	}
	if amt > o.rec.BalanceMicros-o.rec.ReservedMicros {
		return Result{Code: CodeInsufficientFunds, Message: "available funds do not cover the refund"}
	}
	md := Metadata{}.with("refunded_transaction_id", jsonString(t.ID))
	if c.Reason != "" {
		md = md.with("reason", jsonString(c.Reason))
	}
	e := a.debit(o, EntryTopupRefund, amt, "refund:"+t.ID, md)
	a.putRef(o.rec.ID, NSRefund, c.Reference, RefRecord{TxID: e.ID, BodyHash: c.BodyHash})
	a.noteEntry(e)
	t.RefundedMicros += amt
	if t.RefundedMicros == t.AmountMicros {
		t.RefundedAtMs = a.timeMs
	}
	a.putTxn(t)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}
