package engine

// Admission is the leader's fast, conservative filter in front of the log: a
// debit reserves its amount from the wallet's atomic counter with a
// compare-and-swap before it is proposed, so an overdraft is refused in
// nanoseconds without a lock and without touching replicated state. Apply
// re-checks every command; admission only keeps doomed debits out of the log.
//
// The counter is available funds as applied, less the debits admitted and
// still in flight. Apply adds every change of available funds it makes; the
// admitter adds an admitted amount back (Unadmit) once its command's result
// is known, whatever it was, so the counter returns to the applied value.

// AdmitStatus is the outcome of Admit.
type AdmitStatus uint8

// Admission outcomes.
const (
	Admitted AdmitStatus = iota
	AdmitNoOrg
	AdmitPaused       // operator hold or dispute: 403 outbound_paused
	AdmitInsufficient // does not fit in available funds minus the threshold
	// AdmitDeferred (AdmitDebit only): the debit could not be reserved but
	// must not be refused either. It is counted in flight with nothing
	// reserved; the caller proposes it and Apply decides; Unadmit(org, 0)
	// settles it.
	AdmitDeferred
)

// Admit reserves amountMicros (>= 0) of org's available funds for a debit
// about to be proposed. On Admitted the caller must call Unadmit with the same
// amount once the command's result is known or its proposal failed.
func (e *Engine) Admit(orgID string, amountMicros int64) AdmitStatus {
	o := e.org(orgID)
	if o == nil {
		return AdmitNoOrg
	}
	return o.admit(amountMicros)
}

// admit is Admit on a wallet already looked up.
func (o *Org) admit(amountMicros int64) AdmitStatus {
	if o.blocked.Load() {
		return AdmitPaused
	}
	threshold := o.threshold.Load()
	for {
		avail := o.availAdmit.Load()
		// Paused for insufficient_balance while avail <= threshold, and a
		// debit must fit in avail - threshold.
		if avail <= threshold || avail-threshold < amountMicros {
			return AdmitInsufficient
		}
		if o.availAdmit.CompareAndSwap(avail, avail-amountMicros) {
			o.inflight.Add(1)
			return Admitted
		}
	}
}

// Unadmit gives back what Admit reserved (0 after AdmitDeferred).
func (e *Engine) Unadmit(orgID string, amountMicros int64) {
	if o := e.org(orgID); o != nil {
		// In this order: a refusal that then finds nothing in flight also
		// finds settled changed (AdmitDebit).
		o.availAdmit.Add(amountMicros)
		o.settled.Add(1)
		o.inflight.Add(-1)
	}
}

// admitRefusedHook, when set (tests), runs after a refused Admit inside
// AdmitDebit, where another command may settle.
var admitRefusedHook func()

// AdmitDebit is admission for a debit about to be proposed: Admitted (the
// amount is reserved), AdmitDeferred, AdmitNoOrg (propose; Apply answers
// not_found), or a refusal (AdmitPaused, AdmitInsufficient) to answer at
// once. known reports whether the debit's reference is already stored.
//
// A refusal stands only when nothing could have made it wrong. While
// another command of the org is in flight (perhaps this debit's own first
// attempt, which a retry must replay, not refuse), or when the reference is
// known, the debit is deferred to Apply. And the look at the funds and the
// look at what is in flight are two reads: a command that settled between
// them (a replay, or a debit that failed, gives back a reservation it never
// spent) may be what refused this one, so then admission looks again, and
// defers if it is still undecided.
func (e *Engine) AdmitDebit(orgID string, amountMicros int64, known func() bool) AdmitStatus {
	o := e.org(orgID)
	if o == nil {
		return AdmitNoOrg
	}
	for retried := false; ; retried = true {
		before := o.settled.Load()
		status := o.admit(amountMicros)
		if status == Admitted {
			return status
		}
		if admitRefusedHook != nil {
			admitRefusedHook()
		}
		if known() || o.inflight.Load() > 0 {
			o.inflight.Add(1)
			return AdmitDeferred
		}
		if o.settled.Load() == before {
			return status
		}
		if retried {
			o.inflight.Add(1)
			return AdmitDeferred
		}
	}
}
