package engine

import (
	"crypto/sha256"
	"fmt"
)

// Apply decides every command of a batch, in order, against the state the
// earlier commands left, and appends what must be persisted to out. It is
// deterministic: the result depends only on the engine's state, the cold
// store's state at the same index, and the batch (its time, group and index).
//
// The batch's effective time is max(b.TimeMs, the previous batch's time), so
// time never runs backwards across a leader change.
func (e *Engine) Apply(b *Batch, out *Changes) []Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b.Index <= e.appliedIndex {
		panic(fmt.Sprintf("engine: batch index %d at or below applied index %d", b.Index, e.appliedIndex))
	}
	a := applier{e: e, b: b, out: out, timeMs: max(b.TimeMs, e.lastTimeMs)}
	// Holds and grants due at the batch time expire before any command sees
	// them, identically on every replica.
	for _, id := range e.dueOrgs(a.timeMs) {
		if o := e.org(id); o != nil {
			a.onOrg(o, a.expireDue)
		}
	}
	results := make([]Result, len(b.Commands))
	for i := range b.Commands {
		results[i] = a.apply(&b.Commands[i])
	}
	for _, o := range a.touched {
		out.Orgs = append(out.Orgs, o.rec.clone())
	}
	e.appliedIndex = b.Index
	e.lastTimeMs = a.timeMs
	out.Group = e.group
	out.Index = b.Index
	return results
}

// applier carries one batch's context through its commands.
type applier struct {
	e       *Engine
	b       *Batch
	out     *Changes
	timeMs  int64
	seq     uint32
	touched []*Org // orgs changed in this batch, in first-touch order
}

func (a *applier) newID(prefix string) string {
	a.seq++
	return makeID(prefix, a.timeMs, a.e.group, a.b.Index, a.seq)
}

func (a *applier) apply(c *Command) Result {
	switch c.Kind {
	case CmdCreateOrg:
		return a.createOrg(c)
	case CmdUpdateOrg:
		return a.withOrg(c, a.updateOrg)
	case CmdCreateKey:
		return a.withOrg(c, a.createKey)
	case CmdRevokeKey:
		return a.withOrg(c, a.revokeKey)
	case CmdCharge:
		return a.withOrg(c, a.charge)
	case CmdAdjustment:
		return a.withOrg(c, a.adjustment)
	case CmdRefund:
		return a.withOrg(c, a.refund)
	case CmdDelivery:
		return a.withOrg(c, a.delivery)
	case CmdPause:
		return a.withOrg(c, a.pause)
	case CmdUnpause:
		return a.withOrg(c, a.unpause)
	case CmdTopupCreate:
		return a.withOrg(c, a.topupCreate)
	case CmdTopupComplete:
		return a.withOrg(c, a.topupComplete)
	case CmdTopupExpire:
		return a.withOrg(c, a.topupExpire)
	case CmdSetRates:
		return a.setRates(c)
	case CmdSetNodeAddr:
		return a.setNodeAddr(c)
	case CmdSetFxRates:
		return a.setFxRates(c)
	case CmdTopupSession:
		return a.withOrg(c, a.topupSession)
	case CmdPaymentEvent:
		return a.withOrg(c, a.paymentEvent)
	case CmdGrant:
		return a.withOrg(c, a.grant)
	case CmdHoldCreate:
		return a.withOrg(c, a.holdCreate)
	case CmdHoldExtend:
		return a.withOrg(c, a.holdExtend)
	case CmdHoldCommit:
		return a.withOrg(c, a.holdCommit)
	case CmdHoldRelease:
		return a.withOrg(c, a.holdRelease)
	}
	return Result{Code: CodeInvalid, Message: "unknown command"}
}

// withOrg runs fn on the command's org, publishes the change of available
// funds to admission, and fills in the wallet view.
func (a *applier) withOrg(c *Command, fn func(*Org, *Command) Result) Result {
	o := a.e.org(c.OrgID)
	if o == nil {
		return Result{Code: CodeNotFound, Message: "org not found"}
	}
	var r Result
	a.onOrg(o, func(o *Org) { r = fn(o, c) })
	r.Wallet = a.e.viewLocked(o)
	return r
}

