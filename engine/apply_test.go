package engine

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// harness drives one engine over a MemStore the way the FSM does: Apply a
// batch, persist its Changes, then tell the engine they are persisted.
type harness struct {
	e   *Engine
	st  *MemStore
	idx uint64
	// last holds the Changes of the last batch applied.
	last *Changes
	// orgs and keys are the org records and API keys persisted so far (the
	// MemStore does not keep them): what a restart loads.
	orgs map[string]OrgRecord
	keys map[string]APIKey
}

func newHarness() *harness {
	st := NewMemStore()
	return &harness{e: New(1, st), st: st}
}

func (h *harness) apply(t testing.TB, timeMs int64, cmds ...Command) []Result {
	t.Helper()
	h.idx++
	ch := &Changes{}
	res := h.e.Apply(&Batch{TimeMs: timeMs, Commands: cmds, Index: h.idx}, ch)
	if len(res) != len(cmds) {
		t.Fatalf("Apply returned %d results for %d commands", len(res), len(cmds))
	}
	if ch.Index != h.idx || ch.Group != 1 {
		t.Fatalf("Changes position = (%d, %d), want (1, %d)", ch.Group, ch.Index, h.idx)
	}
	h.st.Write(ch)
	h.e.Persisted()
	h.last = ch
	if h.orgs == nil {
		h.orgs, h.keys = map[string]OrgRecord{}, map[string]APIKey{}
	}
	for _, o := range ch.Orgs {
		h.orgs[o.ID] = o
	}
	for _, k := range ch.Keys {
		h.keys[k.Hash] = k
	}
	return res
}

// apply1 applies a batch of one command.
func (h *harness) apply1(t testing.TB, timeMs int64, c Command) Result {
	t.Helper()
	return h.apply(t, timeMs, c)[0]
}

// org creates an org and credits it with fund micros (if > 0).
func (h *harness) org(t testing.TB, name string, fund int64) string {
	t.Helper()
	r := h.apply1(t, 1000, Command{Kind: CmdCreateOrg, Name: name})
	wantCode(t, r, CodeOK)
	if fund > 0 {
		wantCode(t, h.apply1(t, 1000, adjust(r.ID, "fund-"+name, fund)), CodeOK)
	}
	return r.ID
}

func (h *harness) wallet(t testing.TB, org string) WalletView {
	t.Helper()
	w, ok := h.e.Wallet(org)
	if !ok {
		t.Fatalf("Wallet(%s): not found", org)
	}
	return w
}

// wantBalance checks the engine's balance and that it equals the ledger sum.
func (h *harness) wantBalance(t testing.TB, org string, want int64) {
	t.Helper()
	if got := h.wallet(t, org).BalanceMicros; got != want {
		t.Fatalf("balance of %s = %d, want %d", org, got, want)
	}
	if sum := h.st.LedgerSum(org); sum != want {
		t.Fatalf("ledger sum of %s = %d, want %d", org, sum, want)
	}
}

// wantNothingWritten checks that the last batch wrote no entry, ref, txn,
// usage row or org record.
func (h *harness) wantNothingWritten(t testing.TB) {
	t.Helper()
	c := h.last
	if len(c.Entries)+len(c.Refs)+len(c.Txns)+len(c.Usage)+len(c.Orgs)+len(c.Keys)+len(c.Topups)+len(c.Invoices) != 0 {
		t.Fatalf("batch wrote something: entries %v refs %v txns %v usage %v orgs %v keys %v topups %v invoices %v",
			c.Entries, c.Refs, c.Txns, c.Usage, c.Orgs, c.Keys, c.Topups, c.Invoices)
	}
}

func wantCode(t testing.TB, r Result, want Code) {
	t.Helper()
	if r.Code != want {
		t.Fatalf("code = %v (%q), want %v", r.Code, r.Message, want)
	}
	if want == CodeOK || want == CodeReplayed {
		if r.Message != "" {
			t.Fatalf("message %q on %v", r.Message, r.Code)
		}
	} else if r.Message == "" {
		t.Fatalf("refusal %v without a message", r.Code)
	}
}

func charge(org, ref string, amount int64) Command {
	return Command{Kind: CmdCharge, OrgID: org, Reference: ref, Channel: "sms", AmountMicros: amount, BodyHash: "h-" + ref}
}

func adjust(org, ref string, amount int64) Command {
	return Command{Kind: CmdAdjustment, OrgID: org, Reference: ref, AmountMicros: amount, BodyHash: "h-" + ref}
}

func refund(org, key, txID string, amount int64) Command {
	return Command{Kind: CmdRefund, OrgID: org, Reference: key, TxID: txID, AmountMicros: amount, BodyHash: "h-" + key}
}

func deliver(org, txID string, s Delivery) Command {
	return Command{Kind: CmdDelivery, OrgID: org, TxID: txID, Status: s}
}

func threshold(org string, th int64) Command {
	return Command{Kind: CmdUpdateOrg, OrgID: org, SetThreshold: true, ThresholdMicros: th}
}

func TestCreateOrg(t *testing.T) {
	h := newHarness()
	res := h.apply(t, 1_700_000_000_123,
		Command{Kind: CmdCreateOrg, Name: "Acme"},
		Command{Kind: CmdCreateOrg, Name: "Beta"})
	for i, r := range res {
		wantCode(t, r, CodeOK)
		if ms, ok := IDTimeMs(r.ID, PrefixOrg); !ok || ms != 1_700_000_000_123 {
			t.Fatalf("org id %q: time %d %v", r.ID, ms, ok)
		}
		want := WalletView{OrgID: r.ID, Group: 1, Index: 1}
		if r.Wallet != want {
			t.Fatalf("result %d wallet = %+v, want %+v", i, r.Wallet, want)
		}
		if r.Wallet.BlockReason() != "insufficient_balance" {
			t.Fatalf("new org block reason = %q", r.Wallet.BlockReason())
		}
	}
	if res[0].ID >= res[1].ID {
		t.Fatalf("org ids not increasing within a batch: %s, %s", res[0].ID, res[1].ID)
	}
	want := []OrgRecord{
		{ID: res[0].ID, Name: "Acme", CreatedAtMs: 1_700_000_000_123, Index: 1},
		{ID: res[1].ID, Name: "Beta", CreatedAtMs: 1_700_000_000_123, Index: 1},
	}
	if !reflect.DeepEqual(h.last.Orgs, want) {
		t.Fatalf("persisted orgs = %+v, want %+v", h.last.Orgs, want)
	}
	if got := h.e.Orgs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Orgs() = %+v, want %+v", got, want)
	}
	if len(h.last.Entries) != 0 {
		t.Fatalf("creating an org wrote entries: %v", h.last.Entries)
	}
	if _, ok := h.e.Wallet("org_unknown"); ok {
		t.Fatal("Wallet of an unknown org found")
	}
	if h.e.AppliedIndex() != 1 || h.e.LastTimeMs() != 1_700_000_000_123 {
		t.Fatalf("position = %d @ %d", h.e.AppliedIndex(), h.e.LastTimeMs())
	}
}

