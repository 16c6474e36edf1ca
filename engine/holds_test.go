package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Tests of reservations (holds) and grants: SPEC.md section 4
// (Reservations, Outbound pause) and section 5 (Grants).

func hcCreate(org, ref string, amount, ttl int64) Command {
	return Command{Kind: CmdHoldCreate, OrgID: org, Reference: ref, Channel: "voice", AmountMicros: amount, TTLSeconds: ttl,
		BodyHash: fmt.Sprintf("hold-%s-%d-%d", ref, amount, ttl)}
}

func hcExtend(org, id, key string, amount, ttl int64) Command {
	return Command{Kind: CmdHoldExtend, OrgID: org, TxID: id, Reference: key, AmountMicros: amount, TTLSeconds: ttl,
		BodyHash: fmt.Sprintf("extend-%s-%d-%d", id, amount, ttl)}
}

func hcCommit(org, id string, amount int64) Command {
	return Command{Kind: CmdHoldCommit, OrgID: org, TxID: id, AmountMicros: amount, BodyHash: fmt.Sprintf("commit-%d", amount)}
}

func hcCommitUsage(org, id string, u Usage) Command {
	return Command{Kind: CmdHoldCommit, OrgID: org, TxID: id, Usage: &u, BodyHash: fmt.Sprintf("commit-usage-%+v", u)}
}

func hcRelease(org, id string) Command {
	return Command{Kind: CmdHoldRelease, OrgID: org, TxID: id}
}

func hcGrant(org, ref string, amount, expiresAtMs int64) Command {
	return Command{Kind: CmdGrant, OrgID: org, Reference: ref, AmountMicros: amount, ExpiresAtMs: expiresAtMs,
		BodyHash: fmt.Sprintf("grant-%s-%d-%d", ref, amount, expiresAtMs), Reason: "promo"}
}

// wantWallet checks balance (== ledger sum), reserved and that reserved is
// the sum of the open holds.
func (h *harness) wantWallet(t testing.TB, org string, balance, reserved int64) {
	t.Helper()
	h.wantBalance(t, org, balance)
	w := h.wallet(t, org)
	if w.ReservedMicros != reserved || w.AvailableMicros() != balance-reserved {
		t.Fatalf("wallet of %s: reserved %d available %d, want reserved %d available %d", org, w.ReservedMicros, w.AvailableMicros(), reserved, balance-reserved)
	}
	var open int64
	for _, hd := range h.st.OpenHolds() {
		if hd.OrgID == org {
			open += hd.AmountMicros
			if mem, ok := h.e.HoldByID(org, hd.ID); !ok || !reflect.DeepEqual(mem, hd) {
				t.Fatalf("open hold %s in memory %+v, stored %+v", hd.ID, mem, hd)
			}
		}
	}
	if open != reserved {
		t.Fatalf("open holds of %s sum %d, reserved %d", org, open, reserved)
	}
}

// wantNoHoldWritten checks that the last batch wrote no hold and no entry.
func (h *harness) wantNoHoldWritten(t testing.TB) {
	t.Helper()
	h.wantNothingWritten(t)
	if len(h.last.Holds) != 0 {
		t.Fatalf("batch wrote holds %+v", h.last.Holds)
	}
}

// fund credits org with n micros in as many adjustments as it takes.
func (h *harness) fund(t testing.TB, org string, n int64, timeMs int64) {
	t.Helper()
	for i := 0; n > 0; i++ {
		a := min(n, MaxAmountMicros)
		wantCode(t, h.apply1(t, timeMs, adjust(org, fmt.Sprintf("fund-%d-%d-%d", h.idx, i, a), a)), CodeOK)
		n -= a
	}
}

func TestHoldCreate(t *testing.T) {
	const now = 50_000
	cases := []struct {
		name      string
		fund, th  int64
		paused    bool
		amount    int64
		ttl       int64
		code      Code
		expiresAt int64
	}{
		{"fits", 1000, 0, false, 400, 60, CodeOK, now + 60_000},
		{"exactly available", 1000, 0, false, 1000, 60, CodeOK, now + 60_000},
		{"one micro more than available", 1000, 0, false, 1001, 60, CodeInsufficientFunds, 0},
		{"empty wallet", 0, 0, false, 1, 60, CodeInsufficientFunds, 0},
		{"available minus threshold", 1000, 200, false, 800, 60, CodeOK, now + 60_000},
		{"above available minus threshold", 1000, 200, false, 801, 60, CodeInsufficientFunds, 0},
		{"at the threshold", 200, 200, false, 0, 60, CodeInsufficientFunds, 0},
		{"operator hold", 1000, 0, true, 1, 60, CodeOutboundPaused, 0},
		{"operator hold beats insufficient", 0, 0, true, 5, 60, CodeOutboundPaused, 0},
		{"ttl default 300 s", 1000, 0, false, 1, 0, CodeOK, now + 300_000},
		{"ttl 1 s", 1000, 0, false, 1, 1, CodeOK, now + 1000},
		{"ttl 86400 s", 1000, 0, false, 1, 86_400, CodeOK, now + 86_400_000},
		{"ttl 86401 s", 1000, 0, false, 1, 86_401, CodeInvalid, 0},
		{"ttl negative", 1000, 0, false, 1, -1, CodeInvalid, 0},
		{"negative amount", 1000, 0, false, -1, 60, CodeInvalid, 0},
		{"amount above max", MaxAmountMicros + 5, 0, false, MaxAmountMicros + 1, 60, CodeInvalid, 0},
		{"max amount", MaxAmountMicros, 0, false, MaxAmountMicros, 60, CodeOK, now + 60_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", 0)
			h.fund(t, org, tc.fund, 1000)
			if tc.th != 0 {
				wantCode(t, h.apply1(t, 1000, threshold(org, tc.th)), CodeOK)
			}
			if tc.paused {
				wantCode(t, h.apply1(t, 1000, Command{Kind: CmdPause, OrgID: org, Reason: "review"}), CodeOK)
			}
			before := h.wallet(t, org)
			cmd := hcCreate(org, "call-1", tc.amount, tc.ttl)
			cmd.Metadata = Metadata{{"call", `"c1"`}}
			r := h.apply1(t, now, cmd)
			wantCode(t, r, tc.code)
			if tc.code != CodeOK {
				h.wantNoHoldWritten(t)
				if r.Hold != nil || r.ID != "" || r.TxID != "" {
					t.Fatalf("refused create result %+v", r)
				}
				if after := h.wallet(t, org); after != before {
					t.Fatalf("refused create changed the wallet %+v -> %+v", before, after)
				}
				if _, ok := h.st.Ref(org, NSReservation, "call-1"); ok {
					t.Fatal("refused create left its reference")
				}
				if h.e.NextDeadlineMs() != 0 {
					t.Fatalf("refused create scheduled a deadline at %d", h.e.NextDeadlineMs())
				}
				return
			}
			if ms, ok := IDTimeMs(r.ID, PrefixReservation); !ok || ms != now {
				t.Fatalf("hold id %q", r.ID)
			}
			want := Hold{ID: r.ID, OrgID: org, Reference: "call-1", Channel: "voice", Status: HoldOpen, Metadata: cmd.Metadata,
				BodyHash: cmd.BodyHash, AmountMicros: tc.amount, CreatedAtMs: now, ExpiresAtMs: tc.expiresAt}
			if tc.amount > 0 {
				want.Draws = []Draw{{Amount: tc.amount}}
			}
			if r.Hold == nil || !reflect.DeepEqual(*r.Hold, want) {
				t.Fatalf("hold = %+v, want %+v", r.Hold, want)
			}
			if !reflect.DeepEqual(h.last.Holds, []Hold{want}) {
				t.Fatalf("persisted holds %+v", h.last.Holds)
			}
			// The balance does not change; available drops by the hold.
			if len(h.last.Entries) != 0 || len(h.last.Usage) != 0 {
				t.Fatalf("a hold wrote entries %+v", h.last.Entries)
			}
			h.wantWallet(t, org, tc.fund, tc.amount)
			if r.Wallet.ReservedMicros != tc.amount || r.Wallet.BalanceMicros != tc.fund {
				t.Fatalf("result wallet %+v", r.Wallet)
			}
			if ref, ok := h.st.Ref(org, NSReservation, "call-1"); !ok || ref != (RefRecord{TxID: r.ID, BodyHash: cmd.BodyHash}) {
				t.Fatalf("ref %+v", ref)
			}
			if got := h.e.NextDeadlineMs(); got != tc.expiresAt {
				t.Fatalf("next deadline %d, want %d", got, tc.expiresAt)
			}
			// Admission sees available funds less the hold.
			if avail := tc.fund - tc.amount; avail > tc.th {
				if h.e.Admit(org, avail-tc.th+1) != AdmitInsufficient {
					t.Fatal("admission ignores the hold")
				}
			}
		})
	}
}

