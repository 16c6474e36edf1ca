package server

import (
	"net/url"
	"strconv"

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
}

// devPayments is the development payment provider: its checkout page is
// served by this server, and its Pay button credits the wallet through the
// same command a Stripe event would.
type devPayments struct{ publicURL string }

func (d devPayments) Provider() string { return "dev" }

func (d devPayments) CheckoutURL(t engine.TopupRecord) string {
	return d.publicURL + "/dev/checkout/" + t.ID
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
			currency = c
		}
	}
	if err == nil && currency != "usd" {
		err = invalidField("currency", "no FX rate configured for currency "+strconv.Quote(currency))
	}
	if err == nil && (amount < engine.TopupCentsMin || amount > engine.TopupCentsMax) {
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
		err = resultError(&r)
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
	status := fasthttp.StatusCreated
	if r.Code == engine.CodeReplayed {
		status = fasthttp.StatusOK
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	respond(ctx, rs, status, func(w *jw) { s.writeTopup(w, t) })
}

func (s *Server) writeTopup(w *jw, t engine.TopupRecord) {
	w.objStart()
	w.kStr("checkoutUrl", s.payments.CheckoutURL(t))
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

func (s *Server) listInvoices(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	invs, err := s.store.Invoices(k.OrgID, 100)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "invoice read failed; retry"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.arrStart()
		for _, inv := range invs {
			w.objStart()
			w.kStr("id", inv.ID)
			w.kStr("number", inv.Number)
			w.kInt("amount", inv.AmountMinor)
			w.kStr("currency", inv.Currency)
			w.kStr("status", inv.Status)
			w.kTime("period_start", inv.PeriodStartMs)
			w.kTime("period_end", inv.PeriodEndMs)
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