func TestUpdateOrg(t *testing.T) {
	h := newHarness()
	org := h.org(t, "Acme", 5000)
	base, _ := h.e.OrgRecord(org)

	cases := []struct {
		name      string
		cmd       Command
		code      Code
		wantName  string
		wantTh    int64
		persisted bool
	}{
		{"rename", Command{Kind: CmdUpdateOrg, OrgID: org, SetName: true, Name: "Acme 2"}, CodeOK, "Acme 2", 0, true},
		{"threshold", threshold(org, 700), CodeOK, "Acme 2", 700, true},
		{"threshold max", threshold(org, MaxAmountMicros), CodeOK, "Acme 2", MaxAmountMicros, true},
		{"threshold zero", threshold(org, 0), CodeOK, "Acme 2", 0, true},
		{"nothing set", Command{Kind: CmdUpdateOrg, OrgID: org, Name: "ignored", ThresholdMicros: 5}, CodeOK, "Acme 2", 0, true},
		{"negative threshold", threshold(org, -1), CodeInvalid, "Acme 2", 0, false},
		{"threshold above max", threshold(org, MaxAmountMicros+1), CodeInvalid, "Acme 2", 0, false},
		// A refused update changes nothing, the name included.
		{"rename with bad threshold", Command{Kind: CmdUpdateOrg, OrgID: org, SetName: true, Name: "Nope", SetThreshold: true, ThresholdMicros: -5}, CodeInvalid, "Acme 2", 0, false},
		{"both", Command{Kind: CmdUpdateOrg, OrgID: org, SetName: true, Name: "Acme 3", SetThreshold: true, ThresholdMicros: 42}, CodeOK, "Acme 3", 42, true},
		{"unknown org", Command{Kind: CmdUpdateOrg, OrgID: "org_nope", SetName: true, Name: "x"}, CodeNotFound, "Acme 3", 42, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := h.e.OrgRecord(org)
			r := h.apply1(t, 2000, tc.cmd)
			wantCode(t, r, tc.code)
			rec, _ := h.e.OrgRecord(org)
			if rec.Name != tc.wantName || rec.PauseThresholdMicros != tc.wantTh {
				t.Fatalf("record = %q th %d, want %q th %d", rec.Name, rec.PauseThresholdMicros, tc.wantName, tc.wantTh)
			}
			if rec.BalanceMicros != 5000 || rec.CreatedAtMs != base.CreatedAtMs || rec.ID != org {
				t.Fatalf("update changed other fields: %+v", rec)
			}
			if tc.persisted {
				if len(h.last.Orgs) != 1 || !reflect.DeepEqual(h.last.Orgs[0], rec) || rec.Index != h.idx {
					t.Fatalf("persisted %+v, want %+v at index %d", h.last.Orgs, rec, h.idx)
				}
				if tc.code == CodeOK && (r.ID != org || r.Wallet.ThresholdMicros != tc.wantTh) {
					t.Fatalf("result %+v", r)
				}
			} else {
				h.wantNothingWritten(t)
				if !reflect.DeepEqual(rec, before) {
					t.Fatalf("refused update changed the record: %+v -> %+v", before, rec)
				}
			}
		})
	}
}

func TestCreateKey(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 0)
	b := h.org(t, "B", 0)
	r := h.apply1(t, 3000, Command{Kind: CmdCreateKey, OrgID: a, Role: RoleCharge, KeyHash: "hash-a1", KeyPrefix: "dv_live_sk_ab"})
	wantCode(t, r, CodeOK)
	if ms, ok := IDTimeMs(r.ID, PrefixKey); !ok || ms != 3000 {
		t.Fatalf("key id %q", r.ID)
	}
	want := APIKey{ID: r.ID, OrgID: a, Role: RoleCharge, Hash: "hash-a1", Prefix: "dv_live_sk_ab", CreatedAtMs: 3000}
	if !reflect.DeepEqual(h.last.Keys, []APIKey{want}) {
		t.Fatalf("persisted keys %+v", h.last.Keys)
	}
	if len(h.last.Orgs) != 0 || len(h.last.Entries) != 0 {
		t.Fatalf("key creation wrote orgs %v entries %v", h.last.Orgs, h.last.Entries)
	}
	if k, ok := h.e.KeyByHash("hash-a1"); !ok || *k != want {
		t.Fatalf("KeyByHash = %+v %v", k, ok)
	}
	if got := h.e.Keys(a); !reflect.DeepEqual(got, []APIKey{want}) {
		t.Fatalf("Keys(a) = %+v", got)
	}
	if got := h.e.Keys(b); len(got) != 0 {
		t.Fatalf("Keys(b) = %+v", got)
	}
	// The same secret hash cannot be registered twice, for any org.
	for _, org := range []string{a, b} {
		wantCode(t, h.apply1(t, 3000, Command{Kind: CmdCreateKey, OrgID: org, Role: RoleAdmin, KeyHash: "hash-a1"}), CodeConflict)
		h.wantNothingWritten(t)
	}
	wantCode(t, h.apply1(t, 3000, Command{Kind: CmdCreateKey, OrgID: "org_nope", Role: RoleAdmin, KeyHash: "hash-x"}), CodeNotFound)
	h.wantNothingWritten(t)
	if _, ok := h.e.KeyByHash("hash-x"); ok {
		t.Fatal("key of an unknown org registered")
	}
	// Two keys in one batch get distinct, increasing ids.
	res := h.apply(t, 3000,
		Command{Kind: CmdCreateKey, OrgID: b, Role: RoleRead, KeyHash: "hash-b1"},
		Command{Kind: CmdCreateKey, OrgID: b, Role: RoleAdmin, KeyHash: "hash-b2"})
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeOK)
	if res[0].ID >= res[1].ID {
		t.Fatalf("key ids %s %s", res[0].ID, res[1].ID)
	}
	if got := h.e.Keys(b); len(got) != 2 || got[0].ID != res[0].ID || got[1].ID != res[1].ID {
		t.Fatalf("Keys(b) = %+v", got)
	}
}

func TestRevokeKey(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 0)
	b := h.org(t, "B", 0)
	ka := h.apply1(t, 1000, Command{Kind: CmdCreateKey, OrgID: a, Role: RoleAdmin, KeyHash: "ha"}).ID
	kb := h.apply1(t, 1000, Command{Kind: CmdCreateKey, OrgID: b, Role: RoleAdmin, KeyHash: "hb"}).ID

	// Another org's key is not found, and stays live.
	r := h.apply1(t, 4000, Command{Kind: CmdRevokeKey, OrgID: b, KeyID: ka})
	wantCode(t, r, CodeNotFound)
	h.wantNothingWritten(t)
	if k, _ := h.e.KeyByHash("ha"); k.RevokedAtMs != 0 {
		t.Fatalf("another org revoked the key: %+v", k)
	}
	wantCode(t, h.apply1(t, 4000, Command{Kind: CmdRevokeKey, OrgID: a, KeyID: "key_nope"}), CodeNotFound)
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, 4000, Command{Kind: CmdRevokeKey, OrgID: "org_nope", KeyID: ka}), CodeNotFound)

	r = h.apply1(t, 5000, Command{Kind: CmdRevokeKey, OrgID: a, KeyID: ka})
	wantCode(t, r, CodeOK)
	if r.ID != ka {
		t.Fatalf("revoke result id %q", r.ID)
	}
	k, ok := h.e.KeyByHash("ha")
	if !ok || k.RevokedAtMs != 5000 || k.ID != ka || k.OrgID != a {
		t.Fatalf("revoked key = %+v", k)
	}
	if len(h.last.Keys) != 1 || h.last.Keys[0] != *k {
		t.Fatalf("persisted keys %+v", h.last.Keys)
	}
	// Revoking again is a no-op: the first revocation time stays.
	wantCode(t, h.apply1(t, 6000, Command{Kind: CmdRevokeKey, OrgID: a, KeyID: ka}), CodeOK)
	h.wantNothingWritten(t)
	if k, _ := h.e.KeyByHash("ha"); k.RevokedAtMs != 5000 {
		t.Fatalf("second revoke moved revoked_at: %+v", k)
	}
	if k, _ := h.e.KeyByHash("hb"); k.RevokedAtMs != 0 || k.ID != kb {
		t.Fatalf("b's key changed: %+v", k)
	}
}