func TestHoldCreateReplay(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 1000)
	b := h.org(t, "B", 1000)
	cmd := hcCreate(a, "call-1", 400, 60)
	r := h.apply1(t, 2000, cmd)
	wantCode(t, r, CodeOK)
	id := r.ID

	// Same reference, same body: the same hold, never held twice.
	for range 3 {
		rr := h.apply1(t, 3000, cmd)
		wantCode(t, rr, CodeReplayed)
		if rr.TxID != id || rr.Hold == nil || rr.Hold.ID != id || rr.Hold.AmountMicros != 400 {
			t.Fatalf("replay %+v", rr)
		}
		h.wantNoHoldWritten(t)
		h.wantWallet(t, a, 1000, 400)
	}
	// In one batch, the second is a replay of the first.
	res := h.apply(t, 3000, hcCreate(a, "call-2", 100, 60), hcCreate(a, "call-2", 100, 60))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	if res[1].TxID != res[0].ID || len(h.last.Holds) != 1 {
		t.Fatalf("same-batch replay %+v, holds %+v", res[1], h.last.Holds)
	}
	h.wantWallet(t, a, 1000, 500)
	// Same reference, another body: conflict, nothing changes.
	rc := h.apply1(t, 3000, hcCreate(a, "call-1", 401, 60))
	wantCode(t, rc, CodeConflict)
	if rc.TxID != id {
		t.Fatalf("conflict names %q", rc.TxID)
	}
	h.wantNoHoldWritten(t)
	h.wantWallet(t, a, 1000, 500)
	// References are per org, and separate from charge references.
	wantCode(t, h.apply1(t, 3000, hcCreate(b, "call-1", 400, 60)), CodeOK)
	wantCode(t, h.apply1(t, 3000, charge(a, "call-1", 10)), CodeOK)
	h.wantWallet(t, a, 990, 500)
	h.wantWallet(t, b, 1000, 400)

	// A refused create leaves no trace: the same reference is a new attempt.
	big := hcCreate(a, "big", 2000, 60)
	wantCode(t, h.apply1(t, 3000, big), CodeInsufficientFunds)
	h.fund(t, a, 2000, 3000)
	wantCode(t, h.apply1(t, 3000, big), CodeOK)
	h.wantWallet(t, a, 2990, 2500)

	// After the hold is committed, the create still replays, naming it.
	rcm := h.apply1(t, 4000, hcCommit(a, id, 100))
	wantCode(t, rcm, CodeOK)
	rr := h.apply1(t, 5000, cmd)
	wantCode(t, rr, CodeReplayed)
	if rr.TxID != id || rr.Hold == nil || rr.Hold.Status != HoldCommitted {
		t.Fatalf("replay after commit %+v", rr.Hold)
	}
	h.wantNoHoldWritten(t)
	h.wantWallet(t, a, 2890, 2100)
}

func TestHoldExtend(t *testing.T) {
	const t0, t1 = 10_000, 20_000
	cases := []struct {
		name     string
		th       int64
		paused   bool
		cmd      func(org, other, id string) Command
		code     Code
		amount   int64 // the hold after
		expires  int64
		reserved int64
	}{
		{"fits", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 300, 0) }, CodeOK, 700, t0 + 60_000, 700},
		{"with ttl from now", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 100, 120) }, CodeOK, 500, t1 + 120_000, 500},
		{"ttl may shorten", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 100, 1) }, CodeOK, 500, t1 + 1000, 500},
		{"exactly available", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 600, 0) }, CodeOK, 1000, t0 + 60_000, 1000},
		{"does not fit", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 601, 120) }, CodeInsufficientFunds, 400, t0 + 60_000, 400},
		{"threshold", 100, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 501, 0) }, CodeInsufficientFunds, 400, t0 + 60_000, 400},
		{"within threshold", 100, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 500, 0) }, CodeOK, 900, t0 + 60_000, 900},
		{"paused", 0, true, func(o, _, id string) Command { return hcExtend(o, id, "k1", 1, 0) }, CodeOutboundPaused, 400, t0 + 60_000, 400},
		{"zero", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 0, 0) }, CodeInvalid, 400, t0 + 60_000, 400},
		{"negative", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", -5, 0) }, CodeInvalid, 400, t0 + 60_000, 400},
		{"above max", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", MaxAmountMicros+1, 0) }, CodeInvalid, 400, t0 + 60_000, 400},
		{"ttl above max", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 1, 86_401) }, CodeInvalid, 400, t0 + 60_000, 400},
		{"ttl negative", 0, false, func(o, _, id string) Command { return hcExtend(o, id, "k1", 1, -1) }, CodeInvalid, 400, t0 + 60_000, 400},
		{"unknown hold", 0, false, func(o, _, _ string) Command { return hcExtend(o, "rsv_nope", "k1", 1, 0) }, CodeNotFound, 400, t0 + 60_000, 400},
		{"another org's hold", 0, false, func(_, other, id string) Command { return hcExtend(other, id, "k1", 1, 0) }, CodeNotFound, 400, t0 + 60_000, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", 1000)
			other := h.org(t, "B", 1000)
			r := h.apply1(t, t0, hcCreate(org, "call", 400, 60))
			wantCode(t, r, CodeOK)
			id := r.ID
			if tc.th != 0 {
				wantCode(t, h.apply1(t, t0, threshold(org, tc.th)), CodeOK)
			}
			if tc.paused {
				wantCode(t, h.apply1(t, t0, Command{Kind: CmdPause, OrgID: org}), CodeOK)
			}
			cmd := tc.cmd(org, other, id)
			re := h.apply1(t, t1, cmd)
			wantCode(t, re, tc.code)
			got, ok := h.e.HoldByID(org, id)
			if !ok || got.AmountMicros != tc.amount || got.ExpiresAtMs != tc.expires || got.Status != HoldOpen {
				t.Fatalf("hold after %+v (ok %v), want amount %d expires %d", got, ok, tc.amount, tc.expires)
			}
			h.wantWallet(t, org, 1000, tc.reserved)
			h.wantWallet(t, other, 1000, 0)
			if tc.code != CodeOK {
				// The hold stays as it was, and the key is not used up.
				h.wantNoHoldWritten(t)
				if _, ok := h.st.Ref(cmd.OrgID, NSExtend, "k1"); ok {
					t.Fatal("refused extend left its key")
				}
				if tc.code == CodeInsufficientFunds || tc.code == CodeOutboundPaused {
					if re.Hold == nil || re.Hold.AmountMicros != 400 {
						t.Fatalf("402/403 extend result hold %+v", re.Hold)
					}
				}
				return
			}
			if re.Hold == nil || !reflect.DeepEqual(*re.Hold, got) || re.ID != id {
				t.Fatalf("extend result %+v, hold %+v", re, got)
			}
			if !reflect.DeepEqual(h.last.Holds, []Hold{got}) || len(h.last.Entries) != 0 {
				t.Fatalf("extend persisted holds %+v entries %+v", h.last.Holds, h.last.Entries)
			}
			if got.CreatedAtMs != t0 {
				t.Fatalf("extend moved created_at: %+v", got)
			}
			if ref, ok := h.st.Ref(org, NSExtend, "k1"); !ok || ref != (RefRecord{TxID: id, BodyHash: cmd.BodyHash}) {
				t.Fatalf("extend key %+v %v", ref, ok)
			}
		})
	}
}