// onOrg runs fn on o, publishes the change of available funds to admission,
// and asserts the wallet's invariants.
func (a *applier) onOrg(o *Org, fn func(*Org)) {
	availBefore := o.rec.BalanceMicros - o.rec.ReservedMicros
	fn(o)
	if delta := o.rec.BalanceMicros - o.rec.ReservedMicros - availBefore; delta != 0 {
		o.availAdmit.Add(delta)
	}
	o.blocked.Store(o.rec.OperatorHold || o.rec.Disputed)
	o.threshold.Store(o.rec.PauseThresholdMicros)
	a.assertWallet(o)
}

// touch marks o changed by this batch.
func (a *applier) touch(o *Org) {
	if o.rec.Index != a.b.Index {
		o.rec.Index = a.b.Index
		a.touched = append(a.touched, o)
	}
}

func (a *applier) assertWallet(o *Org) {
	r := &o.rec
	if r.BalanceMicros < 0 || r.ReservedMicros < 0 || r.BalanceMicros-r.ReservedMicros < 0 {
		panic(fmt.Sprintf("engine: wallet invariant broken for %s: balance %d reserved %d", r.ID, r.BalanceMicros, r.ReservedMicros))
	}
	var lots, lotHeld, holds int64
	for _, l := range r.Lots {
		if l.Held < 0 || l.Held > l.Remaining {
			panic(fmt.Sprintf("engine: lot %s of %s holds %d of %d", l.EntryID, r.ID, l.Held, l.Remaining))
		}
		lots += l.Remaining
		lotHeld += l.Held
	}
	for _, h := range o.holds {
		holds += h.AmountMicros
	}
	if lots > r.BalanceMicros || lotHeld > r.ReservedMicros || holds != r.ReservedMicros {
		panic(fmt.Sprintf("engine: %s: lots %d (held %d), holds %d, balance %d, reserved %d", r.ID, lots, lotHeld, holds, r.BalanceMicros, r.ReservedMicros))
	}
}

// ref looks a reference up in this engine's unpersisted writes, then the store.
func (a *applier) ref(orgID string, ns byte, ref string) (RefRecord, bool) {
	if r, ok := a.e.pendingRefs[refKey{orgID, ns, ref}]; ok {
		return r, true
	}
	if a.e.cold == nil {
		return RefRecord{}, false
	}
	return a.e.cold.Ref(orgID, ns, ref)
}

func (a *applier) putRef(orgID string, ns byte, ref string, rec RefRecord) {
	a.e.pendingRefs[refKey{orgID, ns, ref}] = rec
	a.out.Refs = append(a.out.Refs, RefPut{OrgID: orgID, NS: ns, Ref: ref, Rec: rec})
}

// txn returns a copy of a refundable transaction's state.
func (a *applier) txn(orgID, txID string) (TxnState, bool) {
	if t, ok := a.e.pendingTxns[txID]; ok {
		if t.OrgID != orgID {
			return TxnState{}, false
		}
		return t, true
	}
	if a.e.cold == nil {
		return TxnState{}, false
	}
	t, ok := a.e.cold.Txn(orgID, txID)
	if !ok || t.OrgID != orgID {
		return TxnState{}, false
	}
	return t, true
}

func (a *applier) putTxn(t TxnState) {
	a.e.pendingTxns[t.ID] = t
	a.out.Txns = append(a.out.Txns, t)
}

// noteEntry makes a new entry's side record visible to later commands of
// this batch without persisting it: a fresh record is derivable from the
// entry itself (TxnFromEntry), which the store does on a miss. Only changes
// (refunds, delivery reports) are persisted, so a charge writes one key less.
func (a *applier) noteEntry(e *Entry) {
	a.e.pendingTxns[e.ID] = TxnFromEntry(e)
}

