package engine

import (
	"strings"
	"testing"
)

// stripeTopup creates a pending Stripe top-up of amount in currency with its
// recorded checkout session.
func stripeTopup(t *testing.T, h *harness, org, key string, amount int64, currency, session string) string {
	t.Helper()
	r := h.apply1(t, 1000, Command{Kind: CmdTopupCreate, OrgID: org, Reference: key, AmountMinor: amount, Currency: currency,
		SuccessURL: "https://x/ok", CancelURL: "https://x/no", Provider: "stripe", BodyHash: "h-" + key})
	wantCode(t, r, CodeOK)
	wantCode(t, h.apply1(t, 1000, Command{Kind: CmdTopupSession, OrgID: org, TopupID: r.ID, SessionID: session, CheckoutURL: "https://checkout/" + session}), CodeOK)
	return r.ID
}

// paid is the checkout.session.completed command the server maps a paid
// session to.
func paid(org, evt, topup, session string, amount int64, currency string) Command {
	return Command{Kind: CmdPaymentEvent, OrgID: org, Reference: evt, Name: EventCheckoutCompleted, TopupID: topup,
		SessionID: session, PaymentIntent: "pi_" + session, AmountMinor: amount, Currency: currency}
}

// A paid session whose amount, currency or session is not the top-up's
// credits nothing and writes nothing; the matching one then credits once.
func TestPaymentMismatchIsNotCredited(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	other := h.org(t, "B", 0)
	wantCode(t, h.apply1(t, 1000, Command{Kind: CmdSetFxRates, FxRates: map[string]int64{"eur": 108_250_000}}), CodeOK)
	tu := stripeTopup(t, h, org, "k1", 10000, "usd", "cs_1")
	otherTu := stripeTopup(t, h, other, "k1", 10000, "usd", "cs_other")

	for _, tc := range []struct {
		name string
		cmd  Command
		code Code
		msg  string
	}{
		{"less paid", paid(org, "evt_1", tu, "cs_1", 100, "usd"), CodeInvalid, "does not match top-up"},
		{"more paid", paid(org, "evt_2", tu, "cs_1", 10001, "usd"), CodeInvalid, "does not match top-up"},
		{"another currency", paid(org, "evt_3", tu, "cs_1", 10000, "eur"), CodeInvalid, "does not match top-up"},
		{"another session", paid(org, "evt_4", tu, "cs_2", 10000, "usd"), CodeInvalid, "is not the session"},
		{"top-up of another org", paid(org, "evt_5", otherTu, "cs_other", 10000, "usd"), CodeNotFound, "not found"},
		{"async success, less paid", func() Command {
			c := paid(org, "evt_6", tu, "cs_1", 9999, "usd")
			c.Name = EventCheckoutAsyncSucceded
			return c
		}(), CodeInvalid, "does not match top-up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.apply1(t, 2000, tc.cmd)
			wantCode(t, r, tc.code)
			if !strings.Contains(r.Message, tc.msg) {
				t.Fatalf("message %q, want it to contain %q", r.Message, tc.msg)
			}
			h.wantNothingWritten(t)
			h.wantBalance(t, org, 0)
			h.wantBalance(t, other, 0)
			if got := h.st.Topups[tu]; got.Status != TopupPending || got.EntryID != "" {
				t.Fatalf("top-up after a refused payment: %+v", got)
			}
			// Refused events are not recorded: the same event again is
			// refused again, never replayed as if applied.
			wantCode(t, h.apply1(t, 2000, tc.cmd), tc.code)
			h.wantNothingWritten(t)
		})
	}

	// The matching payment credits once, by its session.
	r := h.apply1(t, 3000, paid(org, "evt_ok", tu, "cs_1", 10000, "usd"))
	wantCode(t, r, CodeOK)
	if r.Entry == nil || r.Entry.AmountMicros != 100_000_000 || r.Entry.Reference != "stripe_session:cs_1" {
		t.Fatalf("credit entry %+v", r.Entry)
	}
	h.wantBalance(t, org, 100_000_000)
	// A mismatched event after the credit is still refused, not replayed.
	wantCode(t, h.apply1(t, 3000, paid(org, "evt_late", tu, "cs_1", 1, "usd")), CodeInvalid)
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 100_000_000)

	// A EUR top-up: amount and currency in the top-up's own terms.
	eur := stripeTopup(t, h, org, "k2", 5000, "eur", "cs_eur")
	wantCode(t, h.apply1(t, 4000, paid(org, "evt_eur_1", eur, "cs_eur", 5000, "usd")), CodeInvalid)
	h.wantNothingWritten(t)
	r = h.apply1(t, 4000, paid(org, "evt_eur_2", eur, "cs_eur", 5000, "eur"))
	wantCode(t, r, CodeOK)
	h.wantBalance(t, org, 100_000_000+54_125_000)

	// Commands without the paid currency (the development provider, log
	// entries from before the check) apply as before.
	dev := h.apply1(t, 5000, topupCreate(org, "k3", 700)).ID
	wantCode(t, h.apply1(t, 5000, Command{Kind: CmdTopupComplete, OrgID: org, TopupID: dev, AmountMinor: 1}), CodeOK)
	h.wantBalance(t, org, 100_000_000+54_125_000+7_000_000)
}