func TestHoldExtendReplay(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	id := h.apply1(t, 2000, hcCreate(org, "call", 100, 60)).ID
	id2 := h.apply1(t, 2000, hcCreate(org, "call2", 100, 60)).ID
	ext := hcExtend(org, id, "key-1", 200, 0)
	wantCode(t, h.apply1(t, 3000, ext), CodeOK)
	h.wantWallet(t, org, 1000, 400)
	// Retries with the same key never hold twice.
	for range 3 {
		r := h.apply1(t, 3000, ext)
		wantCode(t, r, CodeReplayed)
		if r.TxID != id || r.Hold == nil || r.Hold.AmountMicros != 300 {
			t.Fatalf("extend replay %+v", r)
		}
		h.wantNoHoldWritten(t)
		h.wantWallet(t, org, 1000, 400)
	}
	// The same key with another body (amount, or another hold) conflicts.
	wantCode(t, h.apply1(t, 3000, hcExtend(org, id, "key-1", 201, 0)), CodeConflict)
	h.wantNoHoldWritten(t)
	wantCode(t, h.apply1(t, 3000, hcExtend(org, id2, "key-1", 200, 0)), CodeConflict)
	h.wantNoHoldWritten(t)
	h.wantWallet(t, org, 1000, 400)
	// Within one batch.
	res := h.apply(t, 3000, hcExtend(org, id2, "key-2", 50, 0), hcExtend(org, id2, "key-2", 50, 0))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	h.wantWallet(t, org, 1000, 450)
	// A 402 extend is not remembered: the retry after a credit holds.
	big := hcExtend(org, id2, "key-3", 700, 0)
	wantCode(t, h.apply1(t, 3000, big), CodeInsufficientFunds)
	h.fund(t, org, 500, 3000)
	wantCode(t, h.apply1(t, 3000, big), CodeOK)
	h.wantWallet(t, org, 1500, 1150)
	// A replay of an extend still answers after the hold closed.
	wantCode(t, h.apply1(t, 4000, hcRelease(org, id)), CodeOK)
	r := h.apply1(t, 4000, ext)
	wantCode(t, r, CodeReplayed)
	if r.Hold == nil || r.Hold.Status != HoldReleased {
		t.Fatalf("replay after release %+v", r.Hold)
	}
	// A new key on a closed hold is reservation_closed.
	wantCode(t, h.apply1(t, 4000, hcExtend(org, id, "key-4", 1, 0)), CodeReservationClosed)
	h.wantNoHoldWritten(t)
}

