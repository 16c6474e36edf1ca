package server

import (
	"strconv"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

// TestWebhookInvoiceOutsideTheDocument: a signed invoice event whose
// invoice GET /invoices could not list as documented (an id not in_/inv_,
// an unknown status, no creation time of a four-digit year) is answered
// 200 and stores nothing; period times out of range are stored as none.
// (Found by FuzzStripeEvent: such invoices were stored and then listed
// with an id, status or dates outside api/openapi.yaml's Invoice.)
func TestWebhookInvoiceOutsideTheDocument(t *testing.T) {
	h := newFuzzHarness()
	send := func(inv map[string]any, evCreated int64) fuzzAnswer {
		t.Helper()
		inv["object"], inv["metadata"] = "invoice", map[string]string{"org_id": fuzzOrg}
		body := stripeEvent("evt_inv_doc", engine.EventInvoicePaid, inv)
		if evCreated != 1747390953 { // stripeEvent's
			body = []byte(string(body[:len(body)-1]) + `,"created":` + strconv.FormatInt(evCreated, 10) + `}`)
		}
		return h.do(t, "POST", stripeWebhookPath, body, "Content-Type", "application/json", "Stripe-Signature", signed(body, fuzzSecret, time.Now()))
	}
	for name, inv := range map[string]map[string]any{
		"id":     {"id": "ch_1", "status": "paid", "created": 1747390000},
		"id2":    {"id": "in_a-b", "status": "paid", "created": 1747390000},
		"status": {"id": "in_1", "status": "refunded", "created": 1747390000},
	} {
		if a := send(inv, 1747390953); a.status != 200 || len(a.cmds) != 0 {
			t.Errorf("%s: status %d submitted %+v", name, a.status, a.cmds)
		}
	}
	if a := send(map[string]any{"id": "in_1", "status": "paid", "created": 253402300800}, 0); a.status != 200 || len(a.cmds) != 0 {
		t.Errorf("no creation time: status %d submitted %+v", a.status, a.cmds)
	}
	a := send(map[string]any{"id": "inv_abc123", "status": "paid", "created": 1747390000, "period_start": -5, "period_end": 1e13}, 1747390953)
	if a.status != 200 || len(a.cmds) != 1 {
		t.Fatalf("a documented invoice: status %d submitted %+v", a.status, a.cmds)
	}
	if inv := a.cmds[0].Invoice; inv.ID != "inv_abc123" || inv.CreatedAtMs != 1747390000000 || inv.PeriodStartMs != 0 || inv.PeriodEndMs != 0 {
		t.Errorf("stored %+v", inv)
	}
}
