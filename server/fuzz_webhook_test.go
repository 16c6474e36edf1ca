package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orbit/orbit/engine"
)

// FuzzStripeWebhook fuzzes the Stripe webhook's body under five kinds of
// signature: valid, signed with another secret, unsigned, signed longer ago
// than the tolerance, and valid for a body that is then changed. Only a
// valid signature may change anything: every other delivery is 400
// invalid_request and submits nothing. A validly signed body is 200 or 400
// (never 5xx: the harness's lookups do not fail); what it submits is
// payment events of the event's own id and type, the same on a redelivery
// (so the engine, which applies an event id once, credits it once).
func FuzzStripeWebhook(f *testing.F) {
	f.Add(uint8(0), uint16(0), []byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1","payment_status":"paid","metadata":{"org_id":"org_1","topup_id":"tu_1"},"amount_total":500,"currency":"usd"}}}`))
	h := newFuzzHarness()
	handled := map[string]bool{
		engine.EventCheckoutCompleted: true, engine.EventCheckoutAsyncSucceded: true, engine.EventCheckoutExpired: true,
		engine.EventInvoicePaid: true, engine.EventInvoiceFinalized: true, engine.EventChargeRefunded: true,
		engine.EventDisputeCreated: true, engine.EventDisputeClosed: true,
	}
	f.Fuzz(func(t *testing.T, mode uint8, ageSec uint16, body []byte) {
		now := time.Now()
		sent, sig := body, ""
		switch mode % 5 {
		case 0:
			sig = signed(body, fuzzSecret, now)
		case 1:
			sig = signed(body, fuzzSecret+"x", now)
		case 2:
		case 3:
			sig = signed(body, fuzzSecret, now.Add(-time.Duration(301+int(ageSec))*time.Second))
		case 4:
			sig = signed(body, fuzzSecret, now)
			sent = append(append([]byte(nil), body...), ' ')
		}
		deliver := func() fuzzAnswer {
			return h.do(t, "POST", stripeWebhookPath, sent, "Content-Type", "application/json", "Stripe-Signature", sig)
		}
		a := deliver()
		if mode%5 != 0 {
			if a.status != 400 || a.code != errInvalidRequest {
				t.Fatalf("mode %d: status %d (%s), want 400 invalid_request", mode%5, a.status, a.code)
			}
			return
		}
		a.expectStatus(t, 200, 400, 413)
		if a.status != 200 || len(a.cmds) == 0 {
			return
		}
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("an event encoding/json cannot read submitted %+v", a.cmds)
		}
		if !handled[ev.Type] {
			t.Fatalf("event type %q submitted %+v", ev.Type, a.cmds)
		}
		for _, c := range a.cmds {
			if c.Kind != engine.CmdPaymentEvent || c.Name != ev.Type || c.OrgID == "" ||
				(c.Reference != ev.ID && !strings.HasPrefix(c.Reference, ev.ID+":")) {
				t.Fatalf("event %q of type %q submitted %+v", ev.ID, ev.Type, c)
			}
		}
		if again := deliver(); again.status != 200 || !reflect.DeepEqual(again.cmds, a.cmds) {
			t.Fatalf("redelivery submitted %+v (status %d), the first delivery %+v", again.cmds, again.status, a.cmds)
		}
	})
}