func TestHoldCommit(t *testing.T) {
	cases := []struct {
		name        string
		other       int64 // another open hold
		spend       int64 // charged after the hold
		th          int64
		paused      bool
		commit      int64
		total       int64
		uncollected int64
	}{
		{"below the hold", 0, 0, 0, false, 300, 300, 0},
		{"equal to the hold", 0, 0, 0, false, 400, 400, 0},
		{"zero", 0, 0, 0, false, 0, 0, 0},
		{"above, from available", 0, 0, 0, false, 700, 700, 0},
		{"above, all of it", 0, 0, 0, false, 1000, 1000, 0},
		{"above, capped", 0, 0, 0, false, 1500, 1000, 500},
		{"above, max amount", 0, 0, 0, false, MaxAmountMicros, 1000, MaxAmountMicros - 1000},
		{"another hold is not available", 500, 0, 0, false, 600, 500, 100},
		{"another hold, below", 500, 0, 0, false, 100, 100, 0},
		{"available drained by a charge", 0, 600, 0, false, 500, 400, 100},
		{"paused org commits", 0, 0, 0, true, 700, 700, 0},
		{"threshold does not limit a commit", 0, 0, 900, false, 1000, 1000, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", 1000)
			cmd := hcCreate(org, "call", 400, 60)
			cmd.Metadata = Metadata{{"call", `"c1"`}}
			r := h.apply1(t, 2000, cmd)
			wantCode(t, r, CodeOK)
			id := r.ID
			if tc.other > 0 {
				wantCode(t, h.apply1(t, 2000, hcCreate(org, "other", tc.other, 60)), CodeOK)
			}
			if tc.spend > 0 {
				wantCode(t, h.apply1(t, 2000, charge(org, "spend", tc.spend)), CodeOK)
			}
			if tc.th > 0 {
				wantCode(t, h.apply1(t, 2000, threshold(org, tc.th)), CodeOK)
			}
			if tc.paused {
				wantCode(t, h.apply1(t, 2000, Command{Kind: CmdPause, OrgID: org}), CodeOK)
			}
			balance := 1000 - tc.spend
			rc := h.apply1(t, 3000, hcCommit(org, id, tc.commit))
			wantCode(t, rc, CodeOK)
			if rc.Capped != (tc.uncollected > 0) || rc.UncollectedMicros != tc.uncollected || rc.Expired {
				t.Fatalf("commit result capped %v uncollected %d expired %v", rc.Capped, rc.UncollectedMicros, rc.Expired)
			}
			want := Entry{ID: rc.TxID, OrgID: org, Type: EntrySpend, AmountMicros: -tc.total, BalanceAfterMicros: balance - tc.total,
				Reference: "reservation:call", CreatedAtMs: 3000,
				Metadata: Metadata{{"call", `"c1"`}, {"channel", `"voice"`}, {"reservation_id", `"` + id + `"`}}}
			if !sameEntry(rc.Entry, want) || !sameEntries(h.last.Entries, want) {
				t.Fatalf("commit entry %+v, want %+v (persisted %+v)", rc.Entry, want, h.last.Entries)
			}
			h.wantWallet(t, org, balance-tc.total, tc.other)
			hd := rc.Hold
			if hd == nil || hd.Status != HoldCommitted || hd.CommitTxID != rc.TxID || hd.CapturedMicros != tc.total ||
				hd.UncollectedMicros != tc.uncollected || hd.Capped != rc.Capped || hd.ClosedAtMs != 3000 || hd.LateCommit || hd.AmountMicros != 400 {
				t.Fatalf("committed hold %+v", hd)
			}
			if !reflect.DeepEqual(h.last.Holds, []Hold{*hd}) || !reflect.DeepEqual(h.st.Holds[id], *hd) {
				t.Fatalf("persisted hold %+v", h.last.Holds)
			}
			if _, ok := h.e.HoldByID(org, id); ok {
				t.Fatal("committed hold still open in memory")
			}
			// The spend is an ordinary spend: refundable, counted in usage.
			txn, ok := h.st.Txn(org, rc.TxID)
			if !ok || txn.Type != EntrySpend || txn.AmountMicros != tc.total || txn.Channel != "voice" || txn.Group != "-" {
				t.Fatalf("txn %+v", txn)
			}
			if u := h.last.Usage; len(u) != 1 || u[0].CostMicros != tc.total || u[0].Messages != 1 || u[0].Channel != "voice" {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}

func TestHoldLifecycleConflicts(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000)
	open := func(ref string) string {
		t.Helper()
		r := h.apply1(t, 2000, hcCreate(org, ref, 1000, 60))
		wantCode(t, r, CodeOK)
		return r.ID
	}

	// Commit, then its replays.
	c := open("c")
	first := h.apply1(t, 3000, hcCommit(org, c, 1500))
	wantCode(t, first, CodeOK)
	h.wantWallet(t, org, 8500, 0)
	for range 2 {
		rr := h.apply1(t, 4000, hcCommit(org, c, 1500))
		wantCode(t, rr, CodeReplayed)
		if rr.TxID != first.TxID || rr.Capped != first.Capped || rr.UncollectedMicros != first.UncollectedMicros || rr.Expired || rr.Hold == nil || rr.Hold.Status != HoldCommitted {
			t.Fatalf("commit replay %+v, first %+v", rr, first)
		}
		h.wantNoHoldWritten(t)
	}
	for _, cmd := range []Command{hcCommit(org, c, 1499), hcCommitUsage(org, c, Usage{Destination: "1", Seconds: 1, HasSeconds: true}), hcRelease(org, c), hcExtend(org, c, "k-c", 1, 0)} {
		r := h.apply1(t, 4000, cmd)
		wantCode(t, r, CodeReservationClosed)
		if r.Hold == nil || r.Hold.Status != HoldCommitted {
			t.Fatalf("%v after commit: hold %+v", cmd.Kind, r.Hold)
		}
		h.wantNoHoldWritten(t)
	}
	h.wantWallet(t, org, 8500, 0)

	// Release, then release again (no-op), commit and extend (closed).
	rl := open("r")
	h.wantWallet(t, org, 8500, 1000)
	r := h.apply1(t, 3000, hcRelease(org, rl))
	wantCode(t, r, CodeOK)
	closedAt := h.e.LastTimeMs()
	if r.Hold == nil || r.Hold.Status != HoldReleased || r.Hold.ClosedAtMs != closedAt || r.Hold.AmountMicros != 1000 || len(h.last.Entries) != 0 {
		t.Fatalf("release %+v, entries %+v", r.Hold, h.last.Entries)
	}
	h.wantWallet(t, org, 8500, 0)
	for range 2 {
		r = h.apply1(t, 4000, hcRelease(org, rl))
		wantCode(t, r, CodeOK)
		h.wantNoHoldWritten(t)
		if r.Hold == nil || r.Hold.Status != HoldReleased || r.Hold.ClosedAtMs != closedAt {
			t.Fatalf("second release %+v", r.Hold)
		}
	}
	for _, cmd := range []Command{hcCommit(org, rl, 10), hcExtend(org, rl, "k-r", 1, 0)} {
		wantCode(t, h.apply1(t, 4000, cmd), CodeReservationClosed)
		h.wantNoHoldWritten(t)
	}
	h.wantWallet(t, org, 8500, 0)

	// Unknown and foreign holds.
	other := h.org(t, "B", 100)
	mine := open("m")
	for _, cmd := range []Command{hcCommit(org, "rsv_nope", 1), hcRelease(org, "rsv_nope"), hcCommit(other, mine, 1), hcRelease(other, mine)} {
		wantCode(t, h.apply1(t, 4000, cmd), CodeNotFound)
		h.wantNoHoldWritten(t)
	}
	h.wantWallet(t, org, 8500, 1000)

	// Commit and release in the same batch as the create: the hold is read
	// from the batch's own writes.
	res := h.apply(t, 5000, hcCreate(org, "same", 100, 60), hcCommit(org, "", 0))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeNotFound)
	res = h.apply(t, 5000, hcCreate(org, "same2", 100, 60))
	id2 := res[0].ID
	res = h.apply(t, 5000, hcCommit(org, id2, 50), hcCommit(org, id2, 50), hcRelease(org, id2))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	wantCode(t, res[2], CodeReservationClosed)
	if res[1].TxID != res[0].TxID {
		t.Fatal("same-batch commit replay names another tx")
	}
	h.wantWallet(t, org, 8450, 1100)
}

func TestHoldExpiry(t *testing.T) {
	const t0 = 100_000
	setup := func(t *testing.T) (*harness, string, string) {
		h := newHarness()
		org := h.org(t, "A", 1000)
		r := h.apply1(t, t0, hcCreate(org, "call", 400, 10))
		wantCode(t, r, CodeOK)
		return h, org, r.ID
	}

	t.Run("expires at expires_at, in an empty batch", func(t *testing.T) {
		h, org, id := setup(t)
		if h.e.NextDeadlineMs() != t0+10_000 {
			t.Fatalf("next deadline %d", h.e.NextDeadlineMs())
		}
		h.apply(t, t0+9_999)
		if len(h.last.Holds) != 0 {
			t.Fatal("expired one ms early")
		}
		h.wantWallet(t, org, 1000, 400)
		h.apply(t, t0+10_000)
		if len(h.last.Holds) != 1 || h.last.Holds[0].Status != HoldExpired || h.last.Holds[0].ClosedAtMs != t0+10_000 || h.last.Holds[0].ID != id {
			t.Fatalf("expiry wrote %+v", h.last.Holds)
		}
		if len(h.last.Orgs) != 1 || h.last.Orgs[0].ReservedMicros != 0 || len(h.last.Entries) != 0 {
			t.Fatalf("expiry persisted orgs %+v entries %+v", h.last.Orgs, h.last.Entries)
		}
		h.wantWallet(t, org, 1000, 0)
		if h.e.NextDeadlineMs() != 0 {
			t.Fatalf("deadline left: %d", h.e.NextDeadlineMs())
		}
		// Admission sees the freed funds.
		if h.e.Admit(org, 1000) != Admitted {
			t.Fatal("admission did not see the expiry")
		}
		h.e.Unadmit(org, 1000)
		// Release of an expired hold is a no-op; extend is closed.
		r := h.apply1(t, t0+20_000, hcRelease(org, id))
		wantCode(t, r, CodeOK)
		if r.Hold.Status != HoldExpired {
			t.Fatalf("release after expiry: %+v", r.Hold)
		}
		h.wantNoHoldWritten(t)
		wantCode(t, h.apply1(t, t0+20_000, hcExtend(org, id, "k", 1, 60)), CodeReservationClosed)
		h.wantNoHoldWritten(t)
	})

	t.Run("a command at expires_at sees it expired", func(t *testing.T) {
		h, org, id := setup(t)
		res := h.apply(t, t0+10_000, hcExtend(org, id, "k", 1, 60), hcCommit(org, id, 300))
		wantCode(t, res[0], CodeReservationClosed)
		wantCode(t, res[1], CodeOK)
		if !res[1].Expired || res[1].Capped || res[1].Hold.Status != HoldCommitted || !res[1].Hold.LateCommit {
			t.Fatalf("late commit %+v hold %+v", res[1], res[1].Hold)
		}
		// Expiry first, then the late commit, which bills from available.
		if len(h.last.Holds) != 2 || h.last.Holds[0].Status != HoldExpired || h.last.Holds[1].Status != HoldCommitted {
			t.Fatalf("holds written %+v", h.last.Holds)
		}
		h.wantWallet(t, org, 700, 0)
		// The replay says expired too.
		rr := h.apply1(t, t0+20_000, hcCommit(org, id, 300))
		wantCode(t, rr, CodeReplayed)
		if !rr.Expired || rr.TxID != res[1].TxID {
			t.Fatalf("late commit replay %+v", rr)
		}
		wantCode(t, h.apply1(t, t0+20_000, hcCommit(org, id, 301)), CodeReservationClosed)
		wantCode(t, h.apply1(t, t0+20_000, hcRelease(org, id)), CodeReservationClosed)
	})

	t.Run("late commit is capped at available", func(t *testing.T) {
		h, org, id := setup(t)
		h.apply(t, t0+10_000)
		wantCode(t, h.apply1(t, t0+10_000, charge(org, "drain", 900)), CodeOK)
		wantCode(t, h.apply1(t, t0+10_000, hcCreate(org, "other", 50, 600)), CodeOK)
		r := h.apply1(t, t0+11_000, hcCommit(org, id, 300))
		wantCode(t, r, CodeOK)
		if !r.Expired || !r.Capped || r.UncollectedMicros != 250 || r.Entry.AmountMicros != -50 {
			t.Fatalf("capped late commit %+v entry %+v", r, r.Entry)
		}
		h.wantWallet(t, org, 50, 50)
		// Nothing left: a late commit writes a spend of 0, fully uncollected.
		h2, org2, id2 := setup(t)
		h2.apply(t, t0+10_000)
		wantCode(t, h2.apply1(t, t0+10_000, charge(org2, "drain", 1000)), CodeOK)
		r = h2.apply1(t, t0+11_000, hcCommit(org2, id2, 300))
		wantCode(t, r, CodeOK)
		if !r.Expired || !r.Capped || r.UncollectedMicros != 300 || r.Entry.AmountMicros != 0 {
			t.Fatalf("late commit on an empty wallet %+v entry %+v", r, r.Entry)
		}
		h2.wantWallet(t, org2, 0, 0)
	})

	t.Run("extend moves expires_at", func(t *testing.T) {
		h, org, id := setup(t)
		wantCode(t, h.apply1(t, t0+5_000, hcExtend(org, id, "k", 100, 10)), CodeOK)
		h.apply(t, t0+10_000) // the first deadline passes: stale, nothing happens
		if len(h.last.Holds)+len(h.last.Orgs) != 0 {
			t.Fatalf("stale deadline wrote %+v %+v", h.last.Holds, h.last.Orgs)
		}
		h.wantWallet(t, org, 1000, 500)
		h.apply(t, t0+14_999)
		h.wantWallet(t, org, 1000, 500)
		h.apply(t, t0+15_000)
		h.wantWallet(t, org, 1000, 0)
		if len(h.last.Holds) != 1 || h.last.Holds[0].Status != HoldExpired {
			t.Fatalf("holds %+v", h.last.Holds)
		}
	})

	t.Run("time never runs backwards for expiry", func(t *testing.T) {
		h, org, id := setup(t)
		h.apply(t, t0+10_000)
		h.wantWallet(t, org, 1000, 0)
		// A batch stamped earlier (a new leader's clock) still sees it expired.
		r := h.apply1(t, t0, hcCommit(org, id, 100))
		if r.Code != CodeOK || !r.Expired || r.Hold.ClosedAtMs != t0+10_000 {
			t.Fatalf("commit in a batch stamped before expiry: %+v", r)
		}
	})

	t.Run("many holds and orgs expire in one batch", func(t *testing.T) {
		h := newHarness()
		var orgs, ids []string
		for i := range 4 {
			org := h.org(t, fmt.Sprintf("O%d", i), 1000)
			orgs = append(orgs, org)
			for j := range 3 {
				r := h.apply1(t, t0, hcCreate(org, fmt.Sprintf("h%d", j), 100, int64(1+j)))
				wantCode(t, r, CodeOK)
				ids = append(ids, r.ID)
			}
		}
		h.apply(t, t0+2_000)
		if len(h.last.Holds) != 8 {
			t.Fatalf("expired %d holds, want 8", len(h.last.Holds))
		}
		for _, org := range orgs {
			h.wantWallet(t, org, 1000, 100)
		}
		h.apply(t, t0+3_000)
		for _, org := range orgs {
			h.wantWallet(t, org, 1000, 0)
		}
		for _, id := range ids {
			if h.st.Holds[id].Status != HoldExpired {
				t.Fatalf("hold %s: %+v", id, h.st.Holds[id])
			}
		}
	})
}

func TestHoldPauses(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	a := h.apply1(t, 2000, hcCreate(org, "a", 300, 60)).ID
	b := h.apply1(t, 2000, hcCreate(org, "b", 300, 60)).ID
	wantCode(t, h.apply1(t, 2000, Command{Kind: CmdPause, OrgID: org, Reason: "review"}), CodeOK)
	// The operator's pause blocks create and extend...
	wantCode(t, h.apply1(t, 3000, hcCreate(org, "c", 1, 60)), CodeOutboundPaused)
	h.wantNoHoldWritten(t)
	wantCode(t, h.apply1(t, 3000, hcExtend(org, a, "k", 1, 0)), CodeOutboundPaused)
	h.wantNoHoldWritten(t)
	// ...but never commit or release.
	r := h.apply1(t, 3000, hcCommit(org, a, 500))
	wantCode(t, r, CodeOK)
	if r.Entry.AmountMicros != -500 {
		t.Fatalf("paused commit %+v", r.Entry)
	}
	wantCode(t, h.apply1(t, 3000, hcRelease(org, b)), CodeOK)
	h.wantWallet(t, org, 500, 0)
	wantCode(t, h.apply1(t, 3000, Command{Kind: CmdUnpause, OrgID: org}), CodeOK)

	// Paused for insufficient_balance: available at or below the threshold.
	c := h.apply1(t, 3000, hcCreate(org, "c", 400, 60)).ID
	wantCode(t, h.apply1(t, 3000, threshold(org, 100)), CodeOK)
	if w := h.wallet(t, org); w.BlockReason() != "insufficient_balance" {
		t.Fatalf("block reason %q", w.BlockReason())
	}
	wantCode(t, h.apply1(t, 3000, hcCreate(org, "d", 0, 60)), CodeInsufficientFunds)
	wantCode(t, h.apply1(t, 3000, hcExtend(org, c, "k2", 1, 0)), CodeInsufficientFunds)
	// A commit uses funds down to zero regardless of the threshold.
	r = h.apply1(t, 3000, hcCommit(org, c, 450))
	wantCode(t, r, CodeOK)
	if r.Capped || r.Entry.AmountMicros != -450 {
		t.Fatalf("commit under threshold %+v", r)
	}
	h.wantWallet(t, org, 50, 0)
	// A release that lifts available above the threshold clears the pause.
	d := h.apply1(t, 3000, threshold(org, 0))
	wantCode(t, d, CodeOK)
	e := h.apply1(t, 3000, hcCreate(org, "e", 50, 60))
	wantCode(t, e, CodeOK)
	wantCode(t, h.apply1(t, 3000, threshold(org, 10)), CodeOK)
	r = h.apply1(t, 3000, hcRelease(org, e.ID))
	if r.Wallet.BlockReason() != "" {
		t.Fatalf("release did not clear insufficient_balance: %+v", r.Wallet)
	}
}

func TestHoldRatedWithCardAtCreation(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1_000_000)
	v1 := &RateCard{Channels: map[string]ChannelRate{
		"voice": {Per: PerMinute, Increment: []int64{60, 6}, Prices: map[string]int64{"1": 9000, "*": 30000}},
		"llm":   {Per: PerToken, Models: map[string]ModelRate{"m": {InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}}},
	}}
	v2 := &RateCard{Channels: map[string]ChannelRate{
		"voice": {Per: PerMinute, Prices: map[string]int64{"1": 60_000}},
	}}
	// A hold before any card: by amount it works, with usage it is no_rate.
	pre := hcCreate(org, "pre", 1000, 600)
	rp := h.apply1(t, 1000, pre)
	wantCode(t, rp, CodeOK)
	if rp.Hold.Rate != nil || rp.Hold.RateVersion != 0 {
		t.Fatalf("hold without card %+v", rp.Hold)
	}
	est := Command{Kind: CmdHoldCreate, OrgID: org, Reference: "est0", Channel: "voice", Usage: &Usage{Destination: "1", Seconds: 120, HasSeconds: true}, BodyHash: "e0"}
	wantCode(t, h.apply1(t, 1000, est), CodeNoRate)
	h.wantNoHoldWritten(t)

	wantCode(t, h.apply1(t, 1000, rtSetRates("", v1)), CodeOK)
	// The estimate is rated with v1: 120 s = 18000.
	est.Reference, est.BodyHash = "est1", "e1"
	r := h.apply1(t, 2000, est)
	wantCode(t, r, CodeOK)
	id := r.ID
	if r.Hold.AmountMicros != 18_000 || r.Hold.RateVersion != 1 || r.Hold.Rate == nil || !reflect.DeepEqual(*r.Hold.Rate, v1.Channels["voice"]) ||
		!reflect.DeepEqual(r.Hold.Estimate, est.Usage) {
		t.Fatalf("rated hold %+v", r.Hold)
	}
	h.wantWallet(t, org, 1_000_000, 19_000)
	// A hold by amount created under v1 also keeps v1 for a usage commit.
	byAmount := h.apply1(t, 2000, Command{Kind: CmdHoldCreate, OrgID: org, Reference: "amt1", Channel: "voice", AmountMicros: 5000, BodyHash: "a1"})
	wantCode(t, byAmount, CodeOK)
	llmHold := h.apply1(t, 2000, Command{Kind: CmdHoldCreate, OrgID: org, Reference: "llm1", Channel: "llm", Usage: &Usage{Model: "m", InputTokens: 1000, OutputTokens: 1000}, BodyHash: "l1"})
	wantCode(t, llmHold, CodeOK)
	if llmHold.Hold.AmountMicros != 3000 {
		t.Fatalf("llm hold %+v", llmHold.Hold)
	}

	// A new card (v2) replaces voice and drops llm; charges use it...
	wantCode(t, h.apply1(t, 3000, rtSetRates("", v2)), CodeOK)
	ch := h.apply1(t, 3000, rtCharge(org, "now", "voice", Usage{Destination: "1", Seconds: 61, HasSeconds: true}))
	wantCode(t, ch, CodeOK)
	if ch.Entry.AmountMicros != -61_000 {
		t.Fatalf("charge under v2 %+v", ch.Entry)
	}
	// ...but the holds' commits are rated with v1: 61 s bills 66 s x 9000/60.
	rc := h.apply1(t, 4000, hcCommitUsage(org, id, Usage{Destination: "+1 415 555 0100", Seconds: 61, HasSeconds: true}))
	wantCode(t, rc, CodeOK)
	if rc.Entry.AmountMicros != -9900 {
		t.Fatalf("usage commit %+v", rc.Entry)
	}
	m := rc.Entry.Metadata
	for k, v := range map[string]string{"rate_version": "1", "seconds": "61", "country": `"1"`, "destination": `"+1 415 555 0100"`, "channel": `"voice"`, "reservation_id": `"` + id + `"`} {
		if got, _ := m.Get(k); got != v {
			t.Fatalf("commit metadata %s = %s, want %s (%v)", k, got, v, m)
		}
	}
	if txn, _ := h.st.Txn(org, rc.TxID); txn.Group != GroupDestination+"1" {
		t.Fatalf("commit group %+v", txn)
	}
	// Above the estimate: the excess comes from available.
	rc = h.apply1(t, 4000, hcCommitUsage(org, byAmount.ID, Usage{Destination: "44", Seconds: 600, HasSeconds: true}))
	wantCode(t, rc, CodeOK)
	if rc.Entry.AmountMicros != -300_000 || rc.Capped {
		t.Fatalf("usage commit above the hold %+v", rc)
	}
	if v, _ := rc.Entry.Metadata.Get("rate_version"); v != "1" {
		t.Fatalf("version %s", v)
	}
	// The llm channel is gone from the card, not from the hold.
	bad := h.apply1(t, 4000, hcCommitUsage(org, llmHold.ID, Usage{InputTokens: 1}))
	wantCode(t, bad, CodeNoRate) // model missing: no_rate, the hold stays open
	h.wantNoHoldWritten(t)
	if hd, ok := h.e.HoldByID(org, llmHold.ID); !ok || hd.Status != HoldOpen {
		t.Fatal("a refused commit closed the hold")
	}
	rc = h.apply1(t, 4000, hcCommitUsage(org, llmHold.ID, Usage{Model: "m", InputTokens: 1, OutputTokens: 0}))
	wantCode(t, rc, CodeOK)
	if rc.Entry.AmountMicros != -1 {
		t.Fatalf("llm commit %+v", rc.Entry)
	}
	if v, _ := rc.Entry.Metadata.Get("model"); v != `"m"` {
		t.Fatalf("llm commit metadata %v", rc.Entry.Metadata)
	}
	// A hold created with no card cannot be committed by usage.
	wantCode(t, h.apply1(t, 4000, hcCommitUsage(org, rp.ID, Usage{Destination: "1", Seconds: 1, HasSeconds: true})), CodeNoRate)
	h.wantNoHoldWritten(t)
	// A commit by amount carries no rate_version.
	rc = h.apply1(t, 4000, hcCommit(org, rp.ID, 10))
	wantCode(t, rc, CodeOK)
	if _, has := rc.Entry.Metadata.Get("rate_version"); has {
		t.Fatalf("amount commit metadata %v", rc.Entry.Metadata)
	}
	h.wantWallet(t, org, 1_000_000-61_000-9900-300_000-1-10, 0)
	// A late commit by usage is rated with the hold's card too.
	late := h.apply1(t, 5000, Command{Kind: CmdHoldCreate, OrgID: org, Reference: "late", Channel: "voice", AmountMicros: 1, TTLSeconds: 1, BodyHash: "late"})
	wantCode(t, late, CodeOK)
	if late.Hold.RateVersion != 2 {
		t.Fatalf("hold under v2 %+v", late.Hold)
	}
	rc = h.apply1(t, 7000, hcCommitUsage(org, late.ID, Usage{Destination: "1", Seconds: 1, HasSeconds: true}))
	wantCode(t, rc, CodeOK)
	if !rc.Expired || rc.Entry.AmountMicros != -1000 {
		t.Fatalf("late usage commit %+v", rc)
	}
}

