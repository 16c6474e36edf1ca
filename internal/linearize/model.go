package linearize

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Kind is what an operation does.
type Kind uint8

// Operation kinds.
const (
	Read        Kind = iota + 1 // GET /balance
	Charge                      // POST /charges {reference, amount_micros}
	Refund                      // POST /refunds with an Idempotency-Key
	HoldCreate                  // POST /reservations {reference, amount_micros}
	HoldCommit                  // POST /reservations/{id}/commit {amount_micros}
	HoldRelease                 // POST /reservations/{id}/release
	HoldExtend                  // POST /reservations/{id}/extend with an Idempotency-Key
	// HoldExpire is not a request: the system releasing a hold at its
	// expiry. The recorder adds one per hold with a TTL, from the hold's
	// earliest possible expiry to after the end of the history, as an
	// operation with unknown outcome (it takes effect once, at some point
	// in that interval, if the hold is still open).
	HoldExpire
	HoldRead // GET /reservations/{id}
)

var kindNames = [...]string{"", "read", "charge", "refund", "hold", "commit", "release", "extend", "expire", "get-hold"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Input is one request. Every request with the same Ref has the same body
// (the workload keeps it so), which makes a repeat a retry, never a conflict.
type Input struct {
	Kind Kind
	// Ref is the charge's or hold's reference, or the refund's or
	// extend's Idempotency-Key.
	Ref string
	// Target is the charge reference a refund refunds, or the hold
	// reference a commit, release or extend acts on.
	Target string
	// Amount is the charge's or hold's amount, the refund's (0: everything
	// still refundable), the extend's, or the commit's actual usage in
	// micros.
	Amount int64
	// TTLSeconds is a hold's ttl_seconds (0: the default, 300 s).
	TTLSeconds int64
}

// Outcome is the class of an answer.
type Outcome uint8

// Outcomes.
const (
	// Applied: 201, or 200 for a release (a release of a released hold is a
	// no-op 200 too).
	Applied Outcome = iota + 1
	// Replayed: 200 with Idempotent-Replayed: the same request took effect
	// before.
	Replayed
	// Refused: 402 insufficient_funds.
	Refused
	// Invalid: 400 invalid_request (a refund above what is left).
	Invalid
	// Closed: 409 reservation_closed.
	Closed
	// Unknown: no definite answer (503, timeout): possibly applied.
	Unknown
	// Other: any other answer; the model accepts none.
	Other
	// NotSent: the attempt was not sent (no node to send it to). The driver
	// retries it; it is never recorded.
	NotSent
)

var outcomeNames = [...]string{"", "applied", "replayed", "refused", "invalid", "closed", "unknown", "other", "not sent"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "?"
}

// Output is one answer. Reads, applied and replayed writes carry the wallet
// the answer reports (a write's is the wallet right after it took effect, or
// for a replay right after the repeat was decided); a commit carries the
// micros it captured.
type Output struct {
	Outcome        Outcome
	Status         int // the HTTP status, or 0 in-process (for the visualization)
	BalanceMicros  int64
	ReservedMicros int64
	CapturedMicros int64
	// HoldStatus is the status a hold read answered (open, committed,
	// released, expired).
	HoldStatus string
}

// chargeState is an applied charge: its amount and how much of it was
// refunded.
type chargeState struct {
	Ref            string
	AmountMicros   int64
	RefundedMicros int64
}

// Hold statuses in the model.
const (
	holdOpen      = "open"
	holdCommitted = "committed"
	holdReleased  = "released"
	holdExpired   = "expired"
)

type holdState struct {
	Ref            string
	Status         string
	AmountMicros   int64 // held while open, held when it closed
	CommitMicros   int64 // the committed request's actual amount
	CapturedMicros int64
}

// State is the wallet as the model sees it. It is immutable: Step returns
// a changed copy. Slices are kept sorted so equal states compare equal.
type State struct {
	BalanceMicros  int64
	ReservedMicros int64
	Charges        []chargeState
	Keys           []string // Idempotency-Keys of refunds and extends applied
	Holds          []holdState
}

func (s *State) charge(ref string) (int, bool) {
	i := sort.Search(len(s.Charges), func(i int) bool { return s.Charges[i].Ref >= ref })
	return i, i < len(s.Charges) && s.Charges[i].Ref == ref
}

func (s *State) hold(ref string) (int, bool) {
	i := sort.Search(len(s.Holds), func(i int) bool { return s.Holds[i].Ref >= ref })
	return i, i < len(s.Holds) && s.Holds[i].Ref == ref
}

func (s *State) key(key string) (int, bool) {
	i := sort.SearchStrings(s.Keys, key)
	return i, i < len(s.Keys) && s.Keys[i] == key
}

func (s *State) clone() *State {
	c := *s
	c.Charges = append([]chargeState(nil), s.Charges...)
	c.Keys = append([]string(nil), s.Keys...)
	c.Holds = append([]holdState(nil), s.Holds...)
	return &c
}

// fits is SPEC "Outbound pause" with the default threshold 0: a debit is
// accepted when available funds are above 0 and cover it.
func (s *State) fits(amountMicros int64) bool {
	avail := s.BalanceMicros - s.ReservedMicros
	return avail > 0 && avail >= amountMicros
}

func (s *State) walletIs(out Output) bool {
	return out.BalanceMicros == s.BalanceMicros && out.ReservedMicros == s.ReservedMicros
}

// step is the wallet's sequential specification. legal reports whether the
// answer out is what the wallet in state s gives to in; next is the state
// after it.
func step(s *State, in Input, out Output) (legal bool, next *State) {
	if out.Outcome == Unknown {
		// Possibly applied: take effect here if it would; the order that
		// puts this operation last (its return is after the history) covers
		// "never applied".
		if n, ok := apply(s, in); ok {
			return true, n
		}
		return true, s
	}
	switch in.Kind {
	case Read:
		return out.Outcome == Applied && s.walletIs(out), s
	case Charge:
		if _, ok := s.charge(in.Ref); ok {
			return out.Outcome == Replayed && s.walletIs(out), s
		}
		switch out.Outcome {
		case Applied:
			n, ok := apply(s, in)
			return ok && n.walletIs(out), n
		case Refused:
			return !s.fits(in.Amount), s
		}
	case Refund:
		if _, ok := s.key(in.Ref); ok {
			return out.Outcome == Replayed && s.walletIs(out), s
		}
		if _, ok := s.charge(in.Target); !ok {
			return false, s // clients refund only charges they saw succeed
		}
		n, ok := apply(s, in)
		switch out.Outcome {
		case Applied:
			return ok && n.walletIs(out), n
		case Invalid:
			return !ok, s // nothing left, or more than is left
		}
	case HoldCreate:
		if _, ok := s.hold(in.Ref); ok {
			return out.Outcome == Replayed && s.walletIs(out), s
		}
		switch out.Outcome {
		case Applied:
			n, ok := apply(s, in)
			return ok && n.walletIs(out), n
		case Refused:
			return !s.fits(in.Amount), s
		}
	case HoldCommit:
		i, ok := s.hold(in.Target)
		if !ok {
			return false, s // clients commit only holds they saw created
		}
		h := s.Holds[i]
		switch h.Status {
		case holdCommitted:
			if h.CommitMicros == in.Amount {
				return out.Outcome == Replayed && s.walletIs(out) && out.CapturedMicros == h.CapturedMicros, s
			}
			return out.Outcome == Closed, s
		case holdReleased:
			return out.Outcome == Closed, s
		}
		// Open, or expired: a late commit still bills (SPEC: from
		// available funds, capped).
		if out.Outcome != Applied {
			return false, s
		}
		n, _ := apply(s, in)
		return n.walletIs(out) && out.CapturedMicros == n.Holds[i].CapturedMicros, n
	case HoldRead:
		i, ok := s.hold(in.Target)
		return ok && out.Outcome == Applied && out.HoldStatus == s.Holds[i].Status, s
	case HoldExtend:
		if _, ok := s.key(in.Ref); ok {
			return out.Outcome == Replayed && s.walletIs(out), s
		}
		i, ok := s.hold(in.Target)
		if !ok {
			return false, s
		}
		if s.Holds[i].Status != holdOpen {
			// 409 reservation_closed; SPEC does not order it against 402,
			// and admission refuses a debit that does not fit before the
			// engine sees that the hold is closed.
			return out.Outcome == Closed || (out.Outcome == Refused && !s.fits(in.Amount)), s
		}
		switch out.Outcome {
		case Applied:
			n, ok := apply(s, in)
			return ok && n.walletIs(out), n
		case Refused:
			return !s.fits(in.Amount), s
		}
	case HoldRelease:
		i, ok := s.hold(in.Target)
		if !ok {
			return false, s
		}
		switch s.Holds[i].Status {
		case holdCommitted:
			return out.Outcome == Closed, s
		case holdReleased, holdExpired:
			return out.Outcome == Applied && s.walletIs(out), s // a no-op 200
		}
		if out.Outcome != Applied {
			return false, s
		}
		n, _ := apply(s, in)
		return n.walletIs(out), n
	}
	return false, s
}

// apply returns the state after in takes effect, and false when it would
// not take effect (refused, invalid, closed, or a repeat).
func apply(s *State, in Input) (*State, bool) {
	switch in.Kind {
	case Charge:
		i, ok := s.charge(in.Ref)
		if ok || !s.fits(in.Amount) {
			return s, false
		}
		n := s.clone()
		n.BalanceMicros -= in.Amount
		n.Charges = insertAt(n.Charges, i, chargeState{Ref: in.Ref, AmountMicros: in.Amount})
		return n, true
	case Refund:
		k, ok := s.key(in.Ref)
		if ok {
			return s, false
		}
		i, ok := s.charge(in.Target)
		if !ok {
			return s, false
		}
		c := s.Charges[i]
		remaining := c.AmountMicros - c.RefundedMicros
		amount := in.Amount
		if amount == 0 {
			amount = remaining
		}
		if remaining == 0 || amount > remaining {
			return s, false
		}
		n := s.clone()
		n.BalanceMicros += amount
		n.Charges[i].RefundedMicros += amount
		n.Keys = insertAt(n.Keys, k, in.Ref)
		return n, true
	case HoldCreate:
		i, ok := s.hold(in.Ref)
		if ok || !s.fits(in.Amount) {
			return s, false
		}
		n := s.clone()
		n.ReservedMicros += in.Amount
		n.Holds = insertAt(n.Holds, i, holdState{Ref: in.Ref, Status: holdOpen, AmountMicros: in.Amount})
		return n, true
	case HoldCommit:
		i, ok := s.hold(in.Target)
		if !ok || (s.Holds[i].Status != holdOpen && s.Holds[i].Status != holdExpired) {
			return s, false
		}
		// SPEC "Reservations": the hold covers what it can; the excess
		// comes from available funds and is capped at what the wallet has,
		// so the balance never goes below zero. An expired hold covers
		// nothing: a late commit is charged from available funds alone.
		n := s.clone()
		h := &n.Holds[i]
		covered := int64(0)
		if h.Status == holdOpen {
			n.ReservedMicros -= h.AmountMicros
			covered = min(in.Amount, h.AmountMicros)
		}
		avail := n.BalanceMicros - covered - n.ReservedMicros
		excess := min(in.Amount-covered, max(avail, 0))
		total := covered + excess
		n.BalanceMicros -= total
		h.Status, h.CommitMicros, h.CapturedMicros = holdCommitted, in.Amount, total
		return n, true
	case HoldExtend:
		k, ok := s.key(in.Ref)
		if ok {
			return s, false
		}
		i, ok := s.hold(in.Target)
		if !ok || s.Holds[i].Status != holdOpen || !s.fits(in.Amount) {
			return s, false
		}
		n := s.clone()
		n.ReservedMicros += in.Amount
		n.Holds[i].AmountMicros += in.Amount
		n.Keys = insertAt(n.Keys, k, in.Ref)
		return n, true
	case HoldRelease, HoldExpire:
		i, ok := s.hold(in.Target)
		if !ok || s.Holds[i].Status != holdOpen {
			return s, false
		}
		n := s.clone()
		n.ReservedMicros -= n.Holds[i].AmountMicros
		n.Holds[i].Status = holdReleased
		if in.Kind == HoldExpire {
			n.Holds[i].Status = holdExpired
		}
		return n, true
	}
	return s, false
}

func insertAt[T any](s []T, i int, v T) []T {
	s = append(s, v)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func equal(a, b *State) bool {
	if a.BalanceMicros != b.BalanceMicros || a.ReservedMicros != b.ReservedMicros ||
		len(a.Charges) != len(b.Charges) || len(a.Keys) != len(b.Keys) || len(a.Holds) != len(b.Holds) {
		return false
	}
	for i := range a.Charges {
		if a.Charges[i] != b.Charges[i] {
			return false
		}
	}
	for i := range a.Keys {
		if a.Keys[i] != b.Keys[i] {
			return false
		}
	}
	for i := range a.Holds {
		if a.Holds[i] != b.Holds[i] {
			return false
		}
	}
	return true
}

func hash(s *State) uint64 {
	h := fnv.New64a()
	var buf []byte
	num := func(v int64) { buf = strconv.AppendInt(buf, v, 10); buf = append(buf, ',') }
	str := func(v string) { buf = append(buf, v...); buf = append(buf, ',') }
	num(s.BalanceMicros)
	num(s.ReservedMicros)
	for _, c := range s.Charges {
		str(c.Ref)
		num(c.RefundedMicros)
	}
	for _, k := range s.Keys {
		str(k)
	}
	for _, x := range s.Holds {
		str(x.Ref)
		str(x.Status)
		num(x.AmountMicros)
	}
	h.Write(buf)
	return h.Sum64()
}

// Model is the porcupine model of a wallet funded with fundMicros.
func Model(fundMicros int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return &State{BalanceMicros: fundMicros} },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(*State), input.(Input), output.(Output))
		},
		Equal: func(a, b any) bool { return equal(a.(*State), b.(*State)) },
		Hash:  func(s any) uint64 { return hash(s.(*State)) },
		DescribeOperation: func(input, output any) string {
			return Describe(input.(Input), output.(Output))
		},
		DescribeState: func(state any) string {
			s := state.(*State)
			var b strings.Builder
			fmt.Fprintf(&b, "balance %d reserved %d", s.BalanceMicros, s.ReservedMicros)
			for _, h := range s.Holds {
				fmt.Fprintf(&b, "; %s %s %d", h.Ref, h.Status, h.AmountMicros)
			}
			return b.String()
		},
	}
}