func TestCharge(t *testing.T) {
	cases := []struct {
		name      string
		fund      int64
		threshold int64
		hold      bool
		amount    int64
		code      Code
	}{
		{"fits", 1000, 0, false, 300, CodeOK},
		{"exactly available", 1000, 0, false, 1000, CodeOK},
		{"one micro more than available", 1000, 0, false, 1001, CodeInsufficientFunds},
		{"zero on funded wallet", 1000, 0, false, 0, CodeOK},
		{"zero on empty wallet", 0, 0, false, 0, CodeInsufficientFunds},
		{"one micro on empty wallet", 0, 0, false, 1, CodeInsufficientFunds},
		{"available minus threshold", 1000, 200, false, 800, CodeOK},
		{"one micro above available minus threshold", 1000, 200, false, 801, CodeInsufficientFunds},
		{"zero at threshold", 200, 200, false, 0, CodeInsufficientFunds},
		{"zero below threshold", 100, 200, false, 0, CodeInsufficientFunds},
		{"zero one above threshold", 201, 200, false, 0, CodeOK},
		{"operator hold", 1000, 0, true, 1, CodeOutboundPaused},
		{"operator hold, zero", 1000, 0, true, 0, CodeOutboundPaused},
		{"operator hold beats insufficient", 0, 0, true, 5, CodeOutboundPaused},
		{"negative amount", 1000, 0, false, -1, CodeInvalid},
		{"amount above max", MaxAmountMicros + 10, 0, false, MaxAmountMicros + 1, CodeInvalid},
		{"max amount", MaxAmountMicros, 0, false, MaxAmountMicros, CodeOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", 0)
			if tc.fund > 0 {
				// An adjustment is at most MaxAmountMicros.
				for left, i := tc.fund, 0; left > 0; i++ {
					n := min(left, MaxAmountMicros)
					wantCode(t, h.apply1(t, 1000, adjust(org, "f"+string(rune('a'+i)), n)), CodeOK)
					left -= n
				}
			}
			if tc.threshold != 0 {
				wantCode(t, h.apply1(t, 1000, threshold(org, tc.threshold)), CodeOK)
			}
			if tc.hold {
				wantCode(t, h.apply1(t, 1000, Command{Kind: CmdPause, OrgID: org, Reason: "fraud review"}), CodeOK)
			}
			before := h.wallet(t, org)
			cmd := charge(org, "msg-1", tc.amount)
			cmd.Metadata = Metadata{{"campaign", `"spring"`}}
			r := h.apply1(t, 7_000, cmd)
			wantCode(t, r, tc.code)
			if tc.code != CodeOK {
				// A refused charge writes nothing and changes nothing.
				h.wantNothingWritten(t)
				if r.Entry != nil || r.TxID != "" {
					t.Fatalf("refused charge result %+v", r)
				}
				if after := h.wallet(t, org); after != before || r.Wallet != before {
					t.Fatalf("refused charge changed the wallet: %+v -> %+v (result %+v)", before, after, r.Wallet)
				}
				if _, ok := h.st.Ref(org, NSCharge, "msg-1"); ok {
					t.Fatal("refused charge left its reference")
				}
				h.wantBalance(t, org, tc.fund)
				return
			}
			balance := tc.fund - tc.amount
			want := Entry{
				ID: r.TxID, OrgID: org, Type: EntrySpend, AmountMicros: -tc.amount, BalanceAfterMicros: balance,
				Reference: "charge:msg-1", CreatedAtMs: 7_000,
				Metadata: Metadata{{"campaign", `"spring"`}, {"channel", `"sms"`}},
			}
			if !sameEntry(r.Entry, want) {
				t.Fatalf("entry = %+v, want %+v", r.Entry, want)
			}
			if !sameEntries(h.last.Entries, want) {
				t.Fatalf("persisted entries %+v", h.last.Entries)
			}
			if ms, ok := IDTimeMs(r.TxID, PrefixTransaction); !ok || ms != 7_000 {
				t.Fatalf("tx id %q", r.TxID)
			}
			h.wantBalance(t, org, balance)
			if r.Wallet.BalanceMicros != balance || r.Wallet.Index != h.idx {
				t.Fatalf("result wallet %+v", r.Wallet)
			}
			if ref, ok := h.st.Ref(org, NSCharge, "msg-1"); !ok || ref != (RefRecord{TxID: r.TxID, BodyHash: "h-msg-1"}) {
				t.Fatalf("ref = %+v %v", ref, ok)
			}
			txn, ok := h.st.Txn(org, r.TxID)
			wantTxn := TxnState{ID: r.TxID, OrgID: org, Type: EntrySpend, AmountMicros: tc.amount, Channel: "sms", Group: "-", Day: 0}
			if !ok || txn != wantTxn {
				t.Fatalf("txn = %+v, want %+v", txn, wantTxn)
			}
			wantUsage := []UsageDelta{{OrgID: org, Day: 0, Channel: "sms", Group: "-", Messages: 1, CostMicros: tc.amount}}
			if !reflect.DeepEqual(h.last.Usage, wantUsage) {
				t.Fatalf("usage %+v", h.last.Usage)
			}
			if len(h.last.Orgs) != 1 || h.last.Orgs[0].BalanceMicros != balance {
				t.Fatalf("persisted orgs %+v", h.last.Orgs)
			}
		})
	}
}

func TestChargeMetadataAndGroup(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1_000_000)
	cases := []struct {
		md      Metadata
		channel string
		group   string
		want    Metadata
	}{
		{nil, "sms", "-", Metadata{{"channel", `"sms"`}}},
		{Metadata{{"country", `"US"`}, {"destination", `"14155550100"`}}, "sms", "d:US",
			Metadata{{"channel", `"sms"`}, {"country", `"US"`}, {"destination", `"14155550100"`}}},
		{Metadata{{"input_tokens", "12"}, {"model", `"gpt-x"`}}, "llm", "m:gpt-x",
			Metadata{{"channel", `"llm"`}, {"input_tokens", "12"}, {"model", `"gpt-x"`}}},
		// A client-sent channel key is replaced by the command's channel.
		{Metadata{{"a", "1"}, {"channel", `"evil"`}, {"z", "true"}}, "voice", "-",
			Metadata{{"a", "1"}, {"channel", `"voice"`}, {"z", "true"}}},
		// A channel needing escapes stays valid JSON.
		{nil, `a"b`, "-", Metadata{{"channel", `"a\"b"`}}},
	}
	for i, tc := range cases {
		cmd := Command{Kind: CmdCharge, OrgID: org, Reference: "m" + string(rune('0'+i)), Channel: tc.channel, AmountMicros: 10, Metadata: tc.md}
		r := h.apply1(t, 1000, cmd)
		wantCode(t, r, CodeOK)
		if !reflect.DeepEqual(r.Entry.Metadata, tc.want) {
			t.Fatalf("case %d: metadata %v, want %v", i, r.Entry.Metadata, tc.want)
		}
		txn, _ := h.st.Txn(org, r.TxID)
		if txn.Group != tc.group || txn.Channel != tc.channel {
			t.Fatalf("case %d: txn %+v, want group %q", i, txn, tc.group)
		}
		if u := h.last.Usage; len(u) != 1 || u[0].Group != tc.group || u[0].Channel != tc.channel {
			t.Fatalf("case %d: usage %+v", i, u)
		}
	}
	// The command's metadata slice is not modified.
	md := Metadata{{"a", "1"}, {"z", "2"}}
	wantCode(t, h.apply1(t, 1000, Command{Kind: CmdCharge, OrgID: org, Reference: "keep", Channel: "sms", Metadata: md}), CodeOK)
	if !reflect.DeepEqual(md, Metadata{{"a", "1"}, {"z", "2"}}) {
		t.Fatalf("command metadata modified: %v", md)
	}
}