// A checkout that expired and is then reported paid (a late
// checkout.session.completed) is credited exactly once: the money was taken.
// An expiry reported after the credit changes nothing.
func TestPaymentAfterExpiryIsCreditedOnce(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	tu := stripeTopup(t, h, org, "k1", 2500, "usd", "cs_1")

	exp := Command{Kind: CmdPaymentEvent, OrgID: org, Reference: "evt_exp", Name: EventCheckoutExpired, TopupID: tu, SessionID: "cs_1", AmountMinor: 2500}
	wantCode(t, h.apply1(t, 2000, exp), CodeOK)
	if got := h.st.Topups[tu]; got.Status != TopupExpired {
		t.Fatalf("after expiry: %+v", got)
	}
	h.wantBalance(t, org, 0)

	r := h.apply1(t, 3000, paid(org, "evt_paid", tu, "cs_1", 2500, "usd"))
	wantCode(t, r, CodeOK)
	h.wantBalance(t, org, 25_000_000)
	if got := h.st.Topups[tu]; got.Status != TopupPaid || got.EntryID != r.TxID || got.PaymentIntent != "pi_cs_1" || got.PaidAtMs != 3000 {
		t.Fatalf("after the late payment: %+v", got)
	}
	// Redelivered, reported again as async success, expired again: once.
	wantCode(t, h.apply1(t, 3001, paid(org, "evt_paid", tu, "cs_1", 2500, "usd")), CodeReplayed)
	h.wantNothingWritten(t)
	async := paid(org, "evt_async", tu, "cs_1", 2500, "usd")
	async.Name = EventCheckoutAsyncSucceded
	if r2 := h.apply1(t, 3002, async); r2.Code != CodeOK || r2.TxID != r.TxID || len(h.last.Entries) != 0 {
		t.Fatalf("async success after the credit: %+v, entries %v", r2, h.last.Entries)
	}
	wantCode(t, h.apply1(t, 3003, exp), CodeReplayed)
	exp.Reference = "evt_exp_2"
	wantCode(t, h.apply1(t, 3004, exp), CodeOK)
	if got := h.st.Topups[tu]; got.Status != TopupPaid {
		t.Fatalf("an expiry after the payment changed the top-up: %+v", got)
	}
	h.wantBalance(t, org, 25_000_000)
	n := 0
	for _, e := range h.st.Entries {
		if e.OrgID == org && e.Type == EntryTopup {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d topup entries, want 1", n)
	}
}

// Deliveries of one paid session in one batch (concurrent webhook requests
// batched together), under several event ids, credit once.
func TestPaymentEventsInOneBatchCreditOnce(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)
	tu := stripeTopup(t, h, org, "k1", 10000, "usd", "cs_1")
	async := paid(org, "evt_2", tu, "cs_1", 10000, "usd")
	async.Name = EventCheckoutAsyncSucceded
	res := h.apply(t, 2000,
		paid(org, "evt_1", tu, "cs_1", 10000, "usd"),
		paid(org, "evt_1", tu, "cs_1", 10000, "usd"),
		async,
		paid(org, "evt_1", tu, "cs_1", 10000, "usd"))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeReplayed)
	wantCode(t, res[2], CodeOK)
	wantCode(t, res[3], CodeReplayed)
	for i, r := range res {
		if r.TxID != res[0].TxID {
			t.Fatalf("result %d names %q, want %q", i, r.TxID, res[0].TxID)
		}
	}
	if len(h.last.Entries) != 1 {
		t.Fatalf("entries %v", h.last.Entries)
	}
	h.wantBalance(t, org, 100_000_000)
}
