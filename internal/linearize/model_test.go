package linearize

import (
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a test operation from call to ret (ret < 0: unknown outcome).
func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	if ret < 0 {
		ret = 1 << 40
		out = Output{Outcome: Unknown}
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func wallet(o Outcome, balance, reserved int64) Output {
	return Output{Outcome: o, BalanceMicros: balance, ReservedMicros: reserved}
}

func check(ops ...porcupine.Operation) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model(10_000), ops, 10*time.Second)
}

var (
	read     = Input{Kind: Read}
	chargeA  = Input{Kind: Charge, Ref: "c-a", Amount: 3000}
	chargeB  = Input{Kind: Charge, Ref: "c-b", Amount: 8000}
	refundA1 = Input{Kind: Refund, Ref: "refund-a-1", Target: "c-a", Amount: 1000}
	refundA2 = Input{Kind: Refund, Ref: "refund-a-2", Target: "c-a", Amount: 0}
	refundA3 = Input{Kind: Refund, Ref: "refund-a-3", Target: "c-a", Amount: 2500}
	holdH    = Input{Kind: HoldCreate, Ref: "h-1", Amount: 4000}
	commitH  = Input{Kind: HoldCommit, Target: "h-1", Amount: 9000}
	releaseH = Input{Kind: HoldRelease, Target: "h-1"}
	extendH  = Input{Kind: HoldExtend, Ref: "extend-h-1", Target: "h-1", Amount: 5000}
)

// Histories the wallet can give: each must be accepted.
func TestModelAcceptsLegalHistories(t *testing.T) {
	cases := map[string][]porcupine.Operation{
		"charge, replay, read": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(1, 5, 20, chargeA, wallet(Replayed, 7000, 0)),
			op(0, 30, 40, read, wallet(Applied, 7000, 0)),
		},
		"concurrent charges: the second refused": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(1, 0, 10, chargeB, Output{Outcome: Refused}),
		},
		"partial then full refund, then nothing left": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(0, 20, 30, refundA1, wallet(Applied, 8000, 0)),
			op(0, 40, 50, refundA2, wallet(Applied, 10_000, 0)),
			op(1, 60, 70, refundA3, Output{Outcome: Invalid}),
			op(1, 80, 90, refundA1, wallet(Replayed, 10_000, 0)),
		},
		"hold, commit above the hold capped at the wallet": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, commitH, Output{Outcome: Applied, BalanceMicros: 1000, CapturedMicros: 9000}),
			op(1, 40, 50, releaseH, Output{Outcome: Closed}),
			op(1, 60, 70, commitH, Output{Outcome: Replayed, BalanceMicros: 1000, CapturedMicros: 9000}),
		},
		"hold leaves too little for a charge; release frees it": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, chargeB, Output{Outcome: Refused}),
			op(1, 40, 50, releaseH, wallet(Applied, 10_000, 0)),
			op(1, 60, 70, releaseH, wallet(Applied, 10_000, 0)),
			op(0, 80, 90, commitH, Output{Outcome: Closed}),
			op(0, 100, 110, chargeB, wallet(Applied, 2000, 0)),
		},
		"extend, its replay, then a commit the larger hold covers": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, extendH, wallet(Applied, 10_000, 9000)),
			op(1, 25, 40, extendH, wallet(Replayed, 10_000, 9000)),
			op(0, 50, 60, commitH, Output{Outcome: Applied, BalanceMicros: 1000, CapturedMicros: 9000}),
			op(1, 70, 80, Input{Kind: HoldExtend, Ref: "extend-h-2", Target: "h-1", Amount: 5000}, Output{Outcome: Closed}),
			op(1, 90, 95, Input{Kind: HoldExtend, Ref: "extend-h-3", Target: "h-1", Amount: 5000}, Output{Outcome: Refused}),
		},
		"unknown charge that took effect": {
			op(0, 0, -1, chargeA, Output{}),
			op(1, 20, 30, read, wallet(Applied, 7000, 0)),
		},
		"unknown charge that never took effect": {
			op(0, 0, -1, chargeA, Output{}),
			op(1, 20, 30, read, wallet(Applied, 10_000, 0)),
		},
		"unknown first attempt, then a replay": {
			op(0, 0, -1, chargeA, Output{}),
			op(0, 20, 30, chargeA, wallet(Replayed, 7000, 0)),
		},
	}
	for name, ops := range cases {
		if res := check(ops...); res != porcupine.Ok {
			t.Errorf("%s: %s, want ok", name, res)
		}
	}
}

