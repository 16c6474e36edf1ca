package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// GET /invoices with the Stripe provider: the invoices Stripe keeps for the
// org's customer (stripe-mock's one canned invoice) merged with those stored
// from signed invoice.paid events, and the stored list alone when Stripe
// fails or is slow.

// stripeMockInvoice returns stripe-mock's canned invoice, asked directly
// (through the proxy, before a test marks it) so the expectations follow the
// mock.
func stripeMockInvoice(t *testing.T, base string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/invoices?limit=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(stripeTestKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stripe-mock: %v", err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 || len(list.Data) == 0 {
		t.Fatalf("stripe-mock's invoice list: %d %v %v", resp.StatusCode, err, list.Data)
	}
	return list.Data[0]
}

// stripeTime renders a Stripe unix time as the API's timestamps.
func stripeTime(v any) string {
	return time.Unix(oaNum(v), 0).UTC().Format("2006-01-02T15:04:05.000Z")
}

// invoiceIDs lists the ids of GET /invoices' answer in order.
func invoiceIDs(invs []any) []string {
	var ids []string
	for _, inv := range invs {
		ids = append(ids, oaObj(inv)["id"].(string))
	}
	return ids
}

// invoiceCalls returns the GET /v1/invoices requests among calls.
func invoiceCalls(calls []stripeCall) []stripeCall {
	var out []stripeCall
	for _, c := range calls {
		if c.Path == "/v1/invoices" {
			out = append(out, c)
		}
	}
	return out
}

