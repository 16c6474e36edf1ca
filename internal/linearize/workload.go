package linearize

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Workload makes the requests of concurrent clients on one wallet. Every
// reference and Idempotency-Key comes from a small pool shared by all
// clients, so first attempts race with repeats from other clients; the body
// of a reference is a function of the reference alone, so a repeat is always
// a retry of the same request. Refunds, commits and releases target only
// charges and holds some client saw succeed (their ids are learned from the
// answers).
type Workload struct {
	mu        sync.Mutex
	ids       map[string]string // charge or hold reference -> transaction or hold id
	learnedAt map[string]time.Time
	closed    map[string]bool // holds an answer showed closed
	charges   []string        // charge references with a known id
	holds     []string        // hold references with a known id
	chargeMax int
	holdMax   int
}

// NewWorkload returns a workload over chargeRefs charge references and
// holdRefs hold references.
func NewWorkload(chargeRefs, holdRefs int) *Workload {
	return &Workload{ids: map[string]string{}, learnedAt: map[string]time.Time{}, closed: map[string]bool{}, chargeMax: chargeRefs, holdMax: holdRefs}
}

var (
	chargeAmounts = []int64{1000, 3000, 7000}
	// A refund slot's amount: partial, everything left (0), partial.
	refundAmounts = []int64{1000, 0, 2500}
	holdAmounts   = []int64{2000, 5000, 9000}
	// A hold's commit: below, equal to and above what it holds (the
	// excess comes from available funds, capped at what the wallet has).
	commitAmounts = []int64{1500, 5000, 12000}
	extendAmounts = []int64{1000, 4000}
	// A quarter of the holds expire after one second, another quarter
	// after two, so some expire open, some are committed late.
	holdTTLs = []int64{0, 1, 0, 2}
)

// Next picks a client's next request.
func (w *Workload) Next(rng *rand.Rand) Input {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		switch p := rng.IntN(100); {
		case p < 22:
			return Input{Kind: Read}
		case p < 50:
			n := rng.IntN(w.chargeMax)
			return Input{Kind: Charge, Ref: fmt.Sprint("c-", n), Amount: chargeAmounts[n%len(chargeAmounts)]}
		case p < 64:
			if len(w.charges) == 0 {
				continue
			}
			target := w.charges[rng.IntN(len(w.charges))]
			slot := rng.IntN(len(refundAmounts))
			// Idempotency-Keys are 8-255 characters.
			return Input{Kind: Refund, Ref: fmt.Sprintf("refund-%s-%d", target, slot), Target: target, Amount: refundAmounts[slot]}
		case p < 76:
			n := rng.IntN(w.holdMax)
			return Input{Kind: HoldCreate, Ref: fmt.Sprint("h-", n), Amount: holdAmounts[n%len(holdAmounts)], TTLSeconds: holdTTLs[n%len(holdTTLs)]}
		case p < 82:
			if len(w.holds) == 0 {
				continue
			}
			target := w.holds[rng.IntN(len(w.holds))]
			slot := rng.IntN(len(extendAmounts))
			return Input{Kind: HoldExtend, Ref: fmt.Sprintf("extend-%s-%d", target, slot), Target: target, Amount: extendAmounts[slot]}
		case p < 88:
			// Reads of holds past their expiry that no answer showed
			// closed yet: they show when the expiry took effect, which
			// bounds it in the history (see Recorder.Operations).
			if target, ok := w.expiring(rng); ok {
				return Input{Kind: HoldRead, Target: target}
			}
			if len(w.holds) == 0 {
				continue
			}
			return Input{Kind: HoldRead, Target: w.holds[rng.IntN(len(w.holds))]}
		case p < 94:
			target, n, ok := w.closable(rng)
			if !ok {
				continue
			}
			return Input{Kind: HoldCommit, Target: target, Amount: commitAmounts[n%len(commitAmounts)]}
		default:
			target, _, ok := w.closable(rng)
			if !ok {
				continue
			}
			return Input{Kind: HoldRelease, Target: target}
		}
	}
}

// closable picks a hold to commit or release: any hold without a TTL, and
// a hold with one only once it is past its expiry, so that expiries are
// seen (in the wallet) and followed by late commits and no-op releases.
func (w *Workload) closable(rng *rand.Rand) (string, int, bool) {
	if len(w.holds) == 0 {
		return "", 0, false
	}
	target := w.holds[rng.IntN(len(w.holds))]
	var n int
	fmt.Sscanf(target, "h-%d", &n)
	if ttl := holdTTLs[n%len(holdTTLs)]; ttl > 0 && time.Since(w.learnedAt[target]) < time.Duration(ttl)*time.Second+500*time.Millisecond {
		return "", 0, false
	}
	return target, n, true
}

