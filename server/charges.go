package server

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

var chargeFields = []string{"reference", "channel", "amount_micros", "usage", "metadata"}

// decodeCharge validates one charge body and returns its command. Errors
// that depend on no state are found here; the rest are the engine's.
func (s *Server) decodeCharge(orgID string, v jsonx.Value) (engine.Command, *apiError) {
	if v.Kind != jsonx.Object {
		return engine.Command{}, invalid("a charge must be a JSON object")
	}
	if err := onlyFields(v, chargeFields...); err != nil {
		return engine.Command{}, err
	}
	ref, err := requiredStr(v, "reference")
	if err != nil {
		return engine.Command{}, err
	}
	if err := checkReference("reference", ref); err != nil {
		return engine.Command{}, err
	}
	channel, err := requiredStr(v, "channel")
	if err != nil {
		return engine.Command{}, err
	}
	if err := checkChannel(channel); err != nil {
		return engine.Command{}, err
	}
	md, err := metadata(v)
	if err != nil {
		return engine.Command{}, err
	}
	amount, hasAmount, err := amountMicros(v, "amount_micros")
	if err != nil {
		return engine.Command{}, err
	}
	usage, hasUsage := v.Get("usage")
	switch {
	case hasAmount && hasUsage:
		return engine.Command{}, invalid("send either amount_micros or usage, not both")
	case !hasAmount && !hasUsage:
		return engine.Command{}, invalidField("amount_micros", "amount_micros or usage is required")
	}
	usageCanon := ""
	if hasUsage {
		if err := checkUsage(usage); err != nil {
			return engine.Command{}, err
		}
		usageCanon = canonical(usage)
		rated, ratedMD, err := s.rate(orgID, channel, usage)
		if err != nil {
			return engine.Command{}, err
		}
		amount = rated
		md = append(md, ratedMD...)
	}
	return engine.Command{
		Kind:         engine.CmdCharge,
		OrgID:        orgID,
		Reference:    ref,
		Channel:      channel,
		AmountMicros: amount,
		Metadata:     md,
		BodyHash:     bodyHash("charge", ref, channel, strconv.FormatInt(amount, 10), boolStr(hasUsage), usageCanon, metadataCanonical(md)),
	}, nil
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// checkUsage validates the shape of a usage object (SPEC.md section 6).
func checkUsage(u jsonx.Value) *apiError {
	if u.Kind != jsonx.Object {
		return invalidField("usage", "must be an object")
	}
	for _, f := range u.Fields {
		switch f.Key {
		case "destination", "model":
			if f.Value.Kind != jsonx.String || len(f.Value.Str) == 0 || len(f.Value.Str) > 64 {
				return invalidField("usage."+f.Key, "must be a string of 1-64 characters")
			}
		case "units", "seconds", "input_tokens", "output_tokens":
			n, err := f.Value.Int64()
			if f.Value.Kind != jsonx.Number || err != nil || n < 0 || n > 1_000_000_000_000 {
				return invalidField("usage."+f.Key, "must be an integer from 0 to 10^12")
			}
		default:
			return invalidField("usage."+f.Key, "unknown field")
		}
	}
	return nil
}

// rate prices usage with the org's rate card. No card is configured yet, so
// all usage is unpriceable (422 no_rate) until rate cards land.
func (s *Server) rate(orgID, channel string, usage jsonx.Value) (int64, engine.Metadata, *apiError) {
	return 0, nil, newError(errNoRate, "no rate for channel "+strconv.Quote(channel))
}

func (s *Server) postCharge(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	cmd, err := s.decodeCharge(k.OrgID, v)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, cmd)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.metrics.charge(r.Code.String())
	s.answerWrite(ctx, rs, k.OrgID, &r)
}

// postChargeBatch decides up to 1,000 charges in order, each on its own,
// proposed together as one unit so each sees the wallet as the earlier ones
// left it.
func (s *Server) postChargeBatch(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	v, err := jsonBody(ctx, batchBodyBytesMax)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if err := onlyFields(v, "charges"); err != nil {
		respondError(ctx, rs, err)
		return
	}
	list, ok := v.Get("charges")
	if !ok || list.Kind != jsonx.Array {
		respondError(ctx, rs, invalidField("charges", "must be an array of charges"))
		return
	}
	if len(list.Items) == 0 || len(list.Items) > batchChargesMax {
		respondError(ctx, rs, invalidField("charges", "must hold 1 to 1000 charges"))
		return
	}
	n := len(list.Items)
	refusals := make([]*apiError, n)
	cmds := make([]engine.Command, 0, n)
	slots := make([]int, 0, n)
	for i, item := range list.Items {
		cmd, err := s.decodeCharge(k.OrgID, item)
		if err != nil {
			refusals[i] = err
			continue
		}
		cmds = append(cmds, cmd)
		slots = append(slots, i)
	}
	var results []engine.Result
	if len(cmds) > 0 {
		results, err = s.submit(ctx, cmds...)
		if err != nil {
			respondError(ctx, rs, err)
			return
		}
	}
	byIndex := make([]*engine.Result, n)
	for j := range results {
		byIndex[slots[j]] = &results[j]
		s.metrics.charge(results[j].Code.String())
	}
	wallet, _ := s.store.Wallet(k.OrgID)
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.key("results")
		w.arrStart()
		for i := 0; i < n; i++ {
			w.objStart()
			w.kInt("index", int64(i))
			r := byIndex[i]
			e := refusals[i]
			if r != nil {
				e = resultError(r)
			}
			if e != nil {
				w.kInt("status", int64(e.status()))
				w.key("error")
				w.objStart()
				w.kStr("code", e.code)
				w.kStr("message", e.message)
				w.objEnd()
				w.objEnd()
				continue
			}
			ev, ok := s.entryOf(k.OrgID, r)
			status := int64(fasthttp.StatusCreated)
			if r.Code == engine.CodeReplayed {
				status = fasthttp.StatusOK
			}
			if !ok {
				status = fasthttp.StatusServiceUnavailable
			}
			w.kInt("status", status)
			if ok {
				w.key("transaction")
				writeEntry(w, &ev)
			}
			w.objEnd()
		}
		w.arrEnd()
		w.key("balance")
		writeBalance(w, wallet)
		w.objEnd()
	})
}

func (s *Server) postDelivery(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if err := onlyFields(v, "status"); err != nil {
		respondError(ctx, rs, err)
		return
	}
	st, err := requiredStr(v, "status")
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	var status engine.Delivery
	switch st {
	case "delivered":
		status = engine.DeliveryDelivered
	case "failed":
		status = engine.DeliveryFailed
	default:
		respondError(ctx, rs, invalidField("status", `must be "delivered" or "failed"`))
		return
	}
	if _, ok := engine.IDTimeMs(id, engine.PrefixTransaction); !ok {
		respondError(ctx, rs, newError(errNotFound, "transaction not found"))
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdDelivery, OrgID: k.OrgID, TxID: id, Status: status})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if e := resultError(&r); e != nil {
		respondError(ctx, rs, e)
		return
	}
	ev, ok, rerr := s.store.Transaction(k.OrgID, id)
	if rerr != nil || !ok {
		respondError(ctx, rs, newError(errUnavailable, "transaction not readable yet; retry"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.key("transaction")
		writeEntry(w, &ev)
		w.objEnd()
	})
}