// FuzzStripeEvent builds validly signed events from fuzzed fields (byte
// mutation of a signed body rarely stays an event) and checks what each
// maps to: a paid checkout session credits exactly its metadata's org and
// top-up with its own amount, currency and session, and nothing when it is
// not paid, lacks org or top-up, or names another org in
// client_reference_id; a refunded charge of a known payment records each
// of its live refunds once; and nothing else of the event is applied.
func FuzzStripeEvent(f *testing.F) {
	f.Add(uint8(0), "evt_1", "cs_1", "org_1", "org_1", "tu_1", "paid", int64(500), "usd", fuzzKnownPI, "re_1", int64(100), "succeeded")
	h := newFuzzHarness()
	types := []string{engine.EventCheckoutCompleted, engine.EventCheckoutAsyncSucceded, engine.EventCheckoutExpired,
		engine.EventInvoicePaid, engine.EventInvoiceFinalized, engine.EventChargeRefunded, engine.EventDisputeCreated,
		engine.EventDisputeClosed, "customer.created"}
	f.Fuzz(func(t *testing.T, typ uint8, evID, objID, org, ref, topup, payStatus string, amount int64, currency, pi, refundID string, refundAmount int64, refundStatus string) {
		for _, s := range []string{evID, objID, org, ref, topup, payStatus, currency, pi, refundID, refundStatus} {
			if !utf8.ValidString(s) {
				return // encoding/json would send U+FFFD, not the fuzzed bytes
			}
		}
		if q, _ := json.Marshal(pi); string(q) != `"`+pi+`"` {
			// stripe-go reads an expandable id (payment_intent) without
			// unescaping it; Stripe's ids never need escapes.
			return
		}
		ev := types[int(typ)%len(types)]
		var object map[string]any
		switch {
		case strings.HasPrefix(ev, "checkout."):
			object = map[string]any{"id": objID, "object": "checkout.session", "payment_status": payStatus, "client_reference_id": ref,
				"metadata": map[string]string{"org_id": org, "topup_id": topup}, "amount_total": amount, "currency": currency, "payment_intent": pi}
		case strings.HasPrefix(ev, "invoice."):
			object = map[string]any{"id": objID, "object": "invoice", "amount_paid": amount, "currency": currency, "status": payStatus,
				"metadata": map[string]string{"org_id": org, "topup_id": topup}}
		case ev == engine.EventChargeRefunded:
			object = map[string]any{"id": objID, "object": "charge", "payment_intent": pi, "refunds": map[string]any{"object": "list",
				"data": []any{map[string]any{"id": refundID, "amount": refundAmount, "status": refundStatus}}}}
		default:
			object = map[string]any{"id": objID, "object": "dispute", "payment_intent": pi, "amount": amount, "status": payStatus}
		}
		body := stripeEvent(evID, ev, object)
		sig := signed(body, fuzzSecret, time.Now())
		deliver := func() fuzzAnswer {
			return h.do(t, "POST", stripeWebhookPath, body, "Content-Type", "application/json", "Stripe-Signature", sig)
		}
		a := deliver()
		a.expectStatus(t, 200, 400)
		if a.status != 200 {
			return
		}
		if again := deliver(); again.status != 200 || !reflect.DeepEqual(again.cmds, a.cmds) {
			t.Fatalf("redelivery submitted %+v (status %d), the first delivery %+v", again.cmds, again.status, a.cmds)
		}
		for _, c := range a.cmds {
			if c.Kind != engine.CmdPaymentEvent || c.Name != ev || c.Reference != evID && !strings.HasPrefix(c.Reference, evID+":") || c.OrgID == "" {
				t.Fatalf("event %q of type %q submitted %+v", evID, ev, c)
			}
		}
		switch {
		case strings.HasPrefix(ev, "checkout."):
			wantOrg := org
			if wantOrg == "" {
				wantOrg = ref
			}
			credits := wantOrg != "" && topup != "" && (ref == "" || ref == wantOrg) &&
				(ev != engine.EventCheckoutCompleted || payStatus == "paid") &&
				(ev == engine.EventCheckoutExpired || currency != "" && amount > 0)
			if !credits {
				if len(a.cmds) != 0 {
					t.Fatalf("checkout event (org %q ref %q topup %q status %q amount %d %q) submitted %+v", org, ref, topup, payStatus, amount, currency, a.cmds)
				}
				return
			}
			c := a.oneCmd(t, engine.CmdPaymentEvent)
			if c.OrgID != wantOrg || c.TopupID != topup || c.SessionID != objID || c.AmountMinor != amount || c.PaymentIntent != pi ||
				ev != engine.EventCheckoutExpired && c.Currency != strings.ToLower(currency) {
				t.Fatalf("checkout event submitted %+v", c)
			}
		case ev == engine.EventChargeRefunded:
			live := pi == fuzzKnownPI && refundID != "" && refundAmount > 0 && refundStatus != "failed" && refundStatus != "canceled"
			if !live {
				if len(a.cmds) != 0 {
					t.Fatalf("refund (pi %q id %q amount %d status %q) submitted %+v", pi, refundID, refundAmount, refundStatus, a.cmds)
				}
				return
			}
			c := a.oneCmd(t, engine.CmdPaymentEvent)
			if c.Reference != evID+":"+refundID || c.TxID != refundID || c.AmountMinor != refundAmount || c.TopupID != fuzzTopupID || c.OrgID != fuzzOrg {
				t.Fatalf("refund submitted %+v", c)
			}
		case strings.HasPrefix(ev, "charge.dispute."):
			if pi != fuzzKnownPI && len(a.cmds) != 0 {
				t.Fatalf("dispute of an unknown payment submitted %+v", a.cmds)
			}
		case strings.HasPrefix(ev, "invoice."):
			if org == "" && len(a.cmds) != 0 {
				t.Fatalf("invoice of no org submitted %+v", a.cmds)
			}
			// A stored invoice is listed by GET /invoices: it must be one
			// the document's Invoice describes.
			for _, c := range a.cmds {
				inv := c.Invoice
				if inv == nil || !invoiceIDDocumented(inv.ID) || !invoiceStatusDocumented[inv.Status] || inv.CreatedAtMs <= 0 ||
					inv.CreatedAtMs > stripeUnixMax*1000 || inv.PeriodStartMs < 0 || inv.PeriodStartMs > stripeUnixMax*1000 ||
					inv.PeriodEndMs < 0 || inv.PeriodEndMs > stripeUnixMax*1000 {
					t.Fatalf("invoice event stored %+v", inv)
				}
			}
		default:
			if len(a.cmds) != 0 {
				t.Fatalf("event type %q submitted %+v", ev, a.cmds)
			}
		}
	})
}

// invoiceIDDocumented is the document's Invoice id pattern,
// ^(inv_|in_)[A-Za-z0-9_]+$, restated for the checks.
func invoiceIDDocumented(id string) bool {
	rest, ok := strings.CutPrefix(id, "in_")
	if !ok {
		rest, ok = strings.CutPrefix(id, "inv_")
	}
	if !ok || rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

var invoiceStatusDocumented = map[string]bool{"draft": true, "open": true, "paid": true, "uncollectible": true, "void": true}
