package server

import (
	"context"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// idempotencyKey returns the request's Idempotency-Key, required on routes
// whose body has no reference of its own.
func idempotencyKey(ctx *fasthttp.RequestCtx) (string, *apiError) {
	k := ctx.Request.Header.Peek("Idempotency-Key")
	if len(k) < idempotencyKeyLenMin || len(k) > idempotencyKeyLenMax || !visibleASCII(k) {
		return "", newError(errIdempotencyKeyRequired, "an Idempotency-Key header of 8-255 visible ASCII characters is required")
	}
	return string(k), nil
}

func (s *Server) postRefund(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	key, err := idempotencyKey(ctx)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if err := onlyFields(v, "transaction_id", "amount_micros", "reason"); err != nil {
		respondError(ctx, rs, err)
		return
	}
	txID, err := requiredStr(v, "transaction_id")
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	amount, _, err := amountMicros(v, "amount_micros")
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	reason, _, err := str(v, "reason")
	if err == nil {
		err = checkText("reason", reason, reasonLenMax)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if _, ok := engine.IDTimeMs(txID, engine.PrefixTransaction); !ok {
		respondError(ctx, rs, newError(errNotFound, "transaction not found"))
		return
	}
	if err := s.checkCardRefund(k.OrgID, txID, amount); err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdRefund, OrgID: k.OrgID, Reference: key, TxID: txID, AmountMicros: amount, Reason: reason,
		BodyHash: bodyHash("refund", txID, strconv.FormatInt(amount, 10), reason),
	})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if resultError(&r) == nil {
		if err := s.refundToCard(k.OrgID, &r); err != nil {
			respondError(ctx, rs, err)
			return
		}
	}
	s.answerWrite(ctx, rs, k.OrgID, &r)
}

// A top-up refund is a `topup_refund` entry written by the engine, then a
// refund of the payment by the provider. The provider's refund is keyed by
// the entry's id, so it happens once however often the request is retried:
// a retry with the same Idempotency-Key replays the entry and asks the
// provider again, which completes a refund whose first attempt failed.

// providerTopup returns the top-up a `topup` entry credited when the
// payment provider in use took its payment (only Stripe moves real money).
func (s *Server) providerTopup(orgID string, topupEntry engine.EntryView) (engine.TopupRecord, bool, *apiError) {
	if s.payments.Provider() != "stripe" || topupEntry.Type != engine.EntryTopup {
		return engine.TopupRecord{}, false, nil
	}
	id, ok := metadataString(topupEntry.Metadata, "topup_id")
	if !ok {
		return engine.TopupRecord{}, false, nil
	}
	t, ok, err := s.store.Topup(id)
	if err != nil {
		return t, false, newError(errUnavailable, "top-up read failed; retry with the same Idempotency-Key")
	}
	if !ok || t.OrgID != orgID || t.Provider != s.payments.Provider() {
		return t, false, nil
	}
	return t, true, nil
}

// checkCardRefund refuses, before anything is written, a top-up refund the
// provider could not carry out: a payment that was never recorded, or an
// amount below one minor unit of the top-up's currency.
func (s *Server) checkCardRefund(orgID, txID string, amountMicros int64) *apiError {
	if s.payments.Provider() != "stripe" {
		return nil
	}
	ev, ok, err := s.store.Transaction(orgID, txID)
	if err != nil {
		return newError(errUnavailable, "transaction read failed; retry with the same Idempotency-Key")
	}
	if !ok {
		return nil // the engine answers 404
	}
	t, ok, aerr := s.providerTopup(orgID, ev)
	if aerr != nil || !ok {
		return aerr
	}
	if t.PaymentIntent == "" {
		return invalidField("transaction_id", "the top-up's payment is not recorded; it cannot be refunded to the card")
	}
	if amountMicros > 0 {
		if minor, ok := minorFromMicros(amountMicros, t.Currency, t.FxRate); !ok || minor < 1 {
			return invalidField("amount_micros", "is less than one minor unit of the top-up's currency ("+t.Currency+")")
		}
	}
	return nil
}

// refundToCard asks the provider to refund the payment of a top-up whose
// `topup_refund` entry r wrote (or, replayed, had written).
func (s *Server) refundToCard(orgID string, r *engine.Result) *apiError {
	if s.payments.Provider() != "stripe" {
		return nil
	}
	ev, ok := s.entryOf(orgID, r)
	if !ok {
		return newError(errUnavailable, "transaction not readable yet; retry with the same Idempotency-Key")
	}
	if ev.Type != engine.EntryTopupRefund {
		return nil
	}
	topupEntryID, _ := metadataString(ev.Metadata, "refunded_transaction_id")
	te, ok, err := s.store.Transaction(orgID, topupEntryID)
	if err != nil || !ok {
		return newError(errUnavailable, "top-up entry not readable yet; retry with the same Idempotency-Key")
	}
	t, ok, aerr := s.providerTopup(orgID, te)
	if aerr != nil || !ok {
		return aerr
	}
	minor, ok := minorFromMicros(-ev.AmountMicros, t.Currency, t.FxRate)
	if !ok || minor < 1 || t.PaymentIntent == "" {
		s.log.Warn("top-up refund not sent to the provider", "org", orgID, "entry", ev.ID, "topup", t.ID, "amount_minor", minor)
		return nil
	}
	if err := s.payments.RefundPayment(context.Background(), t, minor, ev.ID, r.Code == engine.CodeReplayed); err != nil {
		s.log.Warn("card refund failed; the client's retry completes it", "org", orgID, "entry", ev.ID, "topup", t.ID, "err", err)
		return newError(errUnavailable, "the refund is recorded but the payment provider failed; retry with the same Idempotency-Key to complete it")
	}
	return nil
}
