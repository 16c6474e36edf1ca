package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/orbit/orbit/internal/testserver"
)

// More of the Stripe top-up flow against a real orbitd and stripe-mock:
// exactly-once crediting under concurrent deliveries and across restarts,
// payments that do not match their top-up, and late payments of expired
// checkouts. Each test runs its own orbitd (restarts would disturb others).

// deliverConcurrently posts each body n times at once (all requests start
// together) and returns every answer's status, in no particular order;
// transport errors are reported as status 0.
func (h *stripeHarness) deliverConcurrently(t *testing.T, n int, bodies ...[]byte) []int {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses []int
		errs     []error
	)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		for _, body := range bodies {
			wg.Add(1)
			go func(body []byte) {
				defer wg.Done()
				<-start
				sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeTestWebhook, Timestamp: time.Now()}).Header
				r, err := h.s.Anon().With("Stripe-Signature", sig).TryDo("POST", stripeWebhookURL, body)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					statuses = append(statuses, 0)
					return
				}
				if r.Status == 200 && r.Data()["received"] != true {
					errs = append(errs, fmt.Errorf("200 without received: %s", oaClip(r.Body)))
				}
				statuses = append(statuses, r.Status)
			}(body)
		}
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent delivery: %v", err)
	}
	return statuses
}

// wantAll200 fails unless every status is 200.
func wantAll200(t *testing.T, statuses []int, want int) {
	t.Helper()
	if len(statuses) != want {
		t.Fatalf("%d answers, want %d", len(statuses), want)
	}
	for i, st := range statuses {
		if st != 200 {
			t.Fatalf("delivery %d answered %d, want 200 (all: %v)", i, st, statuses)
		}
	}
}

// wantCredited checks the wallet holds balance and the ledger exactly one
// topup entry per session named, each of micros (when micros > 0).
func wantCredited(t *testing.T, c *testserver.Client, balance int64, micros int64, sessions ...string) {
	t.Helper()
	if bal, _ := walletMicros(t, c); bal != balance {
		t.Fatalf("balance %d, want %d; ledger %v", bal, balance, ledger(t, c))
	}
	tops := entriesOfType(ledger(t, c), "topup")
	if len(tops) != len(sessions) {
		t.Fatalf("%d topup entries, want %d: %v", len(tops), len(sessions), tops)
	}
	for _, s := range sessions {
		n := 0
		for _, e := range tops {
			if e["reference"] == "stripe_session:"+s {
				n++
				if micros > 0 && num(t, e, "amount_micros") != micros {
					t.Errorf("entry of %s: %v, want %d micros", s, e, micros)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d topup entries of session %s, want 1: %v", n, s, tops)
		}
	}
}

// topupStatus reads a top-up's status by replaying its creation request.
func topupStatus(t *testing.T, c *testserver.Client, key string, amount int64, currency string) string {
	t.Helper()
	r := c.With("Idempotency-Key", key).Do("POST", "/api/v1/billing/balance/top-up", map[string]any{
		"amount": amount, "currency": currency,
		"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled",
	})
	d := oaExpectOK(t, r, 200)
	if r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("top-up %s not replayed: %s", key, oaClip(r.Body))
	}
	return d["status"].(string)
}

// warned reports whether a log line at level WARN names the event.
func warned(logs, event string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "event="+event+" ") {
			return true
		}
	}
	return false
}

