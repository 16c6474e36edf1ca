package engine

import "testing"

// A disputed top-up cannot be refunded to the card as well (the wallet
// would pay twice); once the dispute is won it can be again. An external
// card refund never takes more than is still refundable.
func TestDisputedTopupIsNotRefundableTwice(t *testing.T) {
	h := newHarness()
	org := h.apply1(t, 1000, Command{Kind: CmdCreateOrg, Name: "o"}).ID
	wantCode(t, h.apply1(t, 1000, Command{Kind: CmdAdjustment, OrgID: org, Reference: "fund", AmountMicros: 100_000_000, BodyHash: "f"}), CodeOK)
	tu := h.apply1(t, 1000, Command{Kind: CmdTopupCreate, OrgID: org, Reference: "tk", AmountMinor: 10000, Currency: "usd", Provider: "stripe", BodyHash: "b"}).ID
	paid := h.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org, Reference: "evt_1", Name: EventCheckoutCompleted, TopupID: tu, SessionID: "cs_1", PaymentIntent: "pi_1"})
	wantCode(t, paid, CodeOK)
	entry := paid.TxID

	d := h.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org, Reference: "evt_2", Name: EventDisputeCreated, TopupID: tu, TxID: "dp_1", AmountMinor: 10000})
	wantCode(t, d, CodeOK)
	if d.Wallet.BalanceMicros != 100_000_000 || !d.Wallet.Disputed {
		t.Fatalf("after dispute: %+v", d.Wallet)
	}
	r := h.apply1(t, 1000, Command{Kind: CmdRefund, OrgID: org, Reference: "rk1", TxID: entry, BodyHash: "r"})
	wantCode(t, r, CodeInvalid)
	// An external refund of the disputed payment debits nothing more.
	ext := h.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org, Reference: "evt_3", Name: EventChargeRefunded, TopupID: tu, TxID: "re_1", AmountMinor: 10000})
	wantCode(t, ext, CodeOK)
	if ext.Wallet.BalanceMicros != 100_000_000 {
		t.Fatalf("external refund of a disputed top-up took money: %d", ext.Wallet.BalanceMicros)
	}
	h2 := newHarness()
	org2 := h2.apply1(t, 1000, Command{Kind: CmdCreateOrg, Name: "o"}).ID
	tu2 := h2.apply1(t, 1000, Command{Kind: CmdTopupCreate, OrgID: org2, Reference: "tk", AmountMinor: 10000, Currency: "usd", Provider: "stripe", BodyHash: "b"}).ID
	e2 := h2.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org2, Reference: "evt_1", Name: EventCheckoutCompleted, TopupID: tu2, SessionID: "cs_2"}).TxID
	wantCode(t, h2.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org2, Reference: "evt_2", Name: EventDisputeCreated, TopupID: tu2, TxID: "dp_2", AmountMinor: 10000}), CodeOK)
	won := h2.apply1(t, 1000, Command{Kind: CmdPaymentEvent, OrgID: org2, Reference: "evt_3", Name: EventDisputeClosed, TopupID: tu2, TxID: "dp_2", Reason: "won"})
	wantCode(t, won, CodeOK)
	if won.Wallet.BalanceMicros != 100_000_000 {
		t.Fatalf("after a won dispute: %d", won.Wallet.BalanceMicros)
	}
	// Refundable again, once.
	wantCode(t, h2.apply1(t, 1000, Command{Kind: CmdRefund, OrgID: org2, Reference: "rk", TxID: e2, BodyHash: "r"}), CodeOK)
	wantCode(t, h2.apply1(t, 1000, Command{Kind: CmdRefund, OrgID: org2, Reference: "rk2", TxID: e2, BodyHash: "r"}), CodeInvalid)
}