// TestHoldsSurviveRestart: open holds, lots and cards reloaded with Load,
// LoadSettings and LoadHolds expire and commit exactly as in the engine that
// never stopped.
func TestHoldsSurviveRestart(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000)
	wantCode(t, h.apply1(t, 1000, rtSetRates("", &RateCard{Channels: map[string]ChannelRate{"voice": {Per: PerMinute, Prices: map[string]int64{"*": 600}}}})), CodeOK)
	wantCode(t, h.apply1(t, 1000, hcGrant(org, "g", 3000, 50_000)), CodeOK)
	a := h.apply1(t, 2000, hcCreate(org, "a", 2000, 10)).ID // expires at 12000
	b := h.apply1(t, 2000, hcCreate(org, "b", 2000, 100)).ID
	c := h.apply1(t, 2000, Command{Kind: CmdHoldCreate, OrgID: org, Reference: "c", Channel: "voice", Usage: &Usage{Destination: "1", Seconds: 60, HasSeconds: true}, TTLSeconds: 100, BodyHash: "c"}).ID
	wantCode(t, h.apply1(t, 3000, hcExtend(org, b, "k", 500, 200)), CodeOK)

	st := NewMemStore()
	st.Entries = append(st.Entries, h.st.Entries...)
	for k, v := range h.st.Refs {
		st.Refs[k] = v
	}
	for k, v := range h.st.Txns {
		st.Txns[k] = v
	}
	for k, v := range h.st.Holds {
		st.Holds[k] = v
	}
	st.Settings = h.st.Settings
	var orgs []OrgRecord
	for _, o := range h.orgs {
		orgs = append(orgs, o)
	}
	e := New(1, st)
	e.Load(orgs, nil, h.e.AppliedIndex(), h.e.LastTimeMs())
	e.LoadSettings(st.Settings)
	e.LoadHolds(st.OpenHolds())
	if e.Digest() != h.e.Digest() {
		t.Fatal("digest differs after reload")
	}
	if e.NextDeadlineMs() != h.e.NextDeadlineMs() {
		t.Fatalf("next deadline %d vs %d", e.NextDeadlineMs(), h.e.NextDeadlineMs())
	}
	h2 := &harness{e: e, st: st, idx: h.idx}
	steps := []struct {
		at   int64
		cmds []Command
	}{
		{12_000, nil}, // a expires
		{13_000, []Command{hcCommitUsage(org, c, Usage{Destination: "1", Seconds: 90, HasSeconds: true}), hcExtend(org, b, "k", 500, 200)}},
		{13_000, []Command{hcCommit(org, a, 100), hcRelease(org, b)}},
		{60_000, nil}, // the grant expires
	}
	for i, s := range steps {
		r1 := h.apply(t, s.at, s.cmds...)
		r2 := h2.apply(t, s.at, s.cmds...)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("step %d: results differ\n%+v\n%+v", i, r1, r2)
		}
		if h.e.Digest() != h2.e.Digest() || h.st.Digest() != h2.st.Digest() {
			t.Fatalf("step %d: digests differ", i)
		}
	}
	if h.st.Holds[a].Status != HoldCommitted || !h.st.Holds[a].LateCommit || h.st.Holds[c].CapturedMicros != 900 {
		t.Fatalf("holds %+v %+v", h.st.Holds[a], h.st.Holds[c])
	}
	// The grant paid c's excess (300) and a's late commit (100): 2600 expire.
	h.wantWallet(t, org, 10_000+3000-900-100-2600, 0)
	if got := hcGrantExpiries(h.st); len(got) != 1 || func() int64 {
		for _, v := range got {
			return v
		}
		return 0
	}() != 2600 {
		t.Fatalf("grant expiries %v", got)
	}
}