func TestStripeConcurrentDeliveries(t *testing.T) {
	h := startStripeHarness(t)
	s := h.s

	t.Run("the same checkout.session.completed 20 times at once credits once", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe concurrent", 0)
		c := s.Key(org.Key)
		tu := stripeTopup(t, c, "topup-conc-0001", 10000, "usd")
		session := tu["session_id"].(string)
		ev := stripeEventBody(t, "evt_conc_1", "checkout.session.completed",
			paidSession(org.ID, tu["topup_id"].(string), session, "pi_conc_1", 10000, "usd"))
		wantAll200(t, h.deliverConcurrently(t, 20, ev), 20)
		wantCredited(t, c, 100_000_000, 100_000_000, session)
		if st := topupStatus(t, c, "topup-conc-0001", 10000, "usd"); st != "paid" {
			t.Errorf("top-up status %q, want paid", st)
		}
		// And 20 more at once, after the credit: still once.
		wantAll200(t, h.deliverConcurrently(t, 20, ev), 20)
		wantCredited(t, c, 100_000_000, 100_000_000, session)
	})

	t.Run("completed and async_payment_succeeded of one session at once credit once", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe concurrent async", 0)
		c := s.Key(org.Key)
		var sessions []string
		// Several sessions, so that the two events race in more than one
		// order; each event delivered 5 times, all 10 at once.
		for i := 1; i <= 4; i++ {
			key := fmt.Sprintf("topup-conc-async-%04d", i)
			tu := stripeTopup(t, c, key, 2500, "usd")
			session := tu["session_id"].(string)
			sessions = append(sessions, session)
			obj := paidSession(org.ID, tu["topup_id"].(string), session, fmt.Sprintf("pi_conc_async_%d", i), 2500, "usd")
			completed := stripeEventBody(t, fmt.Sprintf("evt_conc_async_c%d", i), "checkout.session.completed", obj)
			async := stripeEventBody(t, fmt.Sprintf("evt_conc_async_a%d", i), "checkout.session.async_payment_succeeded", obj)
			wantAll200(t, h.deliverConcurrently(t, 5, completed, async), 10)
			wantCredited(t, c, int64(i)*25_000_000, 25_000_000, sessions...)
		}
	})

	t.Run("concurrent deliveries of different orgs' payments each credit once", func(t *testing.T) {
		var bodies [][]byte
		type paidOrg struct {
			c       *testserver.Client
			session string
		}
		var orgs []paidOrg
		for i := 0; i < 5; i++ {
			org := s.MustOrg(t, fmt.Sprintf("Stripe concurrent org %d", i), 0)
			c := s.Key(org.Key)
			tu := stripeTopup(t, c, "topup-conc-orgs-0001", 5000, "usd") // the same key in every org
			session := tu["session_id"].(string)
			orgs = append(orgs, paidOrg{c, session})
			bodies = append(bodies, stripeEventBody(t, "evt_conc_orgs_"+org.ID, "checkout.session.completed",
				paidSession(org.ID, tu["topup_id"].(string), session, "pi_conc_orgs_"+org.ID, 5000, "usd")))
		}
		wantAll200(t, h.deliverConcurrently(t, 4, bodies...), 20)
		for _, o := range orgs {
			wantCredited(t, o.c, 50_000_000, 50_000_000, o.session)
		}
	})
}

func TestStripeRestart(t *testing.T) {
	for _, mode := range []string{"graceful stop", "kill -9"} {
		t.Run(mode, func(t *testing.T) {
			h := startStripeHarness(t)
			s := h.s
			restart := func() {
				t.Helper()
				if mode == "kill -9" {
					s.Kill()
				} else {
					s.Stop()
				}
				s.Start()
			}
			org := s.MustOrg(t, "Stripe restart", 0)
			c := s.Key(org.Key)

			// A paid top-up, and a pending one, before the restart.
			paid := stripeTopup(t, c, "topup-restart-0001", 10000, "usd")
			paidSess := paid["session_id"].(string)
			paidObj := paidSession(org.ID, paid["topup_id"].(string), paidSess, "pi_restart_1", 10000, "usd")
			paidEv := stripeEventBody(t, "evt_restart_1", "checkout.session.completed", paidObj)
			h.deliver(t, paidEv)
			wantCredited(t, c, 100_000_000, 100_000_000, paidSess)
			pending := stripeTopup(t, c, "topup-restart-0002", 5000, "usd")
			pendingSess := pending["session_id"].(string)

			restart()

			// The same event again, and the session's other event: nothing.
			h.deliver(t, paidEv)
			h.deliver(t, stripeEventBody(t, "evt_restart_2", "checkout.session.async_payment_succeeded", paidObj))
			wantAll200(t, h.deliverConcurrently(t, 5, paidEv), 5)
			wantCredited(t, c, 100_000_000, 100_000_000, paidSess)

			// The pending top-up survived the restart: its event credits it,
			// and its creation replays with the same session.
			m := h.proxy.mark()
			r := c.With("Idempotency-Key", "topup-restart-0002").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{
				"amount": 5000, "currency": "usd",
				"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"})
			if d := oaExpectOK(t, r, 200); d["session_id"] != pendingSess || d["topup_id"] != pending["topup_id"] ||
				d["checkoutUrl"] != pending["checkoutUrl"] || d["status"] != "pending" {
				t.Fatalf("pending top-up after the restart: %s, want %v", oaClip(r.Body), pending)
			}
			if calls := h.proxy.since(m); len(calls) != 0 {
				t.Errorf("replaying a recorded top-up after the restart called Stripe: %+v", calls)
			}
			pendingEv := stripeEventBody(t, "evt_restart_3", "checkout.session.completed",
				paidSession(org.ID, pending["topup_id"].(string), pendingSess, "pi_restart_2", 5000, "usd"))
			h.deliver(t, pendingEv)
			wantCredited(t, c, 150_000_000, 0, paidSess, pendingSess)

			// Once more across a second restart: nothing is credited again.
			restart()
			h.deliver(t, paidEv)
			h.deliver(t, pendingEv)
			wantCredited(t, c, 150_000_000, 0, paidSess, pendingSess)
			if st := topupStatus(t, c, "topup-restart-0002", 5000, "usd"); st != "paid" {
				t.Errorf("the pending top-up's status after its payment and a restart: %q", st)
			}
		})
	}
}

