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
)

// Admit reserves amountMicros (>= 0) of org's available funds for a debit
// about to be proposed. On Admitted the caller must call Unadmit with the same
// amount once the command's result is known or its proposal failed.
func (e *Engine) Admit(orgID string, amountMicros int64) AdmitStatus {
	o := e.org(orgID)
	if o == nil {
		return AdmitNoOrg
	}
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

// Unadmit gives back what Admit reserved.
func (e *Engine) Unadmit(orgID string, amountMicros int64) {
	if o := e.org(orgID); o != nil {
		o.availAdmit.Add(amountMicros)
		o.inflight.Add(-1)
	}
}

// InFlight reports whether commands admitted for org are still unsettled. A
// refused admission of a retried reference must not answer 402 while the
// first attempt may still succeed: the caller proposes it instead, and Apply
// answers it as a replay.
func (e *Engine) InFlight(orgID string) bool {
	o := e.org(orgID)
	return o != nil && o.inflight.Load() > 0
}

// Track counts a command of org as in flight without reserving funds (a
// charge proposed past a refused admission); Unadmit(org, 0) settles it.
func (e *Engine) Track(orgID string) {
	if o := e.org(orgID); o != nil {
		o.inflight.Add(1)
	}
}