func TestStripeInvoicesListed(t *testing.T) {
	h := startStripeHarness(t)
	s := h.s
	canned := stripeMockInvoice(t, h.proxy.URL)
	cannedID, _ := canned["id"].(string)
	if !strings.HasPrefix(cannedID, "in_") {
		t.Fatalf("stripe-mock's invoice %v", canned)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	amount := canned["total"]
	if canned["status"] == "paid" {
		amount = canned["amount_paid"]
	}
	cannedWant := map[string]any{
		"id": cannedID, "number": str(canned["number"]), "amount": float64(oaNum(amount)), "currency": canned["currency"],
		"status": canned["status"], "period_start": stripeTime(canned["period_start"]), "period_end": stripeTime(canned["period_end"]),
		"pdf_url": str(canned["invoice_pdf"]), "created_at": stripeTime(canned["created"]),
	}
	storedInvoice := func(id, org, number string, amount int64, created time.Time) map[string]any {
		return map[string]any{
			"id": id, "object": "invoice", "number": number, "amount_paid": amount, "amount_due": amount, "total": amount,
			"currency": "usd", "status": "paid", "period_start": created.Add(-time.Hour).Unix(), "period_end": created.Unix(),
			"invoice_pdf": "https://pay.stripe.com/invoice/acct_xxx/" + id + "/pdf", "created": created.Unix(),
			"metadata": map[string]string{"org_id": org},
		}
	}
	storedCreated := time.Date(2026, 5, 16, 11, 22, 33, 0, time.UTC)
	storedWant := map[string]any{"id": "in_orbitstored1", "number": "ORB-0001", "amount": 10000.0, "currency": "usd", "status": "paid",
		"period_start": "2026-05-16T10:22:33.000Z", "period_end": "2026-05-16T11:22:33.000Z",
		"pdf_url": "https://pay.stripe.com/invoice/acct_xxx/in_orbitstored1/pdf", "created_at": "2026-05-16T11:22:33.000Z"}
	expectInvoice := func(t *testing.T, got any, want map[string]any) {
		t.Helper()
		g := oaObj(got)
		if len(g) != len(want) {
			t.Errorf("invoice %v has other fields than %v", g, want)
		}
		for k, v := range want {
			if g[k] != v {
				t.Errorf("invoice %v: %s = %#v, want %#v", g["id"], k, g[k], v)
			}
		}
	}

	t.Run("an org without a Stripe customer: the stored invoices, Stripe not called", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe invoices, no customer", 0)
		c := s.Key(org.Key)
		h.deliver(t, stripeEventBody(t, "evt_inv_nocus_1", "invoice.paid", storedInvoice("in_orbitstored1", org.ID, "ORB-0001", 10000, storedCreated)))
		m := h.proxy.mark()
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		if len(invs) != 1 {
			t.Fatalf("invoices %v", invs)
		}
		expectInvoice(t, invs[0], storedWant)
		if calls := h.proxy.since(m); len(calls) != 0 {
			t.Errorf("Stripe called for an org without a customer: %+v", calls)
		}
	})

	// An org with a customer (made by its first top-up) and a stored invoice.
	org := s.MustOrg(t, "Stripe invoices", 0)
	c := s.Key(org.Key)
	m := h.proxy.mark()
	stripeTopup(t, c, "topup-invoices-0001", 10000, "usd")
	customer := ""
	for _, call := range h.proxy.since(m) {
		if call.Path == "/v1/checkout/sessions" {
			customer = call.Form.Get("customer")
		}
	}
	if !strings.HasPrefix(customer, "cus_") {
		t.Fatalf("no customer in the top-up's Stripe calls %+v", h.proxy.since(m))
	}
	h.deliver(t, stripeEventBody(t, "evt_inv_list_1", "invoice.paid", storedInvoice("in_orbitstored1", org.ID, "ORB-0001", 10000, storedCreated)))

	t.Run("Stripe's invoices of the customer merged with the stored ones", func(t *testing.T) {
		m := h.proxy.mark()
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		if ids := invoiceIDs(invs); len(ids) != 2 || ids[0] != "in_orbitstored1" || ids[1] != cannedID {
			t.Fatalf("invoices %v, want the stored one then stripe-mock's %s (newest first)", ids, cannedID)
		}
		expectInvoice(t, invs[0], storedWant)
		expectInvoice(t, invs[1], cannedWant)
		calls := h.proxy.since(m)
		if len(calls) != 1 || calls[0].Method != "GET" || calls[0].Path != "/v1/invoices" ||
			calls[0].Form.Get("customer") != customer || calls[0].Form.Get("limit") != "100" {
			t.Errorf("Stripe calls %+v, want one GET /v1/invoices?customer=%s&limit=100", calls, customer)
		}
		// A read key lists them too.
		reader := s.Key(s.MustKey(t, org.ID, "read"))
		if ids := invoiceIDs(oaList(t, reader.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))); len(ids) != 2 {
			t.Errorf("read key: invoices %v", ids)
		}
	})

	t.Run("Stripe failing: 200 with the stored invoices", func(t *testing.T) {
		h.proxy.fail.Store(true)
		defer h.proxy.fail.Store(false)
		m := h.proxy.mark()
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		if ids := invoiceIDs(invs); len(ids) != 1 || ids[0] != "in_orbitstored1" {
			t.Fatalf("invoices %v, want the stored one alone", ids)
		}
		expectInvoice(t, invs[0], storedWant)
		if calls := invoiceCalls(h.proxy.since(m)); len(calls) != 1 || calls[0].Form.Get("customer") != customer {
			t.Errorf("Stripe calls %+v, want one attempt at GET /v1/invoices (no retries)", calls)
		}
		// The server's output reaches the test through a pipe: wait for it.
		testserver.WaitFor(t, 5*time.Second, "the warning about the failed Stripe call", func() bool {
			return strings.Contains(s.Logs(), "listing the payment provider's invoices failed")
		})
	})

	t.Run("Stripe slow: 200 with the stored invoices within the bound", func(t *testing.T) {
		h.proxy.delay.Store(int64(20 * time.Second))
		defer h.proxy.delay.Store(0)
		m := h.proxy.mark()
		start := time.Now()
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		took := time.Since(start)
		if ids := invoiceIDs(invs); len(ids) != 1 || ids[0] != "in_orbitstored1" {
			t.Fatalf("invoices %v, want the stored one alone", ids)
		}
		if took > 8*time.Second {
			t.Errorf("answered after %v with Stripe hanging, want about the 3 s bound", took)
		}
		if calls := invoiceCalls(h.proxy.since(m)); len(calls) != 1 {
			t.Errorf("Stripe calls %+v, want one attempt", calls)
		}
	})

	t.Run("the stored record wins over Stripe's", func(t *testing.T) {
		// Stripe's invoice, paid and stored from its event: listed once,
		// with the stored fields.
		created := time.Date(2026, 5, 17, 8, 0, 0, 0, time.UTC)
		h.deliver(t, stripeEventBody(t, "evt_inv_list_2", "invoice.paid", storedInvoice(cannedID, org.ID, "ORB-0002", 2500, created)))
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		if ids := invoiceIDs(invs); len(ids) != 2 || ids[0] != cannedID || ids[1] != "in_orbitstored1" {
			t.Fatalf("invoices %v, want %s (stored) then in_orbitstored1", ids, cannedID)
		}
		expectInvoice(t, invs[0], map[string]any{"id": cannedID, "number": "ORB-0002", "amount": 2500.0, "currency": "usd", "status": "paid",
			"period_start": "2026-05-17T07:00:00.000Z", "period_end": "2026-05-17T08:00:00.000Z",
			"pdf_url": "https://pay.stripe.com/invoice/acct_xxx/" + cannedID + "/pdf", "created_at": "2026-05-17T08:00:00.000Z"})
		expectInvoice(t, invs[1], storedWant)
	})
}