func TestStripePaymentMismatch(t *testing.T) {
	h := startStripeHarness(t)
	s := h.s
	org := s.MustOrg(t, "Stripe mismatch", 0)
	other := s.MustOrg(t, "Stripe mismatch other", 0)
	c, oc := s.Key(org.Key), s.Key(other.Key)
	oaExpectOK(t, s.Admin().Do("PUT", "/admin/v1/fx-rates", map[string]any{"eur": 1.0825}), 200)

	tu := stripeTopup(t, c, "topup-mismatch-0001", 10000, "usd")
	topupID, session := tu["topup_id"].(string), tu["session_id"].(string)
	otu := stripeTopup(t, oc, "topup-mismatch-0001", 10000, "usd")
	otherTopup, otherSession := otu["topup_id"].(string), otu["session_id"].(string)

	with := func(f func(obj map[string]any)) map[string]any {
		obj := paidSession(org.ID, topupID, session, "pi_mismatch_1", 10000, "usd")
		f(obj)
		return obj
	}
	cases := []struct {
		name string
		obj  map[string]any
	}{
		{"less paid than the top-up", with(func(o map[string]any) { o["amount_total"] = 100 })},
		{"more paid than the top-up", with(func(o map[string]any) { o["amount_total"] = 20000 })},
		{"another currency", with(func(o map[string]any) { o["currency"] = "eur" })},
		{"currency in upper case of another currency", with(func(o map[string]any) { o["currency"] = "EUR" })},
		{"no amount_total", with(func(o map[string]any) { delete(o, "amount_total") })},
		{"no currency", with(func(o map[string]any) { delete(o, "currency") })},
		{"another org's top-up in the metadata", with(func(o map[string]any) {
			o["metadata"] = map[string]string{"org_id": org.ID, "topup_id": otherTopup}
			o["id"] = otherSession
		})},
		{"metadata naming the other org, client_reference_id this one", with(func(o map[string]any) {
			o["metadata"] = map[string]string{"org_id": other.ID, "topup_id": topupID}
		})},
		{"client_reference_id naming another org", with(func(o map[string]any) { o["client_reference_id"] = other.ID })},
		{"another session than the top-up's", with(func(o map[string]any) { o["id"] = "cs_test_not_the_topups" })},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range []string{"checkout.session.completed", "checkout.session.async_payment_succeeded"} {
				id := fmt.Sprintf("evt_mismatch_%d_%s", i, typ[len("checkout.session."):])
				ev := stripeEventBody(t, id, typ, tc.obj)
				// Answered 200 (Stripe would retry the same contradiction
				// for days), twice, and concurrently: nothing is credited.
				h.deliver(t, ev)
				h.deliver(t, ev)
				wantAll200(t, h.deliverConcurrently(t, 3, ev), 3)
				if !warned(s.Logs(), id) {
					t.Errorf("no warning about %s in the logs:\n%s", id, s.Logs())
				}
			}
			for _, w := range []*testserver.Client{c, oc} {
				if bal, _ := walletMicros(t, w); bal != 0 || len(ledger(t, w)) != 0 {
					t.Fatalf("a mismatched payment changed a wallet: balance %d, ledger %v", bal, ledger(t, w))
				}
			}
			if st := topupStatus(t, c, "topup-mismatch-0001", 10000, "usd"); st != "pending" {
				t.Fatalf("top-up status %q after a mismatched payment, want pending", st)
			}
			if st := topupStatus(t, oc, "topup-mismatch-0001", 10000, "usd"); st != "pending" {
				t.Fatalf("the other org's top-up status %q after a mismatched payment, want pending", st)
			}
		})
	}

	// The matching payments then credit each org once.
	h.deliver(t, stripeEventBody(t, "evt_mismatch_ok", "checkout.session.completed", paidSession(org.ID, topupID, session, "pi_mismatch_1", 10000, "usd")))
	h.deliver(t, stripeEventBody(t, "evt_mismatch_ok_other", "checkout.session.completed", paidSession(other.ID, otherTopup, otherSession, "pi_mismatch_2", 10000, "usd")))
	wantCredited(t, c, 100_000_000, 100_000_000, session)
	wantCredited(t, oc, 100_000_000, 100_000_000, otherSession)
	// A mismatched event after the credit changes nothing either.
	h.deliver(t, stripeEventBody(t, "evt_mismatch_after", "checkout.session.completed", with(func(o map[string]any) { o["amount_total"] = 1 })))
	wantCredited(t, c, 100_000_000, 100_000_000, session)

	// A EUR top-up is compared in its own currency: 10000 "usd" for a
	// 10000 EUR top-up is refused; 10000 eur credits at the rate.
	eu := stripeTopup(t, c, "topup-mismatch-eur-0001", 10000, "eur")
	eurObj := paidSession(org.ID, eu["topup_id"].(string), eu["session_id"].(string), "pi_mismatch_eur", 10000, "usd")
	h.deliver(t, stripeEventBody(t, "evt_mismatch_eur_1", "checkout.session.completed", eurObj))
	if bal, _ := walletMicros(t, c); bal != 100_000_000 {
		t.Fatalf("a usd payment of a EUR top-up credited: balance %d", bal)
	}
	eurObj["currency"] = "eur"
	h.deliver(t, stripeEventBody(t, "evt_mismatch_eur_2", "checkout.session.completed", eurObj))
	if bal, _ := walletMicros(t, c); bal != 100_000_000+108_250_000 {
		t.Fatalf("balance %d after the EUR payment, want %d", bal, 100_000_000+108_250_000)
	}
}

