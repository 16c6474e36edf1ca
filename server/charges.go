package server

import (
	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

var chargeFields = []string{"reference", "channel", "amount_micros", "usage", "metadata"}

// debitBody is what a charge and a reservation have in common.
type debitBody struct {
	reference, channel string
	amountMicros       int64 // as sent, or admission's estimate of the usage
	usage              *engine.Usage
	usageCanon         string
	metadata           engine.Metadata
}

// appendHash adds the body's parts for its hash: a usage is hashed as
// sent, not as priced, so a retry after a new rate card is still a replay.
func (d *debitBody) appendHash(b []byte) []byte {
	b = appendHashPart(b, d.reference)
	b = appendHashPart(b, d.channel)
	if d.usage == nil {
		b = appendHashInt(b, d.amountMicros)
	} else {
		b = appendHashPart(b, "")
	}
	b = appendHashPart(b, d.usageCanon)
	return appendHashMetadata(b, d.metadata)
}

// bodyHash is the hash of a debit body for a command kind.
func (d *debitBody) bodyHash(kind string, extra ...string) string {
	var buf [hashBufSize]byte
	b := appendHashPart(buf[:0], kind)
	for _, p := range extra {
		b = appendHashPart(b, p)
	}
	return hashSum(d.appendHash(b))
}

// decodeDebit validates reference, channel, amount_micros or usage, and
// metadata, and prices a usage with the cards in force for admission.
func (s *Server) decodeDebit(orgID string, v jsonx.Value, fields ...string) (debitBody, *apiError) {
	var d debitBody
	if v.Kind != jsonx.Object {
		return d, invalid("the body must be a JSON object")
	}
	if err := onlyFields(v, fields...); err != nil {
		return d, err
	}
	var err *apiError
	if d.reference, err = requiredStr(v, "reference"); err != nil {
		return d, err
	}
	if err := checkReference("reference", d.reference); err != nil {
		return d, err
	}
	if d.channel, err = requiredStr(v, "channel"); err != nil {
		return d, err
	}
	if err := checkChannel(d.channel); err != nil {
		return d, err
	}
	if d.metadata, err = metadata(v); err != nil {
		return d, err
	}
	amount, hasAmount, err := amountMicros(v, "amount_micros")
	if err != nil {
		return d, err
	}
	usage, hasUsage := v.Get("usage")
	switch {
	case hasAmount && hasUsage:
		return d, invalid("send either amount_micros or usage, not both")
	case !hasAmount && !hasUsage:
		return d, invalidField("amount_micros", "amount_micros or usage is required")
	}
	d.amountMicros = amount
	if hasUsage {
		if d.usage, err = decodeUsage(usage); err != nil {
			return d, err
		}
		d.usageCanon = canonical(usage)
		estimate, msg, ok := s.store.Estimate(orgID, d.channel, d.usage)
		if !ok {
			return d, newError(errNoRate, msg)
		}
		d.amountMicros = estimate
	}
	return d, nil
}

// decodeCharge validates one charge body and returns its command. Errors
// that depend on no state are found here; the rest are the engine's.
func (s *Server) decodeCharge(orgID string, v jsonx.Value) (engine.Command, *apiError) {
	d, err := s.decodeDebit(orgID, v, chargeFields...)
	if err != nil {
		return engine.Command{}, err
	}
	return engine.Command{
		Kind:         engine.CmdCharge,
		OrgID:        orgID,
		Reference:    d.reference,
		Channel:      d.channel,
		AmountMicros: d.amountMicros,
		Usage:        d.usage,
		Metadata:     d.metadata,
		BodyHash:     d.bodyHash("charge"),
	}, nil
}

// decodeUsage validates a usage object (SPEC.md section 6).
func decodeUsage(u jsonx.Value) (*engine.Usage, *apiError) {
	if u.Kind != jsonx.Object {
		return nil, invalidField("usage", "must be an object")
	}
	var out engine.Usage
	for _, f := range u.Fields {
		switch f.Key {
		case "destination", "model":
			if f.Value.Kind != jsonx.String || len(f.Value.Str) == 0 || len(f.Value.Str) > 64 || !visibleASCIIString(f.Value.Str) {
				return nil, invalidField("usage."+f.Key, "must be 1-64 visible ASCII characters")
			}
			if f.Key == "destination" {
				out.Destination = f.Value.Str
				out.Sent |= engine.InputDestination
			} else {
				out.Model = f.Value.Str
				out.Sent |= engine.InputModel
			}
		case "units", "seconds", "input_tokens", "output_tokens":
			n, err := f.Value.Int64()
			if f.Value.Kind != jsonx.Number || err != nil || n < 0 || n > 1_000_000_000_000 {
				return nil, invalidField("usage."+f.Key, "must be an integer from 0 to 10^12")
			}
			switch f.Key {
			case "units":
				out.Units, out.HasUnits = n, true
				out.Sent |= engine.InputUnits
			case "seconds":
				out.Seconds, out.HasSeconds = n, true
				out.Sent |= engine.InputSeconds
			case "input_tokens":
				out.InputTokens = n
				out.Sent |= engine.InputInputTokens
			case "output_tokens":
				out.OutputTokens = n
				out.Sent |= engine.InputOutputTokens
			}
		default:
			return nil, invalidField("usage."+f.Key, "unknown field")
		}
	}
	return &out, nil
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
	// About 400 bytes per result (a transaction with its metadata).
	respondSized(ctx, rs, 200, 1024+400*n, func(w *jw) {
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
