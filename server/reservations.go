package server

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// Reservations hold funds for a call or a streamed LLM response: create,
// extend (the next slice), commit (the actual usage) and release.

var reservationFields = []string{"reference", "channel", "amount_micros", "usage", "ttl_seconds", "metadata"}

func writeHold(w *jw, h *engine.Hold) {
	w.objStart()
	w.kStr("id", h.ID)
	w.kStr("reference", h.Reference)
	w.kStr("channel", h.Channel)
	w.kStr("status", h.Status)
	w.kInt("amount_micros", h.AmountMicros)
	w.kInt("captured_micros", h.CapturedMicros)
	w.kInt("uncollected_micros", h.UncollectedMicros)
	w.kBool("capped", h.Capped)
	w.kBool("expired", h.Status == engine.HoldExpired || h.LateCommit)
	w.kStrOrNull("transaction_id", h.CommitTxID)
	if h.RateVersion > 0 {
		w.kInt("rate_version", h.RateVersion)
	} else {
		w.kNull("rate_version")
	}
	w.key("metadata")
	w.objStart()
	for _, kv := range h.Metadata {
		w.key(kv.Key)
		w.raw(kv.Value)
	}
	w.objEnd()
	w.kTime("created_at", h.CreatedAtMs)
	w.kTime("expires_at", h.ExpiresAtMs)
	w.kTime("closed_at", h.ClosedAtMs)
	w.objEnd()
}

// ttlSeconds reads an optional ttl_seconds of 1..86400.
func ttlSeconds(v jsonx.Value) (int64, *apiError) {
	ttl, present, err := integer(v, "ttl_seconds")
	if err != nil {
		return 0, err
	}
	if present && (ttl < 1 || ttl > engine.HoldTTLSecondsMax) {
		return 0, invalidField("ttl_seconds", "must be an integer from 1 to 86400")
	}
	return ttl, nil
}

func (s *Server) postReservation(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	d, err := s.decodeDebit(k.OrgID, v, reservationFields...)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	ttl, err := ttlSeconds(v)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdHoldCreate, OrgID: k.OrgID, Reference: d.reference, Channel: d.channel,
		AmountMicros: d.amountMicros, Usage: d.usage, Metadata: d.metadata, TTLSeconds: ttl,
		BodyHash: d.bodyHash("hold", strconv.FormatInt(ttl, 10)),
	})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerHold(ctx, rs, &r, fasthttp.StatusCreated, nil)
}

// answerHold writes {"reservation", "balance", ...extra}: status for a first
// answer, 200 with Idempotent-Replayed for a replay.
func (s *Server) answerHold(ctx *fasthttp.RequestCtx, rs *reqState, r *engine.Result, status int, extra func(w *jw)) {
	if r.Code == engine.CodeReplayed {
		status = fasthttp.StatusOK
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	h := r.Hold
	if h == nil {
		respondError(ctx, rs, newError(errUnavailable, "reservation not readable yet; retry"))
		return
	}
	respond(ctx, rs, status, func(w *jw) {
		w.objStart()
		w.key("reservation")
		writeHold(w, h)
		if extra != nil {
			extra(w)
		}
		w.key("balance")
		writeBalance(w, r.Wallet)
		w.objEnd()
	})
}

func (s *Server) getReservation(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	h, ok, err := s.store.Hold(k.OrgID, id)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "read failed; retry"))
		return
	}
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "reservation not found"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) { writeHold(w, &h) })
}

func validHoldID(id string) bool {
	_, ok := engine.IDTimeMs(id, engine.PrefixReservation)
	return ok
}

func (s *Server) postReservationExtend(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	key, err := idempotencyKey(ctx)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "amount_micros", "ttl_seconds")
	}
	var amount int64
	var present bool
	if err == nil {
		amount, present, err = amountMicros(v, "amount_micros")
		if err == nil && !present {
			err = invalidField("amount_micros", "is required")
		}
	}
	var ttl int64
	if err == nil {
		ttl, err = ttlSeconds(v)
	}
	if err == nil && !validHoldID(id) {
		err = newError(errNotFound, "reservation not found")
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdHoldExtend, OrgID: k.OrgID, TxID: id, Reference: key, AmountMicros: amount, TTLSeconds: ttl,
		BodyHash: bodyHash("extend", id, strconv.FormatInt(amount, 10), strconv.FormatInt(ttl, 10)),
	})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerHold(ctx, rs, &r, fasthttp.StatusOK, nil)
}

func (s *Server) postReservationCommit(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "amount_micros", "usage")
	}
	var cmd engine.Command
	var usageCanon string
	if err == nil {
		var hasAmount bool
		cmd.AmountMicros, hasAmount, err = amountMicros(v, "amount_micros")
		usage, hasUsage := v.Get("usage")
		switch {
		case err != nil:
		case hasAmount && hasUsage:
			err = invalid("send either amount_micros or usage, not both")
		case !hasAmount && !hasUsage:
			err = invalidField("amount_micros", "amount_micros or usage is required")
		case hasUsage:
			cmd.Usage, err = decodeUsage(usage)
			usageCanon = canonical(usage)
		}
	}
	if err == nil && !validHoldID(id) {
		err = newError(errNotFound, "reservation not found")
	}
	if err == nil && cmd.Usage != nil {
		err = s.commitUsageFits(k.OrgID, id, cmd.Usage)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	amount := ""
	if cmd.Usage == nil {
		amount = strconv.FormatInt(cmd.AmountMicros, 10)
	}
	cmd.Kind, cmd.OrgID, cmd.TxID = engine.CmdHoldCommit, k.OrgID, id
	cmd.BodyHash = bodyHash("commit", amount, usageCanon)
	r, err := s.submitOne(ctx, cmd)
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	ev, ok := s.entryOf(k.OrgID, &r)
	if !ok {
		respondError(ctx, rs, newError(errUnavailable, "transaction not readable yet; retry"))
		return
	}
	s.answerHold(ctx, rs, &r, fasthttp.StatusCreated, func(w *jw) {
		w.key("transaction")
		writeEntry(w, &ev)
		w.kBool("capped", r.Capped)
		w.kInt("uncollected_micros", r.UncollectedMicros)
		w.kBool("expired", r.Expired)
	})
}

func (s *Server) postReservationRelease(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	v, err := optionalJSONBody(ctx)
	if err == nil {
		err = onlyFields(v)
	}
	if err == nil && !validHoldID(id) {
		err = newError(errNotFound, "reservation not found")
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdHoldRelease, OrgID: k.OrgID, TxID: id})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerHold(ctx, rs, &r, fasthttp.StatusOK, nil)
}

// commitUsageFits refuses, before the log, a commit whose usage names an
// input the hold's rate does not take (422 no_rate, as a charge or a hold
// with it is; see engine.Estimate). A hold already closed is left to the
// engine, which replays its commit or refuses another; so is a hold that
// cannot be read now.
func (s *Server) commitUsageFits(org, id string, u *engine.Usage) *apiError {
	h, ok, err := s.store.Hold(org, id)
	if err != nil || !ok || h.Rate == nil || (h.Status != engine.HoldOpen && h.Status != engine.HoldExpired) {
		return nil
	}
	if f := u.ForeignInput(h.Rate.Per); f != "" {
		return newError(errNoRate, "usage."+f+" does not apply to this hold's channel "+strconv.Quote(h.Channel)+", priced per "+h.Rate.Per)
	}
	return nil
}