func TestStripeLatePaymentAfterExpiry(t *testing.T) {
	h := startStripeHarness(t)
	s := h.s
	org := s.MustOrg(t, "Stripe late payment", 0)
	c := s.Key(org.Key)

	tu := stripeTopup(t, c, "topup-late-0001", 4000, "usd")
	topupID, session := tu["topup_id"].(string), tu["session_id"].(string)
	expired := paidSession(org.ID, topupID, session, "", 4000, "usd")
	expired["payment_status"], expired["status"], expired["payment_intent"] = "unpaid", "expired", nil
	expEv := stripeEventBody(t, "evt_late_expired", "checkout.session.expired", expired)
	h.deliver(t, expEv)
	if st := topupStatus(t, c, "topup-late-0001", 4000, "usd"); st != "expired" {
		t.Fatalf("status %q after checkout.session.expired, want expired", st)
	}
	if bal, _ := walletMicros(t, c); bal != 0 {
		t.Fatalf("an expiry moved money: %d", bal)
	}

	// The late paid event: money was taken, so it credits, once, however
	// often and in whichever form it comes.
	paidObj := paidSession(org.ID, topupID, session, "pi_late_1", 4000, "usd")
	paidEv := stripeEventBody(t, "evt_late_paid", "checkout.session.completed", paidObj)
	wantAll200(t, h.deliverConcurrently(t, 10, paidEv,
		stripeEventBody(t, "evt_late_async", "checkout.session.async_payment_succeeded", paidObj)), 20)
	wantCredited(t, c, 40_000_000, 40_000_000, session)
	if st := topupStatus(t, c, "topup-late-0001", 4000, "usd"); st != "paid" {
		t.Fatalf("status %q after the late payment, want paid", st)
	}
	st := oaExpectOK(t, c.Do("GET", "/api/v1/billing/status", nil), 200)
	if lt := oaObj(st, "last_topup"); lt["topup_id"] != topupID || lt["status"] != "paid" || lt["paid_at"] == nil {
		t.Errorf("last_topup after the late payment: %v", lt)
	}

	// The expiry delivered again (or a new expiry event) leaves it paid.
	h.deliver(t, expEv)
	h.deliver(t, stripeEventBody(t, "evt_late_expired_2", "checkout.session.expired", expired))
	if st := topupStatus(t, c, "topup-late-0001", 4000, "usd"); st != "paid" {
		t.Fatalf("status %q after a repeated expiry, want paid", st)
	}
	h.deliver(t, paidEv)
	wantCredited(t, c, 40_000_000, 40_000_000, session)

	// The credit is refundable like any top-up: the payment intent of the
	// late event was recorded.
	tx := entriesOfType(ledger(t, c), "topup")[0]["id"].(string)
	m := h.proxy.mark()
	oaExpectOK(t, c.With("Idempotency-Key", "refund-late-0001").Do("POST", "/api/v1/billing/refunds",
		map[string]any{"transaction_id": tx, "amount_micros": 10_000_000}), 201)
	calls := h.proxy.since(m)
	if len(calls) != 1 || calls[0].Form.Get("payment_intent") != "pi_late_1" || calls[0].Form.Get("amount") != "1000" {
		t.Errorf("refund of the late payment's top-up: Stripe calls %+v", calls)
	}
}