// write appends a ledger entry of amountMicros (signed) to o's wallet. The
// caller has checked that the result fits; write asserts it.
func (a *applier) write(o *Org, typ EntryType, amountMicros int64, reference string, md Metadata, expiresAtMs int64) *Entry {
	balance, ok := addMicros(o.rec.BalanceMicros, amountMicros)
	if !ok || balance < 0 {
		panic(fmt.Sprintf("engine: entry of %d would take %s's balance %d out of range", amountMicros, o.rec.ID, o.rec.BalanceMicros))
	}
	o.rec.BalanceMicros = balance
	a.touch(o)
	a.out.Entries = append(a.out.Entries, Entry{
		ID:                 a.newID(PrefixTransaction),
		OrgID:              o.rec.ID,
		Type:               typ,
		AmountMicros:       amountMicros,
		BalanceAfterMicros: balance,
		Reference:          reference,
		Metadata:           md,
		CreatedAtMs:        a.timeMs,
		ExpiresAtMs:        expiresAtMs,
	})
	e := &a.out.Entries[len(a.out.Entries)-1]
	// NextChainHash without its allocation: the scratch buffer is reused.
	a.e.chainScratch = AppendEntry(append(a.e.chainScratch[:0], o.rec.Chain[:]...), e)
	e.Hash = sha256.Sum256(a.e.chainScratch)
	o.rec.Chain = e.Hash
	return e
}

func (a *applier) createOrg(c *Command) Result {
	o := &Org{rec: OrgRecord{
		ID:          a.newID(PrefixOrg),
		Name:        c.Name,
		CreatedAtMs: a.timeMs,
	}}
	o.publish(0)
	a.e.orgs.store(o.rec.ID, o)
	a.touch(o)
	return Result{Code: CodeOK, ID: o.rec.ID, Wallet: a.e.viewLocked(o)}
}

func (a *applier) updateOrg(o *Org, c *Command) Result {
	// Validate before changing anything: a refused update changes nothing.
	if c.SetThreshold && (c.ThresholdMicros < 0 || c.ThresholdMicros > MaxAmountMicros) {
		return Result{Code: CodeInvalid, Message: "pause_threshold_micros out of range"}
	}
	if c.SetName {
		o.rec.Name = c.Name
	}
	if c.SetThreshold {
		o.rec.PauseThresholdMicros = c.ThresholdMicros
	}
	a.touch(o)
	return Result{Code: CodeOK, ID: o.rec.ID}
}

func (a *applier) createKey(o *Org, c *Command) Result {
	if _, exists := a.e.keys.load(c.KeyHash); exists {
		return Result{Code: CodeConflict, Message: "key already registered"}
	}
	k := &APIKey{
		ID:          a.newID(PrefixKey),
		OrgID:       o.rec.ID,
		Role:        c.Role,
		Hash:        c.KeyHash,
		Prefix:      c.KeyPrefix,
		CreatedAtMs: a.timeMs,
	}
	a.e.keys.store(k.Hash, k)
	o.keys = append(o.keys, k)
	a.out.Keys = append(a.out.Keys, *k)
	return Result{Code: CodeOK, ID: k.ID}
}

func (a *applier) revokeKey(o *Org, c *Command) Result {
	i := o.keyIndex(c.KeyID)
	if i < 0 {
		return Result{Code: CodeNotFound, Message: "key not found"}
	}
	k := *o.keys[i]
	if k.RevokedAtMs == 0 {
		// A new value, not a change in place: readers hold the old one
		// without the engine's lock (KeyByHash).
		k.RevokedAtMs = a.timeMs
		o.keys[i] = &k
		a.e.keys.store(k.Hash, &k)
		a.out.Keys = append(a.out.Keys, k)
	}
	return Result{Code: CodeOK, ID: k.ID}
}

// checkDebit applies the outbound-pause rules to a new debit of amountMicros
// (a charge, hold or extend): refused while the org is paused, and accepted
// only when it fits in available funds minus the pause threshold.
func checkDebit(o *Org, amountMicros int64) (Code, string) {
	if o.rec.OperatorHold || o.rec.Disputed {
		return CodeOutboundPaused, "outbound traffic is paused for this org"
	}
	avail := o.rec.BalanceMicros - o.rec.ReservedMicros
	threshold := o.rec.PauseThresholdMicros
	if avail <= threshold || avail-threshold < amountMicros {
		return CodeInsufficientFunds, "insufficient funds"
	}
	return CodeOK, ""
}