// Describe is one line for an operation.
func Describe(in Input, out Output) string {
	var op string
	switch in.Kind {
	case Read:
		op = "balance"
	case Charge, HoldCreate:
		op = fmt.Sprintf("%s %s %d", in.Kind, in.Ref, in.Amount)
		if in.TTLSeconds > 0 {
			op += fmt.Sprintf(" ttl %ds", in.TTLSeconds)
		}
	case Refund, HoldExtend:
		op = fmt.Sprintf("%s %s of %s %d", in.Kind, in.Ref, in.Target, in.Amount)
	case HoldCommit:
		op = fmt.Sprintf("commit %s %d", in.Target, in.Amount)
	case HoldRelease, HoldExpire, HoldRead:
		op = fmt.Sprintf("%s %s", in.Kind, in.Target)
	}
	res := out.Outcome.String()
	if out.Status != 0 {
		res = fmt.Sprint(out.Status, " ", res)
	}
	switch {
	case in.Kind == HoldRead:
		res += " " + out.HoldStatus
	case out.Outcome == Applied || out.Outcome == Replayed:
		res += fmt.Sprintf(" (balance %d reserved %d", out.BalanceMicros, out.ReservedMicros)
		if in.Kind == HoldCommit {
			res += fmt.Sprintf(" captured %d", out.CapturedMicros)
		}
		res += ")"
	}
	return op + " -> " + res
}