// expiring picks a hold with a TTL that is past its expiry and that no
// answer showed closed.
func (w *Workload) expiring(rng *rand.Rand) (string, bool) {
	var due []string
	for _, ref := range w.holds {
		var n int
		fmt.Sscanf(ref, "h-%d", &n)
		if ttl := holdTTLs[n%len(holdTTLs)]; ttl > 0 && !w.closed[ref] && time.Since(w.learnedAt[ref]) > time.Duration(ttl)*time.Second {
			due = append(due, ref)
		}
	}
	if len(due) == 0 {
		return "", false
	}
	return due[rng.IntN(len(due))], true
}

// NoteAnswer learns from a definite answer which holds are closed.
func (w *Workload) NoteAnswer(in Input, out Output) {
	if closes(in, out) {
		w.mu.Lock()
		w.closed[in.Target] = true
		w.mu.Unlock()
	}
}

// Learn records the id a charge or hold reference got.
func (w *Workload) Learn(ref, id string) {
	if id == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.ids[ref]; ok {
		return
	}
	w.ids[ref] = id
	w.learnedAt[ref] = time.Now()
	if ref[0] == 'c' {
		w.charges = append(w.charges, ref)
	} else {
		w.holds = append(w.holds, ref)
	}
}

// ID is the id a reference got ("" when none was seen).
func (w *Workload) ID(ref string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids[ref]
}

// Attempt sends one try of in (the first has attempt 0) and returns its
// answer, with definite=false when the outcome is unknown (503, timeout,
// connection error): the request may or may not have taken effect. A
// definite Output{Outcome: NotSent} says nothing was sent. The id a charge
// or hold got is returned with its answer.
type Attempt func(client, attempt int, in Input) (out Output, id string, definite bool)

// Driver runs clients of a workload against a system and records what
// they see.
type Driver struct {
	Clients      int
	OpsPerClient int
	// Seed makes each client's choices reproducible (the timing is not).
	Seed uint64
	// Pace is a pause between a client's operations (spreads a short
	// workload across injected faults).
	Pace time.Duration
	// Attempts bounds the tries of one operation; Backoff separates them.
	Attempts int
	Backoff  time.Duration
	// GiveUpPercent is the chance that a client abandons an operation at
	// its first unknown answer instead of retrying, leaving it possibly
	// applied in the history.
	GiveUpPercent int
	// Until stops clients from starting operations after it (zero: no
	// limit); so does closing Stop (nil: never).
	Until time.Time
	Stop  <-chan struct{}
}

// Run runs the clients until each did its operations or Until passed.
func (d Driver) Run(w *Workload, rec *Recorder, try Attempt) {
	var wg sync.WaitGroup
	for cl := 0; cl < d.Clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(d.Seed, uint64(cl)))
			for i := 0; i < d.OpsPerClient; i++ {
				if !d.Until.IsZero() && time.Now().After(d.Until) {
					return
				}
				select {
				case <-d.Stop:
					return
				default:
				}
				if d.Pace > 0 {
					time.Sleep(d.Pace)
				}
				d.one(cl, rng, w, rec, try)
			}
		}(cl)
	}
	wg.Wait()
}

// one runs one operation to a definite answer, or leaves it possibly
// applied.
func (d Driver) one(cl int, rng *rand.Rand, w *Workload, rec *Recorder, try Attempt) {
	in := w.Next(rng)
	// Whether to abandon this operation at its first unknown answer is
	// decided once per operation.
	giveUp := d.GiveUpPercent > 0 && rng.IntN(100) < d.GiveUpPercent
	ambiguousSince := int64(-1)
	// unknown records the possibly-applied attempts since ambiguousSince,
	// unless the request had already visibly taken effect before them
	// (then they could only replay).
	unknown := func() {
		if ambiguousSince >= 0 && in.Kind != Read && !rec.SettledBefore(in, ambiguousSince) {
			rec.AddUnknown(cl, in, ambiguousSince)
		}
	}
	for attempt := 0; ; attempt++ {
		call := rec.Now()
		out, id, definite := try(cl, attempt, in)
		switch {
		case definite && out.Outcome == NotSent:
			if attempt+1 >= d.Attempts {
				unknown()
				return
			}
		case definite:
			// Earlier unknown attempts matter only if they may have taken
			// effect: then the answer is a replay (a retry of a keyed
			// request that took effect replays), or it is a release (whose
			// repeat is a no-op 200 either way). Any other answer proves
			// they did nothing.
			if out.Outcome == Replayed || in.Kind == HoldRelease {
				unknown()
			}
			rec.Add(cl, in, call, out)
			w.NoteAnswer(in, out)
			if (in.Kind == Charge || in.Kind == HoldCreate) && (out.Outcome == Applied || out.Outcome == Replayed) {
				w.Learn(in.Ref, id)
			}
			return
		default:
			if ambiguousSince < 0 {
				ambiguousSince = call
			}
			rec.Attempted()
			if giveUp || attempt+1 >= d.Attempts {
				unknown()
				return
			}
		}
		time.Sleep(d.Backoff)
	}
}
