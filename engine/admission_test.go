package engine

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// InFlight reports whether commands admitted for org are still unsettled
// (production reads the counter inside AdmitDebit only).
func (e *Engine) InFlight(orgID string) bool {
	o := e.org(orgID)
	return o != nil && o.inflight.Load() > 0
}

func TestAdmitBasics(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	empty := h.org(t, "B", 0)

	if got := h.e.Admit("org_nope", 1); got != AdmitNoOrg {
		t.Fatalf("Admit(unknown) = %v", got)
	}
	h.e.Unadmit("org_nope", 1) // no effect, no panic
	if h.e.InFlight("org_nope") {
		t.Fatal("InFlight(unknown)")
	}
	for _, amt := range []int64{0, 1} {
		if got := h.e.Admit(empty, amt); got != AdmitInsufficient {
			t.Fatalf("Admit(empty, %d) = %v", amt, got)
		}
	}
	if h.e.InFlight(org) {
		t.Fatal("in flight before any admission")
	}
	if got := h.e.Admit(org, 1001); got != AdmitInsufficient {
		t.Fatalf("Admit(1001 of 1000) = %v", got)
	}
	if h.e.InFlight(org) {
		t.Fatal("a refused admission is in flight")
	}
	if got := h.e.Admit(org, 600); got != Admitted {
		t.Fatalf("Admit(600) = %v", got)
	}
	if !h.e.InFlight(org) {
		t.Fatal("admitted debit not in flight")
	}
	// 400 left for admission.
	if got := h.e.Admit(org, 401); got != AdmitInsufficient {
		t.Fatalf("Admit(401) = %v", got)
	}
	// Apply lowers the counter by what it spends (here another charge of 300,
	// not admitted), while the 600 is still held.
	wantCode(t, h.apply1(t, 2000, charge(org, "x", 300)), CodeOK)
	if got := h.e.Admit(org, 101); got != AdmitInsufficient {
		t.Fatalf("Admit(101) with 100 left = %v", got)
	}
	if got := h.e.Admit(org, 100); got != Admitted {
		t.Fatalf("Admit(100) with 100 left = %v", got)
	}
	// Nothing is left: not even a 0 debit fits (available <= threshold).
	if got := h.e.Admit(org, 0); got != AdmitInsufficient {
		t.Fatalf("Admit(0) with 0 left = %v", got)
	}
	h.e.Unadmit(org, 100)
	if !h.e.InFlight(org) {
		t.Fatal("600 still in flight")
	}
	h.e.Unadmit(org, 600)
	if h.e.InFlight(org) {
		t.Fatal("in flight after every Unadmit")
	}
	// Back to the applied value: 700.
	if got := h.e.Admit(org, 701); got != AdmitInsufficient {
		t.Fatalf("Admit(701 of 700) = %v", got)
	}
	if got := h.e.Admit(org, 700); got != Admitted {
		t.Fatalf("Admit(700 of 700) = %v", got)
	}
	h.e.Unadmit(org, 700)

	// The threshold comes off the top.
	wantCode(t, h.apply1(t, 2000, threshold(org, 200)), CodeOK)
	if got := h.e.Admit(org, 501); got != AdmitInsufficient {
		t.Fatalf("Admit(501) with threshold 200 = %v", got)
	}
	if got := h.e.Admit(org, 500); got != Admitted {
		t.Fatalf("Admit(500) with threshold 200 = %v", got)
	}
	h.e.Unadmit(org, 500)
	wantCode(t, h.apply1(t, 2000, threshold(org, 700)), CodeOK)
	if got := h.e.Admit(org, 0); got != AdmitInsufficient {
		t.Fatalf("Admit(0) at the threshold = %v", got)
	}
	// A credit lifts the pause at once.
	wantCode(t, h.apply1(t, 2000, adjust(org, "c", 1)), CodeOK)
	if got := h.e.Admit(org, 1); got != Admitted {
		t.Fatalf("Admit(1) one above the threshold = %v", got)
	}
	h.e.Unadmit(org, 1)
}