// Histories the wallet must never give: each must be rejected, or the
// checker would pass a broken system.
func TestModelRejectsIllegalHistories(t *testing.T) {
	cases := map[string][]porcupine.Operation{
		"a charge applied twice": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(1, 20, 30, chargeA, wallet(Applied, 4000, 0)),
		},
		"a stale read after an acknowledged charge": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(1, 20, 30, read, wallet(Applied, 10_000, 0)),
		},
		"a refusal when the charge fit": {
			op(1, 0, 10, chargeA, Output{Outcome: Refused}),
		},
		"a replay of a charge never applied": {
			op(1, 0, 10, chargeA, wallet(Replayed, 10_000, 0)),
		},
		"refunds above the spend": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(0, 20, 30, refundA2, wallet(Applied, 10_000, 0)),
			op(0, 40, 50, refundA1, wallet(Applied, 11_000, 0)),
		},
		"a refund key applied twice": {
			op(0, 0, 10, chargeA, wallet(Applied, 7000, 0)),
			op(0, 20, 30, refundA1, wallet(Applied, 8000, 0)),
			op(1, 40, 50, refundA1, wallet(Applied, 9000, 0)),
		},
		"a hold that does not reduce available funds": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, chargeB, wallet(Applied, 2000, 4000)),
		},
		"a commit that overdraws": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, Input{Kind: HoldCommit, Target: "h-1", Amount: 12_000}, Output{Outcome: Applied, BalanceMicros: -2000, CapturedMicros: 12_000}),
		},
		"a release after commit": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, commitH, Output{Outcome: Applied, BalanceMicros: 1000, CapturedMicros: 9000}),
			op(0, 40, 50, releaseH, wallet(Applied, 1000, 0)),
		},
		"an extend key applied twice": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, extendH, wallet(Applied, 10_000, 9000)),
			op(1, 40, 50, Input{Kind: HoldExtend, Ref: "extend-h-1", Target: "h-1", Amount: 1000}, wallet(Applied, 10_000, 10_000)),
		},
		"an extend that does not fit": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, Input{Kind: HoldExtend, Ref: "extend-h-9", Target: "h-1", Amount: 7000}, wallet(Applied, 10_000, 11_000)),
		},
		"an extend after release": {
			op(0, 0, 10, holdH, wallet(Applied, 10_000, 4000)),
			op(0, 20, 30, releaseH, wallet(Applied, 10_000, 0)),
			op(0, 40, 50, extendH, wallet(Applied, 10_000, 5000)),
		},
		"an unknown charge seen applied, then not": {
			op(0, 0, -1, chargeA, Output{}),
			op(1, 20, 30, read, wallet(Applied, 7000, 0)),
			op(1, 40, 50, read, wallet(Applied, 10_000, 0)),
		},
	}
	for name, ops := range cases {
		if res := check(ops...); res != porcupine.Illegal {
			t.Errorf("%s: %s, want illegal", name, res)
		}
	}
}

// A failing check saves both files, and they hold the history.
func TestSaveWritesVisualizationAndJSON(t *testing.T) {
	t.Setenv("ORBIT_HISTORY_DIR", t.TempDir())
	rec := NewRecorder()
	rec.Add(0, chargeA, rec.Now(), wallet(Applied, 7000, 0))
	rec.Add(1, read, rec.Now(), wallet(Applied, 10_000, 0))
	rec.Fault(0, rec.Now(), "partition")
	_, info := porcupine.CheckOperationsVerbose(Model(10_000), rec.Operations(), time.Second)
	html, raw := Save("unit", 10_000, rec, info)
	for _, p := range []string{html, raw} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s not written (%v)", p, err)
		}
	}
}