func TestChargeReplayAndConflict(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	other := h.org(t, "B", 1000)
	first := h.apply1(t, 2000, charge(org, "msg-1", 100))
	wantCode(t, first, CodeOK)

	// Same reference, same body: the original transaction, nothing written.
	r := h.apply1(t, 3000, charge(org, "msg-1", 100))
	wantCode(t, r, CodeReplayed)
	if r.TxID != first.TxID || r.Entry != nil {
		t.Fatalf("replay = %+v, want tx %s", r, first.TxID)
	}
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 900)

	// Same reference, other body: conflict, nothing written.
	c := charge(org, "msg-1", 100)
	c.BodyHash = "different"
	r = h.apply1(t, 3000, c)
	wantCode(t, r, CodeConflict)
	if r.Entry != nil {
		t.Fatalf("conflict wrote %+v", r.Entry)
	}
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 900)

	// Replays are answered even when the charge would no longer fit, or the
	// org is paused: the reference already took effect.
	wantCode(t, h.apply1(t, 3000, Command{Kind: CmdPause, OrgID: org}), CodeOK)
	r = h.apply1(t, 3000, charge(org, "msg-1", 100))
	wantCode(t, r, CodeReplayed)
	wantCode(t, h.apply1(t, 3000, Command{Kind: CmdUnpause, OrgID: org}), CodeOK)

	// References are per org: another org may use the same one.
	r = h.apply1(t, 3000, charge(other, "msg-1", 100))
	wantCode(t, r, CodeOK)
	if r.TxID == first.TxID {
		t.Fatal("two orgs share a transaction")
	}
	h.wantBalance(t, other, 900)

	// Charge and adjustment references are separate namespaces.
	wantCode(t, h.apply1(t, 3000, adjust(org, "msg-1", 5)), CodeOK)
	h.wantBalance(t, org, 905)

	// In one batch: the second and third uses are answered from the first,
	// before it is persisted; the remaining balance (5) would not fit another.
	res := h.apply(t, 4000,
		charge(org, "msg-2", 900),
		charge(org, "msg-2", 900),
		Command{Kind: CmdCharge, OrgID: org, Reference: "msg-2", Channel: "sms", AmountMicros: 900, BodyHash: "other"},
		charge(org, "msg-2", 900))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	wantCode(t, res[2], CodeConflict)
	wantCode(t, res[3], CodeReplayed)
	for _, r := range res[1:] {
		if r.TxID != res[0].TxID || r.Entry != nil {
			t.Fatalf("in-batch retry %+v, want tx %s", r, res[0].TxID)
		}
	}
	if len(h.last.Entries) != 1 || len(h.last.Refs) != 1 {
		t.Fatalf("in-batch retries wrote entries %v refs %v", h.last.Entries, h.last.Refs)
	}
	h.wantBalance(t, org, 5)
	// And after it was persisted.
	wantCode(t, h.apply1(t, 5000, charge(org, "msg-2", 900)), CodeReplayed)
}

func TestRefusedChargeLeavesNoTrace(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 100)
	wantCode(t, h.apply1(t, 2000, charge(org, "big", 500)), CodeInsufficientFunds)
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, 2000, adjust(org, "topup", 1000)), CodeOK)
	r := h.apply1(t, 2000, charge(org, "big", 500))
	wantCode(t, r, CodeOK)
	h.wantBalance(t, org, 600)

	// The same within one batch: refused, credited, then a new attempt.
	res := h.apply(t, 3000,
		charge(org, "big2", 5000),
		Command{Kind: CmdPause, OrgID: org},
		charge(org, "big2", 5000),
		Command{Kind: CmdUnpause, OrgID: org},
		adjust(org, "topup2", 10_000),
		charge(org, "big2", 5000),
		charge(org, "big2", 5000))
	for i, want := range []Code{CodeInsufficientFunds, CodeOK, CodeOutboundPaused, CodeOK, CodeOK, CodeOK, CodeReplayed} {
		wantCode(t, res[i], want)
	}
	if res[6].TxID != res[5].TxID {
		t.Fatal("replay names another transaction")
	}
	h.wantBalance(t, org, 600+10_000-5000)
}

func TestPauseUnpause(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000)
	spend := h.apply1(t, 2000, charge(org, "before", 1000))
	wantCode(t, spend, CodeOK)

	r := h.apply1(t, 3000, Command{Kind: CmdPause, OrgID: org, Reason: "fraud review"})
	wantCode(t, r, CodeOK)
	if r.ID != org || !r.Wallet.OperatorHold || r.Wallet.HoldDetails != "fraud review" || r.Wallet.BlockReason() != "operator_hold" {
		t.Fatalf("paused wallet %+v", r.Wallet)
	}
	if len(h.last.Orgs) != 1 || !h.last.Orgs[0].OperatorHold || h.last.Orgs[0].HoldDetails != "fraud review" {
		t.Fatalf("pause persisted %+v", h.last.Orgs)
	}
	if got := h.e.Admit(org, 1); got != AdmitPaused {
		t.Fatalf("Admit while paused = %v", got)
	}
	r = h.apply1(t, 3000, charge(org, "during", 1))
	wantCode(t, r, CodeOutboundPaused)
	h.wantNothingWritten(t)

	// Credits, refunds and delivery reports proceed while paused.
	res := h.apply(t, 3000,
		adjust(org, "credit", 500),
		adjust(org, "debit", -200),
		refund(org, "rf-1", spend.TxID, 300),
		deliver(org, spend.TxID, DeliveryDelivered))
	for i := range res {
		wantCode(t, res[i], CodeOK)
	}
	h.wantBalance(t, org, 10_000-1000+500-200+300)

	// A second pause replaces the details.
	r = h.apply1(t, 3000, Command{Kind: CmdPause, OrgID: org, Reason: "still"})
	if r.Wallet.HoldDetails != "still" {
		t.Fatalf("details %q", r.Wallet.HoldDetails)
	}

	r = h.apply1(t, 4000, Command{Kind: CmdUnpause, OrgID: org})
	wantCode(t, r, CodeOK)
	if r.Wallet.OperatorHold || r.Wallet.HoldDetails != "" || r.Wallet.BlockReason() != "" {
		t.Fatalf("unpaused wallet %+v", r.Wallet)
	}
	if got := h.e.Admit(org, 1); got != Admitted {
		t.Fatalf("Admit after unpause = %v", got)
	}
	h.e.Unadmit(org, 1)
	wantCode(t, h.apply1(t, 4000, charge(org, "during", 1)), CodeOK)

	// Unpausing an org that is not paused is harmless.
	wantCode(t, h.apply1(t, 4000, Command{Kind: CmdUnpause, OrgID: org}), CodeOK)
	wantCode(t, h.apply1(t, 4000, Command{Kind: CmdPause, OrgID: "org_nope"}), CodeNotFound)
	wantCode(t, h.apply1(t, 4000, Command{Kind: CmdUnpause, OrgID: "org_nope"}), CodeNotFound)
}

func TestDisputeClearedByUnpause(t *testing.T) {
	st := NewMemStore()
	e := New(1, st)
	e.Load([]OrgRecord{{ID: "org_D", BalanceMicros: 5000, Disputed: true, Index: 7}}, nil, 7, 1000)
	h := &harness{e: e, st: st, idx: 7}
	// The loaded balance has no entries behind it in this store.
	if w := h.wallet(t, "org_D"); w.BlockReason() != "payment_disputed" {
		t.Fatalf("block reason %q", w.BlockReason())
	}
	if got := e.Admit("org_D", 1); got != AdmitPaused {
		t.Fatalf("Admit while disputed = %v", got)
	}
	wantCode(t, h.apply1(t, 2000, charge("org_D", "x", 1)), CodeOutboundPaused)
	h.wantNothingWritten(t)
	// Operator hold outranks the dispute.
	r := h.apply1(t, 2000, Command{Kind: CmdPause, OrgID: "org_D", Reason: "r"})
	if r.Wallet.BlockReason() != "operator_hold" {
		t.Fatalf("block reason %q", r.Wallet.BlockReason())
	}
	r = h.apply1(t, 2000, Command{Kind: CmdUnpause, OrgID: "org_D"})
	if r.Wallet.Disputed || r.Wallet.OperatorHold || r.Wallet.BlockReason() != "" {
		t.Fatalf("after unpause %+v", r.Wallet)
	}
	wantCode(t, h.apply1(t, 2000, charge("org_D", "x", 1)), CodeOK)
}

