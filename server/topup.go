package server

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// Payments starts checkouts for top-ups. Two providers satisfy it: the
// development provider (the embedded default, its own checkout page) and
// Stripe Checkout.
type Payments interface {
	// Provider names the provider: "dev" or "stripe".
	Provider() string
	// CheckoutURL returns where the payer completes a pending top-up.
	CheckoutURL(t engine.TopupRecord) string
	// StartCheckout makes the provider's checkout session of a pending
	// top-up that has none yet and returns its id and URL; it is called
	// again for the same top-up only when the first call's session was not
	// recorded, and must then return the same session (idempotency keys).
	// A provider that needs a customer record of the org creates it first
	// and hands its id to recordCustomer. The development provider serves
	// its own page and returns "" (no session).
	StartCheckout(ctx context.Context, org engine.OrgRecord, t engine.TopupRecord, recordCustomer func(customerID string) error) (sessionID, url string, err error)
	// RefundPayment returns amountMinor (the top-up's currency) of a paid
	// top-up to the payer, exactly once per ledger entry entryID however
	// often it is called; retry says an earlier call may have happened. The
	// development provider moves no real money and does nothing.
	RefundPayment(ctx context.Context, t engine.TopupRecord, amountMinor int64, entryID string, retry bool) error
	// Invoices lists the org's invoices kept by the provider (Stripe's, of
	// the org's Stripe customer), at most invoicesListMax, for GET
	// /invoices to merge with the stored ones. It is a best-effort read,
	// bounded in time: on an error the stored invoices are answered. An org
	// with no customer at the provider has none, and the provider is not
	// called. The development provider keeps none (its receipts are stored).
	Invoices(ctx context.Context, org engine.OrgRecord) ([]engine.InvoiceRecord, error)
}

// devPayments is the development payment provider: its checkout page is
// served by this server, and its Pay button credits the wallet through the
// same command a Stripe event would.
type devPayments struct{ publicURL string }

func (d devPayments) Provider() string { return "dev" }

func (d devPayments) CheckoutURL(t engine.TopupRecord) string {
	return d.publicURL + "/dev/checkout/" + t.ID
}

func (d devPayments) StartCheckout(context.Context, engine.OrgRecord, engine.TopupRecord, func(string) error) (string, string, error) {
	return "", "", nil
}

func (d devPayments) RefundPayment(context.Context, engine.TopupRecord, int64, string, bool) error {
	return nil
}

func (d devPayments) Invoices(context.Context, engine.OrgRecord) ([]engine.InvoiceRecord, error) {
	return nil, nil
}

const urlLenMax = 2048

// checkURL requires an absolute http(s) URL.
func checkURL(field, s string) *apiError {
	u, err := url.Parse(s)
	if err != nil || len(s) > urlLenMax || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalidField(field, "must be an absolute http(s) URL of at most 2048 characters")
	}
	return nil
}

