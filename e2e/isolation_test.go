package e2e

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

// TestOrgIsolation: org B, with its own admin key, calls every org API route
// with org A's ids and references. An id of A is 404 not_found, as an id
// that does not exist; a reference or Idempotency-Key that A used is B's
// own (a new object of B, never a replay of A's); a listing or report shows
// nothing of A's. Afterwards A's wallet, ledger, hold, invoices and top-up
// are exactly as they were, and B's wallet moved only by B's own charges.
// The routes come from server/org_api.go's table (oaServedRoutes): a new
// org route without a case here fails the test.
func TestOrgIsolation(t *testing.T) {
	s := testserver.Start(t)
	a, b := s.MustOrg(t, "Isolation A", 100_000_000), s.MustOrg(t, "Isolation B", 50_000_000)
	ca, cb := s.Key(a.Key), s.Key(b.Key)
	const aChannel = "iso_a_only" // B's reports must never show it

	// One of everything of A that has an id or a reference.
	chargeA := map[string]any{"reference": "iso-charge-1", "channel": aChannel, "amount_micros": 1000}
	txA := oaExpectOK(t, ca.Do("POST", "/api/v1/billing/charges", chargeA), 201)["transaction"].(map[string]any)["id"].(string)
	oaExpectOK(t, ca.Do("POST", "/api/v1/billing/charges/"+txA+"/delivery", map[string]any{"status": "delivered"}), 200)
	refundBody := map[string]any{"transaction_id": txA, "amount_micros": 100, "reason": "isolation"}
	refundA := oaExpectOK(t, ca.With("Idempotency-Key", "iso-refund-key-1").Do("POST", "/api/v1/billing/refunds", refundBody), 201)
	refundTxA := refundA["transaction"].(map[string]any)["id"].(string)
	holdBody := map[string]any{"reference": "iso-hold-1", "channel": aChannel, "amount_micros": 5000, "ttl_seconds": 3600}
	rsvA := oaExpectOK(t, ca.Do("POST", "/api/v1/billing/reservations", holdBody), 201)["reservation"].(map[string]any)["id"].(string)
	topupBody := map[string]any{"amount": 1000, "currency": "usd",
		"successUrl": "https://orbit.example/ok", "cancelUrl": "https://orbit.example/cancel"}
	tuA := oaExpectOK(t, ca.With("Idempotency-Key", "iso-topup-key-1").Do("POST", "/api/v1/billing/balance/top-up", topupBody), 201)
	if pay := oaRaw(t, "POST", tuA["checkoutUrl"].(string)+"/pay"); pay.Status != 303 {
		t.Fatalf("paying A's top-up: %d", pay.Status)
	}
	invsA := oaList(t, ca.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
	if len(invsA) != 1 {
		t.Fatalf("A's invoices: %v", invsA)
	}
	invA := oaObj(invsA[0])
	keyA := oaExpectOK(t, s.Admin().Do("POST", "/admin/v1/orgs/"+a.ID+"/keys", map[string]any{"role": "read"}), 201)
	aIDs := []string{txA, refundTxA, rsvA, tuA["topup_id"].(string), invA["id"].(string), keyA["id"].(string)}

	before := isoSnapshot(t, ca, rsvA)
	bBalance := oaNum(oaExpectOK(t, cb.Do("GET", "/api/v1/billing/balance", nil), 200)["balance_micros"])
	bSpent := int64(0) // by B's own charges below

	// notFound: A's id in B's request is 404 not_found.
	notFound := func(r *testserver.Response) { t.Helper(); oaExpectErr(t, r, 404, "not_found") }
	// noneOfA: an answer of B names none of A's ids or its channel.
	noneOfA := func(r *testserver.Response) {
		t.Helper()
		for _, id := range append(aIDs, aChannel, a.ID) {
			if strings.Contains(string(r.Body), id) {
				t.Errorf("B's %s answer shows A's %s: %s", r.Header.Get("X-Request-Id"), id, oaClip(r.Body))
			}
		}
	}
	idem := func(key string) *testserver.Client { return cb.With("Idempotency-Key", key) }

	cases := map[string]func(){
		"GET /api/v1/billing/transactions/{}": func() {
			notFound(cb.Do("GET", "/api/v1/billing/transactions/"+txA, nil))
			notFound(cb.Do("GET", "/api/v1/billing/transactions/"+refundTxA, nil))
		},
		"POST /api/v1/billing/charges/{}/delivery": func() {
			notFound(cb.Do("POST", "/api/v1/billing/charges/"+txA+"/delivery", map[string]any{"status": "failed"}))
		},
		"GET /api/v1/billing/reservations/{}": func() {
			notFound(cb.Do("GET", "/api/v1/billing/reservations/"+rsvA, nil))
		},
		"POST /api/v1/billing/reservations/{}/extend": func() {
			notFound(idem("iso-extend-key-1").Do("POST", "/api/v1/billing/reservations/"+rsvA+"/extend", map[string]any{"amount_micros": 1000}))
		},
		"POST /api/v1/billing/reservations/{}/commit": func() {
			notFound(cb.Do("POST", "/api/v1/billing/reservations/"+rsvA+"/commit", map[string]any{"amount_micros": 1000}))
		},
		"POST /api/v1/billing/reservations/{}/release": func() {
			notFound(cb.Do("POST", "/api/v1/billing/reservations/"+rsvA+"/release", nil))
		},
		"POST /api/v1/billing/refunds": func() {
			// A's transaction, under a new key and under A's own key and body.
			notFound(idem("iso-refund-key-2").Do("POST", "/api/v1/billing/refunds", refundBody))
			notFound(idem("iso-refund-key-1").Do("POST", "/api/v1/billing/refunds", refundBody))
		},
		"POST /api/v1/billing/charges": func() {
			// A's reference and body: a new charge of B, not A's replayed.
			r := cb.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "iso-charge-1", "channel": "sms", "amount_micros": 1000})
			if r.Header.Get("Idempotent-Replayed") != "" || oaObj(oaExpectOK(t, r, 201), "transaction")["id"] == txA {
				t.Errorf("B's charge with A's reference: %s", oaClip(r.Body))
			}
			bSpent += 1000
			noneOfA(r)
		},
		"POST /api/v1/billing/charges/batch": func() {
			r := cb.Do("POST", "/api/v1/billing/charges/batch", map[string]any{"charges": []any{
				map[string]any{"reference": "iso-charge-1", "channel": "sms", "amount_micros": 1000}, // B's own by now: replayed
				map[string]any{"reference": "iso-hold-1", "channel": "sms", "amount_micros": 500},    // A's hold reference
			}})
			res, _ := oaExpectOK(t, r, 200)["results"].([]any)
			if len(res) != 2 || oaNum(oaObj(res[0])["status"]) != 200 || oaNum(oaObj(res[1])["status"]) != 201 {
				t.Errorf("B's batch: %s", oaClip(r.Body))
			}
			bSpent += 500
			noneOfA(r)
		},
		"POST /api/v1/billing/reservations": func() {
			r := cb.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "iso-hold-1", "channel": "sms", "amount_micros": 5000})
			h := oaObj(oaExpectOK(t, r, 201), "reservation")
			if r.Header.Get("Idempotent-Replayed") != "" || h["id"] == rsvA {
				t.Fatalf("B's reservation with A's reference: %s", oaClip(r.Body))
			}
			noneOfA(r)
			oaExpectOK(t, cb.Do("POST", "/api/v1/billing/reservations/"+h["id"].(string)+"/release", nil), 200)
		},
		"POST /api/v1/billing/balance/top-up": func() {
			r := idem("iso-topup-key-1").Do("POST", "/api/v1/billing/balance/top-up", topupBody)
			if d := oaExpectOK(t, r, 201); r.Header.Get("Idempotent-Replayed") != "" || d["topup_id"] == tuA["topup_id"] || d["status"] != "pending" {
				t.Errorf("B's top-up with A's Idempotency-Key: %s", oaClip(r.Body))
			}
			noneOfA(r)
		},
		"POST /api/v1/billing/credits/purchase": func() {
			r := idem("iso-topup-key-1").Do("POST", "/api/v1/billing/credits/purchase", topupBody)
			// B's own top-up of the previous case, replayed: never A's.
			if d := oaExpectOK(t, r, 200); d["topup_id"] == tuA["topup_id"] || d["status"] != "pending" {
				t.Errorf("B's purchase with A's Idempotency-Key: %s", oaClip(r.Body))
			}
			noneOfA(r)
		},
		"GET /api/v1/billing/transactions": func() {
			noneOfA(cb.Do("GET", "/api/v1/billing/transactions?limit=100", nil).Expect(t, 200))
			// A cursor made of A's newest entry pages B's ledger, not A's.
			noneOfA(cb.Do("GET", "/api/v1/billing/transactions?cursor_id="+refundTxA+"&cursor_ts="+
				oaExpectOK(t, ca.Do("GET", "/api/v1/billing/transactions/"+refundTxA, nil), 200)["created_at"].(string), nil))
			noneOfA(cb.Do("GET", "/api/v1/billing/transactions?channel="+aChannel, nil).Expect(t, 200))
		},
		"GET /api/v1/billing/transactions/export": func() {
			noneOfA(cb.Do("GET", "/api/v1/billing/transactions/export", nil).Expect(t, 200))
		},
		"GET /api/v1/billing/usage":            func() { noneOfA(cb.Do("GET", "/api/v1/billing/usage?days=7", nil).Expect(t, 200)) },
		"GET /api/v1/billing/usage-by-channel": func() { noneOfA(cb.Do("GET", "/api/v1/billing/usage-by-channel", nil).Expect(t, 200)) },
		"GET /api/v1/billing/invoices":         func() { noneOfA(cb.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200)) },
		"GET /api/v1/billing/balance":          func() { noneOfA(cb.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200)) },
		"GET /api/v1/billing/credits":          func() { noneOfA(cb.Do("GET", "/api/v1/billing/credits", nil).Expect(t, 200)) },
		"GET /api/v1/billing/status":           func() { noneOfA(cb.Do("GET", "/api/v1/billing/status", nil).Expect(t, 200)) },
		"GET /api/v1/billing/rates":            func() { noneOfA(cb.Do("GET", "/api/v1/billing/rates", nil).Expect(t, 200)) },
		"POST /api/v1/billing/webhooks/stripe": func() {
			// Authenticated by Stripe's signature, not by a key: without a
			// webhook secret nothing is accepted (the signed cases are
			// e2e/webhook_replay_test.go's).
			oaExpectErr(t, cb.Do("POST", "/api/v1/billing/webhooks/stripe", map[string]any{"id": "evt_iso", "type": "checkout.session.completed"}), 400, "invalid_request")
		},
	}

	var routes []string
	for _, r := range oaServedRoutes(t) {
		if strings.Contains(r, " /api/v1/billing/") {
			routes = append(routes, r)
		}
	}
	sort.Strings(routes)
	for _, r := range routes {
		c, ok := cases[r]
		if !ok {
			t.Errorf("org route %s has no isolation case in TestOrgIsolation", r)
			continue
		}
		delete(cases, r)
		t.Run(r, func(t *testing.T) { c() })
	}
	for r := range cases {
		t.Errorf("isolation case %s is not an org route any more", r)
	}

	// Outside the org API: A's receipt under B's org, and A's key on B's
	// path of the operator API.
	pdf, _ := invA["pdf_url"].(string)
	_, token, _ := strings.Cut(pdf, "?token=")
	oaExpectErr(t, oaRaw(t, "GET", s.URL+"/dev/receipts/"+b.ID+"/"+invA["id"].(string)+"?token="+token), 404, "not_found")
	oaExpectErr(t, s.Admin().Do("DELETE", "/admin/v1/orgs/"+b.ID+"/keys/"+keyA["id"].(string), nil), 404, "not_found")
	oaExpectErr(t, s.Anon().With("Authorization", "Bearer "+a.Key).Do("GET", "/admin/v1/orgs/"+a.ID, nil), 401, "unauthenticated")
	oaExpectOK(t, s.Key(keyA["key"].(string)).Do("GET", "/api/v1/billing/balance", nil), 200) // A's key still works

	// A is exactly as it was; B moved by its own charges only.
	if after := isoSnapshot(t, ca, rsvA); !reflect.DeepEqual(after, before) {
		t.Errorf("A changed:\nbefore %v\nafter  %v", before, after)
	}
	bb := oaExpectOK(t, cb.Do("GET", "/api/v1/billing/balance", nil), 200)
	if oaNum(bb["balance_micros"]) != bBalance-bSpent || oaNum(bb["reserved_micros"]) != 0 {
		t.Errorf("B's wallet %v, want balance %d and nothing reserved", bb, bBalance-bSpent)
	}
	var bRefs []string
	for _, e := range oaObj(oaExpectOK(t, cb.Do("GET", "/api/v1/billing/transactions?limit=100", nil), 200))["transactions"].([]any) {
		bRefs = append(bRefs, fmt.Sprint(oaObj(e)["type"], " ", oaObj(e)["amount_micros"]))
	}
	sort.Strings(bRefs)
	if want := []string{"adjustment 5e+07", "spend -1000", "spend -500"}; !reflect.DeepEqual(bRefs, want) {
		t.Errorf("B's ledger %v, want %v", bRefs, want)
	}
}

// isoSnapshot is what B must not change of A: its wallet, its ledger (with
// refund and delivery state), its hold, its invoices and last top-up.
func isoSnapshot(t *testing.T, c *testserver.Client, holdID string) map[string]any {
	t.Helper()
	bal := oaExpectOK(t, c.Do("GET", "/api/v1/billing/balance", nil), 200)
	delete(bal, "as_of")
	st := oaExpectOK(t, c.Do("GET", "/api/v1/billing/status", nil), 200)
	return map[string]any{
		"balance":  bal,
		"ledger":   oaExpectOK(t, c.Do("GET", "/api/v1/billing/transactions?limit=100", nil), 200)["transactions"],
		"hold":     oaExpectOK(t, c.Do("GET", "/api/v1/billing/reservations/"+holdID, nil), 200),
		"invoices": oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200)),
		"topup":    st["last_topup"],
	}
}