// Grants.

func TestGrant(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	const now = 10_000
	cases := []struct {
		name string
		cmd  Command
		code Code
	}{
		{"in the past", hcGrant(org, "past", 100, now-1), CodeInvalid},
		{"expiring now", hcGrant(org, "now", 100, now), CodeInvalid},
		{"no expiry", hcGrant(org, "none", 100, 0), CodeInvalid},
		{"zero", hcGrant(org, "zero", 0, now+1), CodeInvalid},
		{"negative", hcGrant(org, "neg", -1, now+1), CodeInvalid},
		{"above max", hcGrant(org, "max", MaxAmountMicros+1, now+1), CodeInvalid},
		{"unknown org", hcGrant("org_missing", "x", 1, now+1), CodeNotFound},
	}
	for _, tc := range cases {
		wantCode(t, h.apply1(t, now, tc.cmd), tc.code)
		h.wantNoHoldWritten(t)
	}
	h.wantWallet(t, org, 0, 0)

	g := hcGrant(org, "promo", 5000, now+1)
	r := h.apply1(t, now, g)
	wantCode(t, r, CodeOK)
	want := Entry{ID: r.TxID, OrgID: org, Type: EntryGrant, AmountMicros: 5000, BalanceAfterMicros: 5000, Reference: "grant:promo",
		Metadata: Metadata{{"reason", `"promo"`}}, CreatedAtMs: now, ExpiresAtMs: now + 1}
	if !sameEntries(h.last.Entries, want) {
		t.Fatalf("grant entry %+v, want %+v", h.last.Entries, want)
	}
	rec, _ := h.e.OrgRecord(org)
	if !reflect.DeepEqual(rec.Lots, []Lot{{EntryID: r.TxID, ExpiresAtMs: now + 1, Remaining: 5000}}) {
		t.Fatalf("lots %+v", rec.Lots)
	}
	h.wantWallet(t, org, 5000, 0)
	// Replays, conflicts.
	rr := h.apply1(t, now, g)
	wantCode(t, rr, CodeReplayed)
	if rr.TxID != r.TxID {
		t.Fatal("grant replay names another entry")
	}
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, now, hcGrant(org, "promo", 5001, now+1)), CodeConflict)
	h.wantNothingWritten(t)
	// A grant is not refundable.
	wantCode(t, h.apply1(t, now, refund(org, "rf", r.TxID, 0)), CodeNotRefundable)
	if h.e.NextDeadlineMs() != now+1 {
		t.Fatalf("deadline %d", h.e.NextDeadlineMs())
	}
	// It expires in full one ms later, in an empty batch.
	h.apply(t, now+1)
	if len(h.last.Entries) != 1 {
		t.Fatalf("expiry entries %+v", h.last.Entries)
	}
	exp := Entry{ID: h.last.Entries[0].ID, OrgID: org, Type: EntryExpiry, AmountMicros: -5000, BalanceAfterMicros: 0,
		Reference: "expiry:" + r.TxID, Metadata: Metadata{{"grant_id", `"` + r.TxID + `"`}}, CreatedAtMs: now + 1}
	if !sameEntries(h.last.Entries, exp) {
		t.Fatalf("expiry entries %+v, want %+v", h.last.Entries, exp)
	}
	rec, _ = h.e.OrgRecord(org)
	if rec.Lots != nil {
		t.Fatalf("lots after expiry %+v", rec.Lots)
	}
	h.wantWallet(t, org, 0, 0)
	// Once expired, nothing more happens.
	h.apply(t, now+100_000)
	if len(h.last.Entries) != 0 {
		t.Fatalf("second expiry %+v", h.last.Entries)
	}
}

