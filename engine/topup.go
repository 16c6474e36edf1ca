package engine

import (
	"strconv"
	"time"
)

// USDRateScale is the scale of FX rates: USD per currency unit x 10^8.
const USDRateScale int64 = 100_000_000

// Top-up amount limits in cents of USD value (SPEC.md section 4).
const (
	TopupCentsMin int64 = 500
	TopupCentsMax int64 = 1_000_000
)

// topup looks up a top-up in this batch's writes, then the store.
func (a *applier) topup(id string) (TopupRecord, bool) {
	if t, ok := a.e.pendingTopups[id]; ok {
		return t, true
	}
	if a.e.cold == nil {
		return TopupRecord{}, false
	}
	return a.e.cold.Topup(id)
}

func (a *applier) putTopup(t TopupRecord) {
	a.e.pendingTopups[t.ID] = t
	a.out.Topups = append(a.out.Topups, t)
}

// topupCreate records a pending top-up for a checkout. Its Idempotency-Key
// makes it exactly-once: a retry gets the same top-up.
func (a *applier) topupCreate(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSTopup, c.Reference); ok {
		r := replayOrConflict(rec, c.BodyHash, "Idempotency-Key already used with a different request")
		r.ID = rec.TxID
		return r
	}
	rate, ok := a.e.fxRate(c.Currency)
	if !ok {
		return Result{Code: CodeInvalid, Message: "no FX rate configured for currency " + strconv.Quote(c.Currency)}
	}
	credit, ok := creditMicros(c.AmountMinor, c.Currency, rate)
	if !ok || c.AmountMinor <= 0 {
		return Result{Code: CodeInvalid, Message: "amount out of range"}
	}
	if usdCents := credit / MicrosPerCent; usdCents < TopupCentsMin || usdCents > TopupCentsMax {
		return Result{Code: CodeInvalid, Message: "amount must be worth 500 to 1000000 cents of USD"}
	}
	t := TopupRecord{
		ID:           a.newID(PrefixTopup),
		OrgID:        o.rec.ID,
		Status:       TopupPending,
		AmountMinor:  c.AmountMinor,
		Currency:     c.Currency,
		FxRate:       rate,
		CreditMicros: credit,
		SuccessURL:   c.SuccessURL,
		CancelURL:    c.CancelURL,
		Provider:     c.Provider,
		SessionID:    c.SessionID,
		CreatedAtMs:  a.timeMs,
	}
	a.putTopup(t)
	a.putRef(o.rec.ID, NSTopup, c.Reference, RefRecord{TxID: t.ID, BodyHash: c.BodyHash})
	return Result{Code: CodeOK, ID: t.ID}
}

// topupComplete credits a paid top-up exactly once, however often the
// payment provider reports it, and issues its receipt.
//
// A top-up that expired is still credited: its checkout expired, yet the
// provider reports a payment (a late event, or expiry raced the payment), so
// the money was taken and belongs in the wallet.
//
// A command that carries what was paid (Currency set: every Stripe checkout
// event the server maps) must match the top-up: the same amount in the same
// currency, and the top-up's own checkout session when one is recorded;
// otherwise nothing is credited (CodeInvalid, nothing written) and the
// payment is left to the operator. Commands without it (the development
// provider, log entries written before the check) apply as before.
func (a *applier) topupComplete(o *Org, c *Command) Result {
	t, ok := a.topup(c.TopupID)
	if !ok || t.OrgID != o.rec.ID {
		return Result{Code: CodeNotFound, Message: "top-up not found"}
	}
	if msg := paymentMismatch(t, c); msg != "" {
		return Result{Code: CodeInvalid, Message: msg}
	}
	if t.Status == TopupPaid {
		return Result{Code: CodeReplayed, TxID: t.EntryID, ID: t.ID}
	}
	session := c.SessionID
	if session == "" {
		session = t.SessionID
	}
	reference := "dev_session:" + t.ID
	if t.Provider == "stripe" {
		reference = "stripe_session:" + session
	}
	if rec, ok := a.ref(o.rec.ID, NSSession, reference); ok {
		return Result{Code: CodeReplayed, TxID: rec.TxID, ID: t.ID}
	}
	if _, ok := addMicros(o.rec.BalanceMicros, t.CreditMicros); !ok {
		return Result{Code: CodeInvalid, Message: "balance would overflow"}
	}
	md := Metadata{}.with("currency", jsonString(t.Currency)).with("fx_rate", formatRate(t.FxRate))
	md = md.with("topup_id", jsonString(t.ID))
	e := a.write(o, EntryTopup, t.CreditMicros, reference, md, 0)
	a.putRef(o.rec.ID, NSSession, reference, RefRecord{TxID: e.ID})
	a.noteEntry(e)

	if t.Provider == "dev" {
		t.InvoiceID = a.devReceipt(o, &t, c)
	}
	t.Status = TopupPaid
	t.SessionID = session
	t.PaymentIntent = c.PaymentIntent
	t.PaidAtMs = a.timeMs
	t.EntryID = e.ID
	a.putTopup(t)
	o.rec.LastTopupID = t.ID
	a.touch(o)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e, ID: t.ID}
}