// postTopup creates a checkout for a one-time top-up. The Idempotency-Key
// makes it exactly-once: a retry returns the original checkoutUrl.
func (s *Server) postTopup(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	key, err := idempotencyKey(ctx)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "amount", "currency", "successUrl", "cancelUrl")
	}
	var amount int64
	var present bool
	if err == nil {
		amount, present, err = integer(v, "amount")
		if err == nil && (!present || amount < 1) {
			err = invalidField("amount", "is required: a positive integer in the currency's minor unit")
		}
	}
	currency := "usd"
	if err == nil {
		var c string
		if c, present, err = str(v, "currency"); err == nil && present {
			// ISO 4217 codes are case-insensitive; Stripe and the ledger
			// use lowercase.
			currency = strings.ToLower(c)
		}
	}
	if err == nil && !validCurrencyCode(currency) {
		err = invalidField("currency", "must be a lowercase ISO 4217 code such as usd or eur")
	}
	// USD limits are fixed, so they are checked here; another currency's
	// worth depends on the FX rate committed when the top-up is applied, so
	// the engine decides it (and answers a replay before looking at rates).
	if err == nil && currency == "usd" && (amount < engine.TopupCentsMin || amount > engine.TopupCentsMax) {
		err = invalidField("amount", "must be from 500 to 1000000 cents")
	}
	var success, cancel string
	if err == nil {
		success, err = requiredStr(v, "successUrl")
	}
	if err == nil {
		err = checkURL("successUrl", success)
	}
	if err == nil {
		cancel, err = requiredStr(v, "cancelUrl")
	}
	if err == nil {
		err = checkURL("cancelUrl", cancel)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdTopupCreate, OrgID: k.OrgID, Reference: key, AmountMinor: amount, Currency: currency,
		SuccessURL: success, CancelURL: cancel, Provider: s.payments.Provider(),
		BodyHash: bodyHash("topup", strconv.FormatInt(amount, 10), currency, success, cancel),
	})
	if err == nil {
		err = topupResultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	t, ok, rerr := s.store.Topup(r.ID)
	if rerr != nil || !ok {
		respondError(ctx, rs, newError(errUnavailable, "top-up not readable yet; retry"))
		return
	}
	if t, err = s.startCheckout(ctx, k.OrgID, t); err != nil {
		respondError(ctx, rs, err)
		return
	}
	status := fasthttp.StatusCreated
	if r.Code == engine.CodeReplayed {
		status = fasthttp.StatusOK
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	respond(ctx, rs, status, func(w *jw) { s.writeTopup(w, t) })
}

// topupResultError is resultError for a top-up, naming the field an engine
// refusal is about (the currency's FX rate, or the amount's USD worth).
func topupResultError(r *engine.Result) *apiError {
	e := resultError(r)
	if e == nil || e.code != errInvalidRequest {
		return e
	}
	field := "amount"
	if strings.Contains(r.Message, "FX rate") {
		field = "currency"
	}
	return invalidField(field, r.Message)
}

// startCheckout makes the provider's checkout session of a pending top-up
// that has none recorded yet: on its first request, or on a retry after the
// provider or the recording failed. A top-up with a recorded session is
// answered from the ledger without calling the provider. The session is
// recorded through the log, first recording wins, and the answer is the
// recorded one.
func (s *Server) startCheckout(ctx *fasthttp.RequestCtx, orgID string, t engine.TopupRecord) (engine.TopupRecord, *apiError) {
	if t.SessionID != "" || t.Status != engine.TopupPending || t.Provider != s.payments.Provider() {
		return t, nil
	}
	org, ok := s.store.OrgRecord(orgID)
	if !ok {
		return t, newError(errNotFound, "org not found")
	}
	record := func(cmd engine.Command) error {
		r, err := s.submitOne(ctx, cmd)
		if err != nil {
			return errors.New(err.message)
		}
		if e := resultError(&r); e != nil {
			return errors.New(e.message)
		}
		return nil
	}
	session, checkoutURL, err := s.payments.StartCheckout(context.Background(), org, t, func(customer string) error {
		return record(engine.Command{Kind: engine.CmdTopupSession, OrgID: orgID, Name: customer})
	})
	if err != nil {
		s.log.Warn("checkout session failed", "org", orgID, "topup", t.ID, "err", err)
		return t, newError(errUnavailable, "the payment provider is unavailable; retry with the same Idempotency-Key")
	}
	if session == "" {
		return t, nil
	}
	if err := record(engine.Command{Kind: engine.CmdTopupSession, OrgID: orgID, TopupID: t.ID, SessionID: session, CheckoutURL: checkoutURL}); err != nil {
		s.log.Warn("recording the checkout session failed", "org", orgID, "topup", t.ID, "err", err)
		return t, newError(errUnavailable, "the checkout session was not recorded; retry with the same Idempotency-Key")
	}
	t, ok, rerr := s.store.Topup(t.ID)
	if rerr != nil || !ok || t.SessionID == "" {
		return t, newError(errUnavailable, "top-up not readable yet; retry with the same Idempotency-Key")
	}
	return t, nil
}

// validCurrencyCode accepts three lowercase letters.
func validCurrencyCode(c string) bool {
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

func (s *Server) writeTopup(w *jw, t engine.TopupRecord) {
	w.objStart()
	checkout := t.CheckoutURL // a provider-hosted checkout (Stripe)
	if checkout == "" {
		checkout = s.payments.CheckoutURL(t)
	}
	w.kStr("checkoutUrl", checkout)
	w.kStr("topup_id", t.ID)
	session := t.SessionID
	if session == "" && t.Provider == "dev" {
		session = "dev_" + t.ID
	}
	w.kStrOrNull("session_id", session)
	w.kInt("amount", t.AmountMinor)
	w.kStr("currency", t.Currency)
	w.kStr("status", t.Status)
	w.kInt("credit_micros", t.CreditMicros)
	w.kTime("created_at", t.CreatedAtMs)
	w.kTime("paid_at", t.PaidAtMs)
	w.objEnd()
}

func (s *Server) writeLastTopup(w *jw, orgID string) {
	o, ok := s.store.OrgRecord(orgID)
	if !ok || o.LastTopupID == "" {
		w.null()
		return
	}
	t, ok, err := s.store.Topup(o.LastTopupID)
	if err != nil || !ok {
		w.null()
		return
	}
	s.writeTopup(w, t)
}

// listInvoices lists the org's invoices and receipts, newest first: the
// stored ones (invoice.paid / invoice.finalized events, development
// receipts) merged with those the payment provider keeps (Stripe's).
func (s *Server) listInvoices(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	invs, err := s.store.Invoices(k.OrgID, invoicesListMax)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "invoice read failed; retry"))
		return
	}
	invs = s.withProviderInvoices(k.OrgID, invs)
	respond(ctx, rs, 200, func(w *jw) {
		w.arrStart()
		for _, inv := range invs {
			w.objStart()
			w.kStr("id", inv.ID)
			w.kStr("number", inv.Number)
			w.kInt("amount", inv.AmountMinor)
			w.kStr("currency", inv.Currency)
			w.kStr("status", inv.Status)
			// The document's periods are never null: a stored invoice
			// whose event had none is dated by its creation.
			start, end := inv.PeriodStartMs, inv.PeriodEndMs
			if start == 0 {
				start = inv.CreatedAtMs
			}
			if end == 0 {
				end = start
			}
			w.kTime("period_start", start)
			w.kTime("period_end", end)
			pdf := inv.PDFURL
			if len(pdf) > 0 && pdf[0] == '/' {
				pdf = s.cfg.PublicURL + pdf
			}
			w.kStr("pdf_url", pdf)
			w.kTime("created_at", inv.CreatedAtMs)
			w.objEnd()
		}
		w.arrEnd()
	})
}