func TestAdjustment(t *testing.T) {
	cases := []struct {
		name    string
		fund    int64
		th      int64
		amount  int64
		code    Code
		balance int64
	}{
		{"credit", 0, 0, 700, CodeOK, 700},
		{"credit max", 0, 0, MaxAmountMicros, CodeOK, MaxAmountMicros},
		{"debit", 1000, 0, -300, CodeOK, 700},
		{"debit all", 1000, 0, -1000, CodeOK, 0},
		{"debit beyond available", 1000, 0, -1001, CodeInsufficientFunds, 1000},
		{"debit on empty wallet", 0, 0, -1, CodeInsufficientFunds, 0},
		// An operator correction is limited by available funds, not the threshold.
		{"debit below threshold", 1000, 600, -900, CodeOK, 100},
		{"zero", 1000, 0, 0, CodeInvalid, 1000},
		{"above max", 0, 0, MaxAmountMicros + 1, CodeInvalid, 0},
		{"below -max", MaxAmountMicros, 0, -MaxAmountMicros - 1, CodeInvalid, MaxAmountMicros},
		{"min int64", 1000, 0, math.MinInt64, CodeInvalid, 1000},
		{"-max", MaxAmountMicros, 0, -MaxAmountMicros, CodeOK, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			org := h.org(t, "A", tc.fund)
			if tc.th != 0 {
				wantCode(t, h.apply1(t, 1000, threshold(org, tc.th)), CodeOK)
			}
			before := h.wallet(t, org)
			c := adjust(org, "adj-1", tc.amount)
			c.Reason = "goodwill"
			r := h.apply1(t, 9000, c)
			wantCode(t, r, tc.code)
			h.wantBalance(t, org, tc.balance)
			if tc.code != CodeOK {
				h.wantNothingWritten(t)
				if r.Wallet != before {
					t.Fatalf("refused adjustment changed the wallet %+v -> %+v", before, r.Wallet)
				}
				if _, ok := h.st.Ref(org, NSAdjustment, "adj-1"); ok {
					t.Fatal("refused adjustment left its reference")
				}
				return
			}
			want := Entry{ID: r.TxID, OrgID: org, Type: EntryAdjustment, AmountMicros: tc.amount, BalanceAfterMicros: tc.balance,
				Reference: "adjustment:adj-1", Metadata: Metadata{{"reason", `"goodwill"`}}, CreatedAtMs: 9000}
			if !sameEntry(r.Entry, want) || !sameEntries(h.last.Entries, want) {
				t.Fatalf("entry %+v, want %+v", r.Entry, want)
			}
			if len(h.last.Usage) != 0 {
				t.Fatalf("adjustment wrote usage %+v", h.last.Usage)
			}
			if ref, ok := h.st.Ref(org, NSAdjustment, "adj-1"); !ok || ref.TxID != r.TxID {
				t.Fatalf("ref %+v", ref)
			}
		})
	}
}

func TestAdjustmentReplayAndNoReason(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	first := h.apply1(t, 1000, adjust(org, "a1", 500))
	wantCode(t, first, CodeOK)
	if first.Entry.Metadata != nil {
		t.Fatalf("metadata without a reason: %v", first.Entry.Metadata)
	}
	r := h.apply1(t, 1000, adjust(org, "a1", 500))
	wantCode(t, r, CodeReplayed)
	if r.TxID != first.TxID {
		t.Fatalf("replay tx %s", r.TxID)
	}
	h.wantNothingWritten(t)
	c := adjust(org, "a1", 600)
	c.BodyHash = "other"
	wantCode(t, h.apply1(t, 1000, c), CodeConflict)
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 500)
	// A refused debit leaves no trace: its reference can be used later.
	wantCode(t, h.apply1(t, 1000, adjust(org, "d1", -600)), CodeInsufficientFunds)
	wantCode(t, h.apply1(t, 1000, adjust(org, "d1", -500)), CodeOK)
	h.wantBalance(t, org, 0)
}

func TestBalanceOverflow(t *testing.T) {
	st := NewMemStore()
	e := New(1, st)
	const org = "org_BIG"
	e.Load([]OrgRecord{{ID: org, BalanceMicros: math.MaxInt64 - 5}}, nil, 1, 1000)
	// A spend of 10 persisted earlier, so a refund of it would overflow.
	st.Txns["ct_SPEND"] = TxnState{ID: "ct_SPEND", OrgID: org, Type: EntrySpend, AmountMicros: 10, Channel: "sms", Group: "-"}
	h := &harness{e: e, st: st, idx: 1}
	wantCode(t, h.apply1(t, 2000, adjust(org, "x", 6)), CodeInvalid)
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, 2000, refund(org, "k", "ct_SPEND", 0)), CodeInvalid)
	h.wantNothingWritten(t)
	r := h.apply1(t, 2000, adjust(org, "y", 5))
	wantCode(t, r, CodeOK)
	if r.Wallet.BalanceMicros != math.MaxInt64 {
		t.Fatalf("balance %d", r.Wallet.BalanceMicros)
	}
}

func TestRefund(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000)
	full := h.apply1(t, 2000, charge(org, "s-full", 1000))
	part := h.apply1(t, 2000, charge(org, "s-part", 1000))
	wantCode(t, full, CodeOK)
	wantCode(t, part, CodeOK)
	h.wantBalance(t, org, 8000)

	// Full refund by default.
	c := refund(org, "idem-full", full.TxID, 0)
	c.Reason = "duplicate"
	r := h.apply1(t, 3000, c)
	wantCode(t, r, CodeOK)
	want := Entry{ID: r.TxID, OrgID: org, Type: EntryRefund, AmountMicros: 1000, BalanceAfterMicros: 9000,
		Reference: "refund:" + full.TxID, CreatedAtMs: 3000,
		Metadata: Metadata{{"reason", `"duplicate"`}, {"refunded_transaction_id", `"` + full.TxID + `"`}}}
	if !sameEntry(r.Entry, want) {
		t.Fatalf("refund entry %+v, want %+v", r.Entry, want)
	}
	h.wantBalance(t, org, 9000)
	txn, _ := h.st.Txn(org, full.TxID)
	if txn.RefundedMicros != 1000 || txn.RefundedAtMs != 3000 {
		t.Fatalf("fully refunded txn %+v", txn)
	}
	if !reflect.DeepEqual(h.last.Usage, []UsageDelta{{OrgID: org, Channel: "sms", Group: "-", CostMicros: -1000}}) {
		t.Fatalf("refund usage %+v", h.last.Usage)
	}
	if ref, ok := h.st.Ref(org, NSRefund, "idem-full"); !ok || ref.TxID != r.TxID {
		t.Fatalf("refund key ref %+v", ref)
	}

	// Partial refunds: refunded_at only once nothing is left.
	steps := []struct {
		key     string
		amount  int64
		code    Code
		balance int64
		done    int64
		at      int64
	}{
		{"p1", 300, CodeOK, 9300, 300, 0},
		{"p2", 701, CodeInvalid, 9300, 300, 0},
		{"p3", -1, CodeInvalid, 9300, 300, 0},
		{"p4", 699, CodeOK, 9999, 999, 0},
		{"p5", 2, CodeInvalid, 9999, 999, 0},
		{"p6", 0, CodeOK, 10_000, 1000, 5000}, // the rest: 1
		{"p7", 0, CodeInvalid, 10_000, 1000, 5000},
		{"p8", 1, CodeInvalid, 10_000, 1000, 5000},
	}
	for _, s := range steps {
		r := h.apply1(t, 5000, refund(org, s.key, part.TxID, s.amount))
		wantCode(t, r, s.code)
		if s.code != CodeOK {
			h.wantNothingWritten(t)
		}
		h.wantBalance(t, org, s.balance)
		txn, _ := h.st.Txn(org, part.TxID)
		if txn.RefundedMicros != s.done || txn.RefundedAtMs != s.at || txn.AmountMicros != 1000 {
			t.Fatalf("after %s: txn %+v", s.key, txn)
		}
	}
	// Every partial refund shares the reference refund:<spend id>.
	var n int
	var sum int64
	for _, e := range h.st.Entries {
		if e.Reference == "refund:"+part.TxID {
			n++
			sum += e.AmountMicros
		}
	}
	if n != 3 || sum != 1000 {
		t.Fatalf("%d refund entries summing %d", n, sum)
	}

	// Idempotency: the same key and body replays; another body conflicts.
	r = h.apply1(t, 6000, refund(org, "p1", part.TxID, 300))
	wantCode(t, r, CodeReplayed)
	h.wantNothingWritten(t)
	first, _ := h.st.Ref(org, NSRefund, "p1")
	if r.TxID != first.TxID || r.Entry != nil {
		t.Fatalf("refund replay %+v, want %s", r, first.TxID)
	}
	c = refund(org, "p1", part.TxID, 300)
	c.BodyHash = "another"
	wantCode(t, h.apply1(t, 6000, c), CodeConflict)
	h.wantNothingWritten(t)
	// A refused refund leaves its key unused.
	if _, ok := h.st.Ref(org, NSRefund, "p2"); ok {
		t.Fatal("refused refund recorded its key")
	}

	// Only spends are refundable.
	adj := h.apply1(t, 6000, adjust(org, "adj", 50))
	wantCode(t, h.apply1(t, 6000, refund(org, "r-adj", adj.TxID, 0)), CodeNotRefundable)
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, 6000, refund(org, "r-ref", first.TxID, 0)), CodeNotRefundable)
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, 6000, refund(org, "r-none", "ct_unknown", 0)), CodeNotFound)
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 10_050)

	// A zero spend has nothing to refund.
	zero := h.apply1(t, 6000, charge(org, "zero", 0))
	wantCode(t, zero, CodeOK)
	wantCode(t, h.apply1(t, 6000, refund(org, "r-zero", zero.TxID, 0)), CodeInvalid)
}