// paymentMismatch says why a completion that carries the paid amount and
// currency does not belong to the top-up, or "" when it does (or carries
// none).
func paymentMismatch(t TopupRecord, c *Command) string {
	if c.Currency == "" {
		return ""
	}
	if c.Currency != t.Currency || c.AmountMinor != t.AmountMinor {
		return "payment of " + strconv.FormatInt(c.AmountMinor, 10) + " " + strconv.Quote(c.Currency) +
			" does not match top-up " + t.ID + " of " + strconv.FormatInt(t.AmountMinor, 10) + " " + strconv.Quote(t.Currency)
	}
	if c.SessionID != "" && t.SessionID != "" && c.SessionID != t.SessionID {
		return "checkout session " + strconv.Quote(c.SessionID) + " is not the session of top-up " + t.ID
	}
	return ""
}

// devReceipt issues the development provider's numbered receipt
// (INV-YYYY-NNN) for a paid top-up.
func (a *applier) devReceipt(o *Org, t *TopupRecord, c *Command) string {
	o.rec.InvoiceSeq++
	inv := InvoiceRecord{
		ID:            a.newID(PrefixInvoice),
		OrgID:         o.rec.ID,
		Number:        "INV-" + strconv.Itoa(time.UnixMilli(a.timeMs).UTC().Year()) + "-" + pad3(o.rec.InvoiceSeq),
		AmountMinor:   t.AmountMinor,
		Currency:      t.Currency,
		Status:        "paid",
		PeriodStartMs: a.timeMs,
		PeriodEndMs:   a.timeMs,
		CreatedAtMs:   a.timeMs,
		TopupID:       t.ID,
	}
	// The development provider's receipt page; its token (the dev payment
	// id, random) keeps receipts from being read by guessing ids.
	inv.PDFURL = "/dev/receipts/" + o.rec.ID + "/" + inv.ID + "?token=" + c.PaymentIntent
	a.out.Invoices = append(a.out.Invoices, inv)
	return inv.ID
}

// topupExpire closes a pending top-up whose checkout expired.
func (a *applier) topupExpire(o *Org, c *Command) Result {
	t, ok := a.topup(c.TopupID)
	if !ok || t.OrgID != o.rec.ID {
		return Result{Code: CodeNotFound, Message: "top-up not found"}
	}
	if t.Status == TopupPending {
		t.Status = TopupExpired
		a.putTopup(t)
	}
	return Result{Code: CodeOK, ID: t.ID}
}

// formatRate writes a rate x 10^8 as a JSON number with at least one
// decimal (1.0, 1.0825).
func formatRate(rate int64) string {
	s := strconv.FormatInt(rate/USDRateScale, 10) + "."
	frac := strconv.FormatInt(rate%USDRateScale+USDRateScale, 10)[1:]
	for len(frac) > 1 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return s + frac
}

func pad3(n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}
