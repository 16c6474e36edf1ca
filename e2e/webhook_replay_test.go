package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"
)

// TestStripeWebhookReplay: replayed Stripe deliveries never credit twice.
// A captured delivery sent again byte for byte (body and Stripe-Signature)
// is 200 and credits nothing more; a validly signed delivery older than the
// 5-minute tolerance is 400 and changes nothing, and so is one whose
// signature header was given a fresh timestamp; an event id already applied
// arriving again with another body (another top-up, another amount, another
// invoice) is 200 and applies nothing. (TestStripe covers the same event
// re-signed and redelivered, and the same payment under a second event id.)
func TestStripeWebhookReplay(t *testing.T) {
	h := startStripeHarness(t)
	s := h.s
	org := s.MustOrg(t, "Webhook replay", 0)
	c := s.Key(org.Key)
	tu1 := stripeTopup(t, c, "replay-topup-0001", 10000, "usd")
	tu2 := stripeTopup(t, c, "replay-topup-0002", 5000, "usd")
	paid1 := paidSession(org.ID, tu1["topup_id"].(string), tu1["session_id"].(string), "pi_replay_1", 10000, "usd")
	paid2 := paidSession(org.ID, tu2["topup_id"].(string), tu2["session_id"].(string), "pi_replay_2", 5000, "usd")

	// expect checks the wallet and the number of topup entries.
	expect := func(what string, balance int64, topups int) {
		t.Helper()
		bal, _ := walletMicros(t, c)
		if n := len(entriesOfType(ledger(t, c), "topup")); bal != balance || n != topups {
			t.Fatalf("%s: balance %d with %d topup entries, want %d with %d", what, bal, n, balance, topups)
		}
	}
	post := func(body []byte, sig string) (int, string) {
		t.Helper()
		r := s.Anon().With("Stripe-Signature", sig).Do("POST", stripeWebhookURL, body)
		return r.Status, r.ErrorCode()
	}

	t.Run("a captured delivery sent again credits once", func(t *testing.T) {
		ev := stripeEventBody(t, "evt_replay_1", "checkout.session.completed", paid1)
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestWebhook, Timestamp: time.Now()}).Header
		for i := 0; i < 3; i++ {
			if st, code := post(ev, sig); st != 200 {
				t.Fatalf("delivery %d: %d %s", i, st, code)
			}
		}
		expect("one payment delivered three times", 100_000_000, 1)
	})

	t.Run("a delivery older than the tolerance is refused", func(t *testing.T) {
		ev := stripeEventBody(t, "evt_replay_2", "checkout.session.completed", paid2)
		old := time.Now().Add(-webhook.DefaultTolerance - 5*time.Second)
		stale := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestWebhook, Timestamp: old}).Header
		if st, code := post(ev, stale); st != 400 || code != "invalid_request" {
			t.Errorf("stale delivery: %d %q, want 400 invalid_request", st, code)
		}
		// The old signature under a fresh timestamp: the signature covers
		// the timestamp, so it no longer verifies.
		_, v1, ok := strings.Cut(stale, ",v1=")
		if !ok {
			t.Fatalf("signature header %q", stale)
		}
		fresh := "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v1=" + v1
		if st, code := post(ev, fresh); st != 400 || code != "invalid_request" {
			t.Errorf("stale signature with a fresh timestamp: %d %q, want 400 invalid_request", st, code)
		}
		expect("after stale deliveries", 100_000_000, 1)
		// Within the tolerance the same event is applied (Stripe's own
		// retries arrive re-signed).
		recent := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestWebhook,
			Timestamp: time.Now().Add(-webhook.DefaultTolerance + 30*time.Second)}).Header
		if st, code := post(ev, recent); st != 200 {
			t.Fatalf("delivery within the tolerance: %d %s", st, code)
		}
		expect("after the second top-up's payment", 150_000_000, 2)
	})

	t.Run("an applied event id with another body applies nothing", func(t *testing.T) {
		tu3 := stripeTopup(t, c, "replay-topup-0003", 7500, "usd")
		paid3 := paidSession(org.ID, tu3["topup_id"].(string), tu3["session_id"].(string), "pi_replay_3", 7500, "usd")
		// evt_replay_1 paid the first top-up; the same id now names the
		// third, then the first again with a larger amount.
		h.deliver(t, stripeEventBody(t, "evt_replay_1", "checkout.session.completed", paid3))
		bigger := paidSession(org.ID, tu1["topup_id"].(string), tu1["session_id"].(string), "pi_replay_1", 20000, "usd")
		h.deliver(t, stripeEventBody(t, "evt_replay_1", "checkout.session.async_payment_succeeded", bigger))
		expect("an applied event id with other bodies", 150_000_000, 2)
		if st := topupStatus(t, c, "replay-topup-0003", 7500, "usd"); st != "pending" {
			t.Errorf("third top-up %s after a replayed event id, want pending", st)
		}
		// Under its own event id the third top-up's payment is credited.
		h.deliver(t, stripeEventBody(t, "evt_replay_3", "checkout.session.completed", paid3))
		expect("the third payment under its own id", 225_000_000, 3)
	})

	t.Run("an invoice event id replayed with another body changes nothing", func(t *testing.T) {
		inv := map[string]any{"id": "in_replay_1", "object": "invoice", "number": "R-1", "amount_paid": 10000, "total": 10000,
			"currency": "usd", "status": "paid", "created": time.Now().Unix(), "metadata": map[string]string{"org_id": org.ID}}
		h.deliver(t, stripeEventBody(t, "evt_replay_inv", "invoice.paid", inv))
		inv["amount_paid"], inv["number"] = 99999, "R-2"
		h.deliver(t, stripeEventBody(t, "evt_replay_inv", "invoice.paid", inv))
		var found []map[string]any
		for _, i := range oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200)) {
			if oaObj(i)["id"] == "in_replay_1" {
				found = append(found, oaObj(i))
			}
		}
		if len(found) != 1 || oaNum(found[0]["amount"]) != 10000 || found[0]["number"] != "R-1" {
			t.Errorf("invoice after a replayed event id with another body: %v", found)
		}
		expect("invoice events", 225_000_000, 3)
	})
}