func TestRefundInSameBatch(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 1000)
	// The spend and its refunds are decided in the batch that writes them.
	h.idx++
	ch := &Changes{}
	res := h.e.Apply(&Batch{TimeMs: 2000, Index: h.idx, Commands: []Command{charge(org, "s", 400)}}, ch)
	spend := res[0].TxID
	res2 := h.e.Apply(&Batch{TimeMs: 2000, Index: h.idx + 1, Commands: []Command{
		refund(org, "k1", spend, 100),
		refund(org, "k1", spend, 100),
		refund(org, "k2", spend, 301),
		refund(org, "k3", spend, 300),
	}}, ch)
	h.idx++
	h.st.Write(ch)
	h.e.Persisted()
	for i, want := range []Code{CodeOK, CodeReplayed, CodeInvalid, CodeOK} {
		wantCode(t, res2[i], want)
	}
	if res2[1].TxID != res2[0].TxID {
		t.Fatal("in-batch refund replay names another entry")
	}
	txn, _ := h.st.Txn(org, spend)
	if txn.RefundedMicros != 400 || txn.RefundedAtMs != 2000 {
		t.Fatalf("txn %+v", txn)
	}
	h.wantBalance(t, org, 1000)
	if ch.Index != h.idx || len(ch.Orgs) != 2 {
		t.Fatalf("accumulated changes index %d orgs %d", ch.Index, len(ch.Orgs))
	}
}

func TestDelivery(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000)
	cmd := charge(org, "s1", 100)
	cmd.Metadata = Metadata{{"country", `"US"`}}
	s1 := h.apply1(t, 86_400_000*3+5, cmd)
	s2 := h.apply1(t, 86_400_000*3+5, charge(org, "s2", 200))

	type step struct {
		tx     string
		status Delivery
		code   Code
		usage  []UsageDelta
	}
	steps := []step{
		{s1.TxID, DeliveryDelivered, CodeOK, []UsageDelta{{OrgID: org, Day: 3, Channel: "sms", Group: "d:US", Delivered: 1}}},
		{s1.TxID, DeliveryDelivered, CodeOK, nil},    // same status: no-op
		{s1.TxID, DeliveryFailed, CodeConflict, nil}, // a change
		{s2.TxID, DeliveryFailed, CodeOK, []UsageDelta{{OrgID: org, Day: 3, Channel: "sms", Group: "-", Failed: 1}}},
		{s2.TxID, DeliveryFailed, CodeOK, nil},
		{s2.TxID, DeliveryDelivered, CodeConflict, nil},
		{"ct_unknown", DeliveryDelivered, CodeNotFound, nil},
	}
	for i, s := range steps {
		r := h.apply1(t, 86_400_000*9, deliver(org, s.tx, s.status))
		wantCode(t, r, s.code)
		if s.code != CodeNotFound && r.TxID != s.tx {
			t.Fatalf("step %d: tx %q", i, r.TxID)
		}
		if r.Entry != nil || len(h.last.Entries) != 0 || len(h.last.Orgs) != 0 {
			t.Fatalf("step %d: delivery wrote entries %v orgs %v", i, h.last.Entries, h.last.Orgs)
		}
		if !reflect.DeepEqual(h.last.Usage, s.usage) {
			t.Fatalf("step %d: usage %+v, want %+v", i, h.last.Usage, s.usage)
		}
		if s.usage == nil && len(h.last.Txns) != 0 {
			t.Fatalf("step %d: txns written %+v", i, h.last.Txns)
		}
	}
	// Delivery reports never move money.
	h.wantBalance(t, org, 10_000-300)
	t1, _ := h.st.Txn(org, s1.TxID)
	t2, _ := h.st.Txn(org, s2.TxID)
	if t1.Delivery != DeliveryDelivered || t2.Delivery != DeliveryFailed {
		t.Fatalf("delivery states %v %v", t1.Delivery, t2.Delivery)
	}
	// Usage rows: messages and cost from the charges, counts from reports.
	u := h.st.Usage[UsageDelta{OrgID: org, Day: 3, Channel: "sms", Group: "d:US"}]
	if u.Messages != 1 || u.Delivered != 1 || u.Failed != 0 || u.CostMicros != 100 {
		t.Fatalf("US usage row %+v", u)
	}
	u = h.st.Usage[UsageDelta{OrgID: org, Day: 3, Channel: "sms", Group: "-"}]
	if u.Messages != 1 || u.Delivered != 0 || u.Failed != 1 || u.CostMicros != 200 {
		t.Fatalf("- usage row %+v", u)
	}
	// A refunded spend still takes its report; refunds lower the cost row.
	wantCode(t, h.apply1(t, 86_400_000*9, refund(org, "r", s2.TxID, 50)), CodeOK)
	u = h.st.Usage[UsageDelta{OrgID: org, Day: 3, Channel: "sms", Group: "-"}]
	if u.CostMicros != 150 || u.Messages != 1 {
		t.Fatalf("usage row after refund %+v", u)
	}
	// Only spends take delivery reports.
	adj := h.apply1(t, 86_400_000*9, adjust(org, "adj", 5))
	wantCode(t, h.apply1(t, 86_400_000*9, deliver(org, adj.TxID, DeliveryDelivered)), CodeInvalid)
	h.wantNothingWritten(t)
}

