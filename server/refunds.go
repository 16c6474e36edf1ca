package server

import (
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
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdRefund, OrgID: k.OrgID, Reference: key, TxID: txID, AmountMicros: amount, Reason: reason,
		BodyHash: bodyHash("refund", txID, strconv.FormatInt(amount, 10), reason),
	})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerWrite(ctx, rs, k.OrgID, &r)
}