func (a *applier) charge(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSCharge, c.Reference); ok {
		return replayOrConflict(rec, c.BodyHash, "reference already used with a different request")
	}
	amount := c.AmountMicros
	var md Metadata
	if c.Usage == nil {
		md = c.Metadata.with("channel", jsonString(c.Channel))
	} else {
		ch, version, ok := a.e.channelRate(o, c.Channel)
		if !ok {
			return Result{Code: CodeNoRate, Message: "no rate for channel " + jsonString(c.Channel)}
		}
		rated, msg, ok := rateWith(ch, version, c.Channel, c.Usage)
		if !ok {
			return Result{Code: CodeNoRate, Message: msg}
		}
		amount = rated.CostMicros
		md = c.Metadata.merged(append(rated.Metadata, KV{"channel", jsonString(c.Channel)}))
	}
	if amount < 0 || amount > MaxAmountMicros {
		return Result{Code: CodeInvalid, Message: "amount_micros out of range"}
	}
	if code, msg := checkDebit(o, amount); code != CodeOK {
		return Result{Code: code, Message: msg}
	}
	group := groupOf(md)
	e := a.debit(o, EntrySpend, amount, "charge:"+c.Reference, md)
	a.putRef(o.rec.ID, NSCharge, c.Reference, RefRecord{TxID: e.ID, BodyHash: c.BodyHash})
	day := UnixDay(a.timeMs)
	a.noteEntry(e)
	a.out.Usage = append(a.out.Usage, UsageDelta{OrgID: o.rec.ID, Day: day, Channel: c.Channel, Group: group, Messages: 1, CostMicros: amount})
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

// groupOf is a spend's usage group, typed by what it groups: "d:" and the
// matched destination prefix, "m:" and the model, or "-" when it has neither.
// usage-by-channel?group_by=destination shows only "d:" groups (others as
// "-"), group_by=model only "m:" groups.
func groupOf(md Metadata) string {
	if v, ok := md.Get("country"); ok && len(v) >= 2 && v[0] == '"' {
		return GroupDestination + jsonStringValue(v)
	}
	if v, ok := md.Get("model"); ok && len(v) >= 2 && v[0] == '"' {
		return GroupModel + jsonStringValue(v)
	}
	return "-"
}

// Usage group prefixes (see groupOf).
const (
	GroupDestination = "d:"
	GroupModel       = "m:"
)

func replayOrConflict(rec RefRecord, bodyHash, conflictMsg string) Result {
	if rec.BodyHash == bodyHash {
		return Result{Code: CodeReplayed, TxID: rec.TxID}
	}
	return Result{Code: CodeConflict, TxID: rec.TxID, Message: conflictMsg}
}

func (a *applier) adjustment(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSAdjustment, c.Reference); ok {
		return replayOrConflict(rec, c.BodyHash, "reference already used with a different request")
	}
	amt := c.AmountMicros
	if amt == 0 || amt > MaxAmountMicros || amt < -MaxAmountMicros {
		return Result{Code: CodeInvalid, Message: "amount_micros out of range"}
	}
	if amt < 0 && -amt > o.rec.BalanceMicros-o.rec.ReservedMicros {
		return Result{Code: CodeInsufficientFunds, Message: "debit exceeds available funds"}
	}
	if _, ok := addMicros(o.rec.BalanceMicros, amt); !ok {
		return Result{Code: CodeInvalid, Message: "balance would overflow"}
	}
	var md Metadata
	if c.Reason != "" {
		md = md.with("reason", jsonString(c.Reason))
	}
	var e *Entry
	if amt < 0 {
		e = a.debit(o, EntryAdjustment, -amt, "adjustment:"+c.Reference, md)
	} else {
		e = a.write(o, EntryAdjustment, amt, "adjustment:"+c.Reference, md, 0)
	}
	a.putRef(o.rec.ID, NSAdjustment, c.Reference, RefRecord{TxID: e.ID, BodyHash: c.BodyHash})
	// Recorded so that a refund of it is not_refundable, not not_found.
	a.noteEntry(e)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