func TestAdmitDebit(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	unknown := func() bool { return false }
	if got := h.e.AdmitDebit("org_nope", 1, unknown); got != AdmitNoOrg {
		t.Fatalf("AdmitDebit(unknown org) = %v", got)
	}
	if got := h.e.AdmitDebit(org, 1001, unknown); got != AdmitInsufficient {
		t.Fatalf("AdmitDebit(1001 of 1000), nothing in flight = %v", got)
	}
	// A known reference is deferred to Apply (a retry replays), counted in
	// flight with nothing reserved.
	if got := h.e.AdmitDebit(org, 1001, func() bool { return true }); got != AdmitDeferred {
		t.Fatalf("AdmitDebit(1001, known reference) = %v", got)
	}
	if !h.e.InFlight(org) {
		t.Fatal("deferred debit not in flight")
	}
	if got := h.e.Admit(org, 1000); got != Admitted {
		t.Fatalf("Admit(1000) while a deferred debit is in flight = %v: deferring reserved funds", got)
	}
	// With another command in flight (perhaps this debit's first attempt),
	// a debit that does not fit is deferred too.
	if got := h.e.AdmitDebit(org, 1, unknown); got != AdmitDeferred {
		t.Fatalf("AdmitDebit(1) with 1000 in flight = %v", got)
	}
	h.e.Unadmit(org, 0)
	h.e.Unadmit(org, 1000)
	h.e.Unadmit(org, 0)
	if h.e.InFlight(org) {
		t.Fatal("in flight after every Unadmit")
	}
	if got := h.e.AdmitDebit(org, 1000, unknown); got != Admitted {
		t.Fatalf("AdmitDebit(1000 of 1000) = %v", got)
	}
	h.e.Unadmit(org, 1000)
}

// A command that settles between a refused admission's look at the funds
// and its look at what is in flight (a retry that turned out a replay gives
// its reservation back) must not leave a 402 that no order of events
// explains: admission looks again. TestLinearizableWallet once failed on it.
func TestAdmitDebitRefusalRacingASettlement(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 3000)
	unknown := func() bool { return false }
	defer func() { admitRefusedHook = nil }()

	// A replayed retry of 1,000 holds its reservation; a debit of 3,000 is
	// refused by it, and the retry settles (applying nothing) right then.
	if got := h.e.Admit(org, 1000); got != Admitted {
		t.Fatalf("Admit(1000) = %v", got)
	}
	settles := 1
	admitRefusedHook = func() {
		if settles > 0 {
			settles--
			h.e.Unadmit(org, 1000)
		}
	}
	if got := h.e.AdmitDebit(org, 3000, unknown); got != Admitted {
		t.Fatalf("AdmitDebit(3000 of 3000) after the reservation that refused it settled = %v", got)
	}
	h.e.Unadmit(org, 3000)

	// When the settlement spent the money (a charge of 1,000 that applied),
	// the look again refuses, as it should.
	if got := h.e.Admit(org, 1000); got != Admitted {
		t.Fatalf("Admit(1000) = %v", got)
	}
	settles = 1
	admitRefusedHook = func() {
		if settles > 0 {
			settles--
			wantCode(t, h.apply1(t, 2000, charge(org, "spent", 1000)), CodeOK)
			h.e.Unadmit(org, 1000)
		}
	}
	if got := h.e.AdmitDebit(org, 3000, unknown); got != AdmitInsufficient {
		t.Fatalf("AdmitDebit(3000 of 2000) = %v", got)
	}
	if h.e.InFlight(org) {
		t.Fatal("a refused debit is in flight")
	}

	// Settlements on every look: after the second, the debit is deferred to
	// Apply rather than refused on a figure that keeps moving.
	admitRefusedHook = func() {
		if got := h.e.Admit(org, 1); got == Admitted {
			h.e.Unadmit(org, 1)
		}
	}
	if got := h.e.AdmitDebit(org, 3000, unknown); got != AdmitDeferred {
		t.Fatalf("AdmitDebit(3000 of 2000) with a settlement on every look = %v", got)
	}
	h.e.Unadmit(org, 0)
}

func TestAdmitAfterLoad(t *testing.T) {
	st := NewMemStore()
	e := New(1, st)
	e.Load([]OrgRecord{
		{ID: "org_A", BalanceMicros: 5000, ReservedMicros: 1000, PauseThresholdMicros: 500},
		{ID: "org_H", BalanceMicros: 5000, OperatorHold: true},
	}, nil, 10, 1000)
	if got := e.Admit("org_A", 3501); got != AdmitInsufficient {
		t.Fatalf("Admit(3501) = %v", got)
	}
	if got := e.Admit("org_A", 3500); got != Admitted {
		t.Fatalf("Admit(3500) = %v", got)
	}
	e.Unadmit("org_A", 3500)
	if got := e.Admit("org_H", 0); got != AdmitPaused {
		t.Fatalf("Admit while on hold = %v", got)
	}
	// Load replaces everything: a second Load drops the first's orgs.
	e.Load([]OrgRecord{{ID: "org_B", BalanceMicros: 10}}, nil, 11, 1000)
	if got := e.Admit("org_A", 0); got != AdmitNoOrg {
		t.Fatalf("Admit(org_A) after reload = %v", got)
	}
	if got := e.Admit("org_B", 10); got != Admitted {
		t.Fatalf("Admit(org_B, 10) = %v", got)
	}
	e.Unadmit("org_B", 10)
}