// hcGrantExpiries sums the expiry entries of each grant.
func hcGrantExpiries(st *MemStore) map[string]int64 {
	out := map[string]int64{}
	for _, e := range st.Entries {
		if e.Type == EntryExpiry {
			out[strings.TrimPrefix(e.Reference, "expiry:")] -= e.AmountMicros
		}
	}
	return out
}

func TestGrantDrawOrder(t *testing.T) {
	type step struct {
		at     int64
		cmd    Command
		code   Code
		amount int64 // the entry written (signed), if any
	}
	const t0 = 100_000
	// Each scenario: non-expiring funds, then steps; the wallet and the
	// expiry entries of each grant after.
	cases := []struct {
		name     string
		fund     int64
		steps    func(org string, ids map[string]string) []step
		balance  int64
		reserved int64
		expired  map[string]int64 // grant ref -> expired micros
	}{
		{
			name: "spend draws earliest-expiring first",
			fund: 1000,
			steps: func(org string, _ map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "late", 300, t0+2000), CodeOK, 300},
					{t0, hcGrant(org, "early", 200, t0+1000), CodeOK, 200},
					{t0, charge(org, "c1", 250), CodeOK, -250}, // early 200, late 50
					{t0 + 1000, Command{}, 0, 0},               // early: nothing left
					{t0 + 2000, Command{}, 0, 0},               // late: 250 expire
				}
			},
			balance: 1000, expired: map[string]int64{"late": 250},
		},
		{
			name: "spend beyond the grants takes money that never expires",
			fund: 1000,
			steps: func(org string, _ map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 300, t0+1000), CodeOK, 300},
					{t0, charge(org, "c1", 500), CodeOK, -500},
					{t0 + 1000, Command{}, 0, 0},
				}
			},
			balance: 800, expired: map[string]int64{},
		},
		{
			name: "unused grant expires in full",
			fund: 0,
			steps: func(org string, _ map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, charge(org, "c1", 200), CodeOK, -200},
					{t0 + 1000, Command{}, 0, 0},
				}
			},
			balance: 0, expired: map[string]int64{"g": 300},
		},
		{
			name: "held part expires at release",
			fund: 100,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 400, 3600), CodeOK, 0}, // draws g 400
					{t0 + 1000, Command{}, 0, 0},                   // g: 100 unheld expire
					{t0 + 2000, hcRelease(org, "h"), CodeOK, 0},    // g: 400 expire
				}
			},
			balance: 100, expired: map[string]int64{"g": 500},
		},
		{
			name: "held part expires when the hold expires",
			fund: 100,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 400, 2), CodeOK, 0},
					{t0 + 1000, Command{}, 0, 0},
					{t0 + 2000, Command{}, 0, 0},
				}
			},
			balance: 100, expired: map[string]int64{"g": 500},
		},
		{
			name: "commit below the hold spends the grant, the rest expires",
			fund: 100,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 400, 3600), CodeOK, 0},
					{t0 + 1000, Command{}, 0, 0},
					{t0 + 2000, hcCommit(org, "h", 150), CodeOK, -150},
				}
			},
			balance: 100, expired: map[string]int64{"g": 350},
		},
		{
			name: "commit above the hold after the grant expired",
			fund: 100,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 400, 3600), CodeOK, 0},
					{t0 + 1000, Command{}, 0, 0},
					{t0 + 2000, hcCommit(org, "h", 450), CodeOK, -450},
				}
			},
			balance: 50, expired: map[string]int64{"g": 100},
		},
		{
			name: "hold draws earliest-expiring grant first",
			fund: 1000,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "late", 300, t0+5000), CodeOK, 300},
					{t0, hcGrant(org, "early", 300, t0+1000), CodeOK, 300},
					{t0, hcCreate(org, "h", 400, 3600), CodeOK, 0}, // early 300, late 100
					{t0 + 1000, Command{}, 0, 0},                   // early: all held
					{t0 + 2000, hcCommit(org, "h", 400), CodeOK, -400},
					{t0 + 5000, Command{}, 0, 0}, // late: 200 expire
				}
			},
			balance: 1000, expired: map[string]int64{"late": 200},
		},
		{
			// The hold draws on money that never expires first (no grant yet),
			// then, when extended, on a grant. A commit of the first part must
			// spend the expiring grant first, leaving the money that never
			// expires.
			name: "commit spends the hold's expiring draws first",
			fund: 1000,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcCreate(org, "h", 500, 3600), CodeOK, 0},     // never-expiring 500
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500}, // 1500
					{t0, hcExtend(org, "h", "k", 500, 0), CodeOK, 0},   // g 500
					{t0 + 500, hcCommit(org, "h", 500), CodeOK, -500},  // g 500 spent
					{t0 + 1000, Command{}, 0, 0},                       // nothing to expire
				}
			},
			balance: 1000, expired: map[string]int64{},
		},
		{
			name: "extend draws a grant that expires sooner first",
			fund: 0,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "late", 1000, t0+5000), CodeOK, 1000},
					{t0, hcCreate(org, "h", 200, 3600), CodeOK, 0},         // late 200
					{t0, hcGrant(org, "early", 300, t0+1000), CodeOK, 300}, // sooner
					{t0, hcExtend(org, "h", "k", 300, 0), CodeOK, 0},       // early 300
					{t0 + 500, hcCommit(org, "h", 300), CodeOK, -300},      // early 300 spent
					{t0 + 1000, Command{}, 0, 0},                           // early: nothing left
					{t0 + 5000, Command{}, 0, 0},                           // late: 1000 expire
				}
			},
			balance: 0, expired: map[string]int64{"late": 1000},
		},
		{
			name: "expiry leaves a hold's never-expiring draw alone",
			fund: 100,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 550, 3600), CodeOK, 0},     // g 500 + 50 never-expiring
					{t0 + 1000, Command{}, 0, 0},                       // nothing unheld
					{t0 + 1000, charge(org, "c", 50), CodeOK, -50},     // available 50 -> 0
					{t0 + 2000, hcCommit(org, "h", 100), CodeOK, -100}, // g 100 spent, 400 expire
				}
			},
			balance: 50, expired: map[string]int64{"g": 400},
		},
		{
			name: "late commit after the grant expired",
			fund: 0,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, hcCreate(org, "h", 400, 1), CodeOK, 0},
					{t0 + 1000, Command{}, 0, 0}, // both: the hold closes, the grant leaves
					{t0 + 2000, hcCommit(org, "h", 100), CodeOK, 0},
				}
			},
			balance: 0, expired: map[string]int64{"g": 500},
		},
		{
			name: "a refund after expiry is money that never expires",
			fund: 0,
			steps: func(org string, ids map[string]string) []step {
				return []step{
					{t0, hcGrant(org, "g", 500, t0+1000), CodeOK, 500},
					{t0, charge(org, "c", 300), CodeOK, -300},
					{t0 + 1000, Command{}, 0, 0},
					{t0 + 2000, refund(org, "rk", "c", 0), CodeOK, 300},
					{t0 + 9000, Command{}, 0, 0},
				}
			},
			balance: 300, expired: map[string]int64{"g": 200},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", 0)
			h.fund(t, org, tc.fund, 1000)
			ids := map[string]string{}    // hold ref / charge ref -> id
			grants := map[string]string{} // grant entry id -> ref
			for i, s := range tc.steps(org, ids) {
				c := s.cmd
				if c.Kind == 0 {
					h.apply(t, s.at)
				} else {
					// Name holds and charges by their reference.
					if id, ok := ids[c.TxID]; ok {
						c.TxID = id
					}
					r := h.apply1(t, s.at, c)
					wantCode(t, r, s.code)
					if r.Entry != nil && r.Entry.AmountMicros != s.amount || r.Entry == nil && s.amount != 0 {
						t.Fatalf("step %d: entry %+v, want amount %d", i, r.Entry, s.amount)
					}
					switch c.Kind {
					case CmdHoldCreate:
						ids[c.Reference] = r.ID
					case CmdCharge:
						ids[c.Reference] = r.TxID
					case CmdGrant:
						grants[r.TxID] = c.Reference
					}
				}
				w := h.wallet(t, org)
				if w.BalanceMicros < 0 || w.AvailableMicros() < 0 {
					t.Fatalf("step %d: wallet %+v", i, w)
				}
			}
			h.wantWallet(t, org, tc.balance, tc.reserved)
			got := map[string]int64{}
			for id, n := range hcGrantExpiries(h.st) {
				got[grants[id]] = n
			}
			if !reflect.DeepEqual(got, tc.expired) {
				t.Fatalf("expired %v, want %v", got, tc.expired)
			}
			rec, _ := h.e.OrgRecord(org)
			if tc.reserved == 0 && rec.Lots != nil && rec.Lots[0].ExpiresAtMs <= h.e.LastTimeMs() {
				t.Fatalf("expired lots left %+v", rec.Lots)
			}
		})
	}
}