func (a *applier) refund(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSRefund, c.Reference); ok {
		return replayOrConflict(rec, c.BodyHash, "Idempotency-Key already used with a different request")
	}
	t, ok := a.txn(o.rec.ID, c.TxID)
	if !ok {
		return Result{Code: CodeNotFound, Message: "transaction not found"}
	}
	if t.Type == EntryTopup {
		return a.topupRefund(o, c, t)
	}
	if t.Type != EntrySpend {
		return Result{Code: CodeNotRefundable, Message: "only a spend or a top-up can be refunded"}
	}
	amt, refusal := refundAmount(t, c.AmountMicros)
	if refusal != nil {
		return *refusal
	}
	if _, ok := addMicros(o.rec.BalanceMicros, amt); !ok {
		return Result{Code: CodeInvalid, Message: "balance would overflow"}
	}
	md := Metadata{}.with("refunded_transaction_id", jsonString(t.ID))
	if c.Reason != "" {
		md = md.with("reason", jsonString(c.Reason))
	}
	e := a.write(o, EntryRefund, amt, "refund:"+t.ID, md, 0)
	a.putRef(o.rec.ID, NSRefund, c.Reference, RefRecord{TxID: e.ID, BodyHash: c.BodyHash})
	// Recorded so that a refund of the refund is not_refundable, not not_found.
	a.noteEntry(e)
	t.RefundedMicros += amt
	if t.RefundedMicros == t.AmountMicros {
		t.RefundedAtMs = a.timeMs
	}
	a.putTxn(t)
	a.out.Usage = append(a.out.Usage, UsageDelta{OrgID: o.rec.ID, Day: t.Day, Channel: t.Channel, Group: t.Group, CostMicros: -amt})
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

// refundAmount is what a refund request takes of an entry: the amount asked
// (0: all that is still refundable), or the refusal when it is negative,
// nothing is left, or it asks more than is left.
func refundAmount(t TxnState, requested int64) (int64, *Result) {
	remaining := t.AmountMicros - t.RefundedMicros
	amt := requested
	if amt == 0 {
		amt = remaining
	}
	switch {
	case amt < 0:
		return 0, &Result{Code: CodeInvalid, Message: "amount_micros must be positive"}
	case remaining == 0:
		return 0, &Result{Code: CodeInvalid, Message: "the " + t.Type.String() + " is already fully refunded"}
	case amt > remaining:
		return 0, &Result{Code: CodeInvalid, Message: fmt.Sprintf("amount_micros exceeds the refundable %d micros", remaining)}
	}
	return amt, nil
}

func (a *applier) delivery(o *Org, c *Command) Result {
	t, ok := a.txn(o.rec.ID, c.TxID)
	if !ok {
		return Result{Code: CodeNotFound, Message: "transaction not found"}
	}
	if t.Type != EntrySpend {
		return Result{Code: CodeInvalid, Message: "delivery reports apply to spends only", TxID: t.ID}
	}
	if t.Delivery == c.Status {
		return Result{Code: CodeOK, TxID: t.ID}
	}
	if t.Delivery != DeliveryNone {
		return Result{Code: CodeConflict, TxID: t.ID, Message: "delivery already reported as " + t.Delivery.String()}
	}
	t.Delivery = c.Status
	a.putTxn(t)
	d := UsageDelta{OrgID: o.rec.ID, Day: t.Day, Channel: t.Channel, Group: t.Group}
	if c.Status == DeliveryDelivered {
		d.Delivered = 1
	} else {
		d.Failed = 1
	}
	a.out.Usage = append(a.out.Usage, d)
	return Result{Code: CodeOK, TxID: t.ID}
}

func (a *applier) pause(o *Org, c *Command) Result {
	o.rec.OperatorHold = true
	o.rec.HoldDetails = c.Reason
	a.touch(o)
	return Result{Code: CodeOK, ID: o.rec.ID}
}

func (a *applier) unpause(o *Org, c *Command) Result {
	o.rec.OperatorHold = false
	o.rec.HoldDetails = ""
	o.rec.Disputed = false
	a.touch(o)
	return Result{Code: CodeOK, ID: o.rec.ID}
}