func TestIsolation(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 10_000)
	b := h.org(t, "B", 10_000)
	sa := h.apply1(t, 2000, charge(a, "s", 1000))
	wantCode(t, sa, CodeOK)
	ka := h.apply1(t, 2000, Command{Kind: CmdCreateKey, OrgID: a, Role: RoleAdmin, KeyHash: "ha"})

	for _, c := range []Command{
		refund(b, "k", sa.TxID, 0),
		refund(b, "k", sa.TxID, 10),
		deliver(b, sa.TxID, DeliveryDelivered),
		{Kind: CmdRevokeKey, OrgID: b, KeyID: ka.ID},
	} {
		r := h.apply1(t, 3000, c)
		wantCode(t, r, CodeNotFound)
		h.wantNothingWritten(t)
		if r.Wallet.OrgID != b {
			t.Fatalf("%v answered with wallet of %q", c.Kind, r.Wallet.OrgID)
		}
	}
	// Also while the spend is still pending in the engine (not persisted).
	h.idx++
	ch := &Changes{}
	res := h.e.Apply(&Batch{TimeMs: 3000, Index: h.idx, Commands: []Command{
		charge(a, "s3", 10),
	}}, ch)
	res2 := h.e.Apply(&Batch{TimeMs: 3000, Index: h.idx + 1, Commands: []Command{
		refund(b, "k3", res[0].TxID, 0),
		deliver(b, res[0].TxID, DeliveryFailed),
		refund(a, "k3", res[0].TxID, 0),
	}}, ch)
	h.idx++
	h.st.Write(ch)
	h.e.Persisted()
	wantCode(t, res2[0], CodeNotFound)
	wantCode(t, res2[1], CodeNotFound)
	wantCode(t, res2[2], CodeOK)

	h.wantBalance(t, a, 10_000-1000)
	h.wantBalance(t, b, 10_000)
	if txn, _ := h.st.Txn(a, sa.TxID); txn.RefundedMicros != 0 || txn.Delivery != DeliveryNone {
		t.Fatalf("a's spend changed by b: %+v", txn)
	}
	if k, _ := h.e.KeyByHash("ha"); k.RevokedAtMs != 0 {
		t.Fatal("a's key revoked by b")
	}
}

func TestUnknownOrgAndKind(t *testing.T) {
	h := newHarness()
	// Every kind but create_org names an org.
	last := CommandKind(len(commandKindNames) - 1)
	for k := CmdUpdateOrg; k <= last; k++ {
		if k == CmdSetNodeAddr || k == CmdSetFxRates {
			continue // group-wide settings: they name no org
		}
		r := h.apply1(t, 1000, Command{Kind: k, OrgID: "org_missing", Reference: "r", AmountMicros: 1, KeyHash: "h", TxID: "ct_x", KeyID: "key_x",
			AmountMinor: 1000, Currency: "usd", TopupID: "tu_x"})
		wantCode(t, r, CodeNotFound)
		h.wantNothingWritten(t)
	}
	for _, k := range []CommandKind{0, last + 1, 255} {
		r := h.apply1(t, 1000, Command{Kind: k})
		wantCode(t, r, CodeInvalid)
		h.wantNothingWritten(t)
	}
	if CmdCharge.String() != "charge" || CommandKind(200).String() != "unknown" || CodeOutboundPaused.String() != "outbound_paused" || Code(99).String() != "unknown" {
		t.Fatal("names")
	}
}

func TestTimeNeverGoesBackwards(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000) // at 1000
	r := h.apply1(t, 50_000, charge(org, "a", 1))
	if r.Entry.CreatedAtMs != 50_000 {
		t.Fatalf("created %d", r.Entry.CreatedAtMs)
	}
	// An older batch (a new leader with a slower clock) is stamped with the
	// previous batch's time, and its ids sort after the earlier ones.
	res := h.apply(t, 20_000, charge(org, "b", 1), adjust(org, "c", 5), Command{Kind: CmdCreateOrg, Name: "late"})
	for _, r := range res[:2] {
		if r.Entry.CreatedAtMs != 50_000 {
			t.Fatalf("stale batch stamped %d", r.Entry.CreatedAtMs)
		}
		if ms, _ := IDTimeMs(r.TxID, PrefixTransaction); ms != 50_000 {
			t.Fatalf("stale batch id time %d", ms)
		}
	}
	if rec, _ := h.e.OrgRecord(res[2].ID); rec.CreatedAtMs != 50_000 {
		t.Fatalf("org created at %d", rec.CreatedAtMs)
	}
	if h.e.LastTimeMs() != 50_000 {
		t.Fatalf("last time %d", h.e.LastTimeMs())
	}
	rr := h.apply1(t, 10_000, refund(org, "k", r.TxID, 0))
	txn, _ := h.st.Txn(org, r.TxID)
	if rr.Entry.CreatedAtMs != 50_000 || txn.RefundedAtMs != 50_000 {
		t.Fatalf("refund stamped %d, refunded_at %d", rr.Entry.CreatedAtMs, txn.RefundedAtMs)
	}
	later := h.apply1(t, 60_000, charge(org, "d", 1))
	if later.Entry.CreatedAtMs != 60_000 || h.e.LastTimeMs() != 60_000 {
		t.Fatalf("time did not advance: %d", later.Entry.CreatedAtMs)
	}
	for i := 1; i < len(h.st.Entries); i++ {
		p, c := h.st.Entries[i-1], h.st.Entries[i]
		if c.CreatedAtMs < p.CreatedAtMs || c.ID <= p.ID {
			t.Fatalf("entries out of order: %+v then %+v", p, c)
		}
	}
}

func TestOrgIndexAndTouchedOrgs(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 1000)
	b := h.org(t, "B", 1000)
	ia := h.wallet(t, a).Index
	// A refused charge and a delivery do not move the org's as_of.
	wantCode(t, h.apply1(t, 2000, charge(a, "x", 5000)), CodeInsufficientFunds)
	if h.wallet(t, a).Index != ia {
		t.Fatal("refused charge moved as_of")
	}
	// Each touched org is persisted once per batch, in first-touch order,
	// with its state at the end of the batch.
	res := h.apply(t, 2000, charge(b, "1", 10), charge(a, "2", 10), charge(b, "3", 10), charge(a, "4", 10000))
	wantCode(t, res[3], CodeInsufficientFunds)
	if len(h.last.Orgs) != 2 || h.last.Orgs[0].ID != b || h.last.Orgs[1].ID != a {
		t.Fatalf("persisted orgs %+v", h.last.Orgs)
	}
	if h.last.Orgs[0].BalanceMicros != 980 || h.last.Orgs[1].BalanceMicros != 990 || h.last.Orgs[0].Index != h.idx || h.last.Orgs[1].Index != h.idx {
		t.Fatalf("persisted orgs %+v", h.last.Orgs)
	}
	if res[0].Wallet.BalanceMicros != 990 || res[2].Wallet.BalanceMicros != 980 {
		t.Fatalf("per-command wallets %+v %+v", res[0].Wallet, res[2].Wallet)
	}
	// The balance after each entry chains within the batch.
	if h.last.Entries[0].BalanceAfterMicros != 990 || h.last.Entries[2].BalanceAfterMicros != 980 {
		t.Fatalf("entries %+v", h.last.Entries)
	}
}

func TestApplyRejectsOldIndex(t *testing.T) {
	h := newHarness()
	h.org(t, "A", 0)
	for _, idx := range []uint64{h.idx, h.idx - 1} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "applied index") {
					t.Fatalf("index %d: recovered %v", idx, r)
				}
			}()
			h.e.Apply(&Batch{TimeMs: 1, Index: idx}, &Changes{})
		}()
	}
}

func TestChangesReset(t *testing.T) {
	c := Changes{Group: 1, Index: 9, Entries: []Entry{{}}, Refs: []RefPut{{}}, Txns: []TxnState{{}}, Orgs: []OrgRecord{{}}, Keys: []APIKey{{}}, Usage: []UsageDelta{{}}}
	c.Reset()
	if c.Index != 0 || len(c.Entries)+len(c.Refs)+len(c.Txns)+len(c.Orgs)+len(c.Keys)+len(c.Usage) != 0 || cap(c.Entries) != 1 {
		t.Fatalf("after Reset %+v", c)
	}
}

func TestEntryTypeNamesAndUnixDay(t *testing.T) {
	for typ := EntryTopup; typ <= EntryDispute; typ++ {
		got, ok := ParseEntryType(typ.String())
		if !ok || got != typ {
			t.Fatalf("ParseEntryType(%q) = %v %v", typ.String(), got, ok)
		}
	}
	if _, ok := ParseEntryType("bogus"); ok {
		t.Fatal("bogus type parsed")
	}
	if _, ok := ParseEntryType(""); ok {
		t.Fatal("empty type parsed")
	}
	for _, c := range []struct{ ms, day int64 }{{0, 0}, {86_399_999, 0}, {86_400_000, 1}, {-1, -1}, {-86_400_000, -1}, {-86_400_001, -2}} {
		if got := UnixDay(c.ms); got != c.day {
			t.Fatalf("UnixDay(%d) = %d, want %d", c.ms, got, c.day)
		}
	}
}