// withProviderInvoices merges the payment provider's invoices of the org
// into the stored ones. When the provider fails or is slow (its call is
// bounded), the stored invoices are answered and a warning is logged, so
// the endpoint stays available.
func (s *Server) withProviderInvoices(orgID string, stored []engine.InvoiceRecord) []engine.InvoiceRecord {
	org, ok := s.store.OrgRecord(orgID)
	if !ok {
		return stored
	}
	listed, err := s.payments.Invoices(context.Background(), org)
	if err != nil {
		s.log.Warn("listing the payment provider's invoices failed; answering with the stored invoices",
			"provider", s.payments.Provider(), "org", orgID, "err", err)
		return stored
	}
	return mergeInvoices(stored, listed, invoicesListMax)
}

// mergeInvoices merges the provider's invoices into the stored ones: one
// per id (the stored record wins), newest first by creation time (stored
// before listed at the same time), at most limit. Without listed
// invoices the stored list is returned as it is.
func mergeInvoices(stored, listed []engine.InvoiceRecord, limit int) []engine.InvoiceRecord {
	if len(listed) == 0 {
		return stored
	}
	seen := make(map[string]bool, len(stored)+len(listed))
	out := make([]engine.InvoiceRecord, 0, len(stored)+len(listed))
	for _, inv := range stored {
		seen[inv.ID] = true
		out = append(out, inv)
	}
	for _, inv := range listed {
		if !seen[inv.ID] {
			seen[inv.ID] = true
			out = append(out, inv)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAtMs > out[j].CreatedAtMs })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