// Holds with a TTL: the recorder adds their expiry, which may come no
// earlier than the first create's call plus the TTL.
func TestModelHoldExpiry(t *testing.T) {
	sec := int64(time.Second)
	hold := Input{Kind: HoldCreate, Ref: "h-1", Amount: 4000, TTLSeconds: 1}
	commit := Input{Kind: HoldCommit, Target: "h-1", Amount: 12_000}
	history := func(ops ...porcupine.Operation) porcupine.CheckResult {
		rec := NewRecorder()
		rec.ops = ops
		return porcupine.CheckOperationsTimeout(Model(10_000), rec.Operations(), 10*time.Second)
	}
	getHold := Input{Kind: HoldRead, Target: "h-1"}
	legal := []porcupine.Operation{
		op(0, 0, 10, hold, wallet(Applied, 10_000, 4000)),
		op(1, 20, 30, read, wallet(Applied, 10_000, 4000)),
		op(1, 40, 50, getHold, Output{Outcome: Applied, HoldStatus: "open"}),
		op(1, 2*sec-10, 2*sec-5, getHold, Output{Outcome: Applied, HoldStatus: "expired"}),
		op(1, 2*sec, 2*sec+10, read, wallet(Applied, 10_000, 0)), // expired
		op(0, 2*sec+20, 2*sec+30, releaseH, wallet(Applied, 10_000, 0)),
		// A late commit is charged from available funds alone, capped.
		op(0, 2*sec+40, 2*sec+50, commit, Output{Outcome: Applied, BalanceMicros: 0, CapturedMicros: 10_000}),
	}
	if res := history(legal...); res != porcupine.Ok {
		t.Errorf("expiry then a late commit: %s, want ok", res)
	}
	tooEarly := []porcupine.Operation{
		op(0, 0, 10, hold, wallet(Applied, 10_000, 4000)),
		op(1, sec/2, sec/2+10, read, wallet(Applied, 10_000, 0)),
	}
	if res := history(tooEarly...); res != porcupine.Illegal {
		t.Errorf("a hold released half-way through its TTL: %s, want illegal", res)
	}
	readTooEarly := []porcupine.Operation{
		op(0, 0, 10, hold, wallet(Applied, 10_000, 4000)),
		op(1, sec/2, sec/2+10, getHold, Output{Outcome: Applied, HoldStatus: "expired"}),
	}
	if res := history(readTooEarly...); res != porcupine.Illegal {
		t.Errorf("a hold read as expired half-way through its TTL: %s, want illegal", res)
	}
	reopened := []porcupine.Operation{
		op(0, 0, 10, hold, wallet(Applied, 10_000, 4000)),
		op(1, 2*sec, 2*sec+10, getHold, Output{Outcome: Applied, HoldStatus: "expired"}),
		op(1, 2*sec+20, 2*sec+30, read, wallet(Applied, 10_000, 4000)),
	}
	if res := history(reopened...); res != porcupine.Illegal {
		t.Errorf("a hold read as expired, then still reserving: %s, want illegal", res)
	}
	coveredLate := []porcupine.Operation{
		op(0, 0, 10, hold, wallet(Applied, 10_000, 4000)),
		op(1, 2*sec, 2*sec+10, read, wallet(Applied, 10_000, 0)),
		op(0, 2*sec+40, 2*sec+50, Input{Kind: HoldCommit, Target: "h-1", Amount: 3000}, Output{Outcome: Applied, BalanceMicros: 7000, CapturedMicros: 3000}),
		op(0, 2*sec+60, 2*sec+70, extendH, Output{Outcome: Applied, BalanceMicros: 7000, ReservedMicros: 5000}),
	}
	if res := history(coveredLate...); res != porcupine.Illegal {
		t.Errorf("an extend of a committed hold: %s, want illegal", res)
	}
}
