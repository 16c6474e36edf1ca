package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

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