// TestAdmitExactUnderContention: many goroutines admit 1 micro at a time
// from one wallet until refused; exactly the wallet's funds are admitted.
func TestAdmitExactUnderContention(t *testing.T) {
	const funds = 20_000
	h := newHarness()
	org := h.org(t, "A", funds)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h.e.Admit(org, 1) == Admitted {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != funds {
		t.Fatalf("admitted %d micros of %d", got, funds)
	}
	if !h.e.InFlight(org) {
		t.Fatal("nothing in flight")
	}
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < funds/16; i++ {
				h.e.Unadmit(org, 1)
			}
		}()
	}
	wg.Wait()
	if h.e.InFlight(org) {
		t.Fatal("still in flight after every Unadmit")
	}
	if got := h.e.Admit(org, funds+1); got != AdmitInsufficient {
		t.Fatalf("Admit(funds+1) = %v", got)
	}
	if got := h.e.Admit(org, funds); got != Admitted {
		t.Fatalf("Admit(funds) = %v", got)
	}
	h.e.Unadmit(org, funds)
}

// TestAdmissionConcurrentWithApply runs the leader's pipeline: admitters
// admit a charge, hand it to the one goroutine that applies batches (which
// also applies credits), wait for its result and Unadmit. A model tracks the
// amounts admitted and not yet applied; at no point may they exceed the
// applied available funds minus the threshold, and every admitted charge
// must succeed when applied.
func TestAdmissionConcurrentWithApply(t *testing.T) {
	const nOrgs, admitters = 4, 8
	iters := 1500
	if testing.Short() {
		iters = 300
	}
	seed := uint64(time.Now().UnixNano())
	h := newHarness()
	var orgs []string
	thresholds := map[string]int64{}
	for i := 0; i < nOrgs; i++ {
		org := h.org(t, fmt.Sprint("org", i), 20_000)
		th := int64(i%2) * 3000
		wantCode(t, h.apply1(t, 1000, threshold(org, th)), CodeOK)
		orgs = append(orgs, org)
		thresholds[org] = th
	}

	type request struct {
		cmd  Command
		done chan Result
	}
	reqs := make(chan request, admitters)

	// The model, under mu. The applier holds mu while it applies a batch and
	// brings the model up to date, so the model never lags the engine in a
	// direction that could hide an overdraft.
	var mu sync.Mutex
	pending := map[string]int64{}
	avail := map[string]int64{}
	for _, org := range orgs {
		avail[org] = 20_000
	}
	var violations atomic.Int64
	var firstViolation atomic.Value
	violate := func(format string, args ...any) {
		if violations.Add(1) == 1 {
			firstViolation.Store(fmt.Sprintf(format, args...))
		}
	}
	checkLocked := func(org string) {
		if pending[org] < 0 || pending[org] > avail[org]-thresholds[org] {
			violate("org %s: %d admitted and not applied, %d available, threshold %d", org, pending[org], avail[org], thresholds[org])
		}
	}

	applierDone := make(chan struct{})
	go func() {
		defer close(applierDone)
		r := rand.New(rand.NewPCG(seed, 1))
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		credits := 0
		for open := true; open; {
			var batch []request
			select {
			case rq, ok := <-reqs:
				if !ok {
					open = false
				} else {
					batch = append(batch, rq)
				}
			case <-tick.C:
			}
		drain:
			for len(batch) < 64 && open {
				select {
				case rq, ok := <-reqs:
					if !ok {
						open = false
						break drain
					}
					batch = append(batch, rq)
				default:
					break drain
				}
			}
			cmds := make([]Command, 0, len(batch)+1)
			for _, rq := range batch {
				cmds = append(cmds, rq.cmd)
			}
			if r.IntN(2) == 0 {
				credits++
				cmds = append(cmds, adjust(orgs[r.IntN(nOrgs)], fmt.Sprint("credit", credits), 1+r.Int64N(8000)))
			}
			mu.Lock()
			res := h.apply(t, 2000, cmds...)
			for i, c := range cmds {
				if res[i].Code != CodeOK {
					violate("admitted %s of %d refused at apply: %v (%s)", c.Kind, c.AmountMicros, res[i].Code, res[i].Message)
				}
				if c.Kind == CmdCharge {
					pending[c.OrgID] -= c.AmountMicros
				}
				avail[c.OrgID] = res[i].Wallet.AvailableMicros()
			}
			for _, org := range orgs {
				checkLocked(org)
			}
			mu.Unlock()
			for i, rq := range batch {
				rq.done <- res[i]
			}
		}
	}()

	var admittedN, refusedN, abandonedN atomic.Int64
	var wg sync.WaitGroup
	for a := 0; a < admitters; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(a)+2))
			done := make(chan Result, 1)
			for i := 0; i < iters; i++ {
				org := orgs[r.IntN(nOrgs)]
				amt := r.Int64N(4000)
				switch st := h.e.Admit(org, amt); st {
				case AdmitInsufficient:
					refusedN.Add(1)
					time.Sleep(20 * time.Microsecond) // back off; credits arrive
					continue
				case Admitted:
				default:
					violate("Admit = %v", st)
					return
				}
				admittedN.Add(1)
				if !h.e.InFlight(org) {
					violate("admitted debit not in flight")
				}
				if r.IntN(6) == 0 {
					// The proposal failed: give it back unapplied.
					abandonedN.Add(1)
					h.e.Unadmit(org, amt)
					continue
				}
				mu.Lock()
				pending[org] += amt
				checkLocked(org)
				mu.Unlock()
				reqs <- request{cmd: charge(org, fmt.Sprintf("a%d-%d", a, i), amt), done: done}
				<-done
				h.e.Unadmit(org, amt)
			}
		}(a)
	}
	wg.Wait()
	close(reqs)
	<-applierDone

	if n := violations.Load(); n > 0 {
		t.Fatalf("seed %d: %d violations; first: %v", seed, n, firstViolation.Load())
	}
	if admittedN.Load() == 0 || refusedN.Load() == 0 || abandonedN.Load() == 0 {
		t.Fatalf("seed %d: admitted %d refused %d abandoned %d: the test did not exercise both outcomes",
			seed, admittedN.Load(), refusedN.Load(), abandonedN.Load())
	}
	t.Logf("admitted %d refused %d abandoned %d batches %d", admittedN.Load(), refusedN.Load(), abandonedN.Load(), h.idx)
	// Settled: the admission counter equals applied available funds again.
	for _, org := range orgs {
		if h.e.InFlight(org) {
			t.Fatalf("org %s still in flight", org)
		}
		w := h.wallet(t, org)
		h.wantBalance(t, org, w.BalanceMicros)
		fit := w.AvailableMicros() - w.ThresholdMicros
		if fit <= 0 {
			if got := h.e.Admit(org, 0); got != AdmitInsufficient {
				t.Fatalf("org %s at %d available (threshold %d): Admit(0) = %v", org, w.AvailableMicros(), w.ThresholdMicros, got)
			}
			continue
		}
		if got := h.e.Admit(org, fit+1); got != AdmitInsufficient {
			t.Fatalf("org %s: Admit(%d) with %d to spare = %v", org, fit+1, fit, got)
		}
		if got := h.e.Admit(org, fit); got != Admitted {
			t.Fatalf("org %s: Admit(%d) = %v", org, fit, got)
		}
		h.e.Unadmit(org, fit)
	}
}

// TestAdmitReadsWhileApplying checks that lock-free admission and the
// locked views race cleanly with Apply (run with -race).
func TestAdmitReadsWhileApplying(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1_000_000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if h.e.Admit(org, 1) == Admitted {
					h.e.Unadmit(org, 1)
				}
				w, _ := h.e.Wallet(org)
				if w.BalanceMicros < 0 || w.AvailableMicros() < 0 {
					t.Errorf("wallet %+v", w)
					return
				}
				_, _ = h.e.OrgRecord(org)
				_ = h.e.Orgs()
				_ = h.e.Keys(org)
				_, _ = h.e.KeyByHash("k1")
				_ = h.e.AppliedIndex()
			}
		}()
	}
	for i := 0; i < 300; i++ {
		h.apply(t, int64(2000+i), charge(org, fmt.Sprint("c", i), 7), adjust(org, fmt.Sprint("a", i), 3),
			Command{Kind: CmdCreateKey, OrgID: org, KeyHash: fmt.Sprint("k", i)}, Command{Kind: CmdPause, OrgID: org}, Command{Kind: CmdUnpause, OrgID: org})
	}
	close(stop)
	wg.Wait()
	h.wantBalance(t, org, 1_000_000-300*4)
}