func topupCreate(org, key string, cents int64) Command {
	return Command{Kind: CmdTopupCreate, OrgID: org, Reference: key, AmountMinor: cents, Currency: "usd",
		SuccessURL: "https://x/ok", CancelURL: "https://x/no", Provider: "dev", BodyHash: "h-" + key + strconv.FormatInt(cents, 10)}
}

func TestTopups(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	other := h.org(t, "B", 0)
	const when = 1_767_225_600_000 // 2026-01-01T00:00:00Z

	// Amount limits: 500 to 1,000,000 cents, USD only.
	for _, c := range []Command{
		topupCreate(org, "k-small", 499),
		topupCreate(org, "k-big", 1_000_001),
		topupCreate(org, "k-zero", 0),
		topupCreate(org, "k-neg", -500),
		func() Command { c := topupCreate(org, "k-eur", 1000); c.Currency = "eur"; return c }(),
	} {
		wantCode(t, h.apply1(t, when, c), CodeInvalid)
		h.wantNothingWritten(t)
	}

	r := h.apply1(t, when, topupCreate(org, "k1", 1500))
	wantCode(t, r, CodeOK)
	if ms, ok := IDTimeMs(r.ID, PrefixTopup); !ok || ms != when {
		t.Fatalf("top-up id %q", r.ID)
	}
	tu := r.ID
	want := TopupRecord{ID: tu, OrgID: org, Status: TopupPending, AmountMinor: 1500, Currency: "usd", FxRate: USDRateScale,
		CreditMicros: 15_000_000, SuccessURL: "https://x/ok", CancelURL: "https://x/no", Provider: "dev", CreatedAtMs: when}
	if got := h.st.Topups[tu]; got != want {
		t.Fatalf("pending top-up %+v, want %+v", got, want)
	}
	if len(h.last.Entries) != 0 {
		t.Fatal("a pending top-up moved money")
	}
	h.wantBalance(t, org, 0)
	// The Idempotency-Key replays the same top-up; another body conflicts.
	r = h.apply1(t, when, topupCreate(org, "k1", 1500))
	wantCode(t, r, CodeReplayed)
	if r.ID != tu {
		t.Fatalf("replayed top-up %q, want %q", r.ID, tu)
	}
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, when, topupCreate(org, "k1", 2500)), CodeConflict)
	h.wantNothingWritten(t)

	// Another org cannot complete or expire it.
	for _, k := range []CommandKind{CmdTopupComplete, CmdTopupExpire} {
		wantCode(t, h.apply1(t, when, Command{Kind: k, OrgID: other, TopupID: tu}), CodeNotFound)
		h.wantNothingWritten(t)
	}
	wantCode(t, h.apply1(t, when, Command{Kind: CmdTopupComplete, OrgID: org, TopupID: "tu_nope"}), CodeNotFound)

	// Completion credits once and issues a receipt.
	r = h.apply1(t, when+5, Command{Kind: CmdTopupComplete, OrgID: org, TopupID: tu, PaymentIntent: "pi_1"})
	wantCode(t, r, CodeOK)
	wantEntry := Entry{ID: r.TxID, OrgID: org, Type: EntryTopup, AmountMicros: 15_000_000, BalanceAfterMicros: 15_000_000,
		Reference: "dev_session:" + tu, CreatedAtMs: when + 5,
		Metadata: Metadata{{"currency", `"usd"`}, {"fx_rate", "1.0"}, {"topup_id", `"` + tu + `"`}}}
	if !sameEntry(r.Entry, wantEntry) || r.ID != tu {
		t.Fatalf("top-up entry %+v, want %+v", r.Entry, wantEntry)
	}
	h.wantBalance(t, org, 15_000_000)
	if len(h.last.Invoices) != 1 {
		t.Fatalf("invoices %+v", h.last.Invoices)
	}
	inv := h.last.Invoices[0]
	if inv.Number != "INV-2026-001" || inv.AmountMinor != 1500 || inv.TopupID != tu || inv.OrgID != org || inv.Status != "paid" ||
		inv.PDFURL != "/dev/receipts/"+org+"/"+inv.ID+"?token=pi_1" || !strings.HasPrefix(inv.ID, PrefixInvoice) {
		t.Fatalf("invoice %+v", inv)
	}
	paid := h.st.Topups[tu]
	if paid.Status != TopupPaid || paid.PaidAtMs != when+5 || paid.EntryID != r.TxID || paid.InvoiceID != inv.ID || paid.PaymentIntent != "pi_1" {
		t.Fatalf("paid top-up %+v", paid)
	}
	if rec, _ := h.e.OrgRecord(org); rec.LastTopupID != tu || rec.InvoiceSeq != 1 {
		t.Fatalf("org record %+v", rec)
	}
	if txn, ok := h.st.Txn(org, r.TxID); !ok || txn.Type != EntryTopup || txn.AmountMicros != 15_000_000 {
		t.Fatalf("top-up txn %+v", txn)
	}
	// Reported again: replayed, never credited twice; expiring it is a no-op.
	first := r.TxID
	r = h.apply1(t, when+9, Command{Kind: CmdTopupComplete, OrgID: org, TopupID: tu, PaymentIntent: "pi_1"})
	wantCode(t, r, CodeReplayed)
	if r.TxID != first {
		t.Fatalf("replayed completion names %q", r.TxID)
	}
	h.wantNothingWritten(t)
	wantCode(t, h.apply1(t, when+9, Command{Kind: CmdTopupExpire, OrgID: org, TopupID: tu}), CodeOK)
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 15_000_000)

	// Completion and a repeat in one batch credit once.
	tu2 := h.apply1(t, when+10, topupCreate(org, "k2", 500)).ID
	res := h.apply(t, when+10,
		Command{Kind: CmdTopupComplete, OrgID: org, TopupID: tu2, PaymentIntent: "pi_2"},
		Command{Kind: CmdTopupComplete, OrgID: org, TopupID: tu2, PaymentIntent: "pi_2"})
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	if res[1].TxID != res[0].TxID || len(h.last.Entries) != 1 || len(h.last.Invoices) != 1 || h.last.Invoices[0].Number != "INV-2026-002" {
		t.Fatalf("in-batch completion repeat: %+v %+v", res, h.last.Invoices)
	}
	h.wantBalance(t, org, 20_000_000)

	// Expiry closes a pending top-up.
	tu3 := h.apply1(t, when+20, topupCreate(org, "k3", 700)).ID
	wantCode(t, h.apply1(t, when+30, Command{Kind: CmdTopupExpire, OrgID: org, TopupID: tu3}), CodeOK)
	if got := h.st.Topups[tu3]; got.Status != TopupExpired {
		t.Fatalf("expired top-up %+v", got)
	}
	h.wantBalance(t, org, 20_000_000)

	// Stripe: one checkout session credits once, even if named by two top-ups.
	s1 := topupCreate(org, "k4", 1000)
	s1.Provider, s1.SessionID = "stripe", "cs_test_1"
	s2 := topupCreate(org, "k5", 1000)
	s2.Provider, s2.SessionID = "stripe", "cs_test_1"
	res = h.apply(t, when+40, s1, s2)
	res = h.apply(t, when+41,
		Command{Kind: CmdTopupComplete, OrgID: org, TopupID: res[0].ID, PaymentIntent: "pi_s"},
		Command{Kind: CmdTopupComplete, OrgID: org, TopupID: res[1].ID, PaymentIntent: "pi_s"})
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	if res[0].Entry.Reference != "stripe_session:cs_test_1" || res[1].TxID != res[0].TxID {
		t.Fatalf("stripe completion %+v / %+v", res[0].Entry, res[1])
	}
	h.wantBalance(t, org, 30_000_000)
}
